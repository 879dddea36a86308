/* SPDX-License-Identifier: MIT */
/*
 * Inside the state stage (include/bizprobe/state.h): the staged batch, the two connections and
 * their prepared statements, the per-flush scratch space and the schema's migration steps.
 *
 * How the store keeps KPIs cheap at a million users: the sliding-window counts are hourly
 * histograms (hist: users by the hour of their last activity, last conversion and registration)
 * kept up to date by every flush, plus an exact count of the users inside the window's first,
 * partial hour read from an index; revenue and payment outcomes the same way (ledger per second,
 * ledger_hours per hour). Daily figures, cohorts, user and experiment totals are counts the
 * flush maintains; forget takes a user out of all of them. A user's activity days are a bitmap in
 * its row, not one row per day: 1M users x 10 days would be 10M rows.
 */
#ifndef BIZPROBE_STATE_INTERNAL_H
#define BIZPROBE_STATE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "bizprobe/state.h"

#define STATE_PSEUDO_BYTES 32
/* Longest label value stored; a longer one is stored as "other" (producers bound values, so
 * this only catches a misbehaving one). */
#define STATE_MAX_LABEL		 64
#define STATE_MAX_RETENTION_DAYS 1000
/* A user's activity bitmap spans the retention and one more week: a cohort week at the edge of
 * the longest range is then still whole, for forget to take the user out of it. */
#define STATE_ACT_EXTRA_DAYS 7

#define DAY_S  86400
#define HOUR_S 3600

/* ---------------------------------------------------------------- schema (state_schema.c) */
struct state_migration {
	int version; /* the user_version this step produces */
	const char *what;
	const char *sql;
};
extern const struct state_migration state_migrations[];
extern const unsigned state_n_migrations;

/* ---------------------------------------------------------------- the batch (state_batch.c) */
enum state_op {
	OP_NONE = 0, /* cleared (its user forgotten while staged) */
	OP_ACTIVITY, /* any other event with a user */
	OP_REGISTRATION,
	OP_PAYMENT, /* s_a: status; amount when succeeded */
	OP_LATE_SUCCESS,
	OP_SUB_CREATED,
	OP_SUB_CANCELED,
	OP_EXPOSURE, /* s_a: experiment, s_b: variant */
};

/* Strings are offsets into the batch's arena; 0 is "none". */
struct state_rec {
	int64_t ts;	/* seconds */
	int64_t amount; /* micro units of the currency */
	uint8_t op;
	bool has_user, has_subject, has_amount;
	uint32_t s_type, s_currency, s_a, s_b;
	uint8_t user[STATE_PSEUDO_BYTES];
	uint8_t subject[STATE_PSEUDO_BYTES];
};

struct state_blob_put {
	char *key;
	void *data; /* NULL: delete */
	size_t len;
};

/* One stored counter or histogram series (the counters table). */
struct state_counter {
	char *family;
	char *labels; /* JSON array of the label values */
	char *names;  /* JSON array of the family's label names */
	int type;     /* enum metrics_type */
	unsigned n_labels;
	char **label_values;
	double value; /* counter value; histogram sum */
	uint64_t count;
	unsigned n_buckets;
	double *bounds;
	uint64_t *buckets; /* per bucket, not cumulative */
};

struct state_counter_set {
	struct state_counter *v;
	unsigned n, cap;
};

struct state_batch {
	struct state_rec *recs;
	unsigned n, cap;
	char *arena;
	size_t arena_used, arena_cap;
	struct state_blob_put *blobs;
	unsigned n_blobs, cap_blobs;
	struct state_counter_set counters; /* staged snapshot */
	bool has_counters;
};

const char *state_batch_str(const struct state_batch *b, uint32_t off);
void state_batch_reset(struct state_batch *b);
void state_batch_free(struct state_batch *b);
int state_batch_init(struct state_batch *b, unsigned cap);

void state_counter_clear(struct state_counter *c);
void state_counter_set_clear(struct state_counter_set *s);
int state_counter_set_push(struct state_counter_set *s, struct state_counter *c);

