// SPDX-License-Identifier: MIT
/*
 * Payment attempts: one attempt counts once in <ns>_payment_attempts_total however it is seen.
 *
 * The rule, driven by the guide's success rate
 *   rate(attempts{status="succeeded"}[5m]) / rate(attempts[5m])
 * which is only right if every attempt adds exactly 1 to the denominator, and adds it with the
 * status it ended with:
 *
 * 1. Identity. An attempt is keyed by its charge id (PaymentIntent.latest_charge, or
 *    last_payment_error.charge, or error.charge of a 402 card_error). Before a charge exists
 *    (3-D Secure requires_action, some failures, cancellation) the key is "<pi id>:<status>".
 *    A 402 without charge or PaymentIntent falls back to its Idempotency-Key. The same key seen
 *    again (API response + webhook, SDK retry with the same Idempotency-Key after 429/409/5xx,
 *    an Idempotent-Replayed response, webhook redelivery) is the same attempt.
 * 2. Terminal statuses (succeeded, failed, canceled) are counted when first seen.
 * 3. requires_action and processing are not final: the attempt is held as "pending" on its
 *    PaymentIntent and not counted yet. The next terminal status of that PaymentIntent is the
 *    same attempt's outcome and is counted once, with that status (requires_action ->
 *    succeeded counts one succeeded, never one requires_action plus one succeeded).
 * 4. A pending attempt that has not resolved after action_timeout_s (requires_action, default
 *    1 h: an abandoned 3-D Secure challenge) or processing_timeout_s (default 3 days: bank debits)
 *    is counted with its pending status. If its outcome arrives later still, the attempt is not
 *    counted a second time; a late success still adds its amount to <ns>_payment_amounts,
 *    because that money was received. A pending attempt evicted from the bounded table is
 *    counted the same way, so nothing is lost silently.
 * 5. Responses to GET never start an attempt (reading an old PaymentIntent is not a payment);
 *    they may resolve one that is pending.
 * 6. Once a PaymentIntent has succeeded or been canceled, later pending sightings of it (late or
 *    out-of-order webhooks) are ignored.
 * Each counted attempt is one BIZ_PAYMENT_ATTEMPT event; the metrics stage turns it into
 * <ns>_payment_attempts_total, and <ns>_payment_failures_total for exactly the failed ones.
 */
#include <stdio.h>
#include <string.h>

#include "stripe_internal.h"

struct stripe_intent {
	uint8_t pending; /* enum stripe_attempt_status, or NONE */
	bool final;	 /* succeeded or canceled */
	bool flushed;	 /* a pending attempt was counted on timeout; its outcome is late */
	time_t pending_since;
	char currency[8]; /* label form */
};

static const char *status_label(enum stripe_attempt_status st)
{
	switch (st) {
	case STRIPE_ATTEMPT_SUCCEEDED:
		return "succeeded";
	case STRIPE_ATTEMPT_FAILED:
		return "failed";
	case STRIPE_ATTEMPT_REQUIRES_ACTION:
		return "requires_action";
	case STRIPE_ATTEMPT_PROCESSING:
		return "processing";
	case STRIPE_ATTEMPT_CANCELED:
		return "canceled";
	default:
		return "other";
	}
}

/* business_events_total's name for an attempt that ended with st. */
static const char *event_name(enum stripe_attempt_status st)
{
	switch (st) {
	case STRIPE_ATTEMPT_SUCCEEDED:
		return "payment_succeeded";
	case STRIPE_ATTEMPT_FAILED:
		return "payment_failed";
	case STRIPE_ATTEMPT_REQUIRES_ACTION:
		return "payment_requires_action";
	case STRIPE_ATTEMPT_PROCESSING:
		return "payment_processing";
	case STRIPE_ATTEMPT_CANCELED:
		return "payment_canceled";
	default:
		return "payment_other";
	}
}

