// SPDX-License-Identifier: MIT
/*
 * Stripe semantics against ground truth: each test replays recorded exchanges (bodies from
 * tests/unit/fixtures/stripe/, shaped like Stripe's fixtures3.json) and asserts the exact
 * exported values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "bizprobe/form.h"
#include "bizprobe/identity.h"
#include "bizprobe/stripe.h"
#include "stripe_test_util.h"

#define ATTEMPTS "direct_fan_payment_attempts_total"
#define AMOUNTS	 "direct_fan_payment_amounts"
#define FAILURES "direct_fan_payment_failures_total"
#define MRR	 "direct_fan_subscription_revenue"
#define API_REQS "direct_fan_stripe_api_requests_total"
#define PENDING	 "direct_fan_payments_pending"

struct env {
	struct metrics_registry *reg;
	struct stripe_semantics *s;
	struct stripe_pipeline p;
};

static int setup_full(void **state, const struct business_metrics_config *bcfg,
		      const struct stripe_config *cfg)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || stripe_pipeline_init(&e->p, bcfg, cfg))
		return -1;
	e->reg = e->p.reg;
	e->s = e->p.s;
	*state = e;
	return 0;
}

static int setup_cfg(void **state, const struct stripe_config *cfg)
{
	return setup_full(state, NULL, cfg);
}

static int setup(void **state)
{
	struct stripe_config cfg = {.webhook_secret = TEST_SECRET};

	return setup_cfg(state, &cfg);
}

static int teardown(void **state)
{
	struct env *e = *state;

	stripe_pipeline_fini(&e->p);
	free(e);
	return 0;
}

static void feed(struct env *e, struct tx *t, time_t now)
{
	stripe_semantics_on_exchange(e->s, &t->ex, now);
	tx_free(t);
}

static void api(struct env *e, const char *method, const char *target, int status,
		const char *req_body, const char *fixture, const char *idem, bool replayed)
{
	struct tx t;

	tx_api(&t, method, target, status, req_body, fixture ? fixture_load(fixture) : NULL);
	if (idem)
		tx_header(&t.ex.req, "Idempotency-Key", idem);
	if (replayed)
		tx_header(&t.ex.resp, "Idempotent-Replayed", "true");
	feed(e, &t, T0);
}

static void webhook(struct env *e, const char *fixture, time_t now)
{
	struct tx t;

	tx_webhook(&t, "/api/webhooks/stripe", fixture_load(fixture), TEST_SECRET, now, 200);
	feed(e, &t, now);
}

static const char *create_pi_form = "amount=2500&currency=usd&confirm=true&payment_method="
				    "pm_card_visa&metadata%5Bfan_id%5D=fan_42&metadata%5Bcreator_"
				    "id%5D=cr_7&receipt_email=fan%40example.com";

static void test_success(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "k1",
	    false);
	assert_true(mval(e->reg, ATTEMPTS, L("succeeded", "USD")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("USD")), 1);
	assert_true(mval(e->reg, AMOUNTS, L("USD")) == 25.0);
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents", "POST", "200")) == 1);
	assert_int_equal(mcount(e->reg, "direct_fan_stripe_api_request_duration_seconds",
				L("/v1/payment_intents")),
			 1);
	assert_true(mval(e->reg, "direct_fan_stripe_api_request_duration_seconds",
			 L("/v1/payment_intents")) == 0.18);
}

static void test_decline_402_then_webhook(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents/pi_3DeclinedQ1w2E3/confirm", 402,
	    "payment_method=pm_card_chargeDeclinedInsufficientFunds", "error_card_declined.json",
	    "k2", false);
	assert_true(mval(e->reg, ATTEMPTS, L("failed", "GBP")) == 1);
	assert_true(mval(e->reg, FAILURES, L("card_declined", "insufficient_funds")) == 1);
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents/{id}/confirm", "POST", "402")) ==
		    1);
	/* The payment_failed webhook of the same charge is the same attempt. */
	webhook(e, "evt_pi_payment_failed.json", T0 + 5);
	assert_true(mval(e->reg, "direct_fan_webhook_events_total",
			 L("payment_intent.payment_failed", "processed")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_true(msum(e->reg, FAILURES, NULL) == 1);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("GBP")), 0);
}

static void test_retries_same_idempotency_key(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents", 429, create_pi_form, "error_rate_limit.json",
	    "idem-retry", false);
	api(e, "POST", "/v1/payment_intents", 500, create_pi_form, "error_api_500.json",
	    "idem-retry", false);
	api(e, "POST", "/v1/payment_intents", 409, create_pi_form, "error_rate_limit.json",
	    "idem-retry", false);
	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json",
	    "idem-retry", false);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_true(mval(e->reg, ATTEMPTS, L("succeeded", "USD")) == 1);
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents", "POST", "429")) == 1);
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents", "POST", "500")) == 1);
	assert_true(msum(e->reg, API_REQS, NULL) == 4);
}

