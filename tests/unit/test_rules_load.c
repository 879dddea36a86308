// SPDX-License-Identifier: MIT
/*
 * Loading a rules file: every error and warning with its exact FILE:LINE:COL (1-based, counted
 * by hand in the fixtures under fixtures/rules/), the file's bounds, and the JWT secret file's
 * permissions.
 */
#include <errno.h>
#include <libgen.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "bizprobe/rules.h"

#define MAX_DIAGS 256

struct diags {
	char *line[MAX_DIAGS];
	unsigned n;
	unsigned warnings;
};

static void diag_cb(const struct rules_diag *d, void *ctx)
{
	struct diags *ds = ctx;
	char *s;

	assert_true(ds->n < MAX_DIAGS);
	assert_int_not_equal(asprintf(&s, "%s:%u:%u: %s%s", d->file, d->line, d->col,
				      d->warning ? "warning: " : "", d->message),
			     -1);
	ds->line[ds->n++] = s;
	ds->warnings += d->warning;
}

static void diags_clear(struct diags *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		free(ds->line[i]);
	memset(ds, 0, sizeof(*ds));
}

/* fixtures/rules/<name>, found from $BIZPROBE_SRCDIR, this file's directory as compiled, or
 * the test binary's (build/tests/) ../../tests/unit, as stripe_test_util.h does. */
static void fixture_path(const char *name, char *path, size_t size)
{
	const char *env = getenv("BIZPROBE_SRCDIR");
	char dir[512], exe[512];
	ssize_t n;

	if (env) {
		snprintf(path, size, "%s/tests/unit/fixtures/rules/%s", env, name);
		if (!access(path, R_OK))
			return;
	}
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	snprintf(path, size, "%s/fixtures/rules/%s", dirname(dir), name);
	if (!access(path, R_OK))
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	snprintf(path, size, "%s/../../tests/unit/fixtures/rules/%s", dirname(exe), name);
	assert_int_equal(access(path, R_OK), 0);
}

/* Loads fixture name and checks that it fails (or loads, with ok) with exactly the diagnostics
 * in want, each "LINE:COL: message" after the file's path, in file order. */
static void expect_file(const char *name, bool ok, const char *const *want)
{
	struct diags ds = {0};
	char path[1024], full[2048];
	struct rules *r;
	unsigned n = 0;

	fixture_path(name, path, sizeof(path));
	r = rules_load_file(path, NULL, diag_cb, &ds);
	for (; want[n]; n++) {
		snprintf(full, sizeof(full), "%s:%s", path, want[n]);
		if (n >= ds.n)
			fail_msg("missing diagnostic %s", full);
		assert_string_equal(ds.line[n], full);
	}
	if (ds.n != n)
		fail_msg("unexpected diagnostic %s", ds.line[n]);
	if (ok)
		assert_non_null(r);
	else
		assert_null(r);
	rules_free(r);
	diags_clear(&ds);
}

static struct rules *load_text(const char *text, struct diags *ds)
{
	return rules_load_buffer("t.yaml", text, strlen(text), NULL, diag_cb, ds);
}

/* The example of issue 14, verbatim: its keys are the contract. */
static void test_issue_example(void **state)
{
	const char *const none[] = {NULL};
	struct diags ds = {0};
	char path[1024];
	struct rules *r;

	expect_file("issue_example.yaml", true, none);
	fixture_path("issue_example.yaml", path, sizeof(path));
	r = rules_load_file(path, NULL, diag_cb, &ds);
	assert_non_null(r);
	assert_int_equal(rules_count(r), 2);
	assert_int_equal(ds.n, 0);
	rules_free(r);
}

static void test_unknown_keys(void **state)
{
	const char *const srcs = "path, query, header, response_header, cookie, request_json, "
				 "response_json, request_form, jwt_claim, const, request_bytes, "
				 "response_bytes, duration, status";
	char label[512], value[512];
	const char *want[] = {
	    "4:5: unknown key 'colour' in identity (expected header, cookie, jwt_claim)",
	    "7:5: unknown key 'metrc' in event (expected name, metric, type, buckets, help, when, "
	    "labels, value, user, sentry)",
	    "8:42: unknown key 'staus' in when (expected role, method, route, host, status)",
	    label,
	    value,
	    "15:7: unknown key 'hots' in when (expected role, method, route, host, status)",
	    "16:1: unknown key 'extra' in the rules file (expected version, identity, "
	    "jwt_secret_file, user_type, user_keys, events)",
	    NULL,
	};

	snprintf(label, sizeof(label),
		 "10:55: unknown key 'max_value' in label 'plan' (expected %s, values, max_values)",
		 srcs);
	snprintf(value, sizeof(value), "11:13: unknown key 'request_jsn' in value (expected %s)",
		 srcs);
	expect_file("err_unknown_keys.yaml", false, want);
}