/* One attempt, counted: amount is in major units, has_amount only for a success. */
static void count_attempt(struct stripe_semantics *s, enum stripe_attempt_status st,
			  const char *currency_label, const char *code, const char *decline,
			  bool has_amount, double amount, const char *user)
{
	char c[64] = "", d[64] = "";
	const char *labels[] = {status_label(st), currency_label, c, d};

	if (st == STRIPE_ATTEMPT_FAILED) {
		stripe_code_label(code, "none", c, sizeof(c));
		stripe_code_label(decline, "none", d, sizeof(d));
	}
	stripe_emit(s, BIZ_PAYMENT_ATTEMPT, event_name(st), labels, 4, has_amount, amount, user);
}

/* snprintf(out, size, "%s", s) without the formatting machinery: the common key is a charge id
 * and this runs for every terminal observation. */
static void copy_cut(char *out, size_t size, const char *s)
{
	size_t n = strnlen(s, size - 1);

	memcpy(out, s, n);
	out[n] = '\0';
}

/* An attempt entered (delta 1) or left (-1) a pending status: the gauge follows. Two statuses
 * times the bounded currency labels; a table that is somehow full folds into "other". */
static void pending_count(struct stripe_semantics *s, enum stripe_attempt_status st,
			  const char *currency_label, int delta)
{
	struct stripe_pending_total *t = NULL;
	const char *labels[2];

	for (unsigned i = 0; i < s->n_pending_totals && !t; i++) {
		if (s->pending_totals[i].status == st &&
		    !strcmp(s->pending_totals[i].currency, currency_label))
			t = &s->pending_totals[i];
	}
	if (!t) {
		unsigned max = sizeof(s->pending_totals) / sizeof(s->pending_totals[0]);

		if (s->n_pending_totals >= max)
			return;
		t = &s->pending_totals[s->n_pending_totals++];
		t->status = (uint8_t)st;
		copy_cut(t->currency, sizeof(t->currency),
			 s->n_pending_totals + 2 > max ? METRICS_OVERFLOW_VALUE : currency_label);
	}
	t->n += delta;
	if (t->n < 0)
		t->n = 0;
	labels[0] = status_label(st);
	labels[1] = t->currency;
	stripe_emit(s, BIZ_PAYMENTS_PENDING, NULL, labels, 2, true, (double)t->n, NULL);
}

struct observation {
	const char *pi_id;
	enum stripe_attempt_status status;
	const char *charge;
	const char *currency; /* ISO, any case */
	int64_t amount;	      /* minor units */
	bool has_amount;
	const char *code;
	const char *decline_code;
	const char *fallback_key; /* used when neither charge nor pi_id is known */
	const char *user;	  /* pseudonym from the PaymentIntent's metadata, or NULL */
};

static bool is_pending(enum stripe_attempt_status st)
{
	return st == STRIPE_ATTEMPT_REQUIRES_ACTION || st == STRIPE_ATTEMPT_PROCESSING;
}

static void observe_pending(struct stripe_semantics *s, const struct observation *o,
			    enum stripe_source src)
{
	struct stripe_intent *rec;

	if (src == STRIPE_SRC_API_READ || !o->pi_id)
		return;
	/* The outcome of this charge was already seen: this is a stale sighting. */
	if (o->charge && stripe_lru_get(s->attempts_seen, o->charge))
		return;
	rec = stripe_lru_put(s->intents, o->pi_id, NULL);
	if (!rec || rec->final)
		return;
	if (!rec->pending) {
		rec->pending_since = s->now;
		rec->flushed = false;
		s->stats.pending++;
	} else {
		pending_count(s, (enum stripe_attempt_status)rec->pending, rec->currency, -1);
	}
	/* requires_action -> processing (after 3-D Secure, for async methods) is the same attempt;
	 * keep the latest status and the time it first became pending. */
	rec->pending = (uint8_t)o->status;
	stripe_currency_label(o->currency, rec->currency, sizeof(rec->currency));
	pending_count(s, o->status, rec->currency, 1);
}

