// SPDX-License-Identifier: MIT
/*
 * state_flush: one transaction per batch. Each distinct user of the batch is read once, changed
 * in memory by its records in order (so that "first" and "after" mean what the order says) and
 * written once; the aggregates (hourly histograms, daily figures, cohorts, ledgers, experiment
 * and user totals) are summed in memory per key and written once per key at the end.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state_internal.h"

/* ---------------------------------------------------------------- scratch space */
static unsigned pow2_at_least(unsigned n)
{
	unsigned p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

int state_scratch_init(struct state_scratch *s, unsigned cap_users, unsigned act_bytes)
{
	memset(s, 0, sizeof(*s));
	s->cap_users = cap_users;
	s->users = calloc(cap_users, sizeof(*s->users));
	s->index_mask = pow2_at_least(cap_users * 2) - 1;
	s->index = calloc(s->index_mask + 1, sizeof(*s->index));
	s->order = calloc(cap_users, sizeof(*s->order));
	s->bits_pool = calloc((size_t)cap_users * 2, act_bytes);
	s->cap_deltas = 1024;
	s->delta_mask = s->cap_deltas * 2 - 1;
	s->deltas = calloc(s->cap_deltas, sizeof(*s->deltas));
	s->delta_index = calloc(s->delta_mask + 1, sizeof(*s->delta_index));
	if (!s->users || !s->index || !s->order || !s->bits_pool || !s->deltas || !s->delta_index) {
		state_scratch_free(s);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < cap_users; i++) {
		s->users[i].bits = s->bits_pool + (size_t)2 * i * act_bytes;
		s->users[i].old_bits = s->users[i].bits + act_bytes;
	}
	return 0;
}

static void deltas_clear(struct state_scratch *s)
{
	for (unsigned i = 0; i < s->n_deltas; i++) {
		free((char *)s->deltas[i].s1);
		free((char *)s->deltas[i].s2);
	}
	s->n_deltas = 0;
	if (s->delta_index)
		memset(s->delta_index, 0, (s->delta_mask + 1) * sizeof(*s->delta_index));
}

void state_scratch_reset(struct state_scratch *s)
{
	if (s->n_users)
		memset(s->index, 0, (s->index_mask + 1) * sizeof(*s->index));
	s->n_users = 0;
	deltas_clear(s);
}

void state_scratch_free(struct state_scratch *s)
{
	deltas_clear(s);
	free(s->users);
	free(s->index);
	free(s->order);
	free(s->bits_pool);
	free(s->deltas);
	free(s->delta_index);
	memset(s, 0, sizeof(*s));
}

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t str_hash(uint64_t h, const char *s)
{
	for (const char *p = s ? s : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;
}

static bool str_eq(const char *a, const char *b)
{
	return !strcmp(a ? a : "", b ? b : "");
}

static int deltas_grow(struct state_scratch *s)
{
	unsigned cap = s->cap_deltas * 2, mask = cap * 2 - 1;
	struct state_delta *nd = realloc(s->deltas, cap * sizeof(*nd));
	uint32_t *ni;

	if (!nd)
		return -ENOMEM;
	s->deltas = nd;
	ni = calloc(mask + 1, sizeof(*ni));
	if (!ni)
		return -ENOMEM;
	free(s->delta_index);
	s->delta_index = ni;
	s->cap_deltas = cap;
	s->delta_mask = mask;
	for (unsigned i = 0; i < s->n_deltas; i++) {
		unsigned slot = (unsigned)(s->deltas[i].hash & mask);

		while (ni[slot])
			slot = (slot + 1) & mask;
		ni[slot] = i + 1;
	}
	return 0;
}

int state_delta_add(struct state_scratch *s, int table, int64_t a, int64_t b, const char *s1,
		    const char *s2, int64_t n, int64_t n2)
{
	uint64_t h = mix64((uint64_t)table * 0x9e3779b97f4a7c15ULL ^ mix64((uint64_t)a) ^
			   mix64((uint64_t)b * 31 + 7));
	struct state_delta *d;
	unsigned slot;

	h = str_hash(str_hash(h, s1), s2);
	for (slot = (unsigned)(h & s->delta_mask); s->delta_index[slot];
	     slot = (slot + 1) & s->delta_mask) {
		d = &s->deltas[s->delta_index[slot] - 1];
		if (d->hash == h && d->table == table && d->a == a && d->b == b &&
		    str_eq(d->s1, s1) && str_eq(d->s2, s2)) {
			d->n += n;
			d->n2 += n2;
			return 0;
		}
	}
	if (s->n_deltas == s->cap_deltas) {
		if (deltas_grow(s))
			return -ENOMEM;
		return state_delta_add(s, table, a, b, s1, s2, n, n2);
	}
	d = &s->deltas[s->n_deltas];
	*d = (struct state_delta){.hash = h, .table = table, .a = a, .b = b, .n = n, .n2 = n2};
	d->s1 = strdup(s1 ? s1 : "");
	d->s2 = strdup(s2 ? s2 : "");
	if (!d->s1 || !d->s2) {
		free((char *)d->s1);
		free((char *)d->s2);
		return -ENOMEM;
	}
	s->n_deltas++;
	s->delta_index[slot] = s->n_deltas;
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

int state_deltas_write(struct state *st)
{
	struct state_scratch *sc = &st->scratch;
	int e = 0;

	for (unsigned i = 0; i < sc->n_deltas && !e; i++) {
		const struct state_delta *d = &sc->deltas[i];
		sqlite3_stmt *s = NULL;

		if (!d->n && !d->n2)
			continue;
		switch (d->table) {
		case D_HIST:
			s = state_stmt(&st->w, SQL_HIST_ADD);
			if (!s)
				break;
			sqlite3_bind_int64(s, 1, d->a);
			sqlite3_bind_text(s, 2, d->s1, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 3, d->b);
			sqlite3_bind_int64(s, 4, d->n);
			break;
		case D_DAILY:
			s = state_stmt(&st->w, SQL_DAILY_ADD);
			if (!s)
				break;
			sqlite3_bind_int64(s, 1, d->a);
			sqlite3_bind_int64(s, 2, d->n);
			sqlite3_bind_int64(s, 3, d->n2);
			break;
		case D_COHORT:
			s = state_stmt(&st->w, SQL_COHORT_ADD);
			if (!s)
				break;
			sqlite3_bind_int64(s, 1, d->a);
			sqlite3_bind_int64(s, 2, d->b);
			sqlite3_bind_int64(s, 3, d->n);
			break;
		case D_LEDGER:
		case D_LEDGER_HOUR:
			s = state_stmt(&st->w,
				       d->table == D_LEDGER ? SQL_LEDGER_ADD : SQL_LEDGER_HOUR_ADD);
			if (!s)
				break;
			sqlite3_bind_int64(s, 1, d->a);
			sqlite3_bind_int64(s, 2, d->b);
			sqlite3_bind_int(s, 3,
					 d->b == LEDGER_PAYMENT ? state_status_code(d->s1) : 0);
			sqlite3_bind_text(s, 4, d->s2, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 5, d->n);
			sqlite3_bind_int64(s, 6, d->n2);
			break;
		case D_EXPCOUNT:
			s = state_stmt(&st->w, SQL_EXPCOUNT_ADD);
			if (!s)
				break;
			sqlite3_bind_text(s, 1, d->s1, -1, SQLITE_STATIC);
			sqlite3_bind_text(s, 2, d->s2, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 3, d->n);
			sqlite3_bind_int64(s, 4, d->n2);
			break;
		case D_USERCOUNT:
			s = state_stmt(&st->w, SQL_USERCOUNT_ADD);
			if (!s)
				break;
			sqlite3_bind_text(s, 1, d->s1, -1, SQLITE_STATIC);
			sqlite3_bind_int64(s, 2, d->n);
			break;
		}
		e = state_step_done(s);
	}
	return e;
}

/* ---------------------------------------------------------------- activity bitmaps */
static bool has_day(const struct state *st, int64_t base, const uint8_t *bits, int64_t day)
{
	return day >= base && day < base + st->act_days && bit_get(bits, (unsigned)(day - base));
}

/* Latest active day, or INT64_MIN when none. */
static int64_t last_day(const struct state *st, int64_t base, const uint8_t *bits)
{
	for (unsigned i = st->act_days; i-- > 0;) {
		if (bit_get(bits, i))
			return base + i;
	}
	return INT64_MIN;
}

/* Moves the bitmap's origin to nbase; days that fall outside are dropped. */
static void rebase(const struct state *st, int64_t *base, uint8_t *bits, int64_t nbase)
{
	uint8_t tmp[(STATE_MAX_RETENTION_DAYS + STATE_ACT_EXTRA_DAYS + 7) / 8] = {0};

	for (unsigned i = 0; i < st->act_days; i++) {
		int64_t d = *base + i;

		if (bit_get(bits, i) && d >= nbase && d < nbase + st->act_days)
			bit_set(tmp, (unsigned)(d - nbase));
	}
	memcpy(bits, tmp, st->act_bytes);
	*base = nbase;
}

static void set_day(const struct state *st, struct state_user *u, int64_t day)
{
	if (day < u->act_base) {
		int64_t last = last_day(st, u->act_base, u->bits);

		if (last != INT64_MIN && last - day >= st->act_days)
			return; /* older than what the bitmap keeps */
		rebase(st, &u->act_base, u->bits, day);
	} else if (day >= u->act_base + st->act_days) {
		rebase(st, &u->act_base, u->bits, day - st->act_days + 1);
	}
	bit_set(u->bits, (unsigned)(day - u->act_base));
}

/* Reads a stored bitmap, which a store with another retention may have sized differently. */
static void load_bits(const struct state *st, int64_t stored_base, const uint8_t *stored,
		      size_t len, int64_t *base, uint8_t *bits)
{
	int64_t last = INT64_MIN;

	memset(bits, 0, st->act_bytes);
	for (size_t i = len * 8; i-- > 0;) {
		if (stored[i / 8] & (1u << (i % 8))) {
			last = stored_base + (int64_t)i;
			break;
		}
	}
	*base = stored_base;
	if (last != INT64_MIN && last >= stored_base + st->act_days)
		*base = last - st->act_days + 1;
	for (size_t i = 0; i < len * 8; i++) {
		int64_t d = stored_base + (int64_t)i;

		if ((stored[i / 8] & (1u << (i % 8))) && d >= *base && d < *base + st->act_days)
			bit_set(bits, (unsigned)(d - *base));
	}
}

/* The weeks k >= 1 after registration week reg_week (a Monday) with activity in the bitmap, in
 * ascending order. Returns how many (at most act_days / 7 + 2). */
static unsigned active_weeks(const struct state *st, int64_t base, const uint8_t *bits,
			     int64_t reg_week, int64_t *weeks)
{
	unsigned n = 0;

	for (unsigned i = 0; i < st->act_days; i++) {
		int64_t k;

		if (!bit_get(bits, i))
			continue;
		k = (monday_of(base + i) - reg_week) / 7;
		if (k >= 1 && (!n || weeks[n - 1] != k))
			weeks[n++] = k;
	}
	return n;
}

#define MAX_WEEKS ((STATE_MAX_RETENTION_DAYS + STATE_ACT_EXTRA_DAYS) / 7 + 3)

/* ---------------------------------------------------------------- users */
static const char *tkey(const char *type)
{
	return type ? type : "";
}

static int64_t col_or_zero(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, i);
}

/* The scratch slot of a pseudonym; a new one (*fresh) is zeroed but not loaded. */
static struct state_user *user_slot(struct state_scratch *sc,
				    const uint8_t pseudo[STATE_PSEUDO_BYTES], bool *fresh)
{
	int64_t key = state_pseudo_key(pseudo);
	struct state_user *u;
	unsigned slot;

	*fresh = false;
	for (slot = (unsigned)(mix64((uint64_t)key) & sc->index_mask); sc->index[slot];
	     slot = (slot + 1) & sc->index_mask) {
		u = &sc->users[sc->index[slot] - 1];
		if (!memcmp(u->pseudo, pseudo, STATE_PSEUDO_BYTES))
			return u;
	}
	if (sc->n_users == sc->cap_users)
		return NULL;
	u = &sc->users[sc->n_users];
	{
		uint8_t *bits = u->bits, *old_bits = u->old_bits;

		memset(u, 0, sizeof(*u));
		u->bits = bits;
		u->old_bits = old_bits;
	}
	memcpy(u->pseudo, pseudo, STATE_PSEUDO_BYTES);
	u->key = key;
	sc->index[slot] = ++sc->n_users;
	*fresh = true;
	return u;
}

/* Reads a slot's user from the database, or inserts it (create) as first seen at ts. */
static int user_fill(struct state *st, struct state_user *u, bool create, int64_t ts)
{
	sqlite3_stmt *s = state_stmt(&st->w, SQL_USER_GET);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, u->pseudo, 4, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, u->pseudo, STATE_PSEUDO_BYTES, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 1);

		u->id = sqlite3_column_int64(s, 0);
		if (t) {
			snprintf(u->type_copy, sizeof(u->type_copy), "%s", (const char *)t);
			u->type = u->old_type = u->type_copy;
		}
		u->first_seen = sqlite3_column_int64(s, 2);
		u->last_seen = u->old_last_seen = sqlite3_column_int64(s, 3);
		u->reg = u->old_reg = col_or_zero(s, 4);
		u->first_paid = col_or_zero(s, 5);
		u->conv = u->old_conv = col_or_zero(s, 6);
		load_bits(st, sqlite3_column_int64(s, 7), sqlite3_column_blob(s, 8),
			  (size_t)sqlite3_column_bytes(s, 8), &u->act_base, u->bits);
		u->old_act_base = u->act_base;
		memcpy(u->old_bits, u->bits, st->act_bytes);
		sqlite3_reset(s);
		u->loaded = true;
		return 0;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return state_sqlite_err(rc);
	if (!create)
		return -ENOENT;
	s = state_stmt(&st->w, SQL_USER_INSERT);
	if (!s)
		return -EIO;
	u->is_new = true;
	u->first_seen = u->last_seen = ts;
	u->act_base = u->old_act_base = day_of(ts);
	memset(u->bits, 0, st->act_bytes);
	memset(u->old_bits, 0, st->act_bytes);
	sqlite3_bind_blob(s, 2, u->pseudo, STATE_PSEUDO_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, ts);
	sqlite3_bind_int64(s, 4, u->act_base);
	sqlite3_bind_blob(s, 5, u->bits, (int)st->act_bytes, SQLITE_STATIC);
	rc = state_step_done(s);
	if (rc)
		return rc;
	u->id = sqlite3_last_insert_rowid(st->w.h);
	u->loaded = true;
	return 0;
}

int state_user_load(struct state *st, const uint8_t pseudo[STATE_PSEUDO_BYTES],
		    struct state_user **out, bool create, int64_t ts)
{
	bool fresh;
	struct state_user *u = user_slot(&st->scratch, pseudo, &fresh);
	int e = 0;

	if (!u)
		return -ENOSPC;
	if (!u->loaded)
		e = user_fill(st, u, create, ts);
	*out = u;
	return e;
}

static const struct state_user *sort_base;

static int by_key(const void *a, const void *b)
{
	/* unsigned: the index orders the bytes as memcmp does */
	uint64_t x = (uint64_t)sort_base[*(const uint32_t *)a].key;
	uint64_t y = (uint64_t)sort_base[*(const uint32_t *)b].key;

	return x < y ? -1 : x > y;
}

static int by_id(const void *a, const void *b)
{
	int64_t x = sort_base[*(const uint32_t *)a].id, y = sort_base[*(const uint32_t *)b].id;

	return x < y ? -1 : x > y;
}

/* Loads every user of the batch, in key order: neighbouring index pages, not random ones. */
static int users_preload(struct state *st, const struct state_batch *b)
{
	struct state_scratch *sc = &st->scratch;
	int e = 0;

	for (unsigned i = 0; i < b->n; i++) {
		const struct state_rec *r = &b->recs[i];
		struct state_user *u;
		bool fresh;

		if (!r->has_user || r->op == OP_NONE)
			continue;
		u = user_slot(sc, r->user, &fresh);
		if (!u)
			return -ENOSPC;
		if (fresh)
			u->first_ts = r->ts;
	}
	for (unsigned i = 0; i < sc->n_users; i++)
		sc->order[i] = i;
	sort_base = sc->users;
	qsort(sc->order, sc->n_users, sizeof(*sc->order), by_key);
	for (unsigned i = 0; i < sc->n_users && !e; i++) {
		struct state_user *u = &sc->users[sc->order[i]];

		e = user_fill(st, u, true, u->first_ts);
	}
	return e;
}

static int hist_move(struct state_scratch *sc, int kind, const char *old_type, int64_t old_ts,
		     const char *type, int64_t ts)
{
	int e = 0;

	if (old_ts && ts && str_eq(old_type, type) && hour_of(old_ts) == hour_of(ts))
		return 0;
	if (old_ts)
		e = state_delta_add(sc, D_HIST, kind, hour_of(old_ts), tkey(old_type), NULL, -1, 0);
	if (!e && ts)
		e = state_delta_add(sc, D_HIST, kind, hour_of(ts), tkey(type), NULL, 1, 0);
	return e;
}

/* Writes a user back and adds what changed to the aggregates. */
static int user_write(struct state *st, struct state_user *u)
{
	struct state_scratch *sc = &st->scratch;
	int64_t weeks[MAX_WEEKS], old_weeks[MAX_WEEKS];
	sqlite3_stmt *s = state_stmt(&st->w, SQL_USER_UPDATE);
	int e;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, u->id);
	bind_text_or_null(s, 2, u->type);
	sqlite3_bind_int64(s, 3, u->first_seen);
	sqlite3_bind_int64(s, 4, u->last_seen);
	if (u->reg)
		sqlite3_bind_int64(s, 5, u->reg);
	if (u->first_paid)
		sqlite3_bind_int64(s, 6, u->first_paid);
	if (u->conv)
		sqlite3_bind_int64(s, 7, u->conv);
	sqlite3_bind_int64(s, 8, u->act_base);
	sqlite3_bind_blob(s, 9, u->bits, (int)st->act_bytes, SQLITE_STATIC);
	e = state_step_done(s);
	if (e)
		return e;

	if (u->is_new) {
		e = state_delta_add(sc, D_USERCOUNT, 0, 0, tkey(u->type), NULL, 1, 0);
	} else if (!str_eq(u->type, u->old_type)) {
		e = state_delta_add(sc, D_USERCOUNT, 0, 0, tkey(u->old_type), NULL, -1, 0);
		if (!e)
			e = state_delta_add(sc, D_USERCOUNT, 0, 0, tkey(u->type), NULL, 1, 0);
	}
	if (!e)
		e = hist_move(sc, HIST_SEEN, u->old_type, u->is_new ? 0 : u->old_last_seen, u->type,
			      u->last_seen);
	if (!e)
		e = hist_move(sc, HIST_CONV, NULL, u->old_conv, NULL, u->conv);
	if (!e)
		e = hist_move(sc, HIST_REG, NULL, u->old_reg, NULL, u->reg);

	for (unsigned i = 0; i < st->act_days && !e; i++) {
		int64_t d = u->act_base + i;

		if (bit_get(u->bits, i) && !has_day(st, u->old_act_base, u->old_bits, d))
			e = state_delta_add(sc, D_DAILY, d, 0, NULL, NULL, 1, 0);
	}
	if (!e && u->reg) {
		int64_t rw = monday_of(day_of(u->reg));
		unsigned n = active_weeks(st, u->act_base, u->bits, rw, weeks), n_old = 0, j = 0;

		if (!u->old_reg) {
			e = state_delta_add(sc, D_DAILY, day_of(u->reg), 0, NULL, NULL, 0, 1);
			if (!e)
				e = state_delta_add(sc, D_COHORT, rw, 0, NULL, NULL, 1, 0);
		} else {
			n_old = active_weeks(st, u->old_act_base, u->old_bits, rw, old_weeks);
		}
		/* weeks \ old_weeks, both ascending */
		for (unsigned i = 0; i < n && !e; i++) {
			while (j < n_old && old_weeks[j] < weeks[i])
				j++;
			if (j < n_old && old_weeks[j] == weeks[i])
				continue;
			e = state_delta_add(sc, D_COHORT, rw, weeks[i], NULL, NULL, 1, 0);
		}
	}
	return e;
}