static void test_idempotent_replayed(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "k3",
	    false);
	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "k3", true);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("USD")), 1);
	/* Two requests were made, though. */
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents", "POST", "200")) == 2);
}

static void test_api_and_webhook_once(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "k4",
	    false);
	webhook(e, "evt_pi_succeeded.json", T0 + 2);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("USD")), 1);
	assert_true(mval(e->reg, "direct_fan_webhook_events_total",
			 L("payment_intent.succeeded", "processed")) == 1);
}

static void test_webhook_then_api_once(void **state)
{
	struct env *e = *state;

	webhook(e, "evt_pi_succeeded.json", T0);
	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "k5",
	    false);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("USD")), 1);
}

static void test_requires_action_then_succeeded(void **state)
{
	struct env *e = *state;
	struct stripe_stats st;

	api(e, "POST", "/v1/payment_intents/pi_3Secure3DS9x8y7/confirm", 200, NULL,
	    "pi_requires_action.json", "k6", false);
	stripe_semantics_get_stats(e->s, &st);
	assert_int_equal(st.pending, 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0); /* not decided yet */
	/* ... but visible as waiting. */
	assert_true(mval(e->reg, PENDING, L("requires_action", "EUR")) == 1);
	/* The app polls after the 3-D Secure redirect: a GET resolves the pending attempt. */
	api(e, "GET", "/v1/payment_intents/pi_3Secure3DS9x8y7", 200, NULL, "pi_3ds_succeeded.json",
	    NULL, false);
	assert_true(mval(e->reg, ATTEMPTS, L("succeeded", "EUR")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_true(mval(e->reg, AMOUNTS, L("EUR")) == 49.99);
	assert_true(mval(e->reg, PENDING, L("requires_action", "EUR")) == 0);
	stripe_semantics_tick(e->s, T0 + 100000);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	stripe_semantics_get_stats(e->s, &st);
	assert_int_equal(st.pending, 0);
}

static void test_requires_action_abandoned_then_late(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents/pi_3Secure3DS9x8y7/confirm", 200, NULL,
	    "pi_requires_action.json", "k7", false);
	stripe_semantics_tick(e->s, T0 + 3599);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);
	assert_true(mval(e->reg, PENDING, L("requires_action", "EUR")) == 1);
	stripe_semantics_tick(e->s, T0 + 3600);
	assert_true(mval(e->reg, ATTEMPTS, L("requires_action", "EUR")) == 1);
	/* Counted with its pending status: no longer waiting. */
	assert_true(mval(e->reg, PENDING, L("requires_action", "EUR")) == 0);
	/* Completed after the timeout: not a second attempt, but the money arrived. */
	api(e, "GET", "/v1/payment_intents/pi_3Secure3DS9x8y7", 200, NULL, "pi_3ds_succeeded.json",
	    NULL, false);
	{
		struct tx t;

		tx_api(&t, "POST", "/v1/payment_intents/pi_3Secure3DS9x8y7/confirm", 200, NULL,
		       fixture_load("pi_3ds_succeeded.json"));
		feed(e, &t, T0 + 4000);
	}
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
	assert_true(mval(e->reg, ATTEMPTS, L("succeeded", "EUR")) == 0);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("EUR")), 1);
}

static void test_get_never_starts_attempt(void **state)
{
	struct env *e = *state;

	api(e, "GET", "/v1/payment_intents/pi_3SucceededA1b2C3", 200, NULL, "pi_succeeded.json",
	    NULL, false);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);
	assert_int_equal(mcount(e->reg, AMOUNTS, L("USD")), 0);
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents/{id}", "GET", "200")) == 1);
}

static void test_jpy_not_divided(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/payment_intents", 200, "amount=5000&currency=jpy&confirm=true",
	    "pi_jpy_succeeded.json", "k8", false);
	assert_true(mval(e->reg, ATTEMPTS, L("succeeded", "JPY")) == 1);
	assert_true(mval(e->reg, AMOUNTS, L("JPY")) == 5000.0);
	assert_true(stripe_amount_to_major(5000, "krw") == 5000.0);
	assert_true(stripe_amount_to_major(12345, "KWD") == 12.345);
	assert_true(stripe_amount_to_major(12345, "usd") == 123.45);
}

