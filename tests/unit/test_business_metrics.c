// SPDX-License-Identifier: MIT
/*
 * The metrics stage's consumer of business events: each kind moves exactly its families,
 * business_events_total counts the business ones by name, rule metrics are registered on first
 * use and refused when they would take over a family of another shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/business_event.h"
#include "stripe_test_util.h"

struct env {
	struct metrics_registry *reg;
	struct business_metrics *bm;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct business_metrics_config cfg = {.namespace = "shop"};

	e->reg = metrics_registry_new();
	e->bm = business_metrics_new(e->reg, &cfg);
	*state = e;
	return e->bm ? 0 : -1;
}

static int teardown(void **state)
{
	struct env *e = *state;

	business_metrics_free(e->bm);
	metrics_registry_free(e->reg);
	free(e);
	return 0;
}

static void emit(struct env *e, enum biz_event_kind kind, const char *name,
		 const char *const *names, const char *const *values, unsigned n, bool has_value,
		 double value, const struct biz_metric_spec *spec)
{
	struct business_event ev = {
	    .kind = kind, .name = name, .metric = spec, .has_value = has_value, .value = value};

	for (unsigned i = 0; i < n; i++)
		ev.labels[ev.n_labels++] = (struct biz_label){names[i], values[i]};
	business_metrics_on_event(&ev, e->bm);
}

static const char *const attempt_names[] = {"status", "currency", "code", "decline_code"};

static void test_payment_attempts_move_their_families(void **state)
{
	struct env *e = *state;

	emit(e, BIZ_PAYMENT_ATTEMPT, "payment_succeeded", attempt_names,
	     L("succeeded", "USD", "", ""), 4, true, 12.5, NULL);
	emit(e, BIZ_PAYMENT_ATTEMPT, "payment_succeeded", attempt_names,
	     L("succeeded", "USD", "", ""), 4, true, 7.5, NULL);
	emit(e, BIZ_PAYMENT_ATTEMPT, "payment_failed", attempt_names,
	     L("failed", "EUR", "card_declined", "insufficient_funds"), 4, false, 0, NULL);
	/* A late success: money in, no second attempt, no business event. */
	emit(e, BIZ_PAYMENT_LATE_SUCCESS, NULL, attempt_names + 1, L("USD"), 1, true, 30, NULL);

	assert_true(mval(e->reg, "shop_payment_attempts_total", L("succeeded", "USD")) == 2);
	assert_true(mval(e->reg, "shop_payment_attempts_total", L("failed", "EUR")) == 1);
	assert_true(msum(e->reg, "shop_payment_attempts_total", NULL) == 3);
	assert_true(mval(e->reg, "shop_payment_failures_total",
			 L("card_declined", "insufficient_funds")) == 1);
	assert_true(mcount(e->reg, "shop_payment_amounts", L("USD")) == 3);
	assert_true(mval(e->reg, "shop_payment_amounts", L("USD")) == 50);
	assert_true(mval(e->reg, "business_events_total", L("payment_succeeded")) == 2);
	assert_true(mval(e->reg, "business_events_total", L("payment_failed")) == 1);
	assert_true(msum(e->reg, "business_events_total", NULL) == 3);
}

static void test_technical_observations_are_not_business_events(void **state)
{
	struct env *e = *state;
	static const char *const api[] = {"endpoint", "method", "code"};
	static const char *const hook[] = {"type", "outcome"};

	emit(e, BIZ_STRIPE_API_REQUEST, NULL, api, L("/v1/charges", "POST", "200"), 3, true, 0.2,
	     NULL);
	emit(e, BIZ_WEBHOOK_DELIVERY, NULL, hook, L("charge.refunded", "processed"), 2, false, 0,
	     NULL);
	emit(e, BIZ_MRR, NULL, attempt_names + 1, L("USD"), 1, true, 99.5, NULL);
	emit(e, BIZ_SUBSCRIPTION_CREATED, "subscription_created", attempt_names + 1, L("USD"), 1,
	     false, 0, NULL);

	assert_true(mval(e->reg, "shop_stripe_api_requests_total", L("/v1/charges", "POST", "200")) ==
		    1);
	assert_true(mcount(e->reg, "shop_stripe_api_request_duration_seconds", L("/v1/charges")) ==
		    1);
	assert_true(mval(e->reg, "shop_webhook_events_total", L("charge.refunded", "processed")) ==
		    1);
	assert_true(mval(e->reg, "shop_subscription_revenue", L("USD")) == 99.5);
	assert_true(mval(e->reg, "shop_subscriptions_created_total", NULL) == 1);
	/* Only the subscription is a business event. */
	assert_true(msum(e->reg, "business_events_total", NULL) == 1);
	assert_true(mval(e->reg, "business_events_total", L("subscription_created")) == 1);
}