/* Takes a stored user out of every aggregate (forget). */
int state_user_unaccount(struct state *st, struct state_user *u)
{
	struct state_scratch *sc = &st->scratch;
	int64_t weeks[MAX_WEEKS];
	sqlite3_stmt *s;
	int e, rc;

	e = state_delta_add(sc, D_USERCOUNT, 0, 0, tkey(u->old_type), NULL, -1, 0);
	if (!e)
		e = hist_move(sc, HIST_SEEN, u->old_type, u->old_last_seen, NULL, 0);
	if (!e)
		e = hist_move(sc, HIST_CONV, NULL, u->old_conv, NULL, 0);
	if (!e)
		e = hist_move(sc, HIST_REG, NULL, u->old_reg, NULL, 0);
	for (unsigned i = 0; i < st->act_days && !e; i++) {
		if (bit_get(u->old_bits, i))
			e = state_delta_add(sc, D_DAILY, u->old_act_base + i, 0, NULL, NULL, -1, 0);
	}
	if (!e && u->old_reg) {
		int64_t rw = monday_of(day_of(u->old_reg));
		unsigned n = active_weeks(st, u->old_act_base, u->old_bits, rw, weeks);

		e = state_delta_add(sc, D_DAILY, day_of(u->old_reg), 0, NULL, NULL, 0, -1);
		if (!e)
			e = state_delta_add(sc, D_COHORT, rw, 0, NULL, NULL, -1, 0);
		for (unsigned i = 0; i < n && !e; i++)
			e = state_delta_add(sc, D_COHORT, rw, weeks[i], NULL, NULL, -1, 0);
	}
	if (e)
		return e;
	s = state_stmt(&st->w, SQL_EXPOSURES_OF_USER);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, u->id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !e)
		e = state_delta_add(sc, D_EXPCOUNT, 0, 0, (const char *)sqlite3_column_text(s, 0),
				    (const char *)sqlite3_column_text(s, 1), -1,
				    -sqlite3_column_int64(s, 2));
	sqlite3_reset(s);
	if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = state_sqlite_err(rc);
	return e;
}

