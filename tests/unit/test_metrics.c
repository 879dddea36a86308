// SPDX-License-Identifier: MIT
/* Metrics registry: validation, exact values, the series cap, collectors, thread safety and the
 * process_* metrics. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/metrics.h"

static const char *const one_label[] = {"code"};

static void test_validation(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	static const char *const dup[] = {"a", "a"};
	static const char *const le[] = {"le"};
	static const char *const reserved[] = {"__x"};
	static const double bad_buckets[] = {1, 1};
	static const double buckets[] = {1, 2};
	struct metrics_family_opts o;

	o = (struct metrics_family_opts){.name = "no_suffix", .type = METRICS_COUNTER};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){.name = "9bad_total", .type = METRICS_COUNTER};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){
	    .name = "d_total", .type = METRICS_COUNTER, .label_names = dup, .n_labels = 2};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){
	    .name = "r_total", .type = METRICS_COUNTER, .label_names = reserved, .n_labels = 1};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){.name = "h",
					 .type = METRICS_HISTOGRAM,
					 .label_names = le,
					 .n_labels = 1,
					 .buckets = buckets,
					 .n_buckets = 2};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){
	    .name = "h", .type = METRICS_HISTOGRAM, .buckets = bad_buckets, .n_buckets = 2};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){.name = "h", .type = METRICS_HISTOGRAM};
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EINVAL);
	o = (struct metrics_family_opts){.name = "ok_total", .type = METRICS_COUNTER};
	assert_int_equal(metrics_family_register(reg, &o, NULL), 0);
	assert_int_equal(metrics_family_register(reg, &o, NULL), -EEXIST);
	assert_non_null(metrics_registry_find(reg, "ok_total"));
	assert_null(metrics_registry_find(reg, "nope"));
	metrics_registry_free(reg);
}

static void test_values_and_types(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_family *c, *g;
	struct metrics_family_opts co = {
	    .name = "c_total", .type = METRICS_COUNTER, .label_names = one_label, .n_labels = 1};
	struct metrics_family_opts go = {.name = "g", .type = METRICS_GAUGE};
	const char *a[] = {"a"}, *b[] = {"b"};
	double v;

	assert_int_equal(metrics_family_register(reg, &co, &c), 0);
	assert_int_equal(metrics_family_register(reg, &go, &g), 0);
	assert_int_equal(metrics_get(c, a, &v), -ENOENT);
	assert_int_equal(metrics_inc(c, a), 0);
	assert_int_equal(metrics_add(c, a, 2.5), 0);
	assert_int_equal(metrics_add(c, a, -1), -EINVAL);
	assert_int_equal(metrics_set(c, a, 7), -EINVAL);
	assert_int_equal(metrics_observe(c, a, 7), -EINVAL);
	assert_int_equal(metrics_add(c, b, 0.0 / 0.0), -EINVAL);
	assert_int_equal(metrics_get(c, a, &v), 0);
	assert_true(v == 3.5);
	assert_int_equal(metrics_get(c, b, &v), -ENOENT);

	assert_int_equal(metrics_get(g, NULL, &v), 0);
	assert_true(v == 0);
	assert_int_equal(metrics_set(g, NULL, 10), 0);
	assert_int_equal(metrics_add(g, NULL, -4), 0);
	assert_int_equal(metrics_get(g, NULL, &v), 0);
	assert_true(v == 6);

	assert_int_equal(metrics_remove(c, a), 0);
	assert_int_equal(metrics_remove(c, a), -ENOENT);
	assert_int_equal(metrics_family_series(c), 0);
	metrics_registry_free(reg);
}

static void test_series_cap_overflow(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_family *c;
	struct metrics_family_opts o = {.name = "capped_total",
					.type = METRICS_COUNTER,
					.label_names = one_label,
					.n_labels = 1,
					.max_series = 4};
	char buf[32];
	double v;

	assert_int_equal(metrics_family_register(reg, &o, &c), 0);
	for (int i = 0; i < 100; i++) {
		const char *vals[] = {buf};

		snprintf(buf, sizeof(buf), "v%d", i);
		assert_int_equal(metrics_inc(c, vals), 0);
	}
	/* v0..v2 keep their own series; v3..v99 (97 increments) share "other". */
	assert_int_equal(metrics_family_series(c), 4);
	assert_int_equal(metrics_get(c, (const char *[]){"v2"}, &v), 0);
	assert_true(v == 1);
	assert_int_equal(metrics_get(c, (const char *[]){"other"}, &v), 0);
	assert_true(v == 97);
	assert_int_equal(metrics_get(c, (const char *[]){"v3"}, &v), -ENOENT);
	/* An existing series still counts on its own once the family is full. */
	assert_int_equal(metrics_inc(c, (const char *[]){"v0"}), 0);
	assert_int_equal(metrics_get(c, (const char *[]){"v0"}, &v), 0);
	assert_true(v == 2);
	metrics_registry_free(reg);
}

