/* SPDX-License-Identifier: MIT */
/*
 * The state stage (src/state/): bizprobe's memory over days. A consumer of business events
 * (include/bizprobe/business_event.h), like the metrics stage, that keeps in SQLite what the KPIs
 * need (distinct users in sliding windows, subscriptions and their history, revenue and payment
 * outcomes per second, experiment exposures), computes the KPI gauges on demand, answers the admin
 * summary, and keeps other stages' snapshots (Stripe dedupe tables, counter values) across
 * restarts.
 *
 * Lifecycle, as `bizprobe run` drives it:
 *
 *	state_open(&cfg, &st, err, sizeof(err));
 *	state_restore_counters(st, reg);     after the families are registered; again later for
 *	                                     families registered on first use (rules' metrics)
 *	state_get_blob(st, "stripe", ...);   other stages restore their snapshots
 *	per event:      state_on_event(st, ev)            (or state_event_sink as a biz_event_sink)
 *	every tick:     state_put_blob(...); state_save_counters(st, reg, ...); state_flush(st);
 *	every few s:    state_publish(st, reg, now)       (KPI gauges; never per scrape)
 *	daily:          state_prune(st, now)
 *	admin request:  state_summary_json(st, now, "30d", "USD", mrr, n, &json)  (any thread)
 *	SIGTERM/INT:    state_put_blob(...); state_save_counters(...); state_close(st)  (flushes)
 *
 * Durability: state_flush writes everything staged since the previous flush (events, blobs,
 * counter snapshot) in ONE transaction, in WAL mode with synchronous=NORMAL. A process crash
 * (kill -9) therefore loses at most what was staged after the last committed flush, i.e. one
 * tick's batch, and never leaves a half-written one; what a flush committed survives it. (A power
 * loss may also lose the last few committed flushes: NORMAL does not fsync every commit.)
 *
 * Threads: every function may be called from any thread. state_on_event only takes a short
 * batch lock and never waits for the database: when the batch is full the event is dropped and
 * counted (state_stats.events_dropped). Writers (flush, forget, prune) share one connection and
 * mutex; readers (publish, summary, get_blob) use a second connection and mutex, so in WAL mode a
 * summary does not wait for a flush and the reverse.
 *
 * Privacy: users and subscriptions are stored only as the pseudonyms events carry (64 hex digits,
 * kept as their 32 bytes); an event whose user or subject is not a pseudonym is not stored with
 * it (state_stats.invalid_ids). Besides those, the store keeps only the events' bounded label
 * values (user type, currency, payment status, experiment, variant), times and amounts. The
 * directory is made 0700 and the database files 0600.
 *
 * What events mean (every time is the event's wall_ns, in whole seconds; days are UTC):
 *   activity      any event with a user: the user's row (user type, first and last seen) and
 *                 its activity day. The latest non-NULL user type wins.
 *   registration  BIZ_RULE_EVENT named "registration" with a user: registered_at (the first
 *                 one only); its user type from ev->user_type, else its "user_type" label. Every
 *                 registration event, with a user or not, counts in summary.registrations (a
 *                 user's first one is its registered_at: forgetting the user takes it out).
 *   conversion    BIZ_PAYMENT_ATTEMPT with status "succeeded", or BIZ_SUBSCRIPTION_CREATED,
 *                 with a user: first_paid_at (first), last_converted_at (latest).
 *   revenue       BIZ_PAYMENT_ATTEMPT "succeeded" and BIZ_PAYMENT_LATE_SUCCESS: their value
 *                 (major units) per currency, with or without a user; refunds are not taken off.
 *   payments      every BIZ_PAYMENT_ATTEMPT: one outcome per status and currency.
 *   subscriptions BIZ_SUBSCRIPTION_CREATED / _CANCELED with a subject (the subscription's
 *                 pseudonym): created_at, canceled_at (first of each), currency, user, monthly
 *                 amount (when has_value). Without a subject (no salt) a subscription is not
 *                 tracked. A cancellation of a subscription never seen created counts as one
 *                 created before anything the store knows.
 *   experiments   BIZ_RULE_EVENT named "experiment_exposure" with a user and labels
 *                 "experiment" and "variant": the first exposure per (user, experiment) only,
 *                 with its variant. The user's first conversion at or after that first exposure
 *                 converts it, once, for the variant first seen: a conversion before the
 *                 exposure does not, and a second exposure changes nothing.
 *
 * KPIs at an injected time now (seconds); a window W covers [now - W, now] to the second, so a
 * user last seen exactly at now - 24h is active in 24h and one seen a second earlier is not:
 *   active_users{period, user_type}  distinct users with activity in the window; user_type
 *                 "total" and each user type seen (users without a type count in "total" only).
 *   total_users{user_type}           distinct users ever seen ("total" and each type); a user
 *                 forgotten is no longer counted; one pruned (unseen for the retention period)
 *                 still is, and counts again if it comes back.
 *   conversion_rate{period}          100 x distinct users with a conversion in the window /
 *                 active users in the window (0 when there are none).
 *   churn_rate{period=7d|30d}        100 x subscriptions canceled in the window /
 *                 (subscriptions active at the window's start + created in it); 0 when that is 0.
 *   arpu{period=30d, user_segment, currency}  revenue of the window in that currency /
 *                 active users ("all_users") or / users converted in the window ("paying_users");
 *                 one series per currency with revenue in the window, 0 when the divisor is 0.
 *   experiment_conversions_total{experiment, variant}  converted (user, experiment) pairs; a
 *                 counter that only grows, except after state_forget_user removes a converted
 *                 user: then the series is removed and set again at its new value (a counter
 *                 reset, which rate() reads as one).
 *   experiment_conversion_rate{experiment, variant}    100 x converted / exposed.
 * Exposure and user totals are not windowed and survive pruning (kept as counts).
 */