/* ---------------------------------------------------------------- connections */
enum state_sql {
	SQL_BEGIN,
	SQL_COMMIT,
	SQL_ROLLBACK,
	SQL_USER_GET,
	SQL_USER_INSERT,
	SQL_USER_UPDATE,
	SQL_USER_DELETE,
	SQL_EXPOSURE_INSERT,
	SQL_EXPOSURE_CONVERT,
	SQL_EXPOSURES_OF_USER,
	SQL_EXPOSURES_DELETE_USER,
	SQL_SUB_CREATED,
	SQL_SUB_CANCELED,
	SQL_SUBS_UNLINK_USER,
	SQL_HIST_ADD,
	SQL_DAILY_ADD,
	SQL_COHORT_ADD,
	SQL_LEDGER_ADD,
	SQL_LEDGER_HOUR_ADD,
	SQL_EXPCOUNT_ADD,
	SQL_USERCOUNT_ADD,
	SQL_BLOB_PUT,
	SQL_BLOB_DELETE,
	SQL_BLOB_GET,
	SQL_COUNTERS_CLEAR,
	SQL_COUNTER_PUT,
	SQL_COUNTERS_ALL,
	/* reads (KPIs) */
	SQL_HIST_SUM,
	SQL_SEEN_EDGE,
	SQL_CONV_EDGE,
	SQL_REG_EDGE,
	SQL_LEDGER_WINDOW,
	SQL_USER_COUNTS,
	SQL_SUBS_TOTAL,
	SQL_SUBS_CREATED_SINCE,
	SQL_SUBS_CANCELED_SINCE,
	SQL_SUBS_CANCELED_BEFORE,
	SQL_SUBS_ACTIVE,
	SQL_EXPCOUNTS,
	SQL_DAILY_RANGE,
	SQL_LEDGER_DAYS,
	SQL_COHORTS_RANGE,
	SQL_N,
};

struct state_db {
	sqlite3 *h;
	sqlite3_stmt *stmts[SQL_N];
	pthread_mutex_t lock;
};

/* The statement, prepared on first use, reset and unbound; NULL on error (logged in the db). */
sqlite3_stmt *state_stmt(struct state_db *d, enum state_sql id);
/* SQLite result code to a negative errno. */
int state_sqlite_err(int rc);
/* Runs a statement without results to SQLITE_DONE; returns 0 or a negative errno. */
int state_step_done(sqlite3_stmt *s);
int state_exec(struct state_db *d, const char *sql);

/* ---------------------------------------------------------------- per-flush scratch */
/* One distinct user touched by a flush, loaded once and written back once. */
struct state_user {
	uint8_t pseudo[STATE_PSEUDO_BYTES];
	int64_t key; /* state_pseudo_key */
	int64_t id;
	int64_t first_ts; /* of its first record in the batch */
	bool loaded, is_new;
	/* as loaded (old) and as the batch leaves them */
	const char *old_type, *type; /* batch arena or the users table copy; NULL: none */
	int64_t first_seen, last_seen, old_last_seen;
	int64_t reg, old_reg;	/* 0: none */
	int64_t first_paid;	/* 0: none */
	int64_t conv, old_conv; /* last_converted_at; 0: none */
	int64_t act_base, old_act_base;
	uint8_t *bits, *old_bits; /* act_bytes each, in the scratch pool */
	char type_copy[STATE_MAX_LABEL + 1];
};

/* Aggregate deltas of one flush, summed in memory and written once per key. */
enum state_delta_table {
	D_HIST = 1,    /* a: kind, b: hour, s1: user type ("" for conv and reg) */
	D_DAILY,       /* a: day; n: active, n2: new */
	D_COHORT,      /* a: week (Monday's day number), b: k */
	D_LEDGER,      /* a: ts, b: kind, s1: status name, s2: currency; n, n2: amount */
	D_LEDGER_HOUR, /* a: hour, ... */
	D_EXPCOUNT,    /* s1: experiment, s2: variant; n: exposed, n2: converted */
	D_USERCOUNT,   /* s1: user type or "" */
};

enum state_hist_kind {
	HIST_SEEN = 0,
	HIST_CONV = 1,
	HIST_REG = 2,
};

/* Payment statuses as the Stripe stage names them (stripe_payments.c), stored as numbers. */
enum state_status {
	STATUS_OTHER = 0,
	STATUS_SUCCEEDED,
	STATUS_FAILED,
	STATUS_REQUIRES_ACTION,
	STATUS_PROCESSING,
	STATUS_CANCELED,
	STATUS_N,
};
int state_status_code(const char *status);
const char *state_status_name(int code);

enum state_ledger_kind {
	LEDGER_PAYMENT = 1, /* label: status */
	LEDGER_LATE_SUCCESS = 2,
	LEDGER_REGISTRATION = 3,
};

struct state_delta {
	uint64_t hash;
	int table;
	int64_t a, b;
	const char *s1, *s2; /* valid until the deltas are written */
	int64_t n, n2;
};

