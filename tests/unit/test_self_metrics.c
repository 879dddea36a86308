// SPDX-License-Identifier: MIT
/*
 * bizprobe's own metrics: every loss the stages count reaches a series, with the exact value the
 * test put into the statistics (or made a real stage count), and every series exists at zero
 * before anything happened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/self_metrics.h"
#include "stripe_test_util.h"

static double value(struct metrics_registry *reg, const char *name, const char *label)
{
	struct metrics_family *f = metrics_registry_find(reg, name);
	const char *l[] = {label};
	double v = -1;

	assert_non_null(f);
	assert_int_equal(metrics_get(f, label ? l : NULL, &v), 0);
	return v;
}

static void test_zero_series_then_deltas(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct self_metrics *m = self_metrics_new(reg);
	struct capture_stats c = {0};
	struct http_tracker_stats h = {0};
	char *text = NULL;
	size_t len;

	assert_non_null(m);
	/* Before the first update every loss reads 0, not "absent". */
	assert_true(value(reg, "bizprobe_events_lost_total", "discarded") == 0);
	assert_true(value(reg, "bizprobe_events_lost_total", "malformed_record") == 0);
	assert_true(value(reg, "bizprobe_http_exchanges_dropped_total", "memory") == 0);
	assert_true(value(reg, "bizprobe_http_memory_bytes", NULL) == 0);
	assert_true(value(reg, "bizprobe_stripe_parse_errors_total", NULL) == 0);
	assert_true(value(reg, "bizprobe_stripe_subscriptions_evicted_total", NULL) == 0);

	c.kernel[BP_STAT_DISCARDED] = 3;
	c.malformed_records = 2;
	h.dropped[HTTP_DROP_MEMORY] = 7;
	h.dropped[HTTP_DROP_CONN_LIMIT] = 1;
	h.dropped[HTTP_DROP_PIPELINE] = 4;
	h.dropped[HTTP_DROP_PARSE_ERROR] = 5;
	h.dropped[HTTP_DROP_OUT_OF_MEMORY] = 6;
	h.evicted_memory = 9;
	h.memory_refused = 11;
	h.alloc_failed = 12;
	h.memory_bytes = 1000;
	h.memory_peak_bytes = 5000;
	h.memory_limit_bytes = 8192;
	h.connections = 13;
	self_metrics_update(m, &c, &h);
	/* Counters advance by the difference: the second update adds only what is new. */
	c.kernel[BP_STAT_DISCARDED] = 4;
	h.dropped[HTTP_DROP_MEMORY] = 10;
	h.memory_bytes = 600; /* a gauge goes down too */
	self_metrics_update(m, &c, &h);
	assert_true(value(reg, "bizprobe_events_lost_total", "discarded") == 4);
	assert_true(value(reg, "bizprobe_events_lost_total", "malformed_record") == 2);
	assert_true(value(reg, "bizprobe_http_exchanges_dropped_total", "memory") == 10);
	assert_true(value(reg, "bizprobe_http_exchanges_dropped_total", "conn_limit") == 1);
	assert_true(value(reg, "bizprobe_http_exchanges_dropped_total", "pipeline_full") == 4);
	assert_true(value(reg, "bizprobe_http_exchanges_dropped_total", "parse_error") == 5);
	assert_true(value(reg, "bizprobe_http_exchanges_dropped_total", "out_of_memory") == 6);
	assert_true(value(reg, "bizprobe_http_memory_evicted_connections_total", NULL) == 9);
	assert_true(value(reg, "bizprobe_http_memory_refused_total", NULL) == 11);
	assert_true(value(reg, "bizprobe_http_alloc_failures_total", NULL) == 12);
	assert_true(value(reg, "bizprobe_http_memory_bytes", NULL) == 600);
	assert_true(value(reg, "bizprobe_http_memory_peak_bytes", NULL) == 5000);
	assert_true(value(reg, "bizprobe_http_memory_limit_bytes", NULL) == 8192);
	assert_true(value(reg, "bizprobe_http_connections", NULL) == 13);

	assert_int_equal(prom_render(reg, &text, &len), 0);
	assert_non_null(strstr(text, "# TYPE bizprobe_http_memory_bytes gauge\n"
				     "bizprobe_http_memory_bytes 600\n"));
	assert_non_null(strstr(text, "bizprobe_http_exchanges_dropped_total{cause=\"memory\"} 10\n"));
	free(text);
	self_metrics_free(m);
	metrics_registry_free(reg);
}