static void test_histogram(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	static const double buckets[] = {0.1, 1};
	struct metrics_family *h;
	struct metrics_family_opts o = {
	    .name = "lat_seconds", .type = METRICS_HISTOGRAM, .buckets = buckets, .n_buckets = 2};
	uint64_t count;
	double sum;

	assert_int_equal(metrics_family_register(reg, &o, &h), 0);
	assert_int_equal(metrics_observe(h, NULL, 0.05), 0);
	assert_int_equal(metrics_observe(h, NULL, 3), 0);
	assert_int_equal(metrics_get_histogram(h, NULL, &count, &sum), 0);
	assert_int_equal(count, 2);
	assert_true(sum == 3.05);
	metrics_registry_free(reg);
}

struct bucket_ctx {
	const char *series; /* label value of the series to read */
	uint64_t buckets[2], count;
	double sum;
	int seen;
};

static int read_buckets(const struct metrics_family_info *fam, const struct metrics_series_info *s,
			void *ctx)
{
	struct bucket_ctx *c = ctx;

	if (strcmp(fam->name, "restored_seconds") || strcmp(s->label_values[0], c->series))
		return 0;
	memcpy(c->buckets, s->bucket_counts, sizeof(c->buckets));
	c->count = s->count;
	c->sum = s->sum;
	c->seen++;
	return 0;
}

/* A histogram's stored state added back: buckets one by one, count and sum, on top of what the
 * series already holds, and into a series created for it. */
static void test_histogram_restore(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	static const double buckets[] = {1, 5};
	struct metrics_family *h, *c;
	struct metrics_family_opts o = {.name = "restored_seconds",
					.type = METRICS_HISTOGRAM,
					.label_names = one_label,
					.n_labels = 1,
					.buckets = buckets,
					.n_buckets = 2};
	struct metrics_family_opts co = {
	    .name = "c_total", .type = METRICS_COUNTER, .label_names = one_label, .n_labels = 1};
	struct metrics_visitor v = {.series = read_buckets};
	const char *a[] = {"a"}, *b[] = {"b"};
	const uint64_t stored[] = {2, 1}, too_many[] = {3, 3};
	struct bucket_ctx bc = {.series = "a"};

	assert_int_equal(metrics_family_register(reg, &o, &h), 0);
	assert_int_equal(metrics_family_register(reg, &co, &c), 0);
	assert_int_equal(metrics_observe(h, a, 0.5), 0);
	assert_int_equal(metrics_observe(h, a, 7), 0);
	/* stored: 2 at or below 1, 1 in (1, 5], 1 above 5 (count 4), sum 10.5 */
	assert_int_equal(metrics_histogram_restore(h, a, stored, 4, 10.5), 0);
	assert_int_equal(metrics_registry_visit(reg, &v, &bc), 0);
	assert_int_equal(bc.seen, 1);
	assert_int_equal(bc.buckets[0], 3);
	assert_int_equal(bc.buckets[1], 1);
	assert_int_equal(bc.count, 6);
	assert_true(bc.sum == 18.0);

	assert_int_equal(metrics_histogram_restore(h, b, stored, 3, 2.5), 0);
	bc = (struct bucket_ctx){.series = "b"};
	assert_int_equal(metrics_registry_visit(reg, &v, &bc), 0);
	assert_int_equal(bc.seen, 1);
	assert_int_equal(bc.buckets[0], 2);
	assert_int_equal(bc.buckets[1], 1);
	assert_int_equal(bc.count, 3);
	assert_true(bc.sum == 2.5);

	/* count below the buckets' sum, NaN, the wrong family type, no buckets: refused, and
	 * nothing changed */
	assert_int_equal(metrics_histogram_restore(h, b, too_many, 5, 1), -EINVAL);
	assert_int_equal(metrics_histogram_restore(h, b, stored, 3, 0.0 / 0.0), -EINVAL);
	assert_int_equal(metrics_histogram_restore(c, a, stored, 3, 1), -EINVAL);
	assert_int_equal(metrics_histogram_restore(h, b, NULL, 3, 1), -EINVAL);
	assert_int_equal(metrics_histogram_restore(h, NULL, stored, 3, 1), -EINVAL);
	bc = (struct bucket_ctx){.series = "b"};
	assert_int_equal(metrics_registry_visit(reg, &v, &bc), 0);
	assert_int_equal(bc.count, 3);
	assert_true(bc.sum == 2.5);
	metrics_registry_free(reg);
}