/* A subscription body in Stripe's shape with one or two items. */
static char *sub_json(const char *id, const char *status, const char *currency, int unit,
		      const char *interval, int count, int qty, int unit2, int qty2)
{
	char *buf = NULL;
	char item2[512] = "";

	if (unit2)
		snprintf(item2, sizeof(item2),
			 ",{\"id\":\"si_2\",\"object\":\"subscription_item\",\"price\":{\"currency"
			 "\":\"%s\",\"id\":\"price_b\",\"object\":\"price\",\"recurring\":{"
			 "\"interval\":\"month\",\"interval_count\":1,\"usage_type\":\"licensed\"},"
			 "\"type\":\"recurring\",\"unit_amount\":%d},\"quantity\":%d}",
			 currency, unit2, qty2);
	if (asprintf(
		&buf,
		"{\n  \"cancel_at_period_end\": false,\n  \"currency\": \"%s\",\n"
		"  \"customer\": \"cus_QXg1o8vcGmoR32\",\n  \"id\": \"%s\",\n"
		"  \"items\": {\"data\": [{\"id\": \"si_1\", \"object\": \"subscription_item\","
		" \"price\": {\"currency\": \"%s\", \"id\": \"price_a\", \"object\": \"price\","
		" \"recurring\": {\"interval\": \"%s\", \"interval_count\": %d, \"meter\": null},"
		" \"type\": \"recurring\", \"unit_amount\": %d, \"unit_amount_decimal\": \"%d\"},"
		" \"quantity\": %d}%s], \"has_more\": false, \"object\": \"list\"},\n"
		"  \"metadata\": {\"fan_id\": \"fan_42\", \"tier_name\": \"gold\"},\n"
		"  \"object\": \"subscription\",\n  \"status\": \"%s\"\n}\n",
		currency, id, currency, interval, count, unit, unit, qty, item2, status) < 0)
		abort();
	return buf;
}

static void sub_api(struct env *e, const char *method, const char *target, char *body)
{
	struct tx t;

	tx_api(&t, method, target, 200,
	       "customer=cus_QXg1o8vcGmoR32&items%5B0%5D%5Bprice%5D=price_a", body);
	feed(e, &t, T0);
}

static void test_mrr_yearly_then_cancel(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/subscriptions", 200,
	    "customer=cus_QXg1o8vcGmoR32&items%5B0%5D%5Bprice%5D=price_Yearly",
	    "sub_yearly_active.json", "k9", false);
	assert_true(mval(e->reg, "direct_fan_subscriptions_created_total", NULL) == 1);
	assert_true(mval(e->reg, MRR, L("USD")) == 10.0); /* 120.00 / 12 */
	/* created webhook of the same subscription: still one creation */
	{
		char *evt = NULL;
		char *obj = fixture_load("sub_yearly_active.json");
		struct tx t;

		assert_true(
		    asprintf(&evt,
			     "{\"id\":\"evt_1SubCreated00001\",\"object\":\"event\","
			     "\"type\":\"customer.subscription.created\",\"data\":{\"object\":%s}}",
			     obj) > 0);
		free(obj);
		tx_webhook(&t, "/api/webhooks/stripe", evt, TEST_SECRET, T0, 200);
		feed(e, &t, T0);
	}
	assert_true(mval(e->reg, "direct_fan_subscriptions_created_total", NULL) == 1);
	assert_true(mval(e->reg, MRR, L("USD")) == 10.0);

	webhook(e, "evt_sub_deleted.json", T0 + 60);
	assert_true(mval(e->reg, "direct_fan_subscriptions_canceled_total", NULL) == 1);
	assert_true(mval(e->reg, MRR, L("USD")) == 0);
	/* A stale read of the old active state must not bring the revenue back. */
	api(e, "GET", "/v1/subscriptions/sub_1YearlyPlan00001", 200, NULL, "sub_yearly_active.json",
	    NULL, false);
	assert_true(mval(e->reg, MRR, L("USD")) == 0);
	assert_true(mval(e->reg, "direct_fan_subscriptions_canceled_total", NULL) == 1);
}

