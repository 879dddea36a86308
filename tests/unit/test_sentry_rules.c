// SPDX-License-Identifier: MIT
/*
 * The rules file's `sentry:` key (docs/rules.md): loading, with each problem at its position,
 * and evaluation on hand-built exchanges: the app's 5xx on the route of an event that has the
 * key is one BIZ_RULE_FAILURE, whatever the event's own status condition; other statuses,
 * roles, hosts and events without the key give none.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bizprobe/rules.h"

#define WALL_NS (1764300000ULL * 1000000000ULL)

struct fx {
	struct pseudonymizer *p;
	struct rules_env env;
	unsigned n;
	enum biz_event_kind kind[16];
	char text[16][512]; /* "name|l1=v1,l2=v2|user" */
	char diags[1024];
};

static void sink_fn(const struct business_event *ev, void *ctx)
{
	struct fx *f = ctx;
	size_t off;

	assert_true(f->n < 16);
	f->kind[f->n] = ev->kind;
	off = (size_t)snprintf(f->text[f->n], sizeof(f->text[0]), "%s|", ev->name ? ev->name : "-");
	for (unsigned i = 0; i < ev->n_labels; i++)
		off += (size_t)snprintf(f->text[f->n] + off, sizeof(f->text[0]) - off, "%s%s=%s",
					i ? "," : "", ev->labels[i].name, ev->labels[i].value);
	snprintf(f->text[f->n] + off, sizeof(f->text[0]) - off, "|%s",
		 ev->user ? "user" : (ev->user_type ? ev->user_type : "-"));
	f->n++;
}

static void diag_fn(const struct rules_diag *d, void *ctx)
{
	struct fx *f = ctx;
	size_t off = strlen(f->diags);

	snprintf(f->diags + off, sizeof(f->diags) - off, "%u:%u: %s\n", d->line, d->col,
		 d->message);
}

static const char rules_text[] =
    "version: 1\n"
    "identity:\n"
    "  - header: X-User-Id\n"
    "events:\n"
    "  - name: checkout\n"
    "    when: {method: POST, route: /api/checkout, status: 2xx}\n"
    "    sentry: {component: payment_handler, feature: stripe_integration, funnel: "
    "subscription_signup}\n"
    "  - name: checkout_failed\n"
    "    when: {method: POST, route: /api/checkout, status: 5xx}\n"
    "  - name: upload\n"
    "    when: {method: [PUT, POST], route: \"/api/content/{id}\", host: app.example.com}\n"
    "    sentry: {component: uploads}\n"
    "  - name: search\n"
    "    when: {route: /api/search}\n";

static struct http_exchange exchange(const char *method, const char *path, const char *host,
				     int status, const char *user)
{
	static struct http_header hdr;
	struct http_exchange ex;

	memset(&ex, 0, sizeof(ex));
	ex.conn.pid = 1;
	ex.role = HTTP_ROLE_SERVER;
	snprintf(ex.method, sizeof(ex.method), "%s", method);
	ex.target = ex.path = path;
	ex.query = "";
	ex.host = host;
	ex.status = status;
	ex.req.body = ex.resp.body = (const uint8_t *)"";
	if (user) {
		hdr = (struct http_header){"X-User-Id", user};
		ex.req.headers[0] = hdr;
		ex.req.n_headers = 1;
	}
	return ex;
}

