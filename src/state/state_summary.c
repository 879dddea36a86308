// SPDX-License-Identifier: MIT
/*
 * The admin summary (GET /api/admin/metrics?range=...), written with json-c. Doubles are
 * written as the shortest decimal that reads back as the same double (json-c's default, %.17g,
 * turns 0.1 into 0.10000000000000001), always with a fraction or exponent so that a reader sees
 * a float where the contract has one.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state_internal.h"

static struct json_object *jdouble(double v)
{
	char buf[40];

	if (v != v || v > 1e300 || v < -1e300)
		v = 0; /* JSON has no NaN or infinity; no figure here can be one */
	buf[0] = '\0';
	/* plain decimals where they are short (money, percentages), else the shortest %g */
	if (v == 0 || (fabs(v) >= 1e-4 && fabs(v) < 1e15)) {
		for (int decimals = 1; decimals <= 17; decimals++) {
			snprintf(buf, sizeof(buf), "%.*f", decimals, v);
			if (strtod(buf, NULL) == v)
				break;
			buf[0] = '\0';
		}
	}
	for (int prec = 1; !buf[0] && prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) != v && prec < 17)
			buf[0] = '\0';
	}
	if (!strpbrk(buf, ".e"))
		strcat(buf, ".0");
	return json_object_new_double_s(v, buf);
}

