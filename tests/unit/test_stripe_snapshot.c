// SPDX-License-Identifier: MIT
/*
 * The Stripe stage across a restart: a snapshot restored into a fresh stage with the same id key
 * brings back MRR, pending attempts and dedupe (a webhook redelivered after the restart counts
 * once), holds no Stripe id as text, and a damaged snapshot is refused whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/stripe.h"
#include "stripe_test_util.h"

#define ATTEMPTS "direct_fan_payment_attempts_total"
#define MRR	 "direct_fan_subscription_revenue"
#define PENDING	 "direct_fan_payments_pending"
#define REFUNDS	 "direct_fan_refunds_total"

static const uint8_t key_a[STRIPE_ID_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const uint8_t key_b[STRIPE_ID_KEY_LEN] = "fedcba9876543210fedcba9876543210";

static void start(struct stripe_pipeline *p, const uint8_t *key)
{
	struct stripe_config cfg = {.webhook_secret = TEST_SECRET, .id_key = key};

	assert_int_equal(stripe_pipeline_init(p, NULL, &cfg), 0);
}

static void feed(struct stripe_pipeline *p, struct tx *t, time_t now)
{
	stripe_semantics_on_exchange(p->s, &t->ex, now);
	tx_free(t);
}

static void webhook(struct stripe_pipeline *p, const char *fixture, time_t now)
{
	struct tx t;

	tx_webhook(&t, "/api/webhooks/stripe", fixture_load(fixture), TEST_SECRET, now, 200);
	feed(p, &t, now);
}

static void api(struct stripe_pipeline *p, const char *method, const char *target, const char *req,
		const char *fixture, const char *idem)
{
	struct tx t;

	tx_api(&t, method, target, 200, req, fixture_load(fixture));
	if (idem)
		tx_header(&t.ex.req, "Idempotency-Key", idem);
	feed(p, &t, T0);
}

/* A yearly subscription (MRR 10 USD), a 3-D Secure payment left pending (EUR), a paid intent
 * by webhook and a JPY refund by webhook. */
static void before_restart(struct stripe_pipeline *p)
{
	api(p, "POST", "/v1/subscriptions",
	    "customer=cus_QXg1o8vcGmoR32&items%5B0%5D%5Bprice%5D=price_Yearly",
	    "sub_yearly_active.json", "k1");
	api(p, "POST", "/v1/payment_intents/pi_3Secure3DS9x8y7/confirm", NULL,
	    "pi_requires_action.json", "k2");
	webhook(p, "evt_pi_succeeded.json", T0 + 1);
	webhook(p, "evt_refund_jpy.json", T0 + 2);
	assert_true(mval(p->reg, MRR, L("USD")) == 10.0);
	assert_true(mval(p->reg, PENDING, L("requires_action", "EUR")) == 1);
	assert_true(mval(p->reg, ATTEMPTS, L("succeeded", "USD")) == 1);
}

static void snapshot(struct stripe_pipeline *p, void **data, size_t *len)
{
	assert_int_equal(stripe_semantics_snapshot(p->s, data, len), 0);
	assert_non_null(*data);
}

static void test_restored_stage_remembers(void **state)
{
	struct stripe_pipeline a, b;
	struct stripe_stats st;
	void *data;
	size_t len;

	(void)state;
	start(&a, key_a);
	before_restart(&a);
	snapshot(&a, &data, &len);
	stripe_pipeline_fini(&a);

	start(&b, key_a);
	assert_int_equal(stripe_semantics_restore(b.s, data, len), 0);
	/* The gauges are back before any traffic. */
	assert_true(mval(b.reg, MRR, L("USD")) == 10.0);
	assert_true(mval(b.reg, PENDING, L("requires_action", "EUR")) == 1);
	stripe_semantics_get_stats(b.s, &st);
	assert_int_equal(st.pending, 1);
	assert_int_equal(st.subscriptions, 1);
	/* Redeliveries after the restart count once (the counters themselves resume from the
	 * state store; here the fresh registry starts at 0 and must stay there). */
	webhook(&b, "evt_pi_succeeded.json", T0 + 600);
	webhook(&b, "evt_refund_jpy.json", T0 + 601);
	assert_true(msum(b.reg, ATTEMPTS, NULL) == 0);
	assert_true(msum(b.reg, REFUNDS, NULL) == 0);
	/* The pending attempt resolves once, and leaves the gauge. */
	api(&b, "GET", "/v1/payment_intents/pi_3Secure3DS9x8y7", NULL, "pi_3ds_succeeded.json",
	    NULL);
	assert_true(mval(b.reg, ATTEMPTS, L("succeeded", "EUR")) == 1);
	assert_true(mval(b.reg, PENDING, L("requires_action", "EUR")) == 0);
	/* The subscription created before the restart is canceled after it: MRR goes to 0. */
	webhook(&b, "evt_sub_deleted.json", T0 + 700);
	assert_true(mval(b.reg, "direct_fan_subscriptions_canceled_total", NULL) == 1);
	assert_true(mval(b.reg, MRR, L("USD")) == 0);
	stripe_pipeline_fini(&b);
	free(data);
}

