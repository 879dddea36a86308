// SPDX-License-Identifier: MIT
/*
 * Forgetting one user (GDPR erasure) and retention. Both hold the writer's lock, so no flush
 * runs in between: the batch a flush swapped out is always written before, and the one being
 * staged is cleared of the forgotten user under the batch lock.
 */
#include <errno.h>
#include <string.h>

#include "state_internal.h"

/* Clears the user from the batch being staged: its activity and exposures are dropped, the
 * business facts (payments, subscriptions, registrations) stay, without the person. */
static void batch_forget(struct state *st, const uint8_t pseudo[STATE_PSEUDO_BYTES])
{
	struct state_batch *b;

	pthread_mutex_lock(&st->batch_lock);
	b = &st->batch[st->active];
	for (unsigned i = 0; i < b->n; i++) {
		struct state_rec *r = &b->recs[i];

		if (!r->has_user || memcmp(r->user, pseudo, STATE_PSEUDO_BYTES))
			continue;
		r->has_user = false;
		memset(r->user, 0, sizeof(r->user));
		if (r->op == OP_ACTIVITY || r->op == OP_EXPOSURE)
			r->op = OP_NONE;
	}
	pthread_mutex_unlock(&st->batch_lock);
}

static int by_id(struct state *st, enum state_sql id, int64_t user_id)
{
	sqlite3_stmt *s = state_stmt(&st->w, id);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, user_id);
	return state_step_done(s);
}

int state_forget_user(struct state *st, const char *pseudonym)
{
	uint8_t pseudo[STATE_PSEUDO_BYTES];
	struct state_user *u = NULL;
	int e, found;

	if (!st || !state_pseudo_parse(pseudonym, pseudo))
		return -EINVAL;
	pthread_mutex_lock(&st->w.lock);
	state_scratch_reset(&st->scratch);
	e = state_step_done(state_stmt(&st->w, SQL_BEGIN));
	if (!e)
		e = state_user_load(st, pseudo, &u, false, 0);
	found = !e;
	if (e == -ENOENT)
		e = 0;
	if (!e && found)
		e = state_user_unaccount(st, u);
	if (!e && found)
		e = by_id(st, SQL_EXPOSURES_DELETE_USER, u->id);
	if (!e && found)
		e = by_id(st, SQL_SUBS_UNLINK_USER, u->id);
	if (!e && found)
		e = by_id(st, SQL_USER_DELETE, u->id);
	if (!e && found)
		e = state_deltas_write(st);
	if (!e)
		e = state_step_done(state_stmt(&st->w, SQL_COMMIT));
	if (e)
		state_exec(&st->w, "ROLLBACK");
	else
		batch_forget(st, pseudo);
	state_scratch_reset(&st->scratch);
	pthread_mutex_unlock(&st->w.lock);
	explicit_bzero(pseudo, sizeof(pseudo));
	if (e)
		return e;
	return found ? 0 : -ENOENT;
}

/*
 * Users not seen since the cutoff leave the hourly histograms (their hours are older than any
 * window, but a histogram must match the rows it summarizes), then the rows go. Totals (user
 * and experiment counts) keep them; daily figures and cohorts of days still kept keep them too.
 */
static const char *const prune_sql[] = {
    "INSERT INTO hist (kind, user_type, hour, n) SELECT 0, coalesce(user_type, ''),"
    " last_seen / 3600, -count(*) FROM users WHERE last_seen < ?1 GROUP BY 2, 3"
    " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    "INSERT INTO hist (kind, user_type, hour, n) SELECT 1, '', last_converted_at / 3600,"
    " -count(*) FROM users WHERE last_seen < ?1 AND last_converted_at IS NOT NULL GROUP BY 3"
    " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    "INSERT INTO hist (kind, user_type, hour, n) SELECT 2, '', registered_at / 3600,"
    " -count(*) FROM users WHERE last_seen < ?1 AND registered_at IS NOT NULL GROUP BY 3"
    " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    "DELETE FROM exposures WHERE user_id IN (SELECT id FROM users WHERE last_seen < ?1)",
    ("UPDATE subscriptions SET user_id = NULL"
     " WHERE user_id IN (SELECT id FROM users WHERE last_seen < ?1)"),
    "DELETE FROM users WHERE last_seen < ?1",
    "DELETE FROM hist WHERE n = 0",
    "DELETE FROM ledger WHERE ts < ?1",
    /* The hour holding the cutoff stays whole: windows read their first hour from ledger. */
    "DELETE FROM ledger_hours WHERE hour < ?1 / 3600",
    "DELETE FROM daily WHERE day < ?1 / 86400",
    "DELETE FROM cohorts WHERE week + 7 <= ?1 / 86400",
    "DELETE FROM subscriptions WHERE canceled_at < ?1",
};

int state_prune(struct state *st, int64_t now)
{
	int64_t cutoff;
	int e;

	if (!st)
		return -EINVAL;
	cutoff = now - (int64_t)st->retention_days * DAY_S;
	if (cutoff < 0)
		return 0; /* nothing can be that old */
	pthread_mutex_lock(&st->w.lock);
	e = state_step_done(state_stmt(&st->w, SQL_BEGIN));
	for (unsigned i = 0; i < sizeof(prune_sql) / sizeof(prune_sql[0]) && !e; i++) {
		sqlite3_stmt *s;
		int rc = sqlite3_prepare_v2(st->w.h, prune_sql[i], -1, &s, NULL);

		if (rc != SQLITE_OK) {
			e = state_sqlite_err(rc);
			break;
		}
		if (sqlite3_bind_parameter_count(s) >= 1)
			sqlite3_bind_int64(s, 1, cutoff);
		rc = sqlite3_step(s);
		sqlite3_finalize(s);
		e = rc == SQLITE_DONE ? 0 : state_sqlite_err(rc);
	}
	if (!e)
		e = state_step_done(state_stmt(&st->w, SQL_COMMIT));
	if (e)
		state_exec(&st->w, "ROLLBACK");
	else
		e = state_exec(&st->w, "PRAGMA incremental_vacuum"); /* the file shrinks */
	pthread_mutex_unlock(&st->w.lock);
	return e;
}