#ifndef BIZPROBE_STATE_H
#define BIZPROBE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "bizprobe/business_event.h"
#include "bizprobe/metrics.h"

/* The schema this build writes (PRAGMA user_version). Older stores are migrated on open, step
 * by step, each step in its own transaction; a newer one is refused. */
#define STATE_SCHEMA_VERSION 2

/* Defaults of struct state_config. A batch slot costs about 600 bytes in all (two batches
 * alternate, and the flush has scratch space for as many users): 16384 slots are ~10 MB. */
#define STATE_DEFAULT_BATCH_EVENTS   16384
#define STATE_DEFAULT_RETENTION_DAYS 90
#define STATE_DB_FILE		     "state.db"

struct state;

struct state_config {
	const char *dir;       /* required: created 0700 when missing; the store is dir/state.db */
	const char *namespace; /* prefix of the KPI families; NULL: "direct_fan" */
	unsigned batch_events; /* events staged between two flushes; 0: the default */
	unsigned retention_days; /* state_prune's horizon, >= the longest window; 0: 90 */
};

/*
 * Opens (creating, migrating) the store. Returns 0 and *out, or a negative errno with a sentence
 * in err (naming the file and what to do): -EPROTO for a store written by a newer bizprobe
 * (schema version above STATE_SCHEMA_VERSION), -ENOTDIR, -EACCES, -EIO for SQLite errors, -EINVAL
 * for a bad config, -ENOMEM.
 */
int state_open(const struct state_config *cfg, struct state **out, char *err, size_t errlen);
/* Flushes what is staged (state_flush), then closes. NULL is accepted. */
void state_close(struct state *st);

/* Stages what the event means (see above) in the batch; copies all it needs. Never blocks on
 * the database; a full batch drops the event and counts it. */
void state_on_event(struct state *st, const struct business_event *ev);
/* The same as a biz_event_sink_fn (ctx is the struct state). */
void state_event_sink(const struct business_event *ev, void *st);

/* Writes the batch, staged blobs and the staged counter snapshot in one transaction. Returns 0;
 * on failure (-EIO, -ENOSPC, -ENOMEM) what was staged is dropped and counted
 * (state_stats.events_dropped, flush_errors), so that a poisoned batch cannot block later ones. */
int state_flush(struct state *st);

/*
 * Snapshots of other stages, by key (any NUL-terminated string). put copies data and writes it in
 * the next flush's transaction, so a snapshot and the events before it commit together; data NULL
 * deletes the key. get returns the newest value, a staged one included, in a malloc'd buffer the
 * caller frees (*data NULL when len is 0). Returns 0, -ENOENT, -ENOMEM, -EIO.
 */
int state_put_blob(struct state *st, const char *key, const void *data, size_t len);
int state_get_blob(struct state *st, const char *key, void **data, size_t *len);

/*
 * Counters that survive restarts. save snapshots every counter and histogram series of reg whose
 * family name starts with one of prefixes (NULL or n 0: every counter and histogram), except the
 * state stage's own families (derived from the store), and stages the snapshot for the next
 * flush, replacing the stored one. restore adds the stored values to reg's series (histograms
 * bucket by bucket, metrics_histogram_restore) once per store opening; a stored series whose
 * family is not registered yet waits, and a later call restores it (a family whose type, labels
 * or buckets changed is dropped, counted in state_stats.counters_rejected). Values waiting are
 * kept by save, so nothing is lost before they are restored. restore returns how many series still
 * wait (>= 0) or a negative errno.
 */