/* A Stripe body that is whole but not JSON: the semantics count it, the metric shows it. */
static void test_stripe_parse_error_exported(void **state)
{
	struct stripe_pipeline p;
	struct self_metrics *m;
	struct stripe_stats st;
	struct tx t;

	assert_int_equal(stripe_pipeline_init(&p, NULL, NULL), 0);
	m = self_metrics_new(p.reg);
	tx_api(&t, "POST", "/v1/payment_intents", 200, "amount=100&currency=usd",
	       strdup("{\"id\": \"pi_1\", \"object\": \"payment_intent\", \"amount\": "));
	stripe_semantics_on_exchange(p.s, &t.ex, T0);
	tx_free(&t);
	stripe_semantics_get_stats(p.s, &st);
	assert_int_equal(st.parse_errors, 1);
	self_metrics_update_stripe(m, &st);
	self_metrics_update_stripe(m, &st); /* the same totals again add nothing */
	assert_true(value(p.reg, "bizprobe_stripe_parse_errors_total", NULL) == 1);
	self_metrics_free(m);
	stripe_pipeline_fini(&p);
}

/* Node mode: the dropped counter from the start, per-target families that follow a growing
 * table of targets, counters by their deltas. */
static void test_node_targets(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct self_metrics *m = self_metrics_new(reg);
	static const char *const names[] = {"namespace", "workload"};
	static const char *const web[] = {"shop", "web"}, *const db[] = {"data", "db"};
	struct self_target t[2] = {{web, 2, 5}, {db, 1, 0}};
	struct metrics_family *f;
	double v;

	assert_int_equal(self_metrics_node_register(m, reg, names, 2, 4), 0);
	assert_true(value(reg, "bizprobe_node_processes_dropped_total", NULL) == 0);
	self_metrics_update_node(m, 0, t, 1);
	self_metrics_update_node(m, 0, t, 1); /* no change: no double count */
	t[0].exchanges = 9;
	t[0].processes = 1;
	self_metrics_update_node(m, 1, t, 2);
	assert_true(value(reg, "bizprobe_node_processes_dropped_total", NULL) == 1);
	f = metrics_registry_find(reg, "bizprobe_target_exchanges_total");
	assert_int_equal(metrics_get(f, web, &v), 0);
	assert_true(v == 9);
	assert_int_equal(metrics_get(f, db, &v), 0);
	assert_true(v == 0);
	f = metrics_registry_find(reg, "bizprobe_target_traced_processes");
	assert_int_equal(metrics_get(f, web, &v), 0);
	assert_true(v == 1);
	assert_int_equal(metrics_get(f, db, &v), 0);
	assert_true(v == 1);
	self_metrics_free(m);
	metrics_registry_free(reg);
	/* Without --k8s-labels: the dropped counter only. */
	reg = metrics_registry_new();
	m = self_metrics_new(reg);
	assert_int_equal(self_metrics_node_register(m, reg, NULL, 0, 0), 0);
	self_metrics_update_node(m, 3, NULL, 0);
	assert_true(value(reg, "bizprobe_node_processes_dropped_total", NULL) == 3);
	assert_null(metrics_registry_find(reg, "bizprobe_target_exchanges_total"));
	self_metrics_free(m);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zero_series_then_deltas),
	    cmocka_unit_test(test_stripe_parse_error_exported),
	    cmocka_unit_test(test_node_targets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