static void test_bad_routes(void **state)
{
	const char *const want[] = {
	    "4:19: bad route template 'api/register': a route starts with '/'",
	    "6:19: bad route template '/api/{id': unclosed '{'",
	    "8:19: bad route template '/api/{}/x': empty {}",
	    "10:19: bad route template '/api/{1x}': a {param} name is letters, digits and '_', "
	    "not starting with a digit",
	    "12:19: bad route template '/api/x{id}': '{' and '}' only around a whole segment, as "
	    "in /users/{id}",
	    "14:19: bad route template '/api//x': empty segment ('//')",
	    "16:19: bad route template '/a/{id}/b/{id}': the same {param} twice",
	    "18:19: bad route template '/a?b=1': a route is a path: no query ('?') or fragment "
	    "('#')",
	    "22:14: label 'kind': the route has no {kind}",
	    NULL,
	};

	expect_file("err_routes.yaml", false, want);
}

static void test_bad_labels(void **state)
{
	const char *const srcs = "path, query, header, response_header, cookie, request_json, "
				 "response_json, request_form, jwt_claim, const, request_bytes, "
				 "response_bytes, duration, status";
	char none[512];
	const char *want[] = {
	    "10:36: label 'zero': max_values must be between 1 and 1000",
	    "11:36: label 'huge': max_values must be between 1 and 1000",
	    "12:36: label 'word': max_values must be an integer",
	    "13:37: label 'both': give values (an allow-list) or max_values (the first N), not "
	    "both",
	    "14:32: label 'list': values must be a non-empty list of words",
	    "15:33: label 'empty': values must be a non-empty list of words",
	    "16:7: label name 'bad-name' must match [a-zA-Z_][a-zA-Z0-9_]* (not starting with "
	    "__)",
	    "20:13: label 'who' reads the identity source header x-user-id: a user id must not be "
	    "a label (the user is pseudonymized on its own)",
	    "21:13: label 'uid' reads the identity source cookie uid: a user id must not be a "
	    "label (the user is pseudonymized on its own)",
	    "22:13: label 'sub' reads the identity source jwt_claim sub: a user id must not be a "
	    "label (the user is pseudonymized on its own)",
	    none,
	    "24:23: label 'two' has two sources (query and header): give one",
	    "36:7: an event has at most 8 labels",
	    /* items[0] and items.0 are one field. */
	    "39:14: label 'same' reads the event's user (response_json user[0]): a user id must "
	    "not be a label",
	    "40:15: label 'spelt' reads the event's user (response_json user.0): a user id must "
	    "not be a label",
	    NULL,
	};

	snprintf(none, sizeof(none), "23:13: label 'none' has no source (one of %s)", srcs);
	expect_file("err_labels.yaml", false, want);
}

static void test_wrong_types(void **state)
{
	const char *const want[] = {
	    "1:10: version must be 1",
	    "6:21: buckets must be an ascending list of numbers",
	    "11:18: buckets must be an ascending list of numbers",
	    "16:14: buckets must be an ascending list of numbers",
	    "19:20: status must be a code (201), a class (2xx) or a list of those",
	    "21:20: status must be a code (201), a class (2xx) or a list of those",
	    "23:26: status must be a code (201), a class (2xx) or a list of those",
	    "26:11: type must be counter or histogram",
	    "28:18: role must be server or client",
	    "31:5: buckets are for type: histogram",
	    "33:13: labels must be a mapping of names to sources, such as {plan: {request_json: "
	    "plan, values: [free, pro]}}",
	    NULL,
	};

	expect_file("err_types.yaml", false, want);
}