int state_save_counters(struct state *st, struct metrics_registry *reg, const char *const *prefixes,
			unsigned n_prefixes);
int state_restore_counters(struct state *st, struct metrics_registry *reg);

/*
 * Registers (on the first call) and sets the KPI families above, namespaced, and the state's own
 * bizprobe_state_* families: db_bytes, rows{table}, events_dropped_total, flush_errors_total,
 * invalid_ids_total. Series whose subject left the window (a currency without revenue in 30 days)
 * are removed. Reads the database (tens of ms at a million users): call it from a timer every few
 * seconds, not from a scrape. Returns 0, -EEXIST if a family of that name exists with another
 * type or labels, -EIO, -ENOMEM.
 */
int state_publish(struct state *st, struct metrics_registry *reg, int64_t now);

/* Current MRR of one currency (major units), as the Stripe stage tracks it. */
struct state_mrr {
	const char *currency;
	double amount;
};

/*
 * The admin summary (GET /api/admin/metrics?range=...) as a malloc'd JSON text in *out:
 *   {"range", "generatedAt" (now, RFC 3339 UTC),
 *    "summary": {totalUsers (ever seen), activeUsers, newUsers (registered in the range),
 *                payingUsers (converted in the range), monthlyRecurringRevenue (mrr's entry for
 *                report_currency, 0 without one), monthlyRecurringRevenueByCurrency (mrr),
 *                revenueByCurrency, conversionRate, churnRate, arpuByCurrency (all_users),
 *                registrations (events), payments {succeeded, failed, successRate = 100 x
 *                succeeded / attempts of any status}, subscriptions {active (now), created,
 *                canceled (in the range)}},
 *    "daily": one entry per UTC day the range touches, oldest first: {date "YYYY-MM-DD",
 *                activeUsers, newUsers, revenueByCurrency {cur: amount}, payments {status: n}},
 *                each for the whole day,
 *    "cohorts": one entry per ISO week (Monday to Sunday, UTC) that the range touches and in
 *                which users registered, oldest first: {week "2026-W48", users (registered that
 *                whole week), retainedPercent: [k] = 100 x cohort users active in the k-th week
 *                after it / users, [0] = 100, up to the week of now}}
 * Figures of the range use the KPI definitions above with the range as the window. range is
 * "24h", "7d", "30d" or "90d" (-EINVAL otherwise); report_currency NULL is "USD". Returns 0,
 * -EINVAL, -EIO, -ENOMEM.
 */
int state_summary_json(struct state *st, int64_t now, const char *range,
		       const char *report_currency, const struct state_mrr *mrr, unsigned n_mrr,
		       char **out);

/*
 * Retention: deletes activity, revenue and payment rows older than retention_days before now,
 * subscriptions canceled before that, and users not seen since (their exposures with them; the
 * user and exposure totals keep counting them). One transaction. Returns 0 or -EIO.
 */
int state_prune(struct state *st, int64_t now);

/*
 * GDPR erasure of one user, by pseudonym (64 hex digits): deletes the user's row, activity and
 * exposures, takes them out of every aggregate (daily figures, cohorts, experiment counts),
 * unlinks the user from its subscriptions (the subscriptions stay, as business facts without a
 * person), and clears the user from the batch not yet flushed, in one transaction; the next
 * state_publish reflects it. Only the process that staged a batch can clear it: erase through
 * the running bizprobe, or an event of that user staged in its last tick brings the user back.
 * Returns 0, -ENOENT (no such user; the batch is cleared anyway), -EINVAL, -EIO.
 */
int state_forget_user(struct state *st, const char *pseudonym);

struct state_stats {
	uint64_t db_bytes; /* state.db and its WAL */
	/* rows per table */
	uint64_t users, subscriptions, exposures, ledger_rows, blobs, counters;
	uint64_t events_staged;	 /* accepted by state_on_event */
	uint64_t events_dropped; /* batch full, or lost by a failed flush */
	uint64_t events_flushed;
	uint64_t flushes, flush_errors;
	uint64_t invalid_ids;	    /* a user or subject that was not a pseudonym: not stored */
	uint64_t counters_rejected; /* stored series that no longer fit their family */
	uint64_t last_flush_ns;	    /* duration of the last flush */
};

/* Fills *out (row counts are counted now). Returns 0 or -EIO. */
int state_get_stats(struct state *st, struct state_stats *out);

#endif
