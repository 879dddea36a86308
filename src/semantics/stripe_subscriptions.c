// SPDX-License-Identifier: MIT
/*
 * Subscriptions: created / canceled counters and the MRR gauge <ns>_subscription_revenue.
 *
 * MRR is state, not an event: each subscription seen (API response or webhook) replaces its own
 * contribution. It contributes while its status is active or past_due (trialing, incomplete,
 * unpaid, paused do not pay now): the sum over items of price.unit_amount x quantity,
 * normalised to a month (year / 12, week x 52 / 12, day x 365 / 12, each / interval_count),
 * in major units. Discounts and taxes are not applied. Canceled is final in Stripe, so once a
 * subscription is seen canceled its later (late, out-of-order) states are ignored.
 *
 * The gauge only knows subscriptions seen since bizprobe started; a restart starts from 0
 * until each subscription shows up again (src/state is where this will persist).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stripe_internal.h"

struct stripe_sub {
	double mrr;	  /* major units, contribution now in its currency's total */
	char currency[8]; /* label form */
	bool contributing;
	bool created_counted;
	bool canceled;
};

size_t stripe_subscription_size(void)
{
	return sizeof(struct stripe_sub);
}

static double interval_factor(const char *interval, int64_t count)
{
	double f;

	if (!interval)
		return 0;
	if (!strcmp(interval, "month"))
		f = 1;
	else if (!strcmp(interval, "year"))
		f = 1.0 / 12.0;
	else if (!strcmp(interval, "week"))
		f = 52.0 / 12.0;
	else if (!strcmp(interval, "day"))
		f = 365.0 / 12.0;
	else
		return 0;
	return f / (double)(count > 0 ? count : 1);
}

/* A price's amount in minor units; false when it has none we can use. Stripe prices are never
 * negative, so a negative (or non-finite: "inf", "1e999") amount is not a price: it would
 * subtract from, or swamp, everyone else's MRR. */
static bool item_unit_amount(struct json_val price, double *out)
{
	int64_t v;
	const char *dec;

	if (stripe_json_int(price, "unit_amount", &v) || stripe_json_int(price, "amount", &v)) {
		*out = (double)v;
		return v >= 0;
	}
	dec = stripe_json_str(price, "unit_amount_decimal");
	if (!dec)
		dec = stripe_json_str(price, "amount_decimal");
	if (dec) {
		char *end;

		*out = strtod(dec, &end);
		return end != dec && isfinite(*out) && *out >= 0;
	}
	return false;
}

double stripe_subscription_mrr_minor(struct json_val sub, bool *ok)
{
	struct json_val data = stripe_json_array(stripe_json_obj(sub, "items"), "data");
	double total = 0;

	*ok = false;
	if (!json_present(data))
		return 0;
	for (struct json_val item = json_first(data); json_present(item);
	     item = json_next(data, item)) {
		struct json_val price = stripe_json_obj(item, "price");
		struct json_val rec;
		const char *interval;
		int64_t count = 1, qty = 1;
		double unit;

		if (!json_present(price))
			price = stripe_json_obj(item, "plan");
		rec = stripe_json_obj(price, "recurring");
		if (json_present(rec)) {
			interval = stripe_json_str(rec, "interval");
			stripe_json_int(rec, "interval_count", &count);
		} else {
			/* Legacy Plan objects carry the interval themselves. */
			interval = stripe_json_str(price, "interval");
			stripe_json_int(price, "interval_count", &count);
		}
		if (!interval || !item_unit_amount(price, &unit))
			continue; /* metered without amount, or one-off: no fixed monthly revenue */
		stripe_json_int(item, "quantity", &qty);
		if (qty < 0)
			qty = 0;
		total += unit * (double)qty * interval_factor(interval, count);
	}
	*ok = true;
	return total;
}

/* Per-currency totals, recomputed exactly to 0 when the last contributor leaves so that float
 * residue never shows as a phantom MRR. */
static void mrr_apply(struct stripe_semantics *s, const char *cur, double delta, int dn)
{
	struct stripe_mrr_total *t = stripe_mrr_total(s, cur);
	const char *labels[1];

	if (!t)
		return;
	labels[0] = t->currency;
	t->sum += delta;
	t->n += dn;
	if (t->n <= 0) {
		t->n = 0;
		t->sum = 0;
	}
	stripe_emit(s, BIZ_MRR, NULL, labels, 1, true, t->sum, NULL);
}

static void drop_contribution(struct stripe_semantics *s, struct stripe_sub *rec)
{
	if (!rec->contributing)
		return;
	mrr_apply(s, rec->currency, -rec->mrr, -1);
	rec->contributing = false;
	rec->mrr = 0;
	s->stats.subscriptions--;
}

void stripe_subscription_seen(struct stripe_semantics *s, struct json_val sub,
			      enum stripe_source src, bool created, bool deleted)
{
	const char *id = stripe_json_str(sub, "id");
	const char *status = stripe_json_str(sub, "status");
	struct stripe_sub *rec;
	bool fresh = false, paying, ok;
	double minor;
	char cur[8], pseudonym[PSEUDONYM_LEN], subject_buf[PSEUDONYM_LEN];
	const char *labels[] = {cur};
	const char *user, *subject = NULL;