static void test_names(void **state)
{
	const char *const want[] = {
	    "3:5: event has no name",
	    "6:11: duplicate event name 'twice' (first at 4:11)",
	    "9:13: metric name 'user-registrations_total' must match [a-zA-Z_:][a-zA-Z0-9_:]*",
	    "11:13: counter metric 'user_registrations' must end in _total",
	    "14:11: a histogram needs value: the number each event observes",
	    "15:11: name must be a non-empty printable word",
	    NULL,
	};

	expect_file("err_names.yaml", false, want);
}

static void test_syntax_error(void **state)
{
	/* libyaml's marks: the flow mapping opened at 4:11 meets "name:" on line 5, where the
	 * ':' (column 9) cannot continue the plain scalar "/a - name". */
	const char *const want[] = {
	    "5:9: YAML syntax error: did not find expected ',' or '}' (while parsing a flow "
	    "mapping that starts at 4:11)",
	    NULL,
	};

	expect_file("err_syntax.yaml", false, want);
}

static void test_version_missing(void **state)
{
	const char *const want[] = {"1:1: version is missing (write version: 1)", NULL};

	expect_file("err_version_missing.yaml", false, want);
}

/* A warning is not an error: the file loads. */
static void test_email_warning(void **state)
{
	const char *const want[] = {
	    "7:16: warning: label 'domain' reads request_json 'user.Email', which looks like an "
	    "e-mail address: e-mail addresses must not leave the app",
	    "9:13: warning: value reads query 'mailCount', which looks like an e-mail address: "
	    "e-mail addresses must not leave the app",
	    NULL,
	};

	expect_file("warn_email.yaml", true, want);
}

static void expect_text(const char *text, const char *const *want)
{
	struct diags ds = {0};
	struct rules *r = load_text(text, &ds);
	unsigned n = 0;

	for (; want[n]; n++) {
		if (n >= ds.n)
			fail_msg("missing diagnostic %s", want[n]);
		assert_string_equal(ds.line[n], want[n]);
	}
	if (ds.n != n)
		fail_msg("unexpected diagnostic %s", ds.line[n]);
	assert_null(r);
	diags_clear(&ds);
}

static void test_sources(void **state)
{
	const char *const want[] = {
	    "t.yaml:4:12: value must be a mapping {SOURCE: argument}, SOURCE one of path, query, "
	    "header, "
	    "response_header, cookie, request_json, response_json, request_form, jwt_claim, const, "
	    "request_bytes, response_bytes, duration, status (a bare word only for request_bytes, "
	    "response_bytes, duration, status)",
	    "t.yaml:6:25: request_json: 'a..b' is not a field path (names separated by dots, array "
	    "indexes as .0 or [0], at most 16 steps)",
	    "t.yaml:7:19: header: 'X User' is not a header name",
	    "t.yaml:8:25: request_json: 'items[x]' is not a field path (names separated by dots, "
	    "array "
	    "indexes as .0 or [0], at most 16 steps)",
	    "t.yaml:9:21: duration takes no argument (write {duration: true})",
	    "t.yaml:10:18: const must be a string",
	    NULL,
	};

	expect_text("version: 1\n"
		    "events:\n"
		    "  - name: a\n"
		    "    value: amount\n"
		    "    labels:\n"
		    "      x: {request_json: a..b}\n"
		    "      y: {header: X User}\n"
		    "      z: {request_json: \"items[x]\"}\n"
		    "      w: {duration: [1]}\n"
		    "      v: {const: }\n",
		    want);
}

static void test_document_shape(void **state)
{
	const char *const empty[] = {
	    "t.yaml:1:1: the file is empty (expected version: 1 and events)", NULL};
	const char *const two_docs[] = {
	    "t.yaml:3:1: a rules file holds one YAML document; this is a second one", NULL};
	const char *const dup[] = {"t.yaml:2:1: duplicate key 'version' in the rules file", NULL};
	const char *const list[] = {
	    "t.yaml:1:1: a rules file is a mapping with version: 1, identity and events", NULL};
	const char *const alias[] = {
	    "t.yaml:3:5: anchors and aliases (&, *) are not supported in a rules file", NULL};
	const char *const identity[] = {
	    "t.yaml:2:11: identity must be a list of sources such as - header: X-User-Id",
	    "t.yaml:3:9: events must be a list", NULL};

	expect_text("", empty);
	expect_text("version: 1\n---\nversion: 1\n", two_docs);
	expect_text("version: 1\nversion: 1\nevents: []\n", dup);
	expect_text("- version: 1\n", list);
	/* The anchored node is the one reported: libyaml resolves the alias to it. */
	expect_text("version: 1\nevents:\n  - &e {name: a}\n  - *e\n", alias);
	expect_text("version: 1\nidentity: {header: X-User-Id}\nevents: {name: a}\n", identity);
}