static void test_mrr_weekly_quantity_and_statuses(void **state)
{
	struct env *e = *state;
	double want;

	/* 5.00 every 2 weeks x 3 seats = 500 * 3 * 52 / 12 / 2 cents */
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_W", "active", "usd", 500, "week", 2, 3, 0, 0));
	want = 500.0 * 3 * (52.0 / 12.0) / 2 / 100.0;
	assert_true(fabs(mval(e->reg, MRR, L("USD")) - want) < 1e-9);
	/* past_due counts; two items: 9.99 x 2 monthly + 1 x 20.00 monthly = 39.98 */
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_M", "past_due", "usd", 999, "month", 1, 2, 2000, 1));
	want += 39.98;
	assert_true(fabs(mval(e->reg, MRR, L("USD")) - want) < 1e-9);
	/* trialing does not pay yet */
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_T", "trialing", "usd", 100000, "month", 1, 1, 0, 0));
	assert_true(fabs(mval(e->reg, MRR, L("USD")) - want) < 1e-9);
	/* daily in EUR: 1.00 per day = 365/12 per month */
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_D", "active", "eur", 100, "day", 1, 1, 0, 0));
	assert_true(fabs(mval(e->reg, MRR, L("EUR")) - 365.0 / 12.0) < 1e-9);
	/* an upgrade replaces the contribution: sub_W now monthly 10.00 x 1 */
	sub_api(e, "POST", "/v1/subscriptions/sub_W",
		sub_json("sub_W", "active", "usd", 1000, "month", 1, 1, 0, 0));
	want = 39.98 + 10.0;
	assert_true(fabs(mval(e->reg, MRR, L("USD")) - want) < 1e-9);
	assert_true(mval(e->reg, "direct_fan_subscriptions_created_total", NULL) == 4);
	/* DELETE cancels: canceled counter, contribution removed */
	sub_api(e, "DELETE", "/v1/subscriptions/sub_M",
		sub_json("sub_M", "canceled", "usd", 999, "month", 1, 2, 2000, 1));
	assert_true(fabs(mval(e->reg, MRR, L("USD")) - 10.0) < 1e-9);
	sub_api(e, "DELETE", "/v1/subscriptions/sub_W",
		sub_json("sub_W", "canceled", "usd", 1000, "month", 1, 1, 0, 0));
	assert_true(mval(e->reg, MRR, L("USD")) == 0); /* exactly 0, no float residue */
	assert_true(mval(e->reg, "direct_fan_subscriptions_canceled_total", NULL) == 2);
	/* trialing -> active later starts paying */
	sub_api(e, "POST", "/v1/subscriptions/sub_T",
		sub_json("sub_T", "active", "usd", 1500, "year", 1, 1, 0, 0));
	assert_true(mval(e->reg, MRR, L("USD")) == 1.25);
}

/* A negative or non-finite price is not a price: it neither lowers nor swamps the gauge. */
static void test_mrr_ignores_negative_amounts(void **state)
{
	struct env *e = *state;
	char *body = NULL;

	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_P", "active", "usd", 1000, "month", 1, 1, 0, 0));
	assert_true(mval(e->reg, MRR, L("USD")) == 10.0);
	/* unit_amount -5000 (and its decimal form): that item gives nothing */
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_N", "active", "usd", -5000, "month", 1, 1, 0, 0));
	assert_true(mval(e->reg, MRR, L("USD")) == 10.0);
	/* one good item and one negative: only the good one counts */
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_N2", "active", "usd", 300, "month", 1, 1, -900, 1));
	assert_true(mval(e->reg, MRR, L("USD")) == 13.0);
	/* "inf" as a decimal amount */
	if (asprintf(&body,
		     "{\"id\":\"sub_I\",\"object\":\"subscription\",\"status\":\"active\","
		     "\"currency\":\"usd\",\"items\":{\"data\":[{\"price\":{\"recurring\":"
		     "{\"interval\":\"month\"},\"unit_amount_decimal\":\"inf\"},\"quantity\":1}]}}") <
	    0)
		abort();
	sub_api(e, "POST", "/v1/subscriptions", body);
	assert_true(mval(e->reg, MRR, L("USD")) == 13.0);
}

/* The subscription table is full: the oldest paying one is forgotten, the gauge drops by its
 * MRR, and that is counted apart from cancellations. */
static void test_subscription_eviction_counted(void **state)
{
	struct env *e = *state;
	struct stripe_stats st;

	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_A", "active", "usd", 1000, "month", 1, 1, 0, 0));
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_B", "active", "usd", 2000, "month", 1, 1, 0, 0));
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_T", "trialing", "usd", 4000, "month", 1, 1, 0, 0));
	assert_true(mval(e->reg, MRR, L("USD")) == 20.0);
	stripe_semantics_get_stats(e->s, &st);
	/* sub_T took sub_A's place: paying, so counted */
	assert_int_equal(st.subscriptions_evicted, 1);
	assert_int_equal(st.subscriptions, 1);
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_C", "active", "usd", 500, "month", 1, 1, 0, 0));
	/* sub_C evicts sub_B (paying: counted); the trialing sub_T was newer */
	stripe_semantics_get_stats(e->s, &st);
	assert_int_equal(st.subscriptions_evicted, 2);
	assert_true(mval(e->reg, MRR, L("USD")) == 5.0);
	assert_true(mval(e->reg, "direct_fan_subscriptions_canceled_total", NULL) == 0);
	sub_api(e, "POST", "/v1/subscriptions",
		sub_json("sub_D", "active", "usd", 700, "month", 1, 1, 0, 0));
	/* sub_D evicts sub_T, which did not pay: not counted */
	stripe_semantics_get_stats(e->s, &st);
	assert_int_equal(st.subscriptions_evicted, 2);
	assert_true(mval(e->reg, MRR, L("USD")) == 12.0);
}

static int setup_two_subs(void **state)
{
	struct stripe_config cfg = {.max_subscriptions = 2};

	return setup_cfg(state, &cfg);
}