static void test_rule_metrics_registered_on_first_use(void **state)
{
	struct env *e = *state;
	static const char *const labels[] = {"content_type"};
	static const double buckets[] = {1, 10, 100};
	struct biz_metric_spec views = {.name = "shop_content_views_total",
					.type = METRICS_COUNTER,
					.label_names = labels,
					.n_labels = 1};
	struct biz_metric_spec engagement = {.name = "shop_engagement_seconds",
					     .type = METRICS_HISTOGRAM,
					     .buckets = buckets,
					     .n_buckets = 3};
	/* The same name declared again by a reloaded rule (another spec, same shape). */
	struct biz_metric_spec views_again = views;

	assert_null(metrics_registry_find(e->reg, "shop_content_views_total"));
	emit(e, BIZ_RULE_EVENT, "content_view", labels, L("video"), 1, false, 0, &views);
	emit(e, BIZ_RULE_EVENT, "content_view", labels, L("video"), 1, false, 0, &views);
	emit(e, BIZ_RULE_EVENT, "content_view", labels, L("audio"), 1, false, 0, &views_again);
	emit(e, BIZ_RULE_EVENT, "content_engagement", NULL, NULL, 0, true, 42, &engagement);
	emit(e, BIZ_RULE_EVENT, "content_engagement", NULL, NULL, 0, false, 0, &engagement);
	/* An event without a metric is only counted. */
	emit(e, BIZ_RULE_EVENT, "login", NULL, NULL, 0, false, 0, NULL);

	assert_true(mval(e->reg, "shop_content_views_total", L("video")) == 2);
	assert_true(mval(e->reg, "shop_content_views_total", L("audio")) == 1);
	assert_true(mcount(e->reg, "shop_engagement_seconds", NULL) == 1);
	assert_true(mval(e->reg, "shop_engagement_seconds", NULL) == 42);
	assert_true(mval(e->reg, "business_events_total", L("content_view")) == 3);
	assert_true(mval(e->reg, "business_events_total", L("content_engagement")) == 2);
	assert_true(mval(e->reg, "business_events_total", L("login")) == 1);
	assert_int_equal(business_metrics_rejected(e->bm), 0);
}

static void test_rule_metric_clashing_with_a_family_is_rejected(void **state)
{
	struct env *e = *state;
	static const char *const labels[] = {"plan"};
	/* A rule may not take over a Stripe family, nor redeclare its own with other labels. */
	struct biz_metric_spec stripe_name = {.name = "shop_payment_attempts_total",
					      .type = METRICS_COUNTER,
					      .label_names = labels,
					      .n_labels = 1};
	struct biz_metric_spec mine = {.name = "shop_signups_total", .type = METRICS_COUNTER};
	struct biz_metric_spec mine_relabelled = {.name = "shop_signups_total",
						  .type = METRICS_COUNTER,
						  .label_names = labels,
						  .n_labels = 1};

	emit(e, BIZ_RULE_EVENT, "signup", labels, L("pro"), 1, false, 0, &stripe_name);
	emit(e, BIZ_RULE_EVENT, "signup", NULL, NULL, 0, false, 0, &mine);
	emit(e, BIZ_RULE_EVENT, "signup", labels, L("pro"), 1, false, 0, &mine_relabelled);

	assert_int_equal(business_metrics_rejected(e->bm), 2);
	assert_true(msum(e->reg, "shop_payment_attempts_total", NULL) == 0);
	assert_true(mval(e->reg, "shop_signups_total", NULL) == 1);
	/* Still counted as business events: the event happened, only its metric was refused. */
	assert_true(mval(e->reg, "business_events_total", L("signup")) == 3);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = strstr(text, line); p; p = strstr(p + 1, line))
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void emit_from(struct env *e, const struct biz_target *t, enum biz_event_kind kind,
		      const char *name, const char *const *names, const char *const *values,
		      unsigned n, double value, const struct biz_metric_spec *spec)
{
	struct business_event ev = {.kind = kind,
				    .name = name,
				    .metric = spec,
				    .has_value = true,
				    .value = value,
				    .target = t};

	for (unsigned i = 0; i < n; i++)
		ev.labels[ev.n_labels++] = (struct biz_label){names[i], values[i]};
	business_metrics_on_event(&ev, e->bm);
}

/* --k8s-labels namespace,workload: every counter and histogram gets the event's target after
 * its own labels ("unknown" without one), the gauges do not, the series cap still holds. */
