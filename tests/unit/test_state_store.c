// SPDX-License-Identifier: MIT
/*
 * The state store itself (include/bizprobe/state.h): files and modes, schema versions and
 * migration, what reaches the file (pseudonyms only; a forgotten user's bytes gone), blobs,
 * counters across restarts, the bounded batch, kill -9, retention, concurrent readers, and a
 * randomized run checked against a model of the events and against the store's own base rows.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_state_util.h"
#include "../../src/state/state_internal.h"

static char *db_path(const char *dir)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, STATE_DB_FILE) > 0);
	return p;
}

static sqlite3 *db_raw(const char *dir)
{
	char *p = db_path(dir);
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, 5000);
	free(p);
	return h;
}

static int64_t sql_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(h));
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

static void sql_exec(sqlite3 *h, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(h, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

/* The bytes of a file (the whole of it), for scans. */
static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	if (!f) {
		*len = 0;
		return calloc(1, 1);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
	return m && n >= m && memmem(hay, n, needle, m) != NULL;
}

/* Every file of the store directory, concatenated. */
static unsigned char *dir_bytes(const char *dir, size_t *len)
{
	static const char *const files[] = {"state.db", "state.db-wal", "state.db-shm"};
	unsigned char *all = NULL;
	size_t total = 0;

	for (unsigned i = 0; i < 3; i++) {
		char p[512];
		size_t n;
		unsigned char *b;

		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		b = slurp(p, &n);
		all = realloc(all, total + n + 1);
		assert_non_null(all);
		memcpy(all + total, b, n);
		total += n;
		free(b);
	}
	*len = total;
	return all;
}

/* ---------------------------------------------------------------- files and schema */
static void test_files_and_modes(void **state)
{
	char *parent = st_dir(), dir[512], *p;
	struct state *st;
	struct stat sb;
	sqlite3 *h;

	snprintf(dir, sizeof(dir), "%s/new", parent);
	umask(022);
	st = st_open_in(dir, 0, 0);
	ev_seen(st, U(1), "fan", NOW);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	p = db_path(dir);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	strcat(dir, "/state.db-wal");
	assert_int_equal(stat(dir, &sb), 0); /* WAL mode: the log exists while open */
	assert_int_equal(sb.st_mode & 07777, 0600);
	dir[strlen(dir) - strlen("/state.db-wal")] = '\0';

	h = db_raw(dir);
	assert_int_equal(sql_int(h, "PRAGMA user_version"), STATE_SCHEMA_VERSION);
	assert_int_equal(sql_int(h, "SELECT count(*) FROM users"), 1);
	sqlite3_close(h);
	state_close(st);

	/* a file in the way of the directory */
	{
		struct state_config cfg = {.dir = p};
		char err[256] = "";

		assert_int_equal(state_open(&cfg, &st, err, sizeof(err)), -ENOTDIR);
		assert_null(st);
		assert_non_null(strstr(err, "not a directory"));
	}
	{
		struct state_config cfg = {.dir = dir, .namespace = "bad-ns"};
		char err[256] = "";

		assert_int_equal(state_open(&cfg, &st, err, sizeof(err)), -EINVAL);
		assert_int_equal(state_open(NULL, &st, err, sizeof(err)), -EINVAL);
	}
	free(p);
	st_rmdir(parent);
}

static void test_newer_schema_refused(void **state)
{
	char *dir = st_dir();
	struct state_config cfg = {.dir = dir};
	struct state *st = st_open_in(dir, 0, 0);
	char err[512] = "";
	sqlite3 *h;

	state_close(st);
	h = db_raw(dir);
	sql_exec(h, "PRAGMA user_version = 3");
	sqlite3_close(h);
	assert_int_equal(state_open(&cfg, &st, err, sizeof(err)), -EPROTO);
	assert_null(st);
	assert_non_null(strstr(err, "schema version 3, newer than this bizprobe's 2"));
	assert_non_null(strstr(err, "state.db"));
	st_rmdir(dir);
}

/* A store written at version 1 (tables only) is migrated to the current version on open: its
 * rows stay, the indexes appear, the KPIs read them. */
