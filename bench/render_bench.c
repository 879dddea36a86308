// SPDX-License-Identifier: MIT
/*
 * bizprobe bench: time of one /metrics render (prom_render) with 2,000 series in a registry.
 *   render_bench [ITERATIONS]
 * Two registries of 2,000 series each, both also with the process_* and build_info collectors
 * that bizprobe registers:
 *   flat:  1,000 counter series (3 labels, like stripe_api_requests_total) + 1,000 gauge series
 *          (2 labels): 2,000 sample lines;
 *   mixed: 800 counter + 800 gauge + 400 histogram series (1 label, 12 buckets; each histogram
 *          series renders 13 bucket lines + _sum + _count): 7,600 sample lines.
 * Prints, per registry, the median, p90 and minimum over ITERATIONS renders (default 500) and
 * the output size, one JSON line each.
 */
#include "bizprobe/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct metrics_registry *build(int nc, int ng, int nh, unsigned *series)
{
	struct metrics_registry *reg = metrics_registry_new();
	static const char *const l3[] = {"endpoint", "method", "code"};
	static const char *const l2[] = {"currency", "plan"};
	static const char *const l1[] = {"endpoint"};
	static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
	struct metrics_family *c, *g, *h;
	struct metrics_family_opts oc = {.name = "bench_api_requests_total", .help = "Counter series.",
		.type = METRICS_COUNTER, .label_names = l3, .n_labels = 3, .max_series = 1001};
	struct metrics_family_opts og = {.name = "bench_revenue", .help = "Gauge series.",
		.type = METRICS_GAUGE, .label_names = l2, .n_labels = 2, .max_series = 1001};
	struct metrics_family_opts oh = {.name = "bench_request_duration_seconds", .help = "Histogram series.",
		.type = METRICS_HISTOGRAM, .label_names = l1, .n_labels = 1, .buckets = buckets,
		.n_buckets = 12, .max_series = 1001};
	if (!reg || metrics_family_register(reg, &oc, &c) || metrics_family_register(reg, &og, &g) ||
	    metrics_family_register(reg, &oh, &h) || metrics_process_register(reg) ||
	    metrics_build_info_register(reg, "bench"))
		return NULL;
	char a[64], b[64], d[64];
	for (int i = 0; i < nc; i++) {
		snprintf(a, sizeof(a), "/v1/endpoint_%d/{id}", i / 8);
		snprintf(b, sizeof(b), "%s", i % 2 ? "POST" : "GET");
		snprintf(d, sizeof(d), "%d", 200 + i % 8);
		const char *v[] = {a, b, d};
		metrics_add(c, v, 1 + i * 3);
	}
	for (int i = 0; i < ng; i++) {
		snprintf(a, sizeof(a), "C%02d", i % 40);
		snprintf(b, sizeof(b), "plan_%d", i / 40);
		const char *v[] = {a, b};
		metrics_set(g, v, i * 1.25 + 0.99);
	}
	for (int i = 0; i < nh; i++) {
		snprintf(a, sizeof(a), "/v1/endpoint_%d", i);
		const char *v[] = {a};
		for (int j = 0; j < 20; j++)
			metrics_observe(h, v, 0.0007 * (j + 1) * (i % 7 + 1));
	}
	*series = metrics_family_series(c) + metrics_family_series(g) + metrics_family_series(h);
	return reg;
}

static int run(const char *name, struct metrics_registry *reg, unsigned series, int iters)
{
	double *t = malloc(sizeof(double) * (size_t)iters);
	size_t len = 0;
	for (int i = 0; i < 20 + iters; i++) {
		char *out;
		double t0 = now_ms();
		if (prom_render(reg, &out, &len)) {
			fprintf(stderr, "render_bench: prom_render failed\n");
			return 1;
		}
		if (i >= 20) /* the first 20 are a warm-up */
			t[i - 20] = now_ms() - t0;
		free(out);
	}
	qsort(t, (size_t)iters, sizeof(double), cmp_d);
	printf("{\"registry\":\"%s\",\"series\":%u,\"iterations\":%d,\"bytes\":%zu,\"median_ms\":%.3f,\"p90_ms\":%.3f,\"min_ms\":%.3f}\n",
	       name, series, iters, len, t[iters / 2], t[(int)(iters * 0.9)], t[0]);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 500;
	unsigned sf = 0, sm = 0;
	struct metrics_registry *flat = build(1000, 1000, 0, &sf), *mixed = build(800, 800, 400, &sm);
	if (!flat || !mixed || iters <= 0) {
		fprintf(stderr, "render_bench: registry setup failed\n");
		return 1;
	}
	if (run("flat", flat, sf, iters) || run("mixed", mixed, sm, iters))
		return 1;
	metrics_registry_free(flat);
	metrics_registry_free(mixed);
	return 0;
}
