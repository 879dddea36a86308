// SPDX-License-Identifier: MIT
/*
 * KPIs of a sliding window [now - W, now], exact to the second: the whole hours of the window
 * from the hourly histograms and ledger_hours, its first, partial hour from an index range over
 * users (or the per-second ledger). Then state_publish sets them as gauges.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state_internal.h"

int state_counts_add(struct state_counts *c, const char *key, int64_t n, int64_t amount)
{
	key = key ? key : "";
	for (unsigned i = 0; i < c->n; i++) {
		if (!strcmp(c->v[i].key, key)) {
			c->v[i].n += n;
			c->v[i].amount += amount;
			return 0;
		}
	}
	if (c->n == c->cap) {
		unsigned cap = c->cap ? c->cap * 2 : 8;
		struct state_count *nv = realloc(c->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	c->v[c->n].key = strdup(key);
	if (!c->v[c->n].key)
		return -ENOMEM;
	c->v[c->n].n = n;
	c->v[c->n].amount = amount;
	c->n++;
	return 0;
}

void state_counts_free(struct state_counts *c)
{
	for (unsigned i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

void state_window_free(struct state_window *w)
{
	state_counts_free(&w->active_by_type);
	state_counts_free(&w->revenue);
	state_counts_free(&w->payments);
}

static int64_t one_int(struct state_db *d, enum state_sql id, int64_t a, int64_t b, int nargs,
		       int *e)
{
	sqlite3_stmt *s = state_stmt(d, id);
	int64_t v = 0;
	int rc;

	if (!s) {
		*e = -EIO;
		return 0;
	}
	if (nargs >= 1)
		sqlite3_bind_int64(s, 1, a);
	if (nargs >= 2)
		sqlite3_bind_int64(s, 2, b);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else if (!*e)
		*e = state_sqlite_err(rc);
	sqlite3_reset(s);
	return v;
}

/* Rows of (text, int) into counts; returns 0 or a negative errno. */
static int text_int_rows(sqlite3_stmt *s, struct state_counts *c, int64_t *total)
{
	int rc, e = 0;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t n = sqlite3_column_int64(s, 1);

		if (total)
			*total += n;
		if (c && !e)
			e = state_counts_add(c, (const char *)sqlite3_column_text(s, 0), n, 0);
	}
	sqlite3_reset(s);
	return e ? e : (rc == SQLITE_DONE ? 0 : state_sqlite_err(rc));
}