static void test_failures(void **state)
{
	struct fx f = {0};
	struct rules *r;
	struct http_exchange ex;

	(void)state;
	f.p = pseudonymizer_new("salt", NULL, NULL, 0);
	assert_non_null(f.p);
	f.env = (struct rules_env){f.p, {sink_fn, &f}};
	r = rules_load_buffer("t.yaml", rules_text, strlen(rules_text), NULL, diag_fn, &f);
	assert_string_equal(f.diags, "");
	assert_non_null(r);

	/* A success: the event, no failure. */
	ex = exchange("POST", "/api/checkout", "app.example.com", 201, "u1");
	rules_eval(r, &f.env, &ex, WALL_NS);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kind[0], BIZ_RULE_EVENT);

	/* A 503 on that route: checkout's status does not match, its sentry key reports the
	 * failure; checkout_failed (no key) is an ordinary event. Events first, then failures. */
	f.n = 0;
	ex = exchange("POST", "/api/checkout/", "app.example.com", 503, "u1");
	rules_eval(r, &f.env, &ex, WALL_NS);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.kind[0], BIZ_RULE_EVENT);
	assert_string_equal(f.text[0], "checkout_failed||user");
	assert_int_equal(f.kind[1], BIZ_RULE_FAILURE);
	assert_string_equal(f.text[1], "-|event=checkout,component=payment_handler,"
				       "feature=stripe_integration,funnel=subscription_signup,"
				       "endpoint=/api/checkout,method=POST,status=503|user");

	/* 4xx, 3xx: not a failure of the app. */
	f.n = 0;
	ex = exchange("POST", "/api/checkout", "app.example.com", 400, NULL);
	rules_eval(r, &f.env, &ex, WALL_NS);
	assert_int_equal(f.n, 0);

	/* A key with only a component; the route's param is templated by the route itself. */
	ex = exchange("PUT", "/api/content/8f14e45f", "app.example.com:8443", 500, NULL);
	rules_eval(r, &f.env, &ex, WALL_NS);
	assert_int_equal(f.n, 2);
	assert_int_equal(f.kind[0], BIZ_RULE_EVENT); /* upload has no status condition */
	assert_int_equal(f.kind[1], BIZ_RULE_FAILURE);
	assert_string_equal(f.text[1], "-|event=upload,component=uploads,feature=,funnel=,"
				       "endpoint=/api/content/{id},method=PUT,status=500|-");

	/* Another host, another method, a client exchange: no failure. */
	f.n = 0;
	ex = exchange("PUT", "/api/content/1", "other.example.com", 500, NULL);
	rules_eval(r, &f.env, &ex, WALL_NS);
	ex = exchange("DELETE", "/api/content/1", "app.example.com", 500, NULL);
	rules_eval(r, &f.env, &ex, WALL_NS);
	ex = exchange("PUT", "/api/content/1", "app.example.com", 500, NULL);
	ex.role = HTTP_ROLE_CLIENT;
	rules_eval(r, &f.env, &ex, WALL_NS);
	/* A route whose event has no key. */
	ex = exchange("GET", "/api/search", "app.example.com", 500, NULL);
	rules_eval(r, &f.env, &ex, WALL_NS);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kind[0], BIZ_RULE_EVENT);
	rules_free(r);
	pseudonymizer_free(f.p);
}

static void expect_load(const char *sentry_line, const char *want)
{
	char text[1024];
	struct fx f = {0};
	struct rules *r;

	snprintf(text, sizeof(text),
		 "version: 1\nevents:\n  - name: a\n    when: {route: /a}\n%s\n", sentry_line);
	r = rules_load_buffer("t.yaml", text, strlen(text), NULL, diag_fn, &f);
	assert_string_equal(f.diags, want);
	if (want[0])
		assert_null(r);
	else
		assert_non_null(r);
	rules_free(r);
}

static void test_load_errors(void **state)
{
	(void)state;
	expect_load("    sentry: {component: a, feature: b.c, funnel: d-e_2}", "");
	expect_load("    sentry: {}", "");
	expect_load("    sentry: payments",
		    "5:13: sentry must be a mapping such as {component: payment_handler, feature: "
		    "stripe_integration, funnel: subscription_signup}\n");
	expect_load("    sentry: {component: a, team: b}",
		    "5:28: unknown key 'team' in sentry (expected component, feature, funnel)\n");
	expect_load("    sentry: {component: 'a b', funnel: [x]}",
		    "5:25: sentry component must be a word of letters, digits, _ . or -\n"
		    "5:40: sentry funnel must be a string\n");
	expect_load("    sentry: {feature: ''}",
		    "5:23: sentry feature must be a word of letters, digits, _ . or -\n");
	expect_load("    sentry: {feature: "
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
		    "5:23: sentry feature is longer than 64 bytes\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failures),
	    cmocka_unit_test(test_load_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