struct collect_ctx {
	struct metrics_family *g;
	int runs;
};

static void collect(struct metrics_registry *reg, void *ctx)
{
	struct collect_ctx *c = ctx;

	c->runs++;
	metrics_set(c->g, NULL, c->runs * 10);
}

static void test_collector(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct collect_ctx c = {0};
	struct metrics_family_opts o = {.name = "collected", .type = METRICS_GAUGE};
	char *text;

	assert_int_equal(metrics_family_register(reg, &o, &c.g), 0);
	assert_int_equal(metrics_registry_add_collector(reg, collect, &c, NULL), 0);
	assert_int_equal(prom_render(reg, &text, NULL), 0);
	assert_non_null(strstr(text, "\ncollected 10\n"));
	free(text);
	assert_int_equal(prom_render(reg, &text, NULL), 0);
	assert_non_null(strstr(text, "\ncollected 20\n"));
	free(text);
	assert_int_equal(c.runs, 2);
	metrics_registry_free(reg);
}

struct thread_arg {
	struct metrics_registry *reg;
	struct metrics_family *c;
	int id;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;
	char buf[16];
	const char *vals[] = {buf};

	for (int i = 0; i < 20000; i++) {
		if (a->id == 0 && i % 1000 == 0) {
			char *text;

			if (!prom_render(a->reg, &text, NULL))
				free(text);
		}
		snprintf(buf, sizeof(buf), "k%d", i % 8);
		metrics_inc(a->c, vals);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_family_opts o = {
	    .name = "t_total", .type = METRICS_COUNTER, .label_names = one_label, .n_labels = 1};
	struct thread_arg args[4];
	pthread_t th[4];
	double total = 0, v;
	char buf[16];
	const char *vals[] = {buf};

	assert_int_equal(metrics_family_register(reg, &o, &args[0].c), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){reg, args[0].c, i};
		assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int k = 0; k < 8; k++) {
		snprintf(buf, sizeof(buf), "k%d", k);
		assert_int_equal(metrics_get(args[0].c, vals, &v), 0);
		total += v;
	}
	assert_true(total == 80000);
	metrics_registry_free(reg);
}

static void test_process_metrics(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	char *text;
	double fds, max_fds, start, rss;

	assert_int_equal(metrics_process_register(reg), 0);
	assert_int_equal(prom_render(reg, &text, NULL), 0);
	free(text);
	assert_int_equal(metrics_get(metrics_registry_find(reg, "process_open_fds"), NULL, &fds),
			 0);
	assert_int_equal(metrics_get(metrics_registry_find(reg, "process_max_fds"), NULL, &max_fds),
			 0);
	assert_int_equal(
	    metrics_get(metrics_registry_find(reg, "process_start_time_seconds"), NULL, &start), 0);
	assert_int_equal(
	    metrics_get(metrics_registry_find(reg, "process_resident_memory_bytes"), NULL, &rss),
	    0);
	assert_true(fds >= 3 && fds < max_fds);
	assert_true(start > 1.5e9 && start < 4e9); /* a plausible epoch second */
	assert_true(rss > 4096);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validation),		cmocka_unit_test(test_values_and_types),
	    cmocka_unit_test(test_series_cap_overflow), cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_histogram_restore),	cmocka_unit_test(test_collector),
	    cmocka_unit_test(test_threads),		cmocka_unit_test(test_process_metrics),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