/* Hostile shapes within the size bound stay cheap: deep nesting stops at 64 levels (the root
 * mapping is the first), and a mapping of 60,000 repeated keys is one pass. */
static void test_hostile_shapes(void **state)
{
	const char *const deep[] = {"t.yaml:2:72: nested deeper than 64 levels", NULL};
	struct diags ds = {0};
	size_t off;
	char *text = malloc(2 * 1024 * 1024);
	struct rules *r;

	assert_non_null(text);
	off = (size_t)sprintf(text, "version: 1\nevents: ");
	for (int i = 0; i < 400000; i++)
		text[off++] = '[';
	for (int i = 0; i < 400000; i++)
		text[off++] = ']';
	text[off] = '\0';
	expect_text(text, deep);

	off = (size_t)sprintf(text, "version: 1\nevents:\n  - name: a\n    when:\n");
	for (int i = 0; i < 60000; i++)
		off += (size_t)sprintf(text + off, "      route: /a\n");
	assert_true(off < 1024 * 1024);
	r = load_text(text, &ds);
	assert_null(r);
	/* 200 kept, the rest counted. */
	assert_int_equal(ds.n, 201);
	assert_string_equal(ds.line[0], "t.yaml:6:7: duplicate key 'route' in when");
	assert_string_equal(ds.line[200], "t.yaml:0:0: 59799 more problems not shown");
	diags_clear(&ds);
	free(text);
}

static void test_bounds(void **state)
{
	size_t big = 1024 * 1024 + 1, off;
	struct diags ds = {0};
	struct rules *r;
	char *text;

	/* One byte over 1 MiB is refused before libyaml sees it. */
	text = malloc(big + 1);
	assert_non_null(text);
	memset(text, '#', big);
	text[big] = '\0';
	r = load_text(text, &ds);
	assert_null(r);
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.line[0], "t.yaml:0:0: the file is larger than 1048576 bytes");
	diags_clear(&ds);
	free(text);

	/* 1000 events load, 1001 are refused at the list. */
	text = malloc(64 * 1024);
	assert_non_null(text);
	off = (size_t)sprintf(text, "version: 1\nevents:\n");
	for (int i = 0; i < 1000; i++)
		off += (size_t)sprintf(text + off, "  - {name: e%d}\n", i);
	r = load_text(text, &ds);
	assert_non_null(r);
	assert_int_equal(rules_count(r), 1000);
	assert_int_equal(ds.n, 0);
	rules_free(r);
	sprintf(text + off, "  - {name: e1000}\n");
	r = load_text(text, &ds);
	assert_null(r);
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.line[0],
			    "t.yaml:3:3: events lists 1001 events, at most 1000 are allowed");
	diags_clear(&ds);
	free(text);
}

static void test_namespace(void **state)
{
	const char *text = "version: 1\nevents:\n  - {name: a, metric: hits_total}\n";
	struct rules_load_config cfg = {.namespace = "bad-ns"};
	struct diags ds = {0};
	struct rules *r;

	r = rules_load_buffer("t.yaml", text, strlen(text), &cfg, diag_cb, &ds);
	assert_null(r);
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.line[0],
			    "t.yaml:0:0: namespace 'bad-ns' must match [a-zA-Z_:][a-zA-Z0-9_:]*");
	diags_clear(&ds);
	/* Without diag the errors still fail the load. */
	assert_null(rules_load_buffer("t.yaml", "version: 3\n", 11, NULL, NULL, NULL));
	/* A metric already carrying the namespace is only a warning. */
	r = load_text("version: 1\nevents:\n  - {name: a, metric: direct_fan_hits_total}\n", &ds);
	assert_non_null(r);
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.line[0],
			    "t.yaml:3:23: warning: metric 'direct_fan_hits_total' already starts "
			    "with the namespace: it becomes direct_fan_direct_fan_hits_total");
	diags_clear(&ds);
	rules_free(r);
}

