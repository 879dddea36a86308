// SPDX-License-Identifier: MIT
/* Stripe webhooks: signature verification (HMAC-SHA256, tolerance, several v1), deduplication
 * of redeliveries, the app's answer, and outcome labels. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "bizprobe/stripe.h"
#include "stripe_test_util.h"

#define EVENTS	 "direct_fan_webhook_events_total"
#define ATTEMPTS "direct_fan_payment_attempts_total"

struct env {
	struct metrics_registry *reg;
	struct stripe_semantics *s;
	struct stripe_pipeline p;
};

static int setup_secret(void **state, const char *secret)
{
	struct env *e = calloc(1, sizeof(*e));
	struct stripe_config cfg = {.webhook_secret = secret};

	if (!e || stripe_pipeline_init(&e->p, NULL, &cfg))
		return -1;
	e->reg = e->p.reg;
	e->s = e->p.s;
	*state = e;
	return 0;
}

static int setup(void **state)
{
	return setup_secret(state, TEST_SECRET);
}

static int setup_nosecret(void **state)
{
	return setup_secret(state, NULL);
}

static int teardown(void **state)
{
	struct env *e = *state;

	stripe_pipeline_fini(&e->p);
	free(e);
	return 0;
}

static void deliver(struct env *e, const char *fixture, const char *secret, time_t signed_at,
		    time_t now, int app_status)
{
	struct tx t;

	tx_webhook(&t, "/webhooks/stripe/v2", fixture_load(fixture), secret, signed_at, app_status);
	stripe_semantics_on_exchange(e->s, &t.ex, now);
	tx_free(&t);
}

static void test_verify_signature(void **state)
{
	const char *body = "{\"id\":\"evt_1\",\"object\":\"event\"}";
	struct tx t = {0};
	char hdr[512];
	const uint8_t *b = (const uint8_t *)body;
	size_t n = strlen(body);

	tx_sign(&t, TEST_SECRET, T0, body);
	assert_int_equal(webhook_verify_signature(t.sig, b, n, TEST_SECRET, T0, 300), 0);
	assert_int_equal(webhook_verify_signature(t.sig, b, n, TEST_SECRET, T0 + 300, 300), 0);
	assert_int_equal(webhook_verify_signature(t.sig, b, n, TEST_SECRET, T0 + 301, 300),
			 -ETIMEDOUT);
	assert_int_equal(webhook_verify_signature(t.sig, b, n, TEST_SECRET, T0 - 301, 300),
			 -ETIMEDOUT);
	assert_int_equal(webhook_verify_signature(t.sig, b, n, "whsec_other", T0, 300), -EPERM);
	assert_int_equal(webhook_verify_signature(t.sig, b, n - 1, TEST_SECRET, T0, 300), -EPERM);
	assert_int_equal(webhook_verify_signature("garbage", b, n, TEST_SECRET, T0, 300), -EINVAL);
	assert_int_equal(webhook_verify_signature("t=abc,v1=00", b, n, TEST_SECRET, T0, 300),
			 -EINVAL);
	assert_int_equal(webhook_verify_signature(NULL, b, n, TEST_SECRET, T0, 300), -EINVAL);
	/* Secret rotation: Stripe sends one v1 per secret; any match verifies. */
	snprintf(hdr, sizeof(hdr), "t=%lld,v1=%064d,%s", (long long)T0, 7, strchr(t.sig, ',') + 1);
	assert_int_equal(webhook_verify_signature(hdr, b, n, TEST_SECRET, T0, 300), 0);
	/* The v0 signature alone is not accepted. */
	snprintf(hdr, sizeof(hdr), "t=%lld,v0=%.64s", (long long)T0, strstr(t.sig, "v1=") + 3);
	assert_int_equal(webhook_verify_signature(hdr, b, n, TEST_SECRET, T0, 300), -EINVAL);
	/* Upper-case hex is the same signature. */
	{
		char up[256];

		snprintf(up, sizeof(up), "%s", t.sig);
		for (char *p = strstr(up, "v1=") + 3; *p && *p != ','; p++)
			*p = (char)toupper((unsigned char)*p);
		assert_int_equal(webhook_verify_signature(up, b, n, TEST_SECRET, T0, 300), 0);
	}
}

static void test_duplicate_counted_once(void **state)
{
	struct env *e = *state;

	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0, T0, 200);
	/* Stripe redelivers with a fresh timestamp and signature. */
	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0 + 600, T0 + 601, 200);
	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0 + 900, T0 + 900, 204);
	assert_true(mval(e->reg, EVENTS, L("payment_intent.succeeded", "processed")) == 1);
	assert_true(mval(e->reg, EVENTS, L("payment_intent.succeeded", "duplicate")) == 2);
	assert_true(mval(e->reg, ATTEMPTS, L("succeeded", "USD")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
}

static void test_forged_rejected(void **state)
{
	struct env *e = *state;

	deliver(e, "evt_pi_succeeded.json", "whsec_attacker", T0, T0, 200);
	assert_true(mval(e->reg, EVENTS, L("payment_intent.succeeded", "rejected")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);
	/* A forgery must not poison dedup: the genuine delivery is still processed. */
	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0, T0, 200);
	assert_true(mval(e->reg, EVENTS, L("payment_intent.succeeded", "processed")) == 1);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
}

static void test_stale_rejected(void **state)
{
	struct env *e = *state;

	/* A replay of a captured delivery 10 minutes later. */
	deliver(e, "evt_dispute_created.json", TEST_SECRET, T0, T0 + 600, 200);
	assert_true(mval(e->reg, EVENTS, L("charge.dispute.created", "rejected")) == 1);
	assert_true(mval(e->reg, "direct_fan_disputes_total", NULL) == 0);
}

static void test_app_refusal_counts_rejected_not_processed(void **state)
{
	struct env *e = *state;

	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0, T0, 500);
	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0, T0, 400);
	/* Each refusal is visible; nothing of the event is interpreted. */
	assert_true(mval(e->reg, EVENTS, L("payment_intent.succeeded", "rejected")) == 2);
	assert_true(msum(e->reg, EVENTS, NULL) == 2);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);
	/* Stripe retries; the first accepted delivery is processed, not a duplicate. */
	deliver(e, "evt_pi_succeeded.json", TEST_SECRET, T0 + 60, T0 + 60, 200);
	assert_true(mval(e->reg, EVENTS, L("payment_intent.succeeded", "processed")) == 1);
	assert_true(msum(e->reg, EVENTS, NULL) == 3);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 1);
}