static void test_migration_from_v1(void **state)
{
	char *dir = st_dir(), *p = db_path(dir);
	struct metrics_registry *reg = metrics_registry_new();
	uint8_t pseudo[STATE_PSEUDO_BYTES];
	sqlite3_stmt *s;
	struct state *st;
	sqlite3 *h;

	assert_int_equal(state_migrations[0].version, 1);
	assert_int_equal(sqlite3_open(p, &h), SQLITE_OK);
	sql_exec(h, state_migrations[0].sql);
	sql_exec(h, "PRAGMA user_version = 1");
	assert_true(state_pseudo_parse(U(1), pseudo));
	assert_int_equal(sqlite3_prepare_v2(h,
					    "INSERT INTO users (pseudonym, user_type, first_seen,"
					    " last_seen, act_base, act_bits) VALUES (?2, 'fan', ?3,"
					    " ?4, ?5, zeroblob(13))",
					    -1, &s, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(s, 2, pseudo, sizeof(pseudo), SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, NOW - 100);
	sqlite3_bind_int64(s, 4, NOW - 100);
	sqlite3_bind_int64(s, 5, (NOW - 100) / DAY);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	sql_exec(h, "INSERT INTO user_counts VALUES ('fan', 1);");
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "INSERT INTO hist VALUES (0, 'fan', %lld, 1)",
			 (long long)((NOW - 100) / HOUR));
		sql_exec(h, sql);
	}
	assert_int_equal(sql_int(h, "SELECT count(*) FROM sqlite_master WHERE name ="
				    " 'users_last_seen'"),
			 0);
	sqlite3_close(h);
	chmod(p, 0600);

	st = st_open_in(dir, 0, 0);
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(ACTIVE(reg, "24h", "fan") == 1);
	assert_true(st_metric(reg, "direct_fan_total_users", "total", NULL) == 1);
	/* and the migrated store takes new events */
	ev_seen(st, U(1), "fan", NOW - 10);
	ev_seen(st, U(2), "creator", NOW - 10);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(ACTIVE(reg, "24h", "total") == 2);
	state_close(st);

	h = db_raw(dir);
	assert_int_equal(sql_int(h, "PRAGMA user_version"), 2);
	assert_int_equal(sql_int(h, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
				    " name IN ('users_last_seen', 'users_registered',"
				    " 'users_converted', 'subscriptions_created',"
				    " 'subscriptions_canceled', 'subscriptions_user')"),
			 6);
	sqlite3_close(h);
	metrics_registry_free(reg);
	free(p);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- privacy */
static void sha_hex(const char *raw, char out[65], uint8_t bytes[32])
{
	SHA256((const unsigned char *)raw, strlen(raw), bytes);
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", bytes[i]);
}

/* Events carry pseudonyms of raw ids, and other labels a rule or Stripe puts on them; the
 * store's files hold the pseudonyms' bytes and none of the raw ids, e-mails, Stripe ids or
 * label values it has no use for. */
static void test_no_raw_ids_in_the_file(void **state)
{
	static const char *const raw[] = {"fan_alice_42",	 "alice@example.com",
					  "sub_1NXkSecret",	 "cus_Q2hvY29sYXRl",
					  "pi_3MtwBwLkdIwHu7ix", "Bearer ey"};
	char ua[65], ub[65], sa[65];
	uint8_t ua_b[32], ub_b[32], sa_b[32];
	char *dir = st_dir();
	struct state *st = st_open_in(dir, 0, 0);
	struct state_stats stats;
	unsigned char *bytes;
	size_t n;

	sha_hex(raw[0], ua, ua_b);
	sha_hex(raw[1], ub, ub_b);
	sha_hex(raw[2], sa, sa_b);
	ev_register(st, ua, "fan", NOW - 100);
	st_send(st,
		(struct st_ev){BIZ_RULE_EVENT, "content_view", ua, "fan", NULL, NOW - 90, false, 0},
		"content_type", "video", "email", raw[1], "customer", raw[3], NULL);
	ev_pay(st, ub, "succeeded", "USD", 5, NOW - 80);
	st_send(st,
		(struct st_ev){BIZ_PAYMENT_ATTEMPT, "payment_failed", ua, NULL, NULL, NOW - 70,
			       false, 0},
		"status", "failed", "currency", "USD", "code", raw[4], "decline_code", raw[5],
		NULL);
	ev_sub(st, true, ua, sa, "EUR", 9, NOW - 60);
	st_send(st,
		(struct st_ev){BIZ_STRIPE_API_REQUEST, NULL, NULL, NULL, NULL, NOW - 50, true, 0.2},
		"endpoint", raw[3], "method", "GET", "code", "200", NULL);
	ev_expose(st, ub, "flow", "control", NOW - 40);
	/* a producer's bug: a raw id where a pseudonym belongs is not stored */
	ev_seen(st, raw[1], "fan", NOW - 30);
	ev_sub(st, false, NULL, raw[2], "EUR", 0, NOW - 20);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_get_stats(st, &stats), 0);
	assert_int_equal(stats.invalid_ids, 2);
	assert_int_equal(stats.users, 2);
	assert_int_equal(stats.subscriptions, 1);
	state_close(st);

	bytes = dir_bytes(dir, &n);
	assert_true(n > 4096);
	for (unsigned i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		if (contains(bytes, n, raw[i], strlen(raw[i])))
			fail_msg("'%s' is in the store's files", raw[i]);
	}
	/* nor the pseudonyms as text, nor "alice" in any form */
	assert_false(contains(bytes, n, ua, 64));
	assert_false(contains(bytes, n, ub, 64));
	assert_false(contains(bytes, n, "alice", 5));
	/* what is kept: the pseudonyms' bytes */
	assert_true(contains(bytes, n, ua_b, 32));
	assert_true(contains(bytes, n, ub_b, 32));
	assert_true(contains(bytes, n, sa_b, 32));
	free(bytes);
	st_rmdir(dir);
}