int state_window_compute(struct state *st, int64_t now, int64_t window_s, struct state_window *w)
{
	struct state_db *d = &st->r;
	int64_t start = now - window_s, h1 = floor_div(start + HOUR_S - 1, HOUR_S);
	sqlite3_stmt *s;
	int e = 0, rc;

	memset(w, 0, sizeof(*w));
	w->start = start;

	/* every known type, so that a type without activity reads 0 */
	s = state_stmt(d, SQL_USER_COUNTS);
	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !e)
		e = state_counts_add(&w->active_by_type, (const char *)sqlite3_column_text(s, 0), 0,
				     0);
	sqlite3_reset(s);
	if (e)
		goto fail;

	s = state_stmt(d, SQL_HIST_SUM);
	if (s) {
		sqlite3_bind_int(s, 1, HIST_SEEN);
		sqlite3_bind_int64(s, 2, h1);
	}
	e = text_int_rows(s, &w->active_by_type, &w->active_total);
	if (e)
		goto fail;
	s = state_stmt(d, SQL_SEEN_EDGE);
	if (s) {
		sqlite3_bind_int64(s, 1, start);
		sqlite3_bind_int64(s, 2, h1 * HOUR_S);
	}
	e = text_int_rows(s, &w->active_by_type, &w->active_total);
	if (e)
		goto fail;

	for (int kind = HIST_CONV; kind <= HIST_REG; kind++) {
		int64_t n = 0;

		s = state_stmt(d, SQL_HIST_SUM);
		if (s) {
			sqlite3_bind_int(s, 1, kind);
			sqlite3_bind_int64(s, 2, h1);
		}
		e = text_int_rows(s, NULL, &n);
		if (e)
			goto fail;
		n += one_int(d, kind == HIST_CONV ? SQL_CONV_EDGE : SQL_REG_EDGE, start,
			     h1 * HOUR_S, 2, &e);
		if (kind == HIST_CONV)
			w->converted = n;
		else
			w->registered = n;
	}
	if (e)
		goto fail;

	s = state_stmt(d, SQL_LEDGER_WINDOW);
	if (!s) {
		e = -EIO;
		goto fail;
	}
	sqlite3_bind_int64(s, 1, start);
	sqlite3_bind_int64(s, 2, h1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !e) {
		int kind = sqlite3_column_int(s, 0);
		const char *label = state_status_name(sqlite3_column_int(s, 1));
		const char *cur = (const char *)sqlite3_column_text(s, 2);
		int64_t n = sqlite3_column_int64(s, 3), amount = sqlite3_column_int64(s, 4);

		if (kind == LEDGER_PAYMENT) {
			w->payments_total += n;
			e = state_counts_add(&w->payments, label, n, 0);
			if (!e && label && !strcmp(label, "succeeded"))
				e = state_counts_add(&w->revenue, cur, 0, amount);
		} else if (kind == LEDGER_LATE_SUCCESS) {
			e = state_counts_add(&w->revenue, cur, 0, amount);
		} else if (kind == LEDGER_REGISTRATION) {
			w->registrations += n; /* the others: w->registered, added below */
		}
	}
	sqlite3_reset(s);
	if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = state_sqlite_err(rc);
	if (e)
		goto fail;
	w->registrations += w->registered;

	{
		int64_t total = one_int(d, SQL_SUBS_TOTAL, 0, 0, 0, &e);
		int64_t before = one_int(d, SQL_SUBS_CANCELED_BEFORE, start, 0, 1, &e);

		w->subs_created = one_int(d, SQL_SUBS_CREATED_SINCE, start, 0, 1, &e);
		w->subs_canceled = one_int(d, SQL_SUBS_CANCELED_SINCE, start, 0, 1, &e);
		w->subs_active_now = one_int(d, SQL_SUBS_ACTIVE, 0, 0, 0, &e);
		w->subs_active_at_start = total - w->subs_created - before;
		if (w->subs_active_at_start < 0)
			w->subs_active_at_start = 0;
	}
	if (e)
		goto fail;
	return 0;
fail:
	state_window_free(w);
	return e;
}

double state_conversion(const struct state_window *w)
{
	return w->active_total ? 100.0 * (double)w->converted / (double)w->active_total : 0.0;
}

double state_churn(const struct state_window *w)
{
	int64_t base = w->subs_active_at_start + w->subs_created;

	return base ? 100.0 * (double)w->subs_canceled / (double)base : 0.0;
}

/* ---------------------------------------------------------------- publishing */
enum pub_family {
	PF_ACTIVE,
	PF_TOTAL,
	PF_CONVERSION,
	PF_CHURN,
	PF_ARPU,
	PF_EXP_CONVERSIONS,
	PF_EXP_RATE,
	PF_DB_BYTES,
	PF_ROWS,
	PF_DROPPED,
	PF_FLUSH_ERRORS,
	PF_INVALID,
	PF_N,
};

struct pub_def {
	const char *suffix;
	bool raw; /* not namespaced */
	enum metrics_type type;
	const char *help;
	const char *labels[3];
	unsigned n_labels;
};