static void test_target_labels(void **state)
{
	struct business_metrics_config cfg = {.namespace = "shop",
					      .max_label_values = 4,
					      .label_namespace = true,
					      .label_workload = true};
	struct env e = {.reg = metrics_registry_new()};
	static const struct biz_target web = {"shop", "web"}, worker = {"shop", "worker"};
	static const char *const plan[] = {"user_type"};
	static const char *const clash[] = {"namespace"};
	static const char *const sentry_names[] = {"type", "level", "outcome", "reason"};
	struct biz_metric_spec regs = {.name = "shop_user_registrations_total",
				       .type = METRICS_COUNTER,
				       .label_names = plan,
				       .n_labels = 1};
	struct biz_metric_spec taken = {.name = "shop_taken_total",
					.type = METRICS_COUNTER,
					.label_names = clash,
					.n_labels = 1};
	char *text = NULL;
	size_t len;

	e.bm = business_metrics_new(e.reg, &cfg);
	assert_non_null(e.bm);
	emit_from(&e, &web, BIZ_PAYMENT_ATTEMPT, "payment_succeeded", attempt_names,
		  L("succeeded", "USD", "", ""), 4, 12.5, NULL);
	emit_from(&e, &worker, BIZ_PAYMENT_ATTEMPT, "payment_succeeded", attempt_names,
		  L("succeeded", "USD", "", ""), 4, 7.5, NULL);
	emit_from(&e, NULL, BIZ_SUBSCRIPTION_CREATED, "subscription_created", attempt_names + 1,
		  L("USD"), 1, 0, NULL);
	emit_from(&e, &web, BIZ_MRR, NULL, attempt_names + 1, L("USD"), 1, 99.5, NULL);
	for (int i = 0; i < 3; i++)
		emit_from(&e, &web, BIZ_RULE_EVENT, "registration", plan, L("pro"), 1, 0, &regs);
	emit_from(&e, &worker, BIZ_RULE_EVENT, "registration", plan, L("free"), 1, 0, &regs);
	emit_from(&e, &worker, BIZ_RULE_EVENT, "registration", plan, L("plus"), 1, 0, &regs);
	/* Over the cap (4 series, the overflow one included): folded into "other". */
	emit_from(&e, &web, BIZ_RULE_EVENT, "registration", plan, L("free"), 1, 0, &regs);
	/* A rule label that is a target label's name cannot have both: refused. */
	emit_from(&e, &web, BIZ_RULE_EVENT, "taken", clash, L("x"), 1, 0, &taken);

	assert_int_equal(prom_render(e.reg, &text, &len), 0);
	assert_true(has_line(text, "shop_payment_attempts_total{status=\"succeeded\","
				   "currency=\"USD\",namespace=\"shop\",workload=\"web\"} 1"));
	assert_true(has_line(text, "shop_payment_attempts_total{status=\"succeeded\","
				   "currency=\"USD\",namespace=\"shop\",workload=\"worker\"} 1"));
	assert_true(has_line(text, "shop_payment_amounts_sum{currency=\"USD\",namespace=\"shop\","
				   "workload=\"worker\"} 7.5"));
	assert_true(has_line(text, "shop_subscriptions_created_total{namespace=\"unknown\","
				   "workload=\"unknown\"} 1"));
	assert_true(has_line(text, "shop_subscription_revenue{currency=\"USD\"} 99.5"));
	assert_true(has_line(text, "business_events_total{event=\"payment_succeeded\","
				   "namespace=\"shop\",workload=\"web\"} 1"));
	/* Three series and the overflow: the 6 registrations and the refused rule's event. */
	assert_true(has_line(text, "business_events_total{event=\"subscription_created\","
				   "namespace=\"unknown\",workload=\"unknown\"} 1"));
	assert_true(has_line(text, "business_events_total{event=\"other\",namespace=\"other\","
				   "workload=\"other\"} 7"));
	assert_true(has_line(text, "shop_user_registrations_total{user_type=\"pro\","
				   "namespace=\"shop\",workload=\"web\"} 3"));
	assert_true(has_line(text, "shop_user_registrations_total{user_type=\"free\","
				   "namespace=\"shop\",workload=\"worker\"} 1"));
	assert_true(has_line(text, "shop_user_registrations_total{user_type=\"plus\","
				   "namespace=\"shop\",workload=\"worker\"} 1"));
	assert_true(has_line(text, "shop_user_registrations_total{user_type=\"other\","
				   "namespace=\"other\",workload=\"other\"} 1"));
	assert_true(msum(e.reg, "shop_user_registrations_total", NULL) == 6);
	assert_null(metrics_registry_find(e.reg, "shop_taken_total"));
	assert_int_equal(business_metrics_rejected(e.bm), 1);
	/* No Sentry item from any target yet: no level series. */
	assert_null(strstr(text, "sentry_errors_total{"));
	free(text);
	/* Its first item makes the target's alert-watched levels, at 0 but the one reported. */
	emit_from(&e, &web, BIZ_SENTRY_ITEM, NULL, sentry_names, L("event", "error", "accepted", ""),
		  4, 0, NULL);
	assert_int_equal(prom_render(e.reg, &text, &len), 0);
	assert_true(has_line(text, "sentry_errors_total{level=\"error\",namespace=\"shop\","
				   "workload=\"web\"} 1"));
	assert_true(has_line(text, "sentry_errors_total{level=\"fatal\",namespace=\"shop\","
				   "workload=\"web\"} 0"));
	assert_null(strstr(text, "sentry_errors_total{level=\"fatal\",namespace=\"shop\","
				 "workload=\"worker\"}"));
	free(text);
	business_metrics_free(e.bm);
	metrics_registry_free(e.reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_payment_attempts_move_their_families, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_technical_observations_are_not_business_events,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rule_metrics_registered_on_first_use, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_rule_metric_clashing_with_a_family_is_rejected,
					    setup, teardown),
	    cmocka_unit_test(test_target_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