static void test_metric_clash(void **state)
{
	const char *const want[] = {
	    "t.yaml:5:13: metric direct_fan_views_total is also declared by event 'a' (3:33) "
	    "with another type, labels or buckets",
	    NULL,
	};

	expect_text("version: 1\nevents:\n"
		    "  - {name: a, when: {}, metric: views_total, labels: {k: {query: k}}}\n"
		    "  - name: b\n"
		    "    metric: views_total\n"
		    "    labels: {j: {query: j}}\n",
		    want);
}

/* The secret file must be private; a relative path starts at the rules file's directory. */
static void test_jwt_secret_file(void **state)
{
	char dir[] = "/tmp/bizprobe-rules-XXXXXX", rules_path[256], key_path[256], want[1024];
	const char *text = "version: 1\n"
			   "identity: [{jwt_claim: sub}]\n"
			   "jwt_secret_file: jwt.key\n"
			   "events: []\n";
	struct diags ds = {0};
	struct rules *r;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(rules_path, sizeof(rules_path), "%s/rules.yaml", dir);
	snprintf(key_path, sizeof(key_path), "%s/jwt.key", dir);
	f = fopen(rules_path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);

	r = rules_load_file(rules_path, NULL, diag_cb, &ds);
	assert_null(r);
	assert_int_equal(ds.n, 1);
	snprintf(want, sizeof(want), "%s:3:18: jwt_secret_file %s: No such file or directory",
		 rules_path, key_path);
	assert_string_equal(ds.line[0], want);
	diags_clear(&ds);

	f = fopen(key_path, "w");
	assert_non_null(f);
	fputs("s3cret\n", f);
	fclose(f);
	assert_int_equal(chmod(key_path, 0644), 0);
	r = rules_load_file(rules_path, NULL, diag_cb, &ds);
	assert_null(r);
	assert_int_equal(ds.n, 1);
	snprintf(want, sizeof(want),
		 "%s:3:18: jwt_secret_file %s can be read by group or others (mode 0644): run "
		 "chmod 600 %s",
		 rules_path, key_path, key_path);
	assert_string_equal(ds.line[0], want);
	diags_clear(&ds);

	assert_int_equal(chmod(key_path, 0640), 0);
	r = rules_load_file(rules_path, NULL, diag_cb, &ds);
	assert_null(r);
	diags_clear(&ds);

	assert_int_equal(chmod(key_path, 0600), 0);
	r = rules_load_file(rules_path, NULL, diag_cb, &ds);
	assert_non_null(r);
	assert_int_equal(ds.n, 0);
	rules_free(r);

	unlink(key_path);
	unlink(rules_path);
	rmdir(dir);
}

static void test_missing_file(void **state)
{
	struct diags ds = {0};

	assert_null(rules_load_file("/nonexistent/rules.yaml", NULL, diag_cb, &ds));
	assert_int_equal(ds.n, 1);
	assert_string_equal(ds.line[0],
			    "/nonexistent/rules.yaml:0:0: cannot open: No such file or directory");
	diags_clear(&ds);
}

static void test_user_keys(void **state)
{
	struct diags ds = {0};
	const char *const *keys;
	struct rules *r;
	unsigned n = 9;

	r = load_text("version: 1\nuser_keys: [fan_id, member]\nevents: []\n", &ds);
	assert_non_null(r);
	keys = rules_user_keys(r, &n);
	assert_int_equal(n, 2);
	assert_string_equal(keys[0], "fan_id");
	assert_string_equal(keys[1], "member");
	rules_free(r);
	r = load_text("version: 1\nevents: []\n", &ds);
	assert_non_null(r);
	assert_null(rules_user_keys(r, &n));
	assert_int_equal(n, 0);
	rules_free(r);
	assert_int_equal(ds.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_issue_example),  cmocka_unit_test(test_unknown_keys),
	    cmocka_unit_test(test_bad_routes),	   cmocka_unit_test(test_bad_labels),
	    cmocka_unit_test(test_wrong_types),	   cmocka_unit_test(test_names),
	    cmocka_unit_test(test_syntax_error),   cmocka_unit_test(test_version_missing),
	    cmocka_unit_test(test_email_warning),  cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_document_shape), cmocka_unit_test(test_hostile_shapes),
	    cmocka_unit_test(test_bounds),	   cmocka_unit_test(test_namespace),
	    cmocka_unit_test(test_metric_clash),   cmocka_unit_test(test_jwt_secret_file),
	    cmocka_unit_test(test_missing_file),   cmocka_unit_test(test_user_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