/* ---------------------------------------------------------------- records */
static int convert(struct state *st, struct state_user *u, int64_t ts)
{
	sqlite3_stmt *s;
	int rc, e = 0;

	if (!u->first_paid || ts < u->first_paid)
		u->first_paid = ts;
	if (ts > u->conv)
		u->conv = ts;
	s = state_stmt(&st->w, SQL_EXPOSURE_CONVERT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, u->id);
	sqlite3_bind_int64(s, 2, ts);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !e)
		e = state_delta_add(&st->scratch, D_EXPCOUNT, 0, 0,
				    (const char *)sqlite3_column_text(s, 0),
				    (const char *)sqlite3_column_text(s, 1), 0, 1);
	sqlite3_reset(s);
	if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = state_sqlite_err(rc);
	return e;
}

static int ledger(struct state *st, int kind, int64_t ts, const char *label, const char *currency,
		  int64_t amount)
{
	int e = state_delta_add(&st->scratch, D_LEDGER, ts, kind, label, currency, 1, amount);

	if (!e)
		e = state_delta_add(&st->scratch, D_LEDGER_HOUR, hour_of(ts), kind, label, currency,
				    1, amount);
	return e;
}

static int subscription(struct state *st, const struct state_rec *r, const struct state_user *u,
			const char *currency)
{
	bool created = r->op == OP_SUB_CREATED;
	sqlite3_stmt *s = state_stmt(&st->w, created ? SQL_SUB_CREATED : SQL_SUB_CANCELED);

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, r->subject, STATE_PSEUDO_BYTES, SQLITE_STATIC);
	if (u)
		sqlite3_bind_int64(s, 2, u->id);
	bind_text_or_null(s, 3, currency);
	if (created) {
		if (r->has_amount)
			sqlite3_bind_int64(s, 4, r->amount);
		sqlite3_bind_int64(s, 5, r->ts);
	} else {
		sqlite3_bind_int64(s, 4, r->ts);
	}
	return state_step_done(s);
}