static const struct pub_def pub_defs[PF_N] = {
    [PF_ACTIVE] = {"active_users",
		   false,
		   METRICS_GAUGE,
		   "Distinct users with identified activity in the sliding window.",
		   {"period", "user_type"},
		   2},
    [PF_TOTAL] = {"total_users",
		  false,
		  METRICS_GAUGE,
		  "Distinct users ever registered or seen.",
		  {"user_type"},
		  1},
    [PF_CONVERSION] = {"conversion_rate",
		       false,
		       METRICS_GAUGE,
		       "Percent of the window's active users with a succeeded payment or a new "
		       "subscription in it.",
		       {"period"},
		       1},
    [PF_CHURN] = {"churn_rate",
		  false,
		  METRICS_GAUGE,
		  "Percent of subscriptions active at the window's start or created in it that "
		  "were canceled in it.",
		  {"period"},
		  1},
    [PF_ARPU] = {"arpu",
		 false,
		 METRICS_GAUGE,
		 "Succeeded revenue of the window in major units per active (all_users) or "
		 "converted (paying_users) user.",
		 {"period", "user_segment", "currency"},
		 3},
    [PF_EXP_CONVERSIONS] = {"experiment_conversions_total",
			    false,
			    METRICS_COUNTER,
			    "Users whose first conversion after their first exposure to the "
			    "experiment was credited to the variant they saw.",
			    {"experiment", "variant"},
			    2},
    [PF_EXP_RATE] = {"experiment_conversion_rate",
		     false,
		     METRICS_GAUGE,
		     "Percent of the variant's exposed users that converted after exposure.",
		     {"experiment", "variant"},
		     2},
    [PF_DB_BYTES] = {"bizprobe_state_db_bytes", true, METRICS_GAUGE,
		     "Size of the state database and its write-ahead log."},
    [PF_ROWS] = {"bizprobe_state_rows",
		 true,
		 METRICS_GAUGE,
		 "Rows per table of the state store.",
		 {"table"},
		 1},
    [PF_DROPPED] = {"bizprobe_state_events_dropped_total", true, METRICS_COUNTER,
		    "Business events the state store lost: batch full, or a failed flush."},
    [PF_FLUSH_ERRORS] = {"bizprobe_state_flush_errors_total", true, METRICS_COUNTER,
			 "State flushes that failed and were rolled back."},
    [PF_INVALID] = {"bizprobe_state_invalid_ids_total", true, METRICS_COUNTER,
		    "Event users or subjects that were not pseudonyms, so not stored with them."},
};

struct pub_exp {
	char *experiment, *variant;
	double converted;
};

struct state_published {
	struct metrics_registry *reg;
	struct metrics_family *f[PF_N];
	char **arpu_currencies;
	unsigned n_arpu;
	struct pub_exp *exp;
	unsigned n_exp, cap_exp;
	uint64_t dropped, flush_errors, invalid;
};

void state_published_free(struct state_published *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n_arpu; i++)
		free(p->arpu_currencies[i]);
	free(p->arpu_currencies);
	for (unsigned i = 0; i < p->n_exp; i++) {
		free(p->exp[i].experiment);
		free(p->exp[i].variant);
	}
	free(p->exp);
	free(p);
}

/* The full names of the families state_publish owns (state_save_counters skips them). */
bool state_owns_family(const struct state *st, const char *name)
{
	size_t n = strlen(st->ns);

	for (unsigned i = 0; i < PF_N; i++) {
		const struct pub_def *d = &pub_defs[i];

		if (d->raw ? !strcmp(name, d->suffix)
			   : (!strncmp(name, st->ns, n) && name[n] == '_' &&
			      !strcmp(name + n + 1, d->suffix)))
			return true;
	}
	return false;
}

static int pub_register(struct state *st, struct metrics_registry *reg, struct state_published *p)
{
	for (unsigned i = 0; i < PF_N; i++) {
		const struct pub_def *d = &pub_defs[i];
		char name[128];
		struct metrics_family_opts o = {
		    .name = name,
		    .help = d->help,
		    .type = d->type,
		    .label_names = d->labels,
		    .n_labels = d->n_labels,
		};
		int e;

		if (d->raw)
			snprintf(name, sizeof(name), "%s", d->suffix);
		else
			snprintf(name, sizeof(name), "%s_%s", st->ns, d->suffix);
		e = metrics_family_register(reg, &o, &p->f[i]);
		if (e == -EEXIST) {
			p->f[i] = metrics_registry_find(reg, name);
			e = metrics_family_matches(p->f[i], &o) ? 0 : -EEXIST;
		}
		if (e)
			return e;
	}
	p->reg = reg;
	return 0;
}