/* After forget, the user's pseudonym is gone from the file's bytes, not only from its rows. */
static void test_forget_erases_bytes(void **state)
{
	char *dir = st_dir();
	struct state *st = st_open_in(dir, 0, 0);
	uint8_t a[32], b[32];
	unsigned char *bytes;
	size_t n;

	assert_true(state_pseudo_parse(U(1), a));
	assert_true(state_pseudo_parse(U(2), b));
	for (int i = 0; i < 50; i++) {
		ev_seen(st, U(1), "fan", NOW - i * HOUR);
		ev_seen(st, U(2), "fan", NOW - i * HOUR);
	}
	ev_expose(st, U(1), "flow", "control", NOW);
	ev_sub(st, true, U(1), S(1), "USD", 5, NOW);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_forget_user(st, U(1)), 0);
	state_close(st);

	bytes = dir_bytes(dir, &n);
	assert_false(contains(bytes, n, a, 32));
	assert_false(contains(bytes, n, a, 16));
	assert_true(contains(bytes, n, b, 32));
	free(bytes);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- blobs */
static void test_blobs(void **state)
{
	char *dir = st_dir();
	struct state *st = st_open_in(dir, 0, 0);
	const char big[] = "\x00\x01\x02 binary \xff";
	void *data;
	size_t len;

	assert_int_equal(state_get_blob(st, "stripe", &data, &len), -ENOENT);
	assert_int_equal(state_put_blob(st, "stripe", "v1", 2), 0);
	assert_int_equal(state_put_blob(st, "stripe", "v2!", 3), 0); /* replaces, staged */
	assert_int_equal(state_put_blob(st, "other", big, sizeof(big)), 0);
	assert_int_equal(state_put_blob(st, "empty", "", 0), 0);
	assert_int_equal(state_get_blob(st, "stripe", &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "v2!", 3);
	free(data);
	assert_int_equal(state_flush(st), 0);
	state_close(st);

	st = st_open_in(dir, 0, 0);
	assert_int_equal(state_get_blob(st, "stripe", &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "v2!", 3);
	free(data);
	assert_int_equal(state_get_blob(st, "other", &data, &len), 0);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(data, big, sizeof(big));
	free(data);
	assert_int_equal(state_get_blob(st, "empty", &data, &len), 0);
	assert_int_equal(len, 0);
	assert_null(data);
	/* deletion is staged too: the old value is gone at once, and from the file at the flush */
	assert_int_equal(state_put_blob(st, "other", NULL, 0), 0);
	assert_int_equal(state_get_blob(st, "other", &data, &len), -ENOENT);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_get_blob(st, "other", &data, &len), -ENOENT);
	assert_int_equal(state_put_blob(st, NULL, "x", 1), -EINVAL);
	state_close(st);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- counters */
static const char *const code_label[] = {"code"};
static const char *const ep_label[] = {"endpoint"};
static const char *const ct_label[] = {"content_type"};
static const double lat_buckets[] = {1, 5};

static struct metrics_family *fam(struct metrics_registry *reg, const char *name,
				  enum metrics_type type, const char *const *labels)
{
	struct metrics_family_opts o = {.name = name,
					.type = type,
					.label_names = labels,
					.n_labels = labels ? 1 : 0,
					.buckets = type == METRICS_HISTOGRAM ? lat_buckets : NULL,
					.n_buckets = type == METRICS_HISTOGRAM ? 2 : 0};
	struct metrics_family *f = NULL;

	assert_int_equal(metrics_family_register(reg, &o, &f), 0);
	return f;
}

struct hist_read {
	uint64_t buckets[2], count;
	double sum;
	int seen;
};

static int read_hist(const struct metrics_family_info *f, const struct metrics_series_info *s,
		     void *ctx)
{
	struct hist_read *h = ctx;

	if (strcmp(f->name, "lat_seconds"))
		return 0;
	memcpy(h->buckets, s->bucket_counts, sizeof(h->buckets));
	h->count = s->count;
	h->sum = s->sum;
	h->seen++;
	return 0;
}

static double value(struct metrics_family *f, const char *label)
{
	const char *l[] = {label};
	double v = -1;

	metrics_get(f, label ? l : NULL, &v);
	return v;
}

static void test_counters_survive_restarts(void **state)
{
	char *dir = st_dir();
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_family *x, *y, *z, *rule;
	const char *a[] = {"a"}, *b[] = {"b"}, *e[] = {"e"}, *video[] = {"video"};
	struct metrics_visitor v = {.series = read_hist};
	struct hist_read hr = {0};
	struct state_stats stats;
	struct state *st;
	sqlite3 *h;

	/* run 1: counters, a histogram, a family registered on first use, the state's own */
	st = st_open_in(dir, 0, 0);
	x = fam(reg, "x_total", METRICS_COUNTER, code_label);
	y = fam(reg, "lat_seconds", METRICS_HISTOGRAM, ep_label);
	z = fam(reg, "z_total", METRICS_COUNTER, NULL);
	rule = fam(reg, "rule_views_total", METRICS_COUNTER, ct_label);
	metrics_add(x, a, 3);
	metrics_add(x, b, 2.5);
	metrics_observe(y, e, 0.5);
	metrics_observe(y, e, 3);
	metrics_observe(y, e, 10);
	metrics_add(z, NULL, 7);
	metrics_add(rule, video, 4);
	ev_expose(st, U(1), "flow", "control", NOW - 10);
	ev_pay(st, U(1), "succeeded", "USD", 1, NOW - 5);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_int_equal(state_save_counters(st, reg, NULL, 0), 0);
	assert_int_equal(state_flush(st), 0);
	state_close(st);
	metrics_registry_free(reg);

	h = db_raw(dir);
	/* x a, x b, lat e, z, rule video; none of the state's own (derived) families */
	assert_int_equal(sql_int(h, "SELECT count(*) FROM counters"), 5);
	assert_int_equal(sql_int(h, "SELECT count(*) FROM counters WHERE family LIKE"
				    " '%state%' OR family LIKE 'direct_fan%'"),
			 0);
	sqlite3_close(h);

	/* run 2: z_total changed its labels; rule_views_total is not registered yet */
	reg = metrics_registry_new();
	x = fam(reg, "x_total", METRICS_COUNTER, code_label);
	y = fam(reg, "lat_seconds", METRICS_HISTOGRAM, ep_label);
	z = fam(reg, "z_total", METRICS_COUNTER, code_label);
	st = st_open_in(dir, 0, 0);
	assert_int_equal(state_restore_counters(st, reg), 1);
	assert_true(value(x, "a") == 3);
	assert_true(value(x, "b") == 2.5);
	assert_int_equal(metrics_registry_visit(reg, &v, &hr), 0);
	assert_int_equal(hr.seen, 1);
	assert_int_equal(hr.buckets[0], 1);
	assert_int_equal(hr.buckets[1], 1);
	assert_int_equal(hr.count, 3);
	assert_true(hr.sum == 13.5);
	assert_int_equal(metrics_family_series(z), 0);
	assert_int_equal(state_get_stats(st, &stats), 0);
	assert_int_equal(stats.counters_rejected, 1);
	/* the experiment counter is the store's, recomputed, not restored */
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(st_metric(reg, "direct_fan_experiment_conversions_total", "flow", "control",
			      NULL) == 1);

	/* a snapshot while rule_views waits keeps its stored value */
	metrics_inc(x, a);
	assert_int_equal(state_save_counters(st, reg, NULL, 0), 0);
	assert_int_equal(state_flush(st), 0);
	h = db_raw(dir);
	assert_int_equal(sql_int(h, "SELECT value FROM counters WHERE family ="
				    " 'rule_views_total'"),
			 4);
	assert_int_equal(sql_int(h, "SELECT value FROM counters WHERE family = 'x_total' AND"
				    " labels = '[\"a\"]'"),
			 4);
	sqlite3_close(h);
	/* the family appears with its first event; restore catches up */
	rule = fam(reg, "rule_views_total", METRICS_COUNTER, ct_label);
	metrics_inc(rule, video);
	assert_int_equal(state_restore_counters(st, reg), 0);
	assert_true(value(rule, "video") == 5);
	assert_int_equal(state_restore_counters(st, reg), 0); /* once only */
	assert_true(value(rule, "video") == 5);
	/* only the families asked for */
	{
		const char *const prefixes[] = {"x_", "rule_"};

		assert_int_equal(state_save_counters(st, reg, prefixes, 2), 0);
	}
	assert_int_equal(state_flush(st), 0);
	state_close(st);
	metrics_registry_free(reg);

	/* run 3 */
	reg = metrics_registry_new();
	x = fam(reg, "x_total", METRICS_COUNTER, code_label);
	y = fam(reg, "lat_seconds", METRICS_HISTOGRAM, ep_label);
	rule = fam(reg, "rule_views_total", METRICS_COUNTER, ct_label);
	st = st_open_in(dir, 0, 0);
	assert_int_equal(state_restore_counters(st, reg), 0);
	assert_true(value(x, "a") == 4);
	assert_true(value(rule, "video") == 5);
	assert_int_equal(metrics_family_series(y), 0); /* not saved by the last snapshot */
	state_close(st);
	metrics_registry_free(reg);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- the batch */
static void test_batch_overflow(void **state)
{
	char *dir = st_dir();
	struct state *st = st_open_in(dir, 4, 0);
	struct metrics_registry *reg = metrics_registry_new();
	struct state_stats stats;

	for (unsigned i = 1; i <= 6; i++)
		ev_seen(st, U(i), "fan", NOW - (int64_t)i);
	/* events without a user and without business meaning take no slot */
	ev_seen(st, NULL, NULL, NOW);
	assert_int_equal(state_get_stats(st, &stats), 0);
	assert_int_equal(stats.events_staged, 4);
	assert_int_equal(stats.events_dropped, 2);
	assert_int_equal(state_flush(st), 0);
	ev_seen(st, U(7), "fan", NOW);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_get_stats(st, &stats), 0);
	assert_int_equal(stats.events_flushed, 5);
	assert_int_equal(stats.flushes, 2);
	assert_int_equal(stats.users, 5);
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(ACTIVE(reg, "24h", "total") == 5);
	assert_true(st_metric(reg, "bizprobe_state_events_dropped_total", NULL) == 2);
	assert_true(st_metric(reg, "bizprobe_state_rows", "users", NULL) == 5);
	assert_true(st_metric(reg, "bizprobe_state_db_bytes", NULL) > 4096);
	/* an empty flush is a no-op */
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_get_stats(st, &stats), 0);
	assert_int_equal(stats.flushes, 2);
	state_close(st);
	metrics_registry_free(reg);
	st_rmdir(dir);
}

/* kill -9 loses what was staged after the last flush, nothing that a flush committed. */
static void test_kill9_loses_only_the_last_batch(void **state)
{
	char *dir = st_dir();
	struct metrics_registry *reg = metrics_registry_new();
	struct state *st;
	int status;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		st = st_open_in(dir, 0, 0);
		for (unsigned i = 1; i <= 3; i++)
			ev_seen(st, U(i), "fan", NOW - 10);
		state_put_blob(st, "stripe", "flushed", 7);
		if (state_flush(st))
			_exit(2);
		for (unsigned i = 4; i <= 5; i++)
			ev_seen(st, U(i), "fan", NOW - 5);
		state_put_blob(st, "stripe", "staged", 6);
		kill(getpid(), SIGKILL);
		_exit(3);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	st = st_open_in(dir, 0, 0);
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(st_metric(reg, "direct_fan_total_users", "total", NULL) == 3);
	{
		void *data;
		size_t len;

		assert_int_equal(state_get_blob(st, "stripe", &data, &len), 0);
		assert_int_equal(len, 7);
		assert_memory_equal(data, "flushed", 7);
		free(data);
	}
	state_close(st);
	metrics_registry_free(reg);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- aggregates vs base rows */
static int64_t sym_diff(sqlite3 *h, const char *a, const char *b)
{
	char sql[1024];
	int64_t n;

	snprintf(sql, sizeof(sql),
		 "SELECT (SELECT count(*) FROM (%s EXCEPT %s)) +"
		 " (SELECT count(*) FROM (%s EXCEPT %s))",
		 a, b, b, a);
	n = sql_int(h, sql);
	if (n)
		fprintf(stderr, "differ: %s / %s\n", a, b);
	return n;
}

/* The aggregates a flush maintains equal what the base rows say. unpruned: nothing was pruned,
 * so user and experiment totals, daily figures and cohorts match the rows too (pruning keeps
 * the counts of users it deletes, and deletes old days). */
static void check_invariants(const char *dir, bool unpruned, unsigned act_days)
{
	sqlite3 *h = db_raw(dir);
	sqlite3_stmt *s;

	assert_int_equal(sym_diff(h,
				  "SELECT user_type, hour, n FROM hist WHERE kind = 0 AND n <> 0",
				  "SELECT coalesce(user_type, ''), last_seen / 3600, count(*) FROM"
				  " users GROUP BY 1, 2"),
			 0);
	assert_int_equal(sym_diff(h, "SELECT hour, n FROM hist WHERE kind = 1 AND n <> 0",
				  "SELECT last_converted_at / 3600, count(*) FROM users WHERE"
				  " last_converted_at IS NOT NULL GROUP BY 1"),
			 0);
	assert_int_equal(sym_diff(h, "SELECT hour, n FROM hist WHERE kind = 2 AND n <> 0",
				  "SELECT registered_at / 3600, count(*) FROM users WHERE"
				  " registered_at IS NOT NULL GROUP BY 1"),
			 0);
	if (!unpruned) {
		sqlite3_close(h);
		return;
	}
	{
		assert_int_equal(sym_diff(h, "SELECT user_type, n FROM user_counts WHERE n <> 0",
					  "SELECT coalesce(user_type, ''), count(*) FROM users"
					  " GROUP BY 1"),
				 0);
		assert_int_equal(
		    sym_diff(h,
			     "SELECT experiment, variant, exposed, converted FROM"
			     " experiment_counts WHERE exposed <> 0 OR converted <> 0",
			     "SELECT experiment, variant, count(*), count(converted_at)"
			     " FROM exposures GROUP BY 1, 2"),
		    0);
	}
	/* daily actives and cohorts from the bitmaps */
	sql_exec(h, "CREATE TEMP TABLE want_daily (day INTEGER PRIMARY KEY, active, new);"
		    "CREATE TEMP TABLE want_cohorts (week, k, n, PRIMARY KEY (week, k));");
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT act_base, act_bits, registered_at FROM users",
					    -1, &s, NULL),
			 SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		int64_t base = sqlite3_column_int64(s, 0);
		const uint8_t *bits = sqlite3_column_blob(s, 1);
		int nbits = sqlite3_column_bytes(s, 1) * 8;
		bool reg = sqlite3_column_type(s, 2) != SQLITE_NULL;
		int64_t rw = reg ? monday_of(day_of(sqlite3_column_int64(s, 2))) : 0;
		int64_t last_k = 0;
		char sql[256];

		assert_true(nbits >= (int)act_days);
		if (reg) {
			snprintf(sql, sizeof(sql),
				 "INSERT INTO want_daily VALUES (%lld, 0, 1) ON CONFLICT DO UPDATE"
				 " SET new = new + 1; INSERT INTO want_cohorts VALUES (%lld, 0, 1)"
				 " ON CONFLICT DO UPDATE SET n = n + 1",
				 (long long)day_of(sqlite3_column_int64(s, 2)), (long long)rw);
			sql_exec(h, sql);
		}
		for (int i = 0; i < nbits; i++) {
			int64_t k;

			if (!(bits[i / 8] & (1 << (i % 8))))
				continue;
			assert_true(i < (int)act_days);
			snprintf(sql, sizeof(sql),
				 "INSERT INTO want_daily VALUES (%lld, 1, 0) ON CONFLICT DO UPDATE"
				 " SET active = active + 1",
				 (long long)(base + i));
			sql_exec(h, sql);
			k = reg ? (monday_of(base + i) - rw) / 7 : 0;
			if (reg && k >= 1 && k != last_k) {
				snprintf(sql, sizeof(sql),
					 "INSERT INTO want_cohorts VALUES (%lld, %lld, 1) ON"
					 " CONFLICT DO UPDATE SET n = n + 1",
					 (long long)rw, (long long)k);
				sql_exec(h, sql);
				last_k = k;
			}
		}
	}
	sqlite3_finalize(s);
	assert_int_equal(sym_diff(h,
				  "SELECT day, active, new FROM daily WHERE active <> 0 OR new"
				  " <> 0",
				  "SELECT day, active, new FROM want_daily"),
			 0);
	assert_int_equal(sym_diff(h, "SELECT week, k, n FROM cohorts WHERE n <> 0",
				  "SELECT week, k, n FROM want_cohorts"),
			 0);
	sqlite3_close(h);
}