static int add(struct json_object *o, const char *key, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, key, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_int(struct json_object *o, const char *key, int64_t v)
{
	return add(o, key, json_object_new_int64(v));
}

static int add_double(struct json_object *o, const char *key, double v)
{
	return add(o, key, jdouble(v));
}

static void date_of(int64_t day, char *buf, size_t size)
{
	time_t t = (time_t)(day * DAY_S);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

/* "2026-W48" for the ISO week starting on Monday monday: its year is its Thursday's. */
static void iso_week(int64_t monday, char *buf, size_t size)
{
	time_t t = (time_t)((monday + 3) * DAY_S);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-W%02d", tm.tm_year + 1900, tm.tm_yday / 7 + 1);
}

static int64_t range_seconds(const char *range)
{
	static const struct {
		const char *name;
		int64_t s;
	} r[] = {{"24h", DAY_S}, {"7d", 7 * DAY_S}, {"30d", 30 * DAY_S}, {"90d", 90 * DAY_S}};

	for (unsigned i = 0; range && i < sizeof(r) / sizeof(r[0]); i++) {
		if (!strcmp(range, r[i].name))
			return r[i].s;
	}
	return 0;
}

static int money_object(struct json_object *parent, const char *key, const struct state_counts *c,
			double divisor)
{
	struct json_object *o = json_object_new_object();
	int e = 0;

	if (!o)
		return -ENOMEM;
	for (unsigned i = 0; i < c->n && !e; i++)
		e = add_double(o, c->v[i].key,
			       divisor > 0 ? micro_to_major(c->v[i].amount) / divisor : 0.0);
	if (e) {
		json_object_put(o);
		return e;
	}
	return add(parent, key, o);
}

static int summary(struct json_object *root, const struct state_window *w, int64_t total_users,
		   const char *report_currency, const struct state_mrr *mrr, unsigned n_mrr)
{
	struct json_object *s = json_object_new_object(), *o;
	int64_t succeeded = 0, failed = 0;
	double mrr_report = 0;
	int e;

	if (!s)
		return -ENOMEM;
	e = add(root, "summary", s);
	if (e)
		return e;
	for (unsigned i = 0; i < w->payments.n; i++) {
		if (!strcmp(w->payments.v[i].key, "succeeded"))
			succeeded = w->payments.v[i].n;
		else if (!strcmp(w->payments.v[i].key, "failed"))
			failed = w->payments.v[i].n;
	}
	e = add_int(s, "totalUsers", total_users);
	if (!e)
		e = add_int(s, "activeUsers", w->active_total);
	if (!e)
		e = add_int(s, "newUsers", w->registered);
	if (!e)
		e = add_int(s, "payingUsers", w->converted);
	o = json_object_new_object();
	for (unsigned i = 0; i < n_mrr && !e; i++) {
		if (!mrr[i].currency)
			continue;
		if (!strcmp(mrr[i].currency, report_currency))
			mrr_report += mrr[i].amount;
		e = o ? add_double(o, mrr[i].currency, mrr[i].amount) : -ENOMEM;
	}
	if (!e)
		e = add_double(s, "monthlyRecurringRevenue", mrr_report);
	if (!e)
		e = add(s, "monthlyRecurringRevenueByCurrency", o);
	else
		json_object_put(o);
	if (!e)
		e = money_object(s, "revenueByCurrency", &w->revenue, 1);
	if (!e)
		e = add_double(s, "conversionRate", state_conversion(w));
	if (!e)
		e = add_double(s, "churnRate", state_churn(w));
	if (!e)
		e = money_object(s, "arpuByCurrency", &w->revenue, (double)w->active_total);
	if (!e)
		e = add_int(s, "registrations", w->registrations);
	if (e)
		return e;

	o = json_object_new_object();
	e = add(s, "payments", o);
	if (!e)
		e = add_int(o, "succeeded", succeeded);
	if (!e)
		e = add_int(o, "failed", failed);
	if (!e)
		e = add_double(o, "successRate",
			       w->payments_total
				   ? 100.0 * (double)succeeded / (double)w->payments_total
				   : 0.0);
	if (e)
		return e;
	o = json_object_new_object();
	e = add(s, "subscriptions", o);
	if (!e)
		e = add_int(o, "active", w->subs_active_now);
	if (!e)
		e = add_int(o, "created", w->subs_created);
	if (!e)
		e = add_int(o, "canceled", w->subs_canceled);
	return e;
}

struct day {
	int64_t active, new;
	struct json_object *revenue, *payments;
};

static int daily(struct state *st, struct json_object *root, int64_t d0, int64_t d1)
{
	unsigned n = (unsigned)(d1 - d0 + 1);
	struct day *days = calloc(n, sizeof(*days));
	struct json_object *arr = json_object_new_array();
	sqlite3_stmt *s;
	int e = 0, rc;

	if (!days || !arr) {
		free(days);
		json_object_put(arr);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n && !e; i++) {
		days[i].revenue = json_object_new_object();
		days[i].payments = json_object_new_object();
		if (!days[i].revenue || !days[i].payments)
			e = -ENOMEM;
	}
	s = state_stmt(&st->r, SQL_DAILY_RANGE);
	if (!e && s) {
		sqlite3_bind_int64(s, 1, d0);
		sqlite3_bind_int64(s, 2, d1);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			int64_t d = sqlite3_column_int64(s, 0);

			days[d - d0].active = sqlite3_column_int64(s, 1);
			days[d - d0].new = sqlite3_column_int64(s, 2);
		}
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			e = state_sqlite_err(rc);
	} else if (!e) {
		e = -EIO;
	}
	/* rows come ordered by day, kind, status, currency: sum revenue per (day, currency) */
	s = state_stmt(&st->r, SQL_LEDGER_DAYS);
	if (!e && s) {
		struct state_counts rev[1] = {{0}};
		int64_t cur_day = INT64_MIN;

		sqlite3_bind_int64(s, 1, d0);
		sqlite3_bind_int64(s, 2, d1);
		for (;;) {
			int64_t d = 0;

			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW)
				d = sqlite3_column_int64(s, 0);
			if (rc != SQLITE_ROW || d != cur_day) {
				for (unsigned i = 0; cur_day != INT64_MIN && i < rev->n && !e; i++)
					e = add_double(days[cur_day - d0].revenue, rev->v[i].key,
						       micro_to_major(rev->v[i].amount));
				state_counts_free(rev);
				cur_day = d;
			}
			if (rc != SQLITE_ROW || e)
				break;
			{
				int kind = sqlite3_column_int(s, 1);
				const char *label = state_status_name(sqlite3_column_int(s, 2));
				const char *cur = (const char *)sqlite3_column_text(s, 3);
				int64_t cnt = sqlite3_column_int64(s, 4);
				int64_t amount = sqlite3_column_int64(s, 5);
				struct json_object *prev;

				if (kind == LEDGER_PAYMENT) {
					int64_t have = 0;

					if (json_object_object_get_ex(days[d - d0].payments, label,
								      &prev))
						have = json_object_get_int64(prev);
					e = add_int(days[d - d0].payments, label, have + cnt);
					if (!e && !strcmp(label, "succeeded"))
						e = state_counts_add(rev, cur, 0, amount);
				} else if (kind == LEDGER_LATE_SUCCESS) {
					e = state_counts_add(rev, cur, 0, amount);
				}
			}
		}
		state_counts_free(rev);
		sqlite3_reset(s);
		if (!e && rc != SQLITE_DONE)
			e = state_sqlite_err(rc);
	} else if (!e) {
		e = -EIO;
	}
	for (unsigned i = 0; i < n; i++) {
		struct json_object *o = e ? NULL : json_object_new_object();
		char date[16];

		date_of(d0 + i, date, sizeof(date));
		if (!e && !o)
			e = -ENOMEM;
		if (!e)
			e = json_object_array_add(arr, o) ? -ENOMEM : 0;
		if (!e)
			e = add(o, "date", json_object_new_string(date));
		if (!e)
			e = add_int(o, "activeUsers", days[i].active);
		if (!e)
			e = add_int(o, "newUsers", days[i].new);
		if (!e) {
			e = add(o, "revenueByCurrency", days[i].revenue);
			days[i].revenue = NULL;
		}
		if (!e) {
			e = add(o, "payments", days[i].payments);
			days[i].payments = NULL;
		}
		json_object_put(days[i].revenue);
		json_object_put(days[i].payments);
	}
	free(days);
	if (e) {
		json_object_put(arr);
		return e;
	}
	return add(root, "daily", arr);
}