static void observe_terminal(struct stripe_semantics *s, const struct observation *o,
			     enum stripe_source src)
{
	struct stripe_intent *rec = o->pi_id ? stripe_lru_get(s->intents, o->pi_id) : NULL;
	char key[320], cur[8];
	bool late = false, paid;
	double amount;

	if (src == STRIPE_SRC_API_READ && !(rec && rec->pending))
		return;
	if (o->charge)
		copy_cut(key, sizeof(key), o->charge);
	else if (o->pi_id)
		snprintf(key, sizeof(key), "%s:%s", o->pi_id, status_label(o->status));
	else if (o->fallback_key)
		snprintf(key, sizeof(key), "idem:%s", o->fallback_key);
	else
		key[0] = '\0';

	if (key[0]) {
		bool created;

		if (!stripe_lru_put(s->attempts_seen, key, &created) || !created)
			return; /* the same attempt seen another way */
	}
	if (o->pi_id && !rec)
		rec = stripe_lru_put(s->intents, o->pi_id, NULL);
	if (rec) {
		if (rec->pending) {
			s->stats.pending--;
			pending_count(s, (enum stripe_attempt_status)rec->pending, rec->currency, -1);
		}
		late = rec->flushed;
		rec->pending = STRIPE_ATTEMPT_NONE;
		rec->flushed = false;
		if (o->status == STRIPE_ATTEMPT_SUCCEEDED || o->status == STRIPE_ATTEMPT_CANCELED)
			rec->final = true;
	}
	stripe_currency_label(o->currency, cur, sizeof(cur));
	paid = o->status == STRIPE_ATTEMPT_SUCCEEDED && o->has_amount && o->amount >= 0;
	amount = paid ? stripe_amount_to_major(o->amount, o->currency) : 0;
	if (!late) {
		count_attempt(s, o->status, cur, o->code, o->decline_code, paid, amount, o->user);
	} else if (paid) {
		const char *labels[] = {cur};

		/* The attempt counted with its pending status; the money still arrived. */
		stripe_emit(s, BIZ_PAYMENT_LATE_SUCCESS, NULL, labels, 1, true, amount, o->user);
	}
}

static void observe(struct stripe_semantics *s, const struct observation *o, enum stripe_source src)
{
	if (o->status == STRIPE_ATTEMPT_NONE)
		return;
	if (is_pending(o->status))
		observe_pending(s, o, src);
	else
		observe_terminal(s, o, src);
}

void stripe_payment_intent_seen(struct stripe_semantics *s, struct json_val pi,
				enum stripe_source src)
{
	const char *status = stripe_json_str(pi, "status");
	struct json_val lpe = {NULL, -1};
	struct observation o = {0};
	int64_t received = 0;
	char user[PSEUDONYM_LEN];

	/* The status first: it decides whether anything else is read (each lookup walks the
	 * object's fifty members), and a PaymentIntent just created is read for nothing else. */
	if (!status)
		return;
	if (!strcmp(status, "succeeded")) {
		o.status = STRIPE_ATTEMPT_SUCCEEDED;
	} else if (!strcmp(status, "canceled")) {
		o.status = STRIPE_ATTEMPT_CANCELED;
	} else if (!strcmp(status, "processing")) {
		o.status = STRIPE_ATTEMPT_PROCESSING;
	} else if (!strcmp(status, "requires_action")) {
		o.status = STRIPE_ATTEMPT_REQUIRES_ACTION;
	} else if (!strcmp(status, "requires_payment_method")) {
		/* Back to requires_payment_method with an error: the last attempt failed. Without
		 * an error it was just created or updated: no attempt yet. */
		lpe = stripe_json_obj(pi, "last_payment_error");
		if (!json_present(lpe))
			return;
		o.status = STRIPE_ATTEMPT_FAILED;
	} else {
		return; /* requires_confirmation, requires_capture: nothing decided yet */
	}
	o.pi_id = stripe_json_str(pi, "id");
	if (!o.pi_id)
		return;
	o.charge = stripe_json_ref(pi, "latest_charge");
	o.currency = stripe_json_str(pi, "currency");
	if (stripe_object_user(s, pi, user))
		o.user = user;