/* ---------------------------------------------------------------- retention */
static double exp_conv_of(struct metrics_registry *reg)
{
	return st_metric(reg, "direct_fan_experiment_conversions_total", "flow", "control", NULL);
}

static void test_prune(void **state)
{
	char *dir = st_dir();
	struct state *st = st_open_in(dir, 0, 30);
	struct metrics_registry *reg = metrics_registry_new();
	struct state_stats stats;
	char *text;
	struct json_object *j, *v;

	/* U1: everything 40 days ago; U2: seen 10 days ago, registered 100 days ago */
	ev_register(st, U(1), "fan", NOW - 40 * DAY);
	ev_expose(st, U(1), "flow", "control", NOW - 40 * DAY);
	ev_pay(st, U(1), "succeeded", "USD", 5, NOW - 40 * DAY);
	ev_register(st, U(2), "creator", NOW - 100 * DAY);
	ev_seen(st, U(2), "creator", NOW - 10 * DAY);
	ev_pay(st, U(2), "succeeded", "USD", 7, NOW - 10 * DAY);
	ev_sub(st, true, U(2), S(1), "USD", 5, NOW - 50 * DAY);
	ev_sub(st, false, U(2), S(1), "USD", 0, NOW - 35 * DAY);
	ev_sub(st, true, U(1), S(2), "USD", 5, NOW - 45 * DAY);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_prune(st, NOW), 0);
	assert_int_equal(state_get_stats(st, &stats), 0);
	assert_int_equal(stats.users, 1);
	assert_int_equal(stats.exposures, 0);
	assert_int_equal(stats.subscriptions, 1); /* S2, still active */
	assert_int_equal(stats.ledger_rows, 1);	  /* U2's payment */
	check_invariants(dir, false, 30 + 7);

	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(st_metric(reg, "direct_fan_total_users", "total", NULL) == 2);
	assert_true(st_metric(reg, "direct_fan_total_users", "fan", NULL) == 1);
	assert_true(ACTIVE(reg, "30d", "total") == 1);
	assert_true(exp_conv_of(reg) == 1);
	assert_true(st_metric(reg, "direct_fan_arpu", "30d", "all_users", "USD", NULL) == 7);
	assert_int_equal(state_summary_json(st, NOW, "30d", NULL, NULL, 0, &text), 0);
	j = json_tokener_parse(text);
	free(text);
	assert_true(json_object_object_get_ex(j, "summary", &v));
	assert_true(json_object_object_get_ex(v, "subscriptions", &v));
	assert_true(json_object_object_get_ex(v, "active", &v));
	assert_int_equal(json_object_get_int64(v), 1);
	json_object_put(j);

	/* the pruned user comes back: a new user (documented) */
	ev_seen(st, U(1), "fan", NOW);
	assert_int_equal(state_flush(st), 0);
	assert_int_equal(state_publish(st, reg, NOW), 0);
	assert_true(st_metric(reg, "direct_fan_total_users", "total", NULL) == 3);
	assert_true(ACTIVE(reg, "24h", "total") == 1);
	check_invariants(dir, false, 30 + 7);
	state_close(st);
	metrics_registry_free(reg);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- threads */