static void test_refunds(void **state)
{
	struct env *e = *state;

	api(e, "POST", "/v1/refunds", 200, "payment_intent=pi_3SucceededA1b2C3&amount=1500",
	    "refund_usd.json", "k10", false);
	api(e, "POST", "/v1/refunds", 200, "payment_intent=pi_3SucceededA1b2C3&amount=1500",
	    "refund_usd.json", "k10", true);
	assert_true(mval(e->reg, "direct_fan_refunds_total", L("USD")) == 1);
	assert_true(mval(e->reg, "direct_fan_refund_amount_total", L("USD")) == 15.0);
	webhook(e, "evt_refund_jpy.json", T0);
	assert_true(mval(e->reg, "direct_fan_refunds_total", L("JPY")) == 1);
	assert_true(mval(e->reg, "direct_fan_refund_amount_total", L("JPY")) == 3000.0);
}

static void test_dispute(void **state)
{
	struct env *e = *state;

	webhook(e, "evt_dispute_created.json", T0);
	webhook(e, "evt_dispute_created.json", T0 + 3600 - 1000); /* redelivery, re-signed */
	assert_true(mval(e->reg, "direct_fan_disputes_total", NULL) == 1);
	assert_true(mval(e->reg, "direct_fan_webhook_events_total",
			 L("charge.dispute.created", "duplicate")) == 1);
}

static void test_truncated_bodies(void **state)
{
	struct env *e = *state;
	struct tx t;
	char *body = fixture_load("pi_succeeded.json");
	struct stripe_stats st;

	/* Cut in the middle of the object, as a capped capture delivers it. */
	body[300] = '\0';
	tx_api(&t, "POST", "/v1/payment_intents", 200, create_pi_form, body);
	t.ex.resp.body_truncated = true;
	t.ex.resp.wire_body_bytes = 1474;
	t.ex.truncated = true;
	feed(e, &t, T0);
	assert_true(mval(e->reg, API_REQS, L("/v1/payment_intents", "POST", "200")) == 1);
	assert_true(mval(e->reg, "bizprobe_stripe_truncated_exchanges_total", L("api")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);

	/* The same cut body without the flag (a broken producer) must not crash either. */
	body = fixture_load("pi_succeeded.json");
	body[300] = '\0';
	tx_api(&t, "POST", "/v1/payment_intents", 200, create_pi_form, body);
	feed(e, &t, T0);
	stripe_semantics_get_stats(e->s, &st);
	assert_int_equal(st.parse_errors, 1);

	/* Webhook cut short. */
	body = fixture_load("evt_pi_succeeded.json");
	tx_webhook(&t, "/api/webhooks/stripe", body, TEST_SECRET, T0, 200);
	t.ex.req.body_len = 200;
	t.ex.req.body_truncated = true;
	feed(e, &t, T0);
	assert_true(mval(e->reg, "direct_fan_webhook_events_total", L("other", "truncated")) == 1);
	assert_true(mval(e->reg, "bizprobe_stripe_truncated_exchanges_total", L("webhook")) == 1);

	/* Empty, NULL and binary bodies. */
	tx_api(&t, "POST", "/v1/payment_intents", 200, NULL, NULL);
	feed(e, &t, T0);
	tx_api(&t, "POST", "/v1/payment_intents", 402, NULL, strdup("\x01\x02{{{["));
	feed(e, &t, T0);
	tx_api(&t, "POST", "/v1/payment_intents", 200, NULL, strdup("[1,2,3]"));
	feed(e, &t, T0);
	tx_api(&t, "POST", "/v1/payment_intents", 402, NULL, strdup("{\"error\":7}"));
	feed(e, &t, T0);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);
	assert_true(msum(e->reg, API_REQS, NULL) == 6);
}