static int cohorts(struct state *st, struct json_object *root, int64_t first_week,
		   int64_t this_week)
{
	unsigned n_weeks = (unsigned)((this_week - first_week) / 7 + 1);
	/* counts[w][k]: the triangle of weeks in the range */
	int64_t *counts = calloc((size_t)n_weeks * n_weeks, sizeof(int64_t));
	struct json_object *arr = json_object_new_array();
	sqlite3_stmt *s = state_stmt(&st->r, SQL_COHORTS_RANGE);
	int e = 0, rc;

	if (!counts || !arr) {
		e = -ENOMEM;
		goto out;
	}
	if (!s) {
		e = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, first_week);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t w = (sqlite3_column_int64(s, 0) - first_week) / 7;
		int64_t k = sqlite3_column_int64(s, 1);

		if (w >= 0 && w < n_weeks && k >= 0 && w + k < n_weeks)
			counts[w * n_weeks + k] = sqlite3_column_int64(s, 2);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		e = state_sqlite_err(rc);
		goto out;
	}
	for (unsigned w = 0; w < n_weeks && !e; w++) {
		int64_t users = counts[w * n_weeks];
		struct json_object *o, *pct;
		char week[32];

		if (users <= 0)
			continue;
		iso_week(first_week + 7 * w, week, sizeof(week));
		o = json_object_new_object();
		if (!o || json_object_array_add(arr, o)) {
			json_object_put(o);
			e = -ENOMEM;
			break;
		}
		e = add(o, "week", json_object_new_string(week));
		if (!e)
			e = add_int(o, "users", users);
		pct = json_object_new_array();
		if (!e)
			e = add(o, "retainedPercent", pct);
		else
			json_object_put(pct);
		for (unsigned k = 0; w + k < n_weeks && !e; k++) {
			double v =
			    k ? 100.0 * (double)counts[w * n_weeks + k] / (double)users : 100.0;
			struct json_object *jv = jdouble(v);

			if (!jv || json_object_array_add(pct, jv)) {
				json_object_put(jv);
				e = -ENOMEM;
			}
		}
	}
out:
	free(counts);
	if (e) {
		json_object_put(arr);
		return e;
	}
	return add(root, "cohorts", arr);
}

int state_summary_json(struct state *st, int64_t now, const char *range,
		       const char *report_currency, const struct state_mrr *mrr, unsigned n_mrr,
		       char **out)
{
	int64_t window = range_seconds(range), total_users = 0;
	struct json_object *root = NULL;
	struct state_window w;
	bool have_window = false;
	char gen[32];
	time_t t = (time_t)now;
	struct tm tm;
	int e;

	if (!st || !out || !window || (n_mrr && !mrr))
		return -EINVAL;
	*out = NULL;
	if (!report_currency)
		report_currency = "USD";
	gmtime_r(&t, &tm);
	strftime(gen, sizeof(gen), "%Y-%m-%dT%H:%M:%SZ", &tm);

	pthread_mutex_lock(&st->r.lock);
	e = state_exec(&st->r, "BEGIN");
	if (e)
		goto unlock;
	e = state_window_compute(st, now, window, &w);
	have_window = !e;
	if (!e) {
		sqlite3_stmt *s = state_stmt(&st->r, SQL_USER_COUNTS);
		int rc;

		if (!s)
			e = -EIO;
		while (s && (rc = sqlite3_step(s)) == SQLITE_ROW)
			total_users += sqlite3_column_int64(s, 1);
		if (s) {
			sqlite3_reset(s);
			if (rc != SQLITE_DONE)
				e = state_sqlite_err(rc);
		}
	}
	root = json_object_new_object();
	if (!e && !root)
		e = -ENOMEM;
	if (!e)
		e = add(root, "range", json_object_new_string(range));
	if (!e)
		e = add(root, "generatedAt", json_object_new_string(gen));
	if (!e)
		e = summary(root, &w, total_users, report_currency, mrr, n_mrr);
	if (!e)
		e = daily(st, root, day_of(w.start), day_of(now));
	if (!e)
		e = cohorts(st, root, monday_of(day_of(w.start)), monday_of(day_of(now)));
	state_exec(&st->r, "COMMIT");
unlock:
	pthread_mutex_unlock(&st->r.lock);
	if (have_window)
		state_window_free(&w);
	if (!e) {
		const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);

		*out = text ? strdup(text) : NULL;
		if (!*out)
			e = -ENOMEM;
	}
	json_object_put(root);
	return e;
}