static int apply(struct state *st, const struct state_batch *b, const struct state_rec *r)
{
	const char *type = state_batch_str(b, r->s_type);
	const char *currency = state_batch_str(b, r->s_currency);
	const char *sa = state_batch_str(b, r->s_a), *sb = state_batch_str(b, r->s_b);
	struct state_user *u = NULL;
	sqlite3_stmt *s;
	int e;

	if (r->op == OP_NONE)
		return 0;
	if (r->has_user) {
		e = state_user_load(st, r->user, &u, true, r->ts);
		if (e)
			return e;
		if (r->ts < u->first_seen)
			u->first_seen = r->ts;
		if (r->ts > u->last_seen)
			u->last_seen = r->ts;
		if (type)
			u->type = type;
		set_day(st, u, day_of(r->ts));
	}
	switch (r->op) {
	case OP_REGISTRATION:
		/* a user's first registration is its registered_at, counted from there */
		if (u && !u->reg) {
			u->reg = r->ts;
			return 0;
		}
		return ledger(st, LEDGER_REGISTRATION, r->ts, "", "", 0);
	case OP_PAYMENT: {
		bool ok = sa && !strcmp(sa, "succeeded");

		e = ledger(st, LEDGER_PAYMENT, r->ts, sa, currency,
			   ok && r->has_amount ? r->amount : 0);
		if (!e && ok && u)
			e = convert(st, u, r->ts);
		return e;
	}
	case OP_LATE_SUCCESS:
		return ledger(st, LEDGER_LATE_SUCCESS, r->ts, "", currency,
			      r->has_amount ? r->amount : 0);
	case OP_SUB_CREATED:
	case OP_SUB_CANCELED:
		e = r->has_subject ? subscription(st, r, u, currency) : 0;
		if (!e && u && r->op == OP_SUB_CREATED)
			e = convert(st, u, r->ts);
		return e;
	case OP_EXPOSURE:
		if (!u)
			return 0;
		s = state_stmt(&st->w, SQL_EXPOSURE_INSERT);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, u->id);
		sqlite3_bind_text(s, 2, sa, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, sb, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, r->ts);
		e = state_step_done(s);
		if (!e && sqlite3_changes(st->w.h) == 1)
			e = state_delta_add(&st->scratch, D_EXPCOUNT, 0, 0, sa, sb, 1, 0);
		return e;
	default:
		return 0;
	}
}