static void test_snapshot_holds_no_ids(void **state)
{
	static const char *const ids[] = {"sub_1YearlyPlan00001",
					  "pi_3Secure3DS9x8y7",
					  "evt_3SucceededA1b2C3",
					  "pi_3SucceededA1b2C3",
					  "ch_3SucceededA1b2C3",
					  "re_3RefundJpy00001",
					  "evt_3RefundJpy00001",
					  "k1",
					  "k2",
					  "idem-a",
					  "cus_"};
	struct stripe_pipeline a;
	void *data;
	size_t len;

	(void)state;
	start(&a, key_a);
	before_restart(&a);
	snapshot(&a, &data, &len);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
		assert_null(memmem(data, len, ids[i], strlen(ids[i])));
	/* 16 bytes of digest per id remembered, plus the values and headers: small. */
	assert_true(len < 1024);
	stripe_pipeline_fini(&a);
	free(data);
}

/* Under another key the digests mean nothing: the values come back (MRR), the ids do not
 * match, so a redelivery counts again. What keeps the key stable is the user salt. */
static void test_other_key_matches_nothing(void **state)
{
	struct stripe_pipeline a, b;
	void *data;
	size_t len;

	(void)state;
	start(&a, key_a);
	before_restart(&a);
	snapshot(&a, &data, &len);
	stripe_pipeline_fini(&a);
	start(&b, key_b);
	assert_int_equal(stripe_semantics_restore(b.s, data, len), 0);
	assert_true(mval(b.reg, MRR, L("USD")) == 10.0);
	webhook(&b, "evt_pi_succeeded.json", T0 + 600);
	assert_true(mval(b.reg, ATTEMPTS, L("succeeded", "USD")) == 1);
	stripe_pipeline_fini(&b);
	free(data);
}

static void test_damaged_snapshot_refused_whole(void **state)
{
	struct stripe_pipeline a, b;
	uint8_t *data;
	size_t len;

	(void)state;
	start(&a, key_a);
	before_restart(&a);
	snapshot(&a, (void **)&data, &len);
	stripe_pipeline_fini(&a);

	start(&b, key_a);
	assert_int_equal(stripe_semantics_restore(b.s, data, len - 1), -EPROTO);
	assert_int_equal(stripe_semantics_restore(b.s, data, 3), -EPROTO);
	data[0] ^= 1;
	assert_int_equal(stripe_semantics_restore(b.s, data, len), -EPROTO);
	data[0] ^= 1;
	data[4] = 99; /* another version */
	assert_int_equal(stripe_semantics_restore(b.s, data, len), -EPROTO);
	/* Nothing was imported: the subscription is unknown, the redelivery counts. */
	assert_true(mval(b.reg, MRR, L("USD")) == 0);
	webhook(&b, "evt_pi_succeeded.json", T0 + 600);
	assert_true(mval(b.reg, ATTEMPTS, L("succeeded", "USD")) == 1);
	stripe_pipeline_fini(&b);
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restored_stage_remembers),
	    cmocka_unit_test(test_snapshot_holds_no_ids),
	    cmocka_unit_test(test_other_key_matches_nothing),
	    cmocka_unit_test(test_damaged_snapshot_refused_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