static void test_hosts(void **state)
{
	struct env *e = *state;
	struct tx t;

	tx_api(&t, "POST", "/v1/payment_intents", 200, create_pi_form,
	       fixture_load("pi_succeeded.json"));
	t.ex.host = "api.stripe.com.evil.example";
	feed(e, &t, T0);
	tx_api(&t, "POST", "/v1/payment_intents", 200, create_pi_form,
	       fixture_load("pi_succeeded.json"));
	t.ex.host = "API.Stripe.com:443";
	feed(e, &t, T0);
	assert_true(msum(e->reg, API_REQS, NULL) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
}

static int setup_proxy(void **state)
{
	static const char *const hosts[] = {"stripe-proxy.internal"};
	struct business_metrics_config bcfg = {.namespace = "shop"};
	struct stripe_config cfg = {.extra_hosts = hosts, .n_extra_hosts = 1};

	return setup_full(state, &bcfg, &cfg);
}

static void test_extra_host_and_namespace(void **state)
{
	struct env *e = *state;
	struct tx t;

	tx_api(&t, "POST", "/v1/payment_intents", 200, create_pi_form,
	       fixture_load("pi_succeeded.json"));
	t.ex.host = "stripe-proxy.internal:8443";
	feed(e, &t, T0);
	assert_true(mval(e->reg, "shop_payment_attempts_total", L("succeeded", "USD")) == 1);
	assert_null(metrics_registry_find(e->reg, ATTEMPTS));
}

/* What the HTTP stage asks before the bodies arrive, from the request's head alone: API calls
 * to Stripe's hosts (and the configured ones) and signed webhook deliveries. */
static void test_wants_bodies(void **state)
{
	struct env *e = *state;
	struct tx t;

	assert_false(stripe_semantics_wants_bodies(NULL, NULL));
	tx_api(&t, "POST", "/v1/payment_intents", 0, create_pi_form, NULL);
	assert_true(stripe_semantics_wants_bodies(e->s, &t.ex));
	t.ex.host = "stripe-proxy.internal:8443";
	assert_true(stripe_semantics_wants_bodies(e->s, &t.ex));
	t.ex.host = "api.example.com";
	assert_false(stripe_semantics_wants_bodies(e->s, &t.ex));
	t.ex.host = "api.stripe.com";
	t.ex.role = HTTP_ROLE_SERVER; /* a request to the app, not from it */
	assert_false(stripe_semantics_wants_bodies(e->s, &t.ex));
	tx_free(&t);

	tx_webhook(&t, "/webhooks/stripe", strdup("{}"), NULL, T0, 0);
	assert_true(stripe_semantics_wants_bodies(e->s, &t.ex));
	snprintf(t.ex.method, sizeof(t.ex.method), "GET");
	assert_false(stripe_semantics_wants_bodies(e->s, &t.ex));
	snprintf(t.ex.method, sizeof(t.ex.method), "POST");
	t.ex.req.n_headers--; /* no Stripe-Signature: an ordinary POST */
	assert_false(stripe_semantics_wants_bodies(e->s, &t.ex));
	tx_free(&t);
}

static int setup_small(void **state)
{
	struct business_metrics_config bcfg = {.max_label_values = 16};
	struct stripe_config cfg = {.max_tracked = 64};

	return setup_full(state, &bcfg, &cfg);
}

static void test_label_cardinality_and_privacy(void **state)
{
	struct env *e = *state;
	unsigned series;
	char *text;

	for (int i = 0; i < 300; i++) {
		char *body = NULL;
		struct tx t;

		assert_true(
		    asprintf(&body,
			     "{\"error\":{\"charge\":\"ch_%d\",\"code\":\"card_declined\","
			     "\"decline_code\":\"reason_%d\",\"type\":\"card_error\","
			     "\"payment_intent\":{\"id\":\"pi_%d\",\"object\":\"payment_intent\","
			     "\"currency\":\"%c%c%c\",\"status\":\"requires_payment_method\"}}}",
			     i, i, i, 'a' + i % 26, 'a' + (i / 26) % 26, 'q') > 0);
		tx_api(&t, "POST", "/v1/payment_intents", 402, "currency=usd", body);
		feed(e, &t, T0);
	}
	assert_true(msum(e->reg, FAILURES, &series) == 300);
	assert_true(series <= 16);
	assert_true(mval(e->reg, FAILURES, L("other", "other")) == 300 - 15);
	assert_true(msum(e->reg, ATTEMPTS, &series) == 300);
	assert_true(series <= 16);
	/* Bad values never become labels. */
	{
		struct tx t;

		tx_api(&t, "POST", "/v1/payment_intents", 402, NULL,
		       strdup("{\"error\":{\"charge\":\"ch_x\",\"code\":\"Card Declined <script>\","
			      "\"type\":\"card_error\",\"payment_intent\":{\"id\":\"pi_x\","
			      "\"currency\":\"us$\"}}}"));
		feed(e, &t, T0);
	}
	/* A request whose path carries customer ids and e-mails. */
	{
		struct tx t;

		tx_api(&t, "GET", "/v1/customers/cus_QXg1o8vcGmoR32/sources/card_1Abc", 200, NULL,
		       strdup("{}"));
		feed(e, &t, T0);
		assert_true(mval(e->reg, API_REQS,
				 L("/v1/customers/{id}/sources/{id}", "GET", "200")) == 1);
	}
	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "k", false);
	assert_int_equal(prom_render(e->reg, &text, NULL), 0);
	assert_null(strstr(text, "cus_"));
	assert_null(strstr(text, "fan@example.com"));
	assert_null(strstr(text, "sk_test"));
	assert_null(strstr(text, "fan_42"));
	assert_null(strstr(text, "pi_3"));
	assert_null(strstr(text, "pi_x"));
	assert_null(strstr(text, "ch_3"));
	assert_null(strstr(text, "ch_x"));
	assert_null(strstr(text, "card_1"));
	assert_null(strstr(text, "<script>"));
	assert_null(strstr(text, "us$"));
	free(text);
}