/* ---------------------------------------------------------------- the flush */
static int write_blobs(struct state *st, const struct state_batch *b)
{
	int e = 0;

	for (unsigned i = 0; i < b->n_blobs && !e; i++) {
		const struct state_blob_put *p = &b->blobs[i];
		sqlite3_stmt *s = state_stmt(&st->w, p->data ? SQL_BLOB_PUT : SQL_BLOB_DELETE);

		if (!s)
			return -EIO;
		sqlite3_bind_text(s, 1, p->key, -1, SQLITE_STATIC);
		if (p->data)
			sqlite3_bind_blob(s, 2, p->data, (int)p->len, SQLITE_STATIC);
		e = state_step_done(s);
	}
	return e;
}

int state_counters_write(struct state *st, const struct state_counter_set *set);

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int state_flush(struct state *st)
{
	struct state_batch *b;
	uint64_t t0;
	int e;

	if (!st)
		return -EINVAL;
	pthread_mutex_lock(&st->w.lock);
	pthread_mutex_lock(&st->batch_lock);
	b = &st->batch[st->active];
	st->active ^= 1;
	pthread_mutex_unlock(&st->batch_lock);
	if (!b->n && !b->n_blobs && !b->has_counters) {
		pthread_mutex_unlock(&st->w.lock);
		return 0;
	}
	t0 = mono_ns();
	state_scratch_reset(&st->scratch);
	e = state_step_done(state_stmt(&st->w, SQL_BEGIN));
	if (!e)
		e = users_preload(st, b);
	for (unsigned i = 0; i < b->n && !e; i++)
		e = apply(st, b, &b->recs[i]);
	if (!e) {
		sort_base = st->scratch.users;
		qsort(st->scratch.order, st->scratch.n_users, sizeof(*st->scratch.order), by_id);
	}
	for (unsigned i = 0; i < st->scratch.n_users && !e; i++)
		e = user_write(st, &st->scratch.users[st->scratch.order[i]]);
	if (!e)
		e = state_deltas_write(st);
	if (!e)
		e = write_blobs(st, b);
	if (!e && b->has_counters)
		e = state_counters_write(st, &b->counters);
	if (!e)
		e = state_step_done(state_stmt(&st->w, SQL_COMMIT));
	if (e)
		state_exec(&st->w, "ROLLBACK");
	state_scratch_reset(&st->scratch);

	pthread_mutex_lock(&st->batch_lock);
	if (e) {
		st->stats.events_dropped += b->n;
		st->stats.flush_errors++;
	} else {
		st->stats.events_flushed += b->n;
		st->stats.flushes++;
	}
	st->stats.last_flush_ns = mono_ns() - t0;
	state_batch_reset(b);
	pthread_mutex_unlock(&st->batch_lock);
	pthread_mutex_unlock(&st->w.lock);
	return e;
}