struct reader_ctx {
	struct state *st;
	int errors, runs;
	volatile bool stop;
};

static void *reader(void *p)
{
	struct reader_ctx *c = p;
	struct metrics_registry *reg = metrics_registry_new();

	while (!c->stop || c->runs < 20) {
		char *text = NULL;
		void *data;
		size_t len;
		int e;

		if (state_summary_json(c->st, NOW, "30d", "USD", NULL, 0, &text))
			c->errors++;
		free(text);
		if (state_publish(c->st, reg, NOW))
			c->errors++;
		e = state_get_blob(c->st, "k", &data, &len);
		if (e && e != -ENOENT)
			c->errors++;
		if (!e)
			free(data);
		c->runs++;
	}
	metrics_registry_free(reg);
	return NULL;
}

/* Admin reads from another thread while the main thread stages and flushes. */
static void test_concurrent_readers(void **state)
{
	char *dir = st_dir();
	struct reader_ctx c = {.st = st_open_in(dir, 256, 0)};
	struct metrics_registry *reg = metrics_registry_new();
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, reader, &c), 0);
	for (unsigned round = 0; round < 100; round++) {
		for (unsigned i = 0; i < 50; i++) {
			unsigned u = round * 50 + i;

			ev_seen(c.st, U(u % 1000), u % 2 ? "fan" : "creator",
				NOW - (u % 97) * HOUR);
			if (u % 7 == 0)
				ev_pay(c.st, U(u % 1000), "succeeded", "USD", 1, NOW - (u % 50));
		}
		state_put_blob(c.st, "k", &round, sizeof(round));
		assert_int_equal(state_flush(c.st), 0);
	}
	c.stop = true;
	pthread_join(t, NULL);
	assert_int_equal(c.errors, 0);
	assert_int_equal(state_publish(c.st, reg, NOW), 0);
	assert_true(st_metric(reg, "direct_fan_total_users", "total", NULL) == 1000);
	state_close(c.st);
	check_invariants(dir, true, 90 + 7);
	metrics_registry_free(reg);
	st_rmdir(dir);
}