static void test_endpoint_templates(void **state)
{
	static const struct {
		const char *path, *want;
	} cases[] = {
	    {"/v1/payment_intents", "/v1/payment_intents"},
	    {"/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/confirm",
	     "/v1/payment_intents/{id}/confirm"},
	    {"/v1/subscriptions/sub_1MowQVLkdIwHu7ixeRlqHVzs", "/v1/subscriptions/{id}"},
	    {"/v1/customers/cus_NffrFeUfNV2Hib/subscriptions", "/v1/customers/{id}/subscriptions"},
	    {"/v1/checkout/sessions", "/v1/checkout/sessions"},
	    {"/v1/customers/search", "/v1/customers/search"},
	    {"/v1/refunds/", "/v1/refunds"},
	    {"/", "/"},
	    {"/v1/a/b/c/d/e/f/g", "other"},
	    {"/v1/weird%20path", "other"},
	    {"no-slash", "other"},
	    {"/v1/invoices/upcoming/lines", "/v1/invoices/upcoming/lines"},
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		stripe_endpoint_template(cases[i].path, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
	/* A template that fills the output exactly fits; one byte more is "other". */
	stripe_endpoint_template("/v1/abc", out, 8);
	assert_string_equal(out, "/v1/abc");
	stripe_endpoint_template("/v1/abcd", out, 8);
	assert_string_equal(out, "other");
	stripe_endpoint_template("/v1/customers/cus_1/sources", out, 26);
	assert_string_equal(out, "other");
	stripe_endpoint_template("/v1/customers/cus_1/sources", out, 27);
	assert_string_equal(out, "/v1/customers/{id}/sources");
}

static void test_form_get(void **state)
{
	static const char *body = "amount=2500&currency=usd&metadata%5Bfan_id%5D=fan%2042&"
				  "items[0][price]=price_1Abc&description=hello+world&empty=&flag";
	char out[32];

	assert_int_equal(form_urlencoded_get(body, strlen(body), "amount", out, sizeof(out)), 4);
	assert_string_equal(out, "2500");
	assert_int_equal(form_urlencoded_get(body, strlen(body), "metadata[fan_id]", out, sizeof(out)),
			 6);
	assert_string_equal(out, "fan 42");
	assert_int_equal(form_urlencoded_get(body, strlen(body), "items[0][price]", out, sizeof(out)),
			 10);
	assert_string_equal(out, "price_1Abc");
	assert_int_equal(form_urlencoded_get(body, strlen(body), "description", out, sizeof(out)), 11);
	assert_string_equal(out, "hello world");
	assert_int_equal(form_urlencoded_get(body, strlen(body), "empty", out, sizeof(out)), 0);
	assert_int_equal(form_urlencoded_get(body, strlen(body), "flag", out, sizeof(out)), 0);
	assert_int_equal(form_urlencoded_get(body, strlen(body), "missing", out, sizeof(out)), -ENOENT);
	assert_int_equal(form_urlencoded_get(body, strlen(body), "metadata[fan_id]", out, 4), -ENOSPC);
	/* Only the first 10 bytes are the body: the key after them is not seen. */
	assert_int_equal(form_urlencoded_get(body, 10, "currency", out, sizeof(out)), -ENOENT);
}

static void test_bad_config(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct business_metrics_config bcfg = {.namespace = "bad-ns"};
	struct biz_event_sink no_fn = {NULL, NULL};

	errno = 0;
	assert_null(business_metrics_new(reg, &bcfg));
	assert_int_equal(errno, EINVAL);
	assert_null(business_metrics_new(NULL, NULL));
	assert_null(stripe_semantics_new(NULL, NULL));
	assert_null(stripe_semantics_new(&no_fn, NULL));
	/* NULL inputs are ignored, not crashes. */
	stripe_semantics_on_exchange(NULL, NULL, T0);
	stripe_semantics_free(NULL);
	metrics_registry_free(reg);
}

/* The full exposition after a realistic mix passes promtool. */
static void test_promtool(void **state)
{
	struct env *e = *state;
	char path[] = "/tmp/bizprobe-stripe-XXXXXX", cmd[128], *text;
	int fd, rc;

	api(e, "POST", "/v1/payment_intents", 200, create_pi_form, "pi_succeeded.json", "a", false);
	api(e, "POST", "/v1/payment_intents/pi_3DeclinedQ1w2E3/confirm", 402, NULL,
	    "error_card_declined.json", "b", false);
	api(e, "POST", "/v1/subscriptions", 200, NULL, "sub_yearly_active.json", "c", false);
	webhook(e, "evt_refund_jpy.json", T0);
	webhook(e, "evt_dispute_created.json", T0);
	assert_int_equal(metrics_process_register(e->reg), 0);
	assert_int_equal(prom_render(e->reg, &text, NULL), 0);
	if (access("/usr/bin/promtool", X_OK)) {
		free(text);
		skip();
	}
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
	rc = system(cmd);
	unlink(path);
	if (rc)
		fprintf(stderr, "%s", text);
	free(text);
	assert_int_equal(rc, 0);
}

/* What the state stage keys on: the payer from metadata, the subscription itself, both as
 * pseudonyms; with tracking off the payer is not read, the subscription still is. */
struct sub_recorder {
	int created;
	char user[PSEUDONYM_LEN];
	char subject[PSEUDONYM_LEN];
	double monthly;
};

static void record_sub(const struct business_event *ev, void *ctx)
{
	struct sub_recorder *r = ctx;

	if (ev->kind != BIZ_SUBSCRIPTION_CREATED)
		return;
	r->created++;
	snprintf(r->user, sizeof(r->user), "%s", ev->user ? ev->user : "");
	snprintf(r->subject, sizeof(r->subject), "%s", ev->subject ? ev->subject : "");
	r->monthly = ev->has_value ? ev->value : -1;
}

static void sub_created_with_fan(bool untracked, const char *const *keys, unsigned n_keys,
				 struct sub_recorder *r)
{
	char err[256];
	struct pseudonymizer *p = pseudonymizer_new("unit-salt", NULL, err, sizeof(err));
	struct biz_event_sink sink = {record_sub, r};
	struct stripe_config cfg = {.pseudonymizer = p,
				    .untracked_users = untracked,
				    .user_keys = keys,
				    .n_user_keys = n_keys};
	struct stripe_semantics *s = stripe_semantics_new(&sink, &cfg);
	char *body = fixture_load("sub_yearly_active.json");
	char *meta = strstr(body, "\"metadata\": {},\n  \"next_pending");
	char *edited;
	struct tx t;

	assert_non_null(p);
	assert_non_null(s);
	assert_non_null(meta);
	/* The top-level metadata names the fan, as the demo app sets it. */
	assert_true(asprintf(&edited, "%.*s\"metadata\": {\"fan_id\": \"fan_42\"}%s",
			     (int)(meta - body), body, meta + strlen("\"metadata\": {}")) > 0);
	free(body);
	memset(r, 0, sizeof(*r));
	tx_api(&t, "POST", "/v1/subscriptions", 200, "customer=cus_1", edited);
	stripe_semantics_on_exchange(s, &t.ex, T0);
	tx_free(&t);
	stripe_semantics_free(s);
	pseudonymizer_free(p);
}

static void test_subscription_events_carry_pseudonyms(void **state)
{
	char err[256], fan[PSEUDONYM_LEN], sub[PSEUDONYM_LEN];
	struct pseudonymizer *p = pseudonymizer_new("unit-salt", NULL, err, sizeof(err));
	struct sub_recorder r;

	(void)state;
	pseudonymize(p, "fan_42", 6, fan);
	pseudonymize(p, "sub_1YearlyPlan00001", strlen("sub_1YearlyPlan00001"), sub);
	pseudonymizer_free(p);

	sub_created_with_fan(false, NULL, 0, &r);
	assert_int_equal(r.created, 1);
	assert_string_equal(r.user, fan);
	assert_string_equal(r.subject, sub);
	assert_true(r.monthly > 0);

	sub_created_with_fan(true, NULL, 0, &r);
	assert_int_equal(r.created, 1);
	assert_string_equal(r.user, "");
	assert_string_equal(r.subject, sub);

	/* A rules file's user_keys replace the defaults: fan_id is then not a user key. */
	sub_created_with_fan(false, (const char *const[]){"payer", "fan_id"}, 1, &r);
	assert_string_equal(r.user, "");
	sub_created_with_fan(false, (const char *const[]){"payer", "fan_id"}, 2, &r);
	assert_string_equal(r.user, fan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subscription_events_carry_pseudonyms),
	    cmocka_unit_test_setup_teardown(test_success, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_decline_402_then_webhook, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retries_same_idempotency_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_idempotent_replayed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_api_and_webhook_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_webhook_then_api_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requires_action_then_succeeded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_requires_action_abandoned_then_late, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_get_never_starts_attempt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_jpy_not_divided, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mrr_yearly_then_cancel, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mrr_weekly_quantity_and_statuses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_mrr_ignores_negative_amounts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_subscription_eviction_counted, setup_two_subs,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_refunds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dispute, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hosts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_extra_host_and_namespace, setup_proxy, teardown),
	    cmocka_unit_test_setup_teardown(test_wants_bodies, setup_proxy, teardown),
	    cmocka_unit_test_setup_teardown(test_label_cardinality_and_privacy, setup_small,
					    teardown),
	    cmocka_unit_test(test_endpoint_templates),
	    cmocka_unit_test(test_form_get),
	    cmocka_unit_test(test_bad_config),
	    cmocka_unit_test_setup_teardown(test_promtool, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