static int add_counter_to(struct metrics_family *f, uint64_t *published, uint64_t now)
{
	int e = 0;

	if (now > *published)
		e = metrics_add(f, NULL, (double)(now - *published));
	*published = now;
	return e;
}

static int publish_experiments(struct state *st, struct state_published *p)
{
	sqlite3_stmt *s = state_stmt(&st->r, SQL_EXPCOUNTS);
	int rc, e = 0;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !e) {
		const char *ex = (const char *)sqlite3_column_text(s, 0);
		const char *va = (const char *)sqlite3_column_text(s, 1);
		const char *labels[] = {ex, va};
		int64_t exposed = sqlite3_column_int64(s, 2),
			converted = sqlite3_column_int64(s, 3);
		struct pub_exp *pe = NULL;
		double c = converted > 0 ? (double)converted : 0;

		for (unsigned i = 0; i < p->n_exp; i++) {
			if (!strcmp(p->exp[i].experiment, ex) && !strcmp(p->exp[i].variant, va))
				pe = &p->exp[i];
		}
		if (!pe) {
			if (p->n_exp == p->cap_exp) {
				unsigned cap = p->cap_exp ? p->cap_exp * 2 : 8;
				struct pub_exp *ne = realloc(p->exp, cap * sizeof(*ne));

				if (!ne) {
					e = -ENOMEM;
					break;
				}
				p->exp = ne;
				p->cap_exp = cap;
			}
			pe = &p->exp[p->n_exp];
			pe->experiment = strdup(ex);
			pe->variant = strdup(va);
			if (!pe->experiment || !pe->variant) {
				free(pe->experiment);
				free(pe->variant);
				e = -ENOMEM;
				break;
			}
			pe->converted = 0;
			p->n_exp++;
			e = metrics_add(p->f[PF_EXP_CONVERSIONS], labels, c);
		} else if (c > pe->converted) {
			e = metrics_add(p->f[PF_EXP_CONVERSIONS], labels, c - pe->converted);
		} else if (c < pe->converted) {
			/* a converted user was forgotten: a counter reset, at the new value */
			metrics_remove(p->f[PF_EXP_CONVERSIONS], labels);
			e = metrics_add(p->f[PF_EXP_CONVERSIONS], labels, c);
		}
		pe->converted = c;
		if (!e)
			e = metrics_set(p->f[PF_EXP_RATE], labels,
					exposed > 0 ? 100.0 * (double)converted / (double)exposed
						    : 0.0);
	}
	sqlite3_reset(s);
	if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = state_sqlite_err(rc);
	return e;
}

static int publish_arpu(struct state_published *p, const struct state_window *w)
{
	struct metrics_family *f = p->f[PF_ARPU];
	char **cur = calloc(w->revenue.n + 1, sizeof(char *));
	int e = 0;

	if (!cur)
		return -ENOMEM;
	for (unsigned i = 0; i < w->revenue.n && !e; i++) {
		const char *c = w->revenue.v[i].key;
		const char *all[] = {"30d", "all_users", c}, *paying[] = {"30d", "paying_users", c};
		double rev = micro_to_major(w->revenue.v[i].amount);

		e = metrics_set(f, all, w->active_total ? rev / (double)w->active_total : 0.0);
		if (!e)
			e = metrics_set(f, paying, w->converted ? rev / (double)w->converted : 0.0);
		cur[i] = strdup(c);
		if (!cur[i])
			e = -ENOMEM;
	}
	for (unsigned i = 0; i < p->n_arpu; i++) {
		bool kept = false;

		for (unsigned j = 0; j < w->revenue.n && !kept; j++)
			kept = !strcmp(p->arpu_currencies[i], w->revenue.v[j].key);
		if (!kept) {
			const char *all[] = {"30d", "all_users", p->arpu_currencies[i]};
			const char *paying[] = {"30d", "paying_users", p->arpu_currencies[i]};

			metrics_remove(f, all);
			metrics_remove(f, paying);
		}
		free(p->arpu_currencies[i]);
	}
	free(p->arpu_currencies);
	p->arpu_currencies = cur;
	p->n_arpu = w->revenue.n;
	return e;
}