struct state_scratch {
	struct state_user *users;
	unsigned n_users, cap_users;
	uint32_t *index; /* open addressing over users, index + 1; 0 empty */
	uint32_t *order; /* users sorted by key (loading), then by id (writing) */
	unsigned index_mask;
	uint8_t *bits_pool;
	struct state_delta *deltas;
	uint32_t *delta_index;
	unsigned n_deltas, cap_deltas, delta_mask;
	char *strs; /* copies of strings read from the database during the flush */
	size_t strs_used, strs_cap;
};

/* ---------------------------------------------------------------- the store */
struct state_published; /* state_kpi.c */

struct state {
	char *dir, *path, *wal_path;
	char ns[64];
	unsigned retention_days;
	unsigned act_days, act_bytes;

	struct state_db w; /* writer: flush, forget, prune */
	struct state_db r; /* reader: publish, summary, blobs */

	pthread_mutex_t batch_lock; /* the staged batch and the stats below; taken after w.lock */
	struct state_batch batch[2];
	unsigned active;
	struct state_scratch scratch; /* under w.lock */

	/* counters waiting for their family (state_counters.c), under w.lock */
	struct state_counter_set unrestored;
	bool counters_loaded;

	struct state_published *pub; /* under r.lock */

	struct state_stats stats; /* counts under batch_lock */
};

int state_scratch_init(struct state_scratch *s, unsigned cap_users, unsigned act_bytes);
void state_scratch_free(struct state_scratch *s);
void state_scratch_reset(struct state_scratch *s);
int state_delta_add(struct state_scratch *s, int table, int64_t a, int64_t b, const char *s1,
		    const char *s2, int64_t n, int64_t n2);
int state_deltas_write(struct state *st);
/* Stores a string for the rest of the flush; NULL on overflow. */
const char *state_scratch_str(struct state_scratch *s, const char *str);

/* Bitmap and calendar helpers (state_flush.c). */
static inline int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}
static inline int64_t day_of(int64_t ts)
{
	return floor_div(ts, DAY_S);
}
static inline int64_t hour_of(int64_t ts)
{
	return floor_div(ts, HOUR_S);
}
/* Monday of the ISO week of a day (days since 1970-01-01, a Thursday). */
static inline int64_t monday_of(int64_t day)
{
	return day - (((day + 3) % 7) + 7) % 7;
}
static inline bool bit_get(const uint8_t *bits, unsigned i)
{
	return bits[i / 8] & (1u << (i % 8));
}
static inline void bit_set(uint8_t *bits, unsigned i)
{
	bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Loads a user by pseudonym into the scratch (w.lock held, in a transaction). */
int state_user_load(struct state *st, const uint8_t pseudo[STATE_PSEUDO_BYTES],
		    struct state_user **out, bool create, int64_t ts);
/* Takes a loaded user out of every aggregate, as deltas (forget). */
int state_user_unaccount(struct state *st, struct state_user *u);
/* Replaces the counters table with set (in the flush's transaction). */
int state_counters_write(struct state *st, const struct state_counter_set *set);

/* The 64-hex pseudonym to bytes; false unless exactly 64 hex digits. */
bool state_pseudo_parse(const char *hex, uint8_t out[STATE_PSEUDO_BYTES]);
int64_t state_pseudo_key(const uint8_t pseudo[STATE_PSEUDO_BYTES]);

/* ---------------------------------------------------------------- reads (state_kpi.c) */
struct state_count {
	char *key; /* user type, currency or status */
	int64_t n;
	int64_t amount; /* micro units */
};

struct state_counts {
	struct state_count *v;
	unsigned n, cap;
};

struct state_window {
	int64_t start;
	int64_t active_total;
	struct state_counts active_by_type; /* every known type, 0 included */
	int64_t converted, registered;
	struct state_counts revenue;  /* currency -> amount */
	struct state_counts payments; /* status -> n */
	int64_t payments_total, registrations;
	int64_t subs_canceled, subs_created, subs_active_at_start, subs_active_now;
};

/* The figures of [now - window_s, now] (r.lock held). */
int state_window_compute(struct state *st, int64_t now, int64_t window_s, struct state_window *w);
void state_window_free(struct state_window *w);
double state_churn(const struct state_window *w);
double state_conversion(const struct state_window *w);
int state_counts_add(struct state_counts *c, const char *key, int64_t n, int64_t amount);
void state_counts_free(struct state_counts *c);
void state_published_free(struct state_published *p);
/* A family state_publish registers (state_save_counters leaves them out: they are derived). */
bool state_owns_family(const struct state *st, const char *name);

static inline double micro_to_major(int64_t micro)
{
	return (double)micro / 1e6;
}

#endif