	if (o.status == STRIPE_ATTEMPT_FAILED) {
		const char *c = stripe_json_ref(lpe, "charge");

		if (c)
			o.charge = c;
		o.code = stripe_json_str(lpe, "code");
		o.decline_code = stripe_json_str(lpe, "decline_code");
	}
	if (stripe_json_int(pi, "amount_received", &received) && received > 0) {
		o.amount = received;
		o.has_amount = true;
	} else {
		o.has_amount = stripe_json_int(pi, "amount", &o.amount);
	}
	observe(s, &o, src);
}

void stripe_payment_error_seen(struct stripe_semantics *s, struct json_val err,
			       const char *idempotency_key, const char *req_currency)
{
	struct json_val pi = stripe_json_obj(err, "payment_intent");
	const char *type = stripe_json_str(err, "type");
	struct observation o = {
	    .status = STRIPE_ATTEMPT_FAILED,
	    .pi_id = stripe_json_ref(err, "payment_intent"),
	    .charge = stripe_json_str(err, "charge"),
	    .code = stripe_json_str(err, "code"),
	    .decline_code = stripe_json_str(err, "decline_code"),
	    .currency = stripe_json_str(pi, "currency"),
	    .fallback_key = idempotency_key,
	};

	char user[PSEUDONYM_LEN];

	/* Only a declined card is a failed payment; a 402 for other reasons is not an attempt. */
	if (!type || strcmp(type, "card_error"))
		return;
	if (stripe_object_user(s, pi, user))
		o.user = user;
	if (!o.charge)
		o.charge = stripe_json_ref(pi, "latest_charge");
	if (!o.currency)
		o.currency = req_currency;
	observe(s, &o, STRIPE_SRC_API_WRITE);
}

static void flush_one(struct stripe_semantics *s, struct stripe_intent *rec)
{
	pending_count(s, (enum stripe_attempt_status)rec->pending, rec->currency, -1);
	count_attempt(s, (enum stripe_attempt_status)rec->pending, rec->currency, NULL, NULL, false,
		      0, NULL);
	rec->pending = STRIPE_ATTEMPT_NONE;
	rec->flushed = true;
	s->stats.pending--;
}

struct expire_ctx {
	struct stripe_semantics *s;
	bool all;
};

static bool expire_cb(void *value, void *ctx)
{
	struct expire_ctx *e = ctx;
	struct stripe_intent *rec = value;
	unsigned timeout;

	if (!rec->pending)
		return false;
	timeout = rec->pending == STRIPE_ATTEMPT_PROCESSING ? e->s->processing_timeout_s
							    : e->s->action_timeout_s;
	if (e->all || e->s->now - rec->pending_since >= (time_t)timeout)
		flush_one(e->s, rec);
	return false;
}

void stripe_payments_expire(struct stripe_semantics *s, bool all)
{
	struct expire_ctx e = {s, all};

	stripe_lru_sweep(s->intents, expire_cb, &e);
}

void stripe_intent_evicted(void *value, void *ctx)
{
	struct stripe_intent *rec = value;

	if (rec->pending)
		flush_one(ctx, rec);
}

static bool count_restored(void *value, void *ctx)
{
	struct stripe_semantics *s = ctx;
	struct stripe_intent *rec = value;

	if (rec->pending) {
		pending_count(s, rec->pending, rec->currency, 1);
		s->stats.pending++;
	}
	return false;
}

/* After a restore: the pending gauge (and its count) from the intents restored. */
void stripe_payments_restored(struct stripe_semantics *s)
{
	s->n_pending_totals = 0;
	s->stats.pending = 0;
	stripe_lru_sweep(s->intents, count_restored, s);
}

size_t stripe_intent_size(void)
{
	return sizeof(struct stripe_intent);
}
