// SPDX-License-Identifier: MIT
/* Prometheus text format: table-driven golden strings for the formatters and whole renders,
 * and `promtool check metrics` on a full registry when promtool is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bizprobe/metrics.h"

static char *capture(void (*fn)(FILE *f, const void *arg), const void *arg)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	fn(f, arg);
	fclose(f);
	return buf;
}

static void escape_label(FILE *f, const void *arg)
{
	prom_write_escaped(f, arg, 1);
}

static void escape_help(FILE *f, const void *arg)
{
	prom_write_escaped(f, arg, 0);
}

static void test_escape_table(void **state)
{
	static const struct {
		const char *in, *label, *help;
	} cases[] = {
	    {"plain", "plain", "plain"},
	    {"a\\b", "a\\\\b", "a\\\\b"},
	    {"say \"hi\"", "say \\\"hi\\\"", "say \"hi\""},
	    {"two\nlines", "two\\nlines", "two\\nlines"},
	    {"\\\"\n", "\\\\\\\"\\n", "\\\\\"\\n"},
	    {"", "", ""},
	    {"utf8 \xc3\xa9", "utf8 \xc3\xa9", "utf8 \xc3\xa9"},
	    /* Not UTF-8 (a lone byte, a cut sequence, a surrogate, an overlong '/'): U+FFFD for
	     * each byte, so that a strict scraper still takes the page (fuzz_prom). */
	    {"a\xff" "b", "a\xef\xbf\xbd" "b", "a\xef\xbf\xbd" "b"},
	    {"\xc3", "\xef\xbf\xbd", "\xef\xbf\xbd"},
	    {"\xed\xa0\x80\"", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\\\"",
	     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
	    {"\xc0\xaf\xf0\x9f\x98\x80", "\xef\xbf\xbd\xef\xbf\xbd\xf0\x9f\x98\x80",
	     "\xef\xbf\xbd\xef\xbf\xbd\xf0\x9f\x98\x80"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *l = capture(escape_label, cases[i].in);
		char *h = capture(escape_help, cases[i].in);

		assert_string_equal(l, cases[i].label);
		assert_string_equal(h, cases[i].help);
		free(l);
		free(h);
	}
}