/* ---------------------------------------------------------------- a model of the events */
#define M_USERS 300

struct model_user {
	bool exists;
	const char *type;
	int64_t last_seen, conv, reg;
	bool days[200]; /* day - day0 */
};

static struct model_user model[M_USERS];
static int64_t model_day0;

static const char *const types[] = {NULL, "fan", "creator"};

static void model_seen(unsigned u, const char *type, int64_t ts)
{
	struct model_user *m = &model[u];

	if (!m->exists || ts > m->last_seen)
		m->last_seen = ts;
	m->exists = true;
	if (type)
		m->type = type;
	m->days[day_of(ts) - model_day0] = true;
}

static void check_model(struct state *st, struct metrics_registry *reg, int64_t now)
{
	static const struct {
		const char *name;
		int64_t s;
	} periods[] = {{"24h", DAY}, {"7d", 7 * DAY}, {"30d", 30 * DAY}};
	int64_t total[3] = {0};

	assert_int_equal(state_publish(st, reg, now), 0);
	for (unsigned p = 0; p < 3; p++) {
		int64_t active[3] = {0}, all = 0, conv = 0;

		for (unsigned u = 0; u < M_USERS; u++) {
			const struct model_user *m = &model[u];

			if (!m->exists || m->last_seen < now - periods[p].s)
				continue;
			all++;
			for (unsigned t = 1; t < 3; t++)
				active[t] += m->type == types[t];
			conv += m->conv && m->conv >= now - periods[p].s;
		}
		assert_true(ACTIVE(reg, periods[p].name, "total") == all);
		assert_true(ACTIVE(reg, periods[p].name, "fan") == active[1]);
		assert_true(ACTIVE(reg, periods[p].name, "creator") == active[2]);
		assert_true(st_metric(reg, "direct_fan_conversion_rate", periods[p].name, NULL) ==
			    (all ? 100.0 * (double)conv / (double)all : 0.0));
	}
	for (unsigned u = 0; u < M_USERS; u++) {
		if (!model[u].exists)
			continue;
		total[0]++;
		for (unsigned t = 1; t < 3; t++)
			total[t] += model[u].type == types[t];
	}
	assert_true(st_metric(reg, "direct_fan_total_users", "total", NULL) == total[0]);
	assert_true(st_metric(reg, "direct_fan_total_users", "fan", NULL) == total[1]);
	assert_true(st_metric(reg, "direct_fan_total_users", "creator", NULL) == total[2]);

	/* the 90d summary: active, new, and each day's distinct actives */
	{
		char *text;
		struct json_object *j, *s, *v, *daily;
		int64_t active = 0, fresh = 0;

		assert_int_equal(state_summary_json(st, now, "90d", NULL, NULL, 0, &text), 0);
		j = json_tokener_parse(text);
		free(text);
		for (unsigned u = 0; u < M_USERS; u++) {
			active += model[u].exists && model[u].last_seen >= now - 90 * DAY;
			fresh += model[u].exists && model[u].reg && model[u].reg >= now - 90 * DAY;
		}
		assert_true(json_object_object_get_ex(j, "summary", &s));
		assert_true(json_object_object_get_ex(s, "activeUsers", &v));
		assert_int_equal(json_object_get_int64(v), active);
		assert_true(json_object_object_get_ex(s, "newUsers", &v));
		assert_int_equal(json_object_get_int64(v), fresh);
		assert_true(json_object_object_get_ex(j, "daily", &daily));
		for (size_t i = 0; i < json_object_array_length(daily); i++) {
			int64_t d = day_of(now - 90 * DAY) + (int64_t)i, want = 0;

			for (unsigned u = 0; u < M_USERS; u++)
				want += model[u].exists && d >= model_day0 &&
					d - model_day0 < 200 && model[u].days[d - model_day0];
			assert_true(json_object_object_get_ex(json_object_array_get_idx(daily, i),
							      "activeUsers", &v));
			assert_int_equal(json_object_get_int64(v), want);
		}
		json_object_put(j);
	}
}