static void test_no_secret_accepts(void **state)
{
	struct env *e = *state;

	deliver(e, "evt_refund_jpy.json", NULL, T0, T0, 200);
	assert_true(mval(e->reg, EVENTS, L("refund.created", "processed")) == 1);
	assert_true(mval(e->reg, "direct_fan_refund_amount_total", L("JPY")) == 3000);
}

static void test_unknown_type_and_garbage(void **state)
{
	struct env *e = *state;
	struct tx t;

	tx_webhook(&t, "/hooks",
		   strdup("{\"id\":\"evt_9\",\"object\":\"event\",\"type\":"
			  "\"fan.secret.user_12345@example.com\",\"data\":{}}"),
		   TEST_SECRET, T0, 200);
	stripe_semantics_on_exchange(e->s, &t.ex, T0);
	tx_free(&t);
	assert_true(mval(e->reg, EVENTS, L("other", "processed")) == 1);

	tx_webhook(&t, "/hooks", strdup("not json at all"), TEST_SECRET, T0, 200);
	stripe_semantics_on_exchange(e->s, &t.ex, T0);
	tx_free(&t);
	assert_true(mval(e->reg, EVENTS, L("other", "rejected")) == 1);
}

static void test_not_a_webhook(void **state)
{
	struct env *e = *state;
	struct tx t;

	/* GET with the header, and a client-role POST with it: neither is a delivery. */
	tx_webhook(&t, "/hooks", fixture_load("evt_pi_succeeded.json"), TEST_SECRET, T0, 200);
	snprintf(t.ex.method, sizeof(t.ex.method), "GET");
	stripe_semantics_on_exchange(e->s, &t.ex, T0);
	tx_free(&t);
	tx_webhook(&t, "/hooks", fixture_load("evt_pi_succeeded.json"), TEST_SECRET, T0, 200);
	t.ex.role = HTTP_ROLE_CLIENT;
	stripe_semantics_on_exchange(e->s, &t.ex, T0);
	tx_free(&t);
	/* A POST without Stripe-Signature. */
	tx_webhook(&t, "/hooks", fixture_load("evt_pi_succeeded.json"), TEST_SECRET, T0, 200);
	t.ex.req.headers[4].name = "X-Other";
	stripe_semantics_on_exchange(e->s, &t.ex, T0);
	tx_free(&t);
	assert_true(msum(e->reg, EVENTS, NULL) == 0);
	assert_true(msum(e->reg, ATTEMPTS, NULL) == 0);
}

static void deliver_customer_event(struct env *e, int i)
{
	char *body = NULL;
	struct tx t;

	assert_true(asprintf(&body,
			     "{\"id\":\"evt_%d\",\"type\":\"customer.updated\","
			     "\"data\":{\"object\":{\"object\":\"customer\"}}}",
			     i) > 0);
	tx_webhook(&t, "/hooks", body, NULL, T0, 200);
	stripe_semantics_on_exchange(e->s, &t.ex, T0);
	tx_free(&t);
}

static int setup_small_nosecret(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct stripe_config cfg = {.max_tracked = 64};

	if (!e || stripe_pipeline_init(&e->p, NULL, &cfg))
		return -1;
	e->reg = e->p.reg;
	e->s = e->p.s;
	*state = e;
	return 0;
}

/* The dedupe table keeps max_tracked (64 here) event ids, the most recent: a redelivery of the
 * 64th most recent is a duplicate, of the 65th it is processed again, because that id is gone.
 * An unbounded table would call both duplicates. */
static void test_dedup_table_bounded(void **state)
{
	struct env *e = *state;

	for (int i = 0; i < 1000; i++)
		deliver_customer_event(e, i);
	assert_true(mval(e->reg, EVENTS, L("customer.updated", "processed")) == 1000);
	deliver_customer_event(e, 1000 - 64); /* still remembered, now the most recent */
	assert_true(mval(e->reg, EVENTS, L("customer.updated", "duplicate")) == 1);
	deliver_customer_event(e, 1000 - 65); /* forgotten: processed again */
	assert_true(mval(e->reg, EVENTS, L("customer.updated", "processed")) == 1001);
	deliver_customer_event(e, 0);
	assert_true(mval(e->reg, EVENTS, L("customer.updated", "processed")) == 1002);
	assert_true(mval(e->reg, EVENTS, L("customer.updated", "duplicate")) == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_signature),
	    cmocka_unit_test_setup_teardown(test_duplicate_counted_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_app_refusal_counts_rejected_not_processed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_secret_accepts, setup_nosecret, teardown),
	    cmocka_unit_test_setup_teardown(test_unknown_type_and_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_a_webhook, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dedup_table_bounded, setup_small_nosecret, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