static void test_format_double_table(void **state)
{
	static const struct {
		double v;
		const char *out;
	} cases[] = {
	    {0, "0"},
	    {1, "1"},
	    {-2, "-2"},
	    {0.1, "0.1"},
	    {0.25, "0.25"},
	    {1e21, "1e+21"},
	    {12.34, "12.34"},
	    {1.0 / 0.0, "+Inf"},
	    {-1.0 / 0.0, "-Inf"},
	    {0.0 / 0.0, "NaN"},
	    {1234567, "1234567"},
	    {0.30000000000000004, "0.30000000000000004"},
	    /* Edges of the integer path: the largest exactly-integral doubles it takes, and the
	     * first it leaves to %g. */
	    {-0.0, "0"},
	    {10, "10"},
	    {-1000000007, "-1000000007"},
	    {9007199254740991.0, "9007199254740991"},
	    {-9007199254740991.0, "-9007199254740991"},
	    {9007199254740992.0, "9007199254740992"},
	};
	char buf[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(prom_format_double(buf, sizeof(buf), cases[i].v), cases[i].out);
}

struct render_case {
	const char *name;
	void (*build)(struct metrics_registry *reg);
	const char *golden;
};

static void build_counter(struct metrics_registry *reg)
{
	static const char *const labels[] = {"status", "currency"};
	struct metrics_family_opts o = {.name = "x_attempts_total",
					.help = "Attempts.\nSecond \\ line",
					.type = METRICS_COUNTER,
					.label_names = labels,
					.n_labels = 2};
	struct metrics_family *f;

	assert_int_equal(metrics_family_register(reg, &o, &f), 0);
	assert_int_equal(metrics_inc(f, (const char *[]){"succeeded", "USD"}), 0);
	assert_int_equal(metrics_add(f, (const char *[]){"succeeded", "USD"}, 2), 0);
	assert_int_equal(metrics_inc(f, (const char *[]){"fa\"il\\ed\n", "EUR"}), 0);
}

static void build_unlabelled(struct metrics_registry *reg)
{
	struct metrics_family_opts c = {
	    .name = "x_disputes_total", .help = "D.", .type = METRICS_COUNTER};
	struct metrics_family_opts g = {.name = "x_temp", .help = "T.", .type = METRICS_GAUGE};
	struct metrics_family *gf;

	assert_int_equal(metrics_family_register(reg, &c, NULL), 0);
	assert_int_equal(metrics_family_register(reg, &g, &gf), 0);
	assert_int_equal(metrics_set(gf, NULL, -1.5), 0);
}

static void build_histogram(struct metrics_registry *reg)
{
	static const char *const labels[] = {"currency"};
	static const double buckets[] = {1, 5, 10};
	struct metrics_family_opts o = {.name = "x_amounts",
					.help = "Amounts.",
					.type = METRICS_HISTOGRAM,
					.label_names = labels,
					.n_labels = 1,
					.buckets = buckets,
					.n_buckets = 3};
	struct metrics_family *f;
	const char *usd[] = {"USD"};

	assert_int_equal(metrics_family_register(reg, &o, &f), 0);
	/* 0.5 -> le=1; 1 (on the bound) -> le=1; 7 -> le=10; 99 -> only +Inf */
	assert_int_equal(metrics_observe(f, usd, 0.5), 0);
	assert_int_equal(metrics_observe(f, usd, 1), 0);
	assert_int_equal(metrics_observe(f, usd, 7), 0);
	assert_int_equal(metrics_observe(f, usd, 99), 0);
}

static const struct render_case render_cases[] = {
    {"counter", build_counter,
     "# HELP x_attempts_total Attempts.\\nSecond \\\\ line\n"
     "# TYPE x_attempts_total counter\n"
     "x_attempts_total{status=\"succeeded\",currency=\"USD\"} 3\n"
     "x_attempts_total{status=\"fa\\\"il\\\\ed\\n\",currency=\"EUR\"} 1\n"},
    {"unlabelled", build_unlabelled,
     "# HELP x_disputes_total D.\n"
     "# TYPE x_disputes_total counter\n"
     "x_disputes_total 0\n"
     "# HELP x_temp T.\n"
     "# TYPE x_temp gauge\n"
     "x_temp -1.5\n"},
    {"histogram", build_histogram,
     "# HELP x_amounts Amounts.\n"
     "# TYPE x_amounts histogram\n"
     "x_amounts_bucket{currency=\"USD\",le=\"1\"} 2\n"
     "x_amounts_bucket{currency=\"USD\",le=\"5\"} 2\n"
     "x_amounts_bucket{currency=\"USD\",le=\"10\"} 3\n"
     "x_amounts_bucket{currency=\"USD\",le=\"+Inf\"} 4\n"
     "x_amounts_sum{currency=\"USD\"} 107.5\n"
     "x_amounts_count{currency=\"USD\"} 4\n"},
};

static void test_render_golden(void **state)
{
	for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++) {
		struct metrics_registry *reg = metrics_registry_new();
		char *text = NULL;
		size_t len = 0;

		assert_non_null(reg);
		render_cases[i].build(reg);
		assert_int_equal(prom_render(reg, &text, &len), 0);
		if (strcmp(text, render_cases[i].golden))
			fail_msg("case %s:\n%s\n--- want ---\n%s", render_cases[i].name, text,
				 render_cases[i].golden);
		assert_int_equal(len, strlen(render_cases[i].golden));
		free(text);
		metrics_registry_free(reg);
	}
}

/* Runs promtool on text; returns its exit status, or -1 when promtool is absent. */
static int promtool_check(const char *text)
{
	char path[] = "/tmp/bizprobe-prom-XXXXXX";
	char cmd[256];
	int fd, rc;
	FILE *f;

	if (access("/usr/bin/promtool", X_OK))
		return -1;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	{
		char line[512];

		while (fgets(line, sizeof(line), f))
			fprintf(stderr, "promtool: %s", line);
	}
	rc = pclose(f);
	unlink(path);
	return rc;
}

static void test_promtool_full_registry(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	char *text = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(render_cases) / sizeof(render_cases[0]); i++)
		render_cases[i].build(reg);
	assert_int_equal(metrics_process_register(reg), 0);
	assert_int_equal(metrics_build_info_register(reg, "0.1.0"), 0);
	assert_int_equal(prom_render(reg, &text, NULL), 0);
	assert_non_null(strstr(text, "bizprobe_build_info{version=\"0.1.0\"} 1\n"));
	assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	rc = promtool_check(text);
	if (rc < 0) {
		print_message("promtool not installed; skipped (apt-get install prometheus)\n");
		free(text);
		metrics_registry_free(reg);
		skip();
	}
	assert_int_equal(rc, 0);
	free(text);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_table),
	    cmocka_unit_test(test_format_double_table),
	    cmocka_unit_test(test_render_golden),
	    cmocka_unit_test(test_promtool_full_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