static void test_random_against_model(void **state)
{
	char *dir = st_dir();
	struct state *st = st_open_in(dir, 512, 0);
	struct metrics_registry *reg = metrics_registry_new();
	int64_t t0 = NOW - 60 * DAY;
	unsigned seed = 12345;

	memset(model, 0, sizeof(model));
	model_day0 = day_of(t0);
	for (unsigned i = 0; i < 6000; i++) {
		unsigned u = (unsigned)rand_r(&seed) % M_USERS;
		int64_t ts = t0 + rand_r(&seed) % (60 * DAY); /* in no particular order */
		const char *type = types[rand_r(&seed) % 3];
		int what = rand_r(&seed) % 10;

		if (what < 6) {
			ev_seen(st, U(u), type, ts);
			model_seen(u, type, ts);
		} else if (what < 7 && type) {
			ev_register(st, U(u), type, ts);
			model_seen(u, type, ts);
			if (!model[u].reg)
				model[u].reg = ts;
		} else if (what < 9) {
			bool ok = rand_r(&seed) % 2;

			ev_pay(st, U(u), ok ? "succeeded" : "failed", "USD", 1.25, ts);
			model_seen(u, NULL, ts);
			if (ok && ts > model[u].conv)
				model[u].conv = ts;
		} else {
			ev_sub(st, true, U(u), S(i), "EUR", 3, ts);
			model_seen(u, NULL, ts);
			if (ts > model[u].conv)
				model[u].conv = ts;
		}
		if (i % 500 == 499)
			assert_int_equal(state_flush(st), 0);
	}
	assert_int_equal(state_flush(st), 0);
	check_invariants(dir, true, 90 + 7);
	for (int64_t now = t0; now < NOW + 40 * DAY; now += 5 * DAY + 1237)
		check_model(st, reg, now);
	check_model(st, reg, NOW);

	for (unsigned u = 0; u < M_USERS; u += 7) {
		int e = state_forget_user(st, U(u));

		assert_int_equal(e, model[u].exists ? 0 : -ENOENT);
		model[u].exists = false;
	}
	check_invariants(dir, true, 90 + 7);
	check_model(st, reg, NOW);
	check_model(st, reg, NOW - 20 * DAY + 77);
	state_close(st);
	metrics_registry_free(reg);
	st_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_files_and_modes),
	    cmocka_unit_test(test_newer_schema_refused),
	    cmocka_unit_test(test_migration_from_v1),
	    cmocka_unit_test(test_no_raw_ids_in_the_file),
	    cmocka_unit_test(test_forget_erases_bytes),
	    cmocka_unit_test(test_blobs),
	    cmocka_unit_test(test_counters_survive_restarts),
	    cmocka_unit_test(test_batch_overflow),
	    cmocka_unit_test(test_kill9_loses_only_the_last_batch),
	    cmocka_unit_test(test_prune),
	    cmocka_unit_test(test_concurrent_readers),
	    cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