static const struct {
	const char *name;
	int64_t seconds;
} periods[] = {{"24h", DAY_S}, {"7d", 7 * DAY_S}, {"30d", 30 * DAY_S}};

int state_publish(struct state *st, struct metrics_registry *reg, int64_t now)
{
	struct state_published *p;
	struct state_stats stats;
	int e = 0;

	if (!st || !reg)
		return -EINVAL;
	pthread_mutex_lock(&st->r.lock);
	p = st->pub;
	if (p && p->reg != reg) {
		state_published_free(p);
		p = st->pub = NULL;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			e = -ENOMEM;
			goto out;
		}
		e = pub_register(st, reg, p);
		if (e) {
			free(p);
			goto out;
		}
		st->pub = p;
	}
	/* One read transaction: every figure from the same committed flush. */
	e = state_exec(&st->r, "BEGIN");
	if (e)
		goto out;
	{
		struct state_counts totals = {0};
		int64_t all = 0;

		e = text_int_rows(state_stmt(&st->r, SQL_USER_COUNTS), &totals, &all);
		for (unsigned i = 0; i < totals.n && !e; i++) {
			const char *l[] = {totals.v[i].key};

			if (*totals.v[i].key)
				e = metrics_set(p->f[PF_TOTAL], l, (double)totals.v[i].n);
		}
		if (!e) {
			const char *l[] = {"total"};

			e = metrics_set(p->f[PF_TOTAL], l, (double)all);
		}
		state_counts_free(&totals);
	}
	for (unsigned i = 0; i < sizeof(periods) / sizeof(periods[0]) && !e; i++) {
		struct state_window w;
		const char *pl[] = {periods[i].name};

		e = state_window_compute(st, now, periods[i].seconds, &w);
		if (e)
			break;
		{
			const char *l[] = {periods[i].name, "total"};

			e = metrics_set(p->f[PF_ACTIVE], l, (double)w.active_total);
		}
		for (unsigned j = 0; j < w.active_by_type.n && !e; j++) {
			const char *l[] = {periods[i].name, w.active_by_type.v[j].key};

			if (*w.active_by_type.v[j].key)
				e = metrics_set(p->f[PF_ACTIVE], l,
						(double)w.active_by_type.v[j].n);
		}
		if (!e)
			e = metrics_set(p->f[PF_CONVERSION], pl, state_conversion(&w));
		if (!e && periods[i].seconds >= 7 * DAY_S)
			e = metrics_set(p->f[PF_CHURN], pl, state_churn(&w));
		if (!e && periods[i].seconds == 30 * DAY_S)
			e = publish_arpu(p, &w);
		state_window_free(&w);
	}
	if (!e)
		e = publish_experiments(st, p);
	state_exec(&st->r, e ? "ROLLBACK" : "COMMIT");
	pthread_mutex_unlock(&st->r.lock);

	if (!e)
		e = state_get_stats(st, &stats);
	pthread_mutex_lock(&st->r.lock);
	if (!e && st->pub == p) {
		static const char *const tables[] = {"users",  "subscriptions", "exposures",
						     "ledger", "blobs",		"counters"};
		const uint64_t rows[] = {stats.users,	    stats.subscriptions, stats.exposures,
					 stats.ledger_rows, stats.blobs,	 stats.counters};

		e = metrics_set(p->f[PF_DB_BYTES], NULL, (double)stats.db_bytes);
		for (unsigned i = 0; i < 6 && !e; i++) {
			const char *l[] = {tables[i]};

			e = metrics_set(p->f[PF_ROWS], l, (double)rows[i]);
		}
		if (!e)
			e = add_counter_to(p->f[PF_DROPPED], &p->dropped, stats.events_dropped);
		if (!e)
			e = add_counter_to(p->f[PF_FLUSH_ERRORS], &p->flush_errors,
					   stats.flush_errors);
		if (!e)
			e = add_counter_to(p->f[PF_INVALID], &p->invalid, stats.invalid_ids);
	}
out:
	pthread_mutex_unlock(&st->r.lock);
	return e;
}