	if (!id || !status)
		return;
	if (src == STRIPE_SRC_API_READ) {
		rec = stripe_lru_get(s->subs, id);
		created = false;
	} else {
		rec = stripe_lru_put(s->subs, id, &fresh);
	}
	if (!rec) {
		/* A read of a subscription we never tracked: learn its MRR if it pays, so a
		 * restarted bizprobe recovers state from the app's own reads. */
		if (strcmp(status, "active") && strcmp(status, "past_due"))
			return;
		rec = stripe_lru_put(s->subs, id, &fresh);
		if (!rec)
			return;
	}
	if (rec->canceled)
		return;
	stripe_currency_label(stripe_json_str(sub, "currency"), cur, sizeof(cur));
	user = stripe_object_user(s, sub, pseudonym) ? pseudonym : NULL;
	if (s->pseudonymizer && (created || deleted || !strcmp(status, "canceled"))) {
		pseudonymize(s->pseudonymizer, id, strlen(id), subject_buf);
		subject = subject_buf;
	}
	if (created && !rec->created_counted) {
		bool ok_mrr = false;
		bool pays = !strcmp(status, "active") || !strcmp(status, "past_due");
		double monthly = pays ? stripe_subscription_mrr_minor(sub, &ok_mrr) : 0;

		stripe_emit_about(s, BIZ_SUBSCRIPTION_CREATED, "subscription_created", labels, 1,
				  pays && ok_mrr, monthly / stripe_currency_divisor(cur), user,
				  subject);
		rec->created_counted = true;
	}
	if (deleted || !strcmp(status, "canceled") || !strcmp(status, "incomplete_expired")) {
		drop_contribution(s, rec);
		rec->canceled = true;
		/* incomplete_expired never started paying: not a cancellation. A read only
		 * reports a cancellation of a subscription we knew. */
		if (strcmp(status, "incomplete_expired") && (src != STRIPE_SRC_API_READ || !fresh))
			stripe_emit_about(s, BIZ_SUBSCRIPTION_CANCELED, "subscription_canceled",
					  labels, 1, false, 0, user, subject);
		return;
	}
	paying = !strcmp(status, "active") || !strcmp(status, "past_due");
	minor = paying ? stripe_subscription_mrr_minor(sub, &ok) : 0;
	if (paying && !ok)
		return; /* items not in this body (truncated or not expanded): keep what we had */
	drop_contribution(s, rec);
	if (paying) {
		rec->mrr = minor / stripe_currency_divisor(cur);
		snprintf(rec->currency, sizeof(rec->currency), "%s", cur);
		rec->contributing = true;
		s->stats.subscriptions++;
		mrr_apply(s, rec->currency, rec->mrr, 1);
	}
}

/* The table is full: a subscription we may still be paid for is forgotten, and the gauge drops
 * by its MRR. Counted, since the gauge alone cannot tell that from a cancellation. */
void stripe_subscription_evicted(void *value, void *ctx)
{
	struct stripe_semantics *s = ctx;
	struct stripe_sub *rec = value;

	if (rec->contributing)
		s->stats.subscriptions_evicted++;
	drop_contribution(s, rec);
}

static bool add_restored(void *value, void *ctx)
{
	struct stripe_semantics *s = ctx;
	struct stripe_sub *rec = value;

	if (rec->contributing) {
		mrr_apply(s, rec->currency, rec->mrr, 1);
		s->stats.subscriptions++;
	}
	return false;
}

/* After a restore: the MRR totals (and the gauge) from the subscriptions restored. */
void stripe_subscriptions_restored(struct stripe_semantics *s)
{
	s->n_mrr_totals = 0;
	s->stats.subscriptions = 0;
	stripe_lru_sweep(s->subs, add_restored, s);
}

struct stripe_mrr_total *stripe_mrr_total(struct stripe_semantics *s, const char *cur)
{
	unsigned i;

	for (i = 0; i < s->n_mrr_totals; i++) {
		if (!strcmp(s->mrr_totals[i].currency, cur))
			return &s->mrr_totals[i];
	}
	/* The last slot is kept for "other" so that the currency label stays bounded. */
	if (s->n_mrr_totals + 1 >= STRIPE_MAX_CURRENCIES)
		cur = METRICS_OVERFLOW_VALUE;
	for (i = 0; i < s->n_mrr_totals; i++) {
		if (!strcmp(s->mrr_totals[i].currency, cur))
			return &s->mrr_totals[i];
	}
	if (s->n_mrr_totals >= STRIPE_MAX_CURRENCIES)
		return NULL;
	snprintf(s->mrr_totals[i].currency, sizeof(s->mrr_totals[i].currency), "%s", cur);
	s->n_mrr_totals++;
	return &s->mrr_totals[i];
}
