// SPDX-License-Identifier: MIT
/*
 * The Sentry reporter: an event's JSON and envelope against golden strings, DSNs, rate-limit
 * headers, templates; then the reporter whole with a transport and a clock of the test's own:
 * which failures become reports (a Stripe call once its retries are over, a rejected webhook, a
 * business route's 5xx) with which tags, nothing identifying in any of them, the token bucket,
 * the queue's bound, Sentry's 429 and rate limits honoured without a send before they expire.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bizprobe/metrics.h"
#include "bizprobe/sentry_reporter.h"

#define DSN "https://0123456789abcdef@o1.ingest.sentry.io/42"
#define T0  1764300000000ull /* the test clock's start, wall ms */

static void test_dsn_parse(void **state)
{
	struct sentry_dsn d;

	(void)state;
	assert_int_equal(sentry_dsn_parse(DSN, &d), 0);
	assert_string_equal(d.url, "https://o1.ingest.sentry.io/api/42/envelope/");
	assert_string_equal(d.public_key, "0123456789abcdef");
	assert_string_equal(d.host, "o1.ingest.sentry.io");
	assert_int_equal(sentry_dsn_parse("HTTP://pub:secret@127.0.0.1:9000/sentry/7", &d), 0);
	assert_string_equal(d.url, "http://127.0.0.1:9000/sentry/api/7/envelope/");
	assert_string_equal(d.public_key, "pub");
	assert_int_equal(sentry_dsn_parse("https://o1.ingest.sentry.io/42", &d), -EINVAL);
	assert_int_equal(sentry_dsn_parse("https://k@host/", &d), -EINVAL);
	assert_int_equal(sentry_dsn_parse("https://k@host/abc", &d), -EINVAL);
	assert_int_equal(sentry_dsn_parse("https://k@host", &d), -EINVAL);
	assert_int_equal(sentry_dsn_parse("https://k!@host/1", &d), -EINVAL);
	assert_int_equal(sentry_dsn_parse("file://k@host/1", &d), -EINVAL);
	assert_string_equal(d.public_key, "");
	assert_int_equal(sentry_dsn_parse(NULL, &d), -EINVAL);
}

static void test_words(void **state)
{
	static const struct {
		const char *path, *want;
	} paths[] = {
	    {"/webhooks/stripe", "/webhooks/stripe"},
	    {"/api/v1/users/42/orders/ord_8f14e45fceea167a?x=1", "/api/v1/users/{id}/orders/{id}"},
	    {"/hooks/3f2b9c1e-2a4d-4e1f-9a7b-1c2d3e4f5a6b/", "/hooks/{id}/"},
	    {"/pay/fan@example.com", "/pay/{id}"},
	    {"/", "/"},
	    {"", "other"},
	    {"x", "other"},
	};
	char out[129];

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		sentry_path_template(paths[i].path, out, sizeof(out));
		assert_string_equal(out, paths[i].want);
	}
	assert_string_equal(sentry_amount_band(0.5), "0-1");
	assert_string_equal(sentry_amount_band(25), "10-50");
	assert_string_equal(sentry_amount_band(50), "50-100");
	assert_string_equal(sentry_amount_band(1e6), "1000+");
	assert_string_equal(sentry_amount_band(-1), "");
	assert_string_equal(sentry_platform_of_comm("node"), "node");
	assert_string_equal(sentry_platform_of_comm("python3.11"), "python");
	assert_string_equal(sentry_platform_of_comm("nginx"), "other");
	assert_string_equal(sentry_platform_of_comm(NULL), "other");
}

static void test_rate_limit_headers(void **state)
{
	static const struct {
		long status;
		const char *retry_after, *limits;
		uint64_t want; /* ms after now; 0: not limited */
	} cases[] = {
	    {200, "", "", 0},
	    {429, "", "", 60000},
	    {429, "30", "", 30000},
	    {429, "0", "", 0 /* now + 0: blocked until now, i.e. not */},
	    {429, "99999999", "", 86400000},
	    {429, "soon", "", 60000},
	    {200, "", "60:error:organization", 60000},
	    {200, "", "60:transaction;session:key", 0},
	    {429, "5", "60:transaction:key, 120::organization", 120000},
	    {429, "5", "7:default;error:project:quota_exceeded:ns, 3:error:key", 7000},
	    {429, "5", "garbage", 5000},
	};
	struct sentry_http_response r;
	uint64_t now = T0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t got;

		memset(&r, 0, sizeof(r));
		r.status = cases[i].status;
		snprintf(r.retry_after, sizeof(r.retry_after), "%s", cases[i].retry_after);
		snprintf(r.rate_limits, sizeof(r.rate_limits), "%s", cases[i].limits);
		got = sentry_rate_limited_until(&r, now);
		if (i == 3)
			assert_int_equal(got, now);
		else
			assert_int_equal(got, cases[i].want ? now + cases[i].want : 0);
	}
	/* An HTTP date. */
	memset(&r, 0, sizeof(r));
	r.status = 429;
	snprintf(r.retry_after, sizeof(r.retry_after), "Fri, 28 Nov 2025 03:20:30 GMT");
	assert_int_equal(sentry_rate_limited_until(&r, 1764300000000ull), 1764300030000ull);
}

static struct sentry_report route_report(void)
{
	struct sentry_report r;

	memset(&r, 0, sizeof(r));
	snprintf(r.flow, sizeof(r.flow), "business_route");
	snprintf(r.business_event, sizeof(r.business_event), "checkout");
	snprintf(r.component, sizeof(r.component), "payment_handler");
	snprintf(r.feature, sizeof(r.feature), "stripe_integration");
	snprintf(r.funnel, sizeof(r.funnel), "subscription_signup");
	snprintf(r.endpoint, sizeof(r.endpoint), "/api/checkout");
	snprintf(r.method, sizeof(r.method), "POST");
	r.status = 503;
	snprintf(r.error_code, sizeof(r.error_code), "http_5xx");
	snprintf(r.user_type, sizeof(r.user_type), "fan");
	memset(r.user, 'a', PSEUDONYM_LEN - 1);
	snprintf(r.source, sizeof(r.source), "server");
	snprintf(r.platform, sizeof(r.platform), "node");
	r.wall_ns = 1764300000123456789ull;
	return r;
}

static void test_event_json_golden(void **state)
{
	static const char want[] =
	    "{\"event_id\":\"0123456789abcdef0123456789abcdef\",\"timestamp\":1764300000.123,"
	    "\"platform\":\"other\",\"level\":\"error\",\"logger\":\"bizprobe\","
	    "\"release\":\"bizprobe@0.1.0\",\"environment\":\"test\",\"message\":{\"formatted\":"
	    "\"Business flow checkout failed: POST /api/checkout answered 503\"},"
	    "\"tags\":{\"businessEvent\":\"checkout\",\"funnel\":\"subscription_signup\","
	    "\"component\":\"payment_handler\",\"feature\":\"stripe_integration\","
	    "\"endpoint\":\"/api/checkout\",\"method\":\"POST\",\"errorCode\":\"http_5xx\","
	    "\"userType\":\"fan\",\"source\":\"server\",\"platform\":\"node\","
	    "\"flow\":\"business_route\",\"status\":\"503\"},"
	    "\"contexts\":{\"business\":{\"businessEvent\":\"checkout\",\"funnel\":"
	    "\"subscription_signup\",\"component\":\"payment_handler\",\"feature\":"
	    "\"stripe_integration\",\"endpoint\":\"/api/checkout\",\"method\":\"POST\","
	    "\"errorCode\":\"http_5xx\",\"userType\":\"fan\",\"source\":\"server\",\"platform\":"
	    "\"node\",\"flow\":\"business_route\",\"status\":503}},"
	    "\"user\":{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"
	    ","
	    "\"fingerprint\":[\"bizprobe\",\"business_route\",\"checkout\",\"503\"],"
	    "\"sdk\":{\"name\":\"bizprobe\",\"version\":\"0.1.0\"}}";
	static const char want_env[] =
	    "{\"event_id\":\"0123456789abcdef0123456789abcdef\",\"sent_at\":"
	    "\"2025-11-28T03:20:00.123Z\",\"sdk\":{\"name\":\"bizprobe\",\"version\":\"0.1.0\"}}\n"
	    "{\"type\":\"event\",\"length\":2,\"content_type\":\"application/json\"}\n{}\n";
	struct sentry_report r = route_report();
	char *json, *env;
	size_t len;

	(void)state;
	assert_int_equal(sentry_report_event_json(&r, "0123456789abcdef0123456789abcdef",
						  "bizprobe@0.1.0", "test", "0.1.0", &json),
			 0);
	assert_string_equal(json, want);
	free(json);
	assert_int_equal(sentry_envelope_build("0123456789abcdef0123456789abcdef", "{}",
					       1764300000123ull, "0.1.0", &env, &len),
			 0);
	assert_string_equal(env, want_env);
	assert_int_equal(len, strlen(want_env));
	free(env);
}

/*
 * The reporter whole.
 */
#define MAX_SENT 64

struct fake {
	pthread_mutex_t lock;
	uint64_t now;
	unsigned calls;
	long status;
	char retry_after[64], limits[512];
	char bodies[MAX_SENT][8192];
	char auth[256];
	bool gate;    /* sends wait while set */
	bool waiting; /* a send waits at the gate */
	pthread_cond_t open;
};

static uint64_t fake_clock(void *ctx)
{
	struct fake *f = ctx;
	uint64_t t;

	pthread_mutex_lock(&f->lock);
	t = f->now;
	pthread_mutex_unlock(&f->lock);
	return t;
}

static int fake_send(void *ctx, const char *url, const char *auth, const char *body, size_t len,
		     struct sentry_http_response *resp)
{
	struct fake *f = ctx;

	assert_string_equal(url, "https://o1.ingest.sentry.io/api/42/envelope/");
	pthread_mutex_lock(&f->lock);
	while (f->gate) {
		f->waiting = true;
		pthread_cond_wait(&f->open, &f->lock);
	}
	assert_true(f->calls < MAX_SENT);
	assert_true(len < sizeof(f->bodies[0]));
	memcpy(f->bodies[f->calls], body, len);
	f->bodies[f->calls][len] = '\0';
	snprintf(f->auth, sizeof(f->auth), "%s", auth);
	f->calls++;
	resp->status = f->status;
	snprintf(resp->retry_after, sizeof(resp->retry_after), "%s", f->retry_after);
	snprintf(resp->rate_limits, sizeof(resp->rate_limits), "%s", f->limits);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

struct env {
	struct fake f;
	struct metrics_registry *reg;
	struct pseudonymizer *p;
	struct sentry_reporter *r;
};

static struct env *env_new(unsigned burst, double rate, unsigned queue_len)
{
	struct env *e = calloc(1, sizeof(*e));
	char err[256];
	struct sentry_reporter_config cfg = {
	    .dsn = DSN,
	    .burst = burst,
	    .rate_per_s = rate,
	    .queue_len = queue_len,
	    .retry_window_ms = 10000,
	    .environment = "test",
	    .version = "0.1.0",
	    .transport = fake_send,
	    .clock_ms = fake_clock,
	};

	assert_non_null(e);
	pthread_mutex_init(&e->f.lock, NULL);
	pthread_cond_init(&e->f.open, NULL);
	e->f.now = T0;
	e->f.status = 200;
	e->reg = metrics_registry_new();
	e->p = pseudonymizer_new("test-salt", NULL, NULL, 0);
	cfg.reg = e->reg;
	cfg.pseudonymizer = e->p;
	cfg.transport_ctx = &e->f;
	cfg.clock_ctx = &e->f;
	e->r = sentry_reporter_new(&cfg, err, sizeof(err));
	assert_non_null(e->r);
	return e;
}

static void env_free(struct env *e)
{
	sentry_reporter_free(e->r, 1000);
	pseudonymizer_free(e->p);
	metrics_registry_free(e->reg);
	free(e);
}

static void advance(struct env *e, uint64_t ms)
{
	pthread_mutex_lock(&e->f.lock);
	e->f.now += ms;
	pthread_mutex_unlock(&e->f.lock);
}

static double dropped(struct env *e, const char *reason)
{
	double v = -1;

	assert_int_equal(
	    metrics_get(metrics_registry_find(e->reg, "bizprobe_sentry_reports_dropped_total"),
			(const char *const[]){reason}, &v),
	    0);
	return v;
}

static double sent(struct env *e)
{
	double v = -1;

	assert_int_equal(
	    metrics_get(metrics_registry_find(e->reg, "bizprobe_sentry_reports_sent_total"), NULL,
			&v),
	    0);
	return v;
}

/* A tag of a sent report, "" when absent. */
static const char *tag(struct env *e, unsigned i, const char *name, char *out, size_t size)
{
	const char *body = e->f.bodies[i], *payload;
	struct json_object *ev, *tags, *v;

	/* The third line is the event. */
	payload = strchr(strchr(body, '\n') + 1, '\n') + 1;
	ev = json_tokener_parse(payload);
	assert_non_null(ev);
	out[0] = '\0';
	if (!strcmp(name, "user.id")) {
		if (json_object_object_get_ex(ev, "user", &v) &&
		    json_object_object_get_ex(v, "id", &v))
			snprintf(out, size, "%s", json_object_get_string(v));
	} else if (!strcmp(name, "fingerprint")) {
		json_object_object_get_ex(ev, "fingerprint", &v);
		snprintf(out, size, "%s",
			 json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (!strcmp(name, "attempts")) {
		json_object_object_get_ex(ev, "contexts", &v);
		json_object_object_get_ex(v, "business", &v);
		if (json_object_object_get_ex(v, "attempts", &v))
			snprintf(out, size, "%d", json_object_get_int(v));
	} else if (json_object_object_get_ex(ev, "tags", &tags) &&
		   json_object_object_get_ex(tags, name, &v)) {
		snprintf(out, size, "%s", json_object_get_string(v));
	}
	json_object_put(ev);
	return out;
}

#define TAG(e, i, name) tag(e, i, name, tagbuf, sizeof(tagbuf))

/* What no report may carry: the app's secret key, the payer's raw id and e-mail, the card, the
 * DSN's key (it goes in the auth header, never in a body). */
static void scan(struct env *e)
{
	static const char *const secrets[] = {
	    "sk_test_",	   "fan_42", "fan@example.com", "4242424242424242", "0123456789abcdef@",
	    "Idempotency", "idem-"};

	for (unsigned i = 0; i < e->f.calls; i++)
		for (size_t k = 0; k < sizeof(secrets) / sizeof(secrets[0]); k++)
			assert_null(strstr(e->f.bodies[i], secrets[k]));
}

static struct http_exchange stripe_call(int status, const char *idem, const char *resp_body)
{
	static struct http_header req_h[2], resp_h[1];
	static const char form[] = "amount=2500&currency=usd&metadata[fan_id]=fan_42&receipt_email="
				   "fan%40example.com&payment_method_data[card][number]="
				   "4242424242424242";
	struct http_exchange ex;

	memset(&ex, 0, sizeof(ex));
	ex.conn.pid = 77;
	snprintf(ex.conn.comm, sizeof(ex.conn.comm), "node");
	ex.role = HTTP_ROLE_CLIENT;
	snprintf(ex.method, sizeof(ex.method), "POST");
	ex.target = ex.path = "/v1/payment_intents";
	ex.query = "";
	ex.host = "api.stripe.com";
	ex.status = status;
	req_h[0] = (struct http_header){"Authorization", "Bearer sk_test_abcdefghijklmnop"};
	req_h[1] = (struct http_header){"Idempotency-Key", idem};
	ex.req.headers[0] = req_h[0];
	ex.req.headers[1] = req_h[1];
	ex.req.n_headers = idem ? 2 : 1;
	ex.req.body = (const uint8_t *)form;
	ex.req.body_len = sizeof(form) - 1;
	resp_h[0] = (struct http_header){"Content-Type", "application/json"};
	ex.resp.headers[0] = resp_h[0];
	ex.resp.n_headers = 1;
	ex.resp.body = (const uint8_t *)resp_body;
	ex.resp.body_len = strlen(resp_body);
	return ex;
}

/* What the Stripe semantics emit for an API exchange (labels endpoint, method, code). */
static void feed_stripe(struct env *e, const struct http_exchange *ex)
{
	char code[8];
	struct business_event ev = {.kind = BIZ_STRIPE_API_REQUEST, .n_labels = 3};

	snprintf(code, sizeof(code), "%d", ex->status);
	ev.labels[0] = (struct biz_label){"endpoint", "/v1/payment_intents"};
	ev.labels[1] = (struct biz_label){"method", "POST"};
	ev.labels[2] = (struct biz_label){"code", code};
	ev.wall_ns = e->f.now * 1000000ull;
	sentry_reporter_begin(e->r, ex);
	sentry_reporter_on_event(&ev, e->r);
	sentry_reporter_end(e->r);
}

static const char api_error[] =
    "{\"error\":{\"type\":\"api_error\",\"message\":\"An unknown error occurred\"}}";

static void test_stripe_final_attempt(void **state)
{
	struct env *e = env_new(10, 1, 16);
	struct sentry_reporter_stats st;
	struct http_exchange ex;
	char tagbuf[512], want_user[PSEUDONYM_LEN];

	(void)state;
	/* Three attempts under one key, the SDK's retries: one report, after the window. */
	ex = stripe_call(500, "idem-1", api_error);
	feed_stripe(e, &ex);
	advance(e, 600);
	feed_stripe(e, &ex);
	advance(e, 1200);
	feed_stripe(e, &ex);
	advance(e, 9000);
	sentry_reporter_tick(e->r);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 0); /* 9 s after the last attempt: it may still retry */
	/* A retry that succeeds cancels its call's failure; a decline is not reported. */
	ex = stripe_call(503, "idem-2", api_error);
	feed_stripe(e, &ex);
	ex = stripe_call(200, "idem-2", "{\"object\":\"payment_intent\"}");
	feed_stripe(e, &ex);
	ex = stripe_call(402, "idem-3",
			 "{\"error\":{\"type\":\"card_error\",\"code\":\"card_declined\"}}");
	feed_stripe(e, &ex);
	/* A 429 without a key: its own call. */
	ex = stripe_call(429, NULL,
			 "{\"error\":{\"type\":\"invalid_request_error\",\"code\":"
			 "\"rate_limit\"}}");
	feed_stripe(e, &ex);
	advance(e, 1500);
	sentry_reporter_tick(e->r);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 1);
	assert_string_equal(TAG(e, 0, "flow"), "stripe_api");
	assert_string_equal(TAG(e, 0, "businessEvent"), "payment_processing");
	assert_string_equal(TAG(e, 0, "component"), "stripe_api");
	assert_string_equal(TAG(e, 0, "feature"), "stripe_integration");
	assert_string_equal(TAG(e, 0, "endpoint"), "/v1/payment_intents");
	assert_string_equal(TAG(e, 0, "status"), "500");
	assert_string_equal(TAG(e, 0, "errorCode"), "api_error");
	assert_string_equal(TAG(e, 0, "errorType"), "api_error");
	assert_string_equal(TAG(e, 0, "currency"), "USD");
	assert_string_equal(TAG(e, 0, "amountBand"), "10-50");
	assert_string_equal(TAG(e, 0, "source"), "api");
	assert_string_equal(TAG(e, 0, "platform"), "node");
	assert_string_equal(TAG(e, 0, "attempts"), "3");
	assert_string_equal(TAG(e, 0, "fingerprint"),
			    "[\"bizprobe\",\"stripe_api\",\"/v1/payment_intents\",\"500\","
			    "\"api_error\"]");
	pseudonymize(e->p, "fan_42", 6, want_user);
	assert_string_equal(TAG(e, 0, "user.id"), want_user);
	/* The key goes in the auth header alone. */
	assert_string_equal(e->f.auth, "X-Sentry-Auth: Sentry sentry_version=7, "
				       "sentry_key=0123456789abcdef, sentry_client=bizprobe/0.1.0");
	/* The 429's window ends 10 s after it. */
	advance(e, 9000);
	sentry_reporter_tick(e->r);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 2);
	assert_string_equal(TAG(e, 1, "status"), "429");
	assert_string_equal(TAG(e, 1, "errorCode"), "rate_limit");
	sentry_reporter_get_stats(e->r, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(sent(e), 2);
	scan(e);
	env_free(e);
}

static void feed_webhook(struct env *e, int app_status, const char *type)
{
	struct http_exchange ex;
	struct business_event ev = {.kind = BIZ_WEBHOOK_DELIVERY, .n_labels = 2};

	memset(&ex, 0, sizeof(ex));
	snprintf(ex.conn.comm, sizeof(ex.conn.comm), "python3");
	ex.role = HTTP_ROLE_SERVER;
	snprintf(ex.method, sizeof(ex.method), "POST");
	ex.target = ex.path = "/hooks/stripe/acct_1234567";
	ex.query = "";
	ex.status = app_status;
	ev.labels[0] = (struct biz_label){"type", type};
	ev.labels[1] = (struct biz_label){"outcome", "rejected"};
	sentry_reporter_begin(e->r, &ex);
	sentry_reporter_on_event(&ev, e->r);
	ev.labels[1].value = "processed";
	sentry_reporter_on_event(&ev, e->r);
	sentry_reporter_end(e->r);
}

static void test_webhooks_and_routes(void **state)
{
	struct env *e = env_new(10, 1, 16);
	struct business_event ev = {.kind = BIZ_RULE_FAILURE, .n_labels = 7};
	char tagbuf[512], user[PSEUDONYM_LEN];

	(void)state;
	feed_webhook(e, 400, "payment_intent.succeeded");
	feed_webhook(e, 200, "other");
	memset(user, 'b', PSEUDONYM_LEN - 1);
	user[PSEUDONYM_LEN - 1] = '\0';
	ev.labels[0] = (struct biz_label){"event", "checkout"};
	ev.labels[1] = (struct biz_label){"component", "payment_handler"};
	ev.labels[2] = (struct biz_label){"feature", ""};
	ev.labels[3] = (struct biz_label){"funnel", "subscription_signup"};
	ev.labels[4] = (struct biz_label){"endpoint", "/api/checkout"};
	ev.labels[5] = (struct biz_label){"method", "POST"};
	ev.labels[6] = (struct biz_label){"status", "503"};
	ev.user = user;
	ev.user_type = "creator";
	sentry_reporter_on_event(&ev, e->r); /* outside an exchange: still a report */
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 3);
	assert_string_equal(TAG(e, 0, "flow"), "stripe_webhook");
	assert_string_equal(TAG(e, 0, "webhookType"), "payment_intent.succeeded");
	assert_string_equal(TAG(e, 0, "endpoint"), "/hooks/stripe/{id}");
	assert_string_equal(TAG(e, 0, "errorCode"), "app_refused");
	assert_string_equal(TAG(e, 0, "status"), "400");
	assert_string_equal(TAG(e, 0, "platform"), "python");
	assert_string_equal(TAG(e, 0, "source"), "webhook");
	assert_string_equal(TAG(e, 1, "errorCode"), "bad_signature");
	assert_string_equal(TAG(e, 1, "fingerprint"),
			    "[\"bizprobe\",\"stripe_webhook\",\"other\",\"bad_signature\"]");
	assert_string_equal(TAG(e, 2, "flow"), "business_route");
	assert_string_equal(TAG(e, 2, "businessEvent"), "checkout");
	assert_string_equal(TAG(e, 2, "funnel"), "subscription_signup");
	assert_string_equal(TAG(e, 2, "feature"), ""); /* not given: absent, not "" */
	assert_string_equal(TAG(e, 2, "userType"), "creator");
	assert_string_equal(TAG(e, 2, "user.id"), user);
	assert_string_equal(TAG(e, 2, "platform"), "other");
	assert_null(strstr(e->f.bodies[2], "\"feature\""));
	scan(e);
	env_free(e);
}

static void rule_failure(struct env *e)
{
	struct business_event ev = {.kind = BIZ_RULE_FAILURE, .n_labels = 7};

	ev.labels[0] = (struct biz_label){"event", "checkout"};
	ev.labels[1] = (struct biz_label){"component", "c"};
	ev.labels[2] = (struct biz_label){"feature", "f"};
	ev.labels[3] = (struct biz_label){"funnel", "u"};
	ev.labels[4] = (struct biz_label){"endpoint", "/api/checkout"};
	ev.labels[5] = (struct biz_label){"method", "POST"};
	ev.labels[6] = (struct biz_label){"status", "500"};
	sentry_reporter_on_event(&ev, e->r);
}

static void test_token_bucket(void **state)
{
	struct env *e = env_new(3, 1, 16);

	(void)state;
	for (int i = 0; i < 5; i++)
		rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 3);
	assert_int_equal(dropped(e, "rate_limit"), 2);
	/* One token a second. */
	advance(e, 1000);
	rule_failure(e);
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 4);
	assert_int_equal(dropped(e, "rate_limit"), 3);
	assert_int_equal(sent(e), 4);
	env_free(e);
}

/* Sentry's 429: the report is dropped, and nothing is sent until Retry-After has passed, not even
 * reports queued before the answer came. */
static void test_sentry_429(void **state)
{
	struct env *e = env_new(100, 100, 16);

	(void)state;
	e->f.status = 429;
	snprintf(e->f.retry_after, sizeof(e->f.retry_after), "30");
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 1);
	assert_int_equal(dropped(e, "sentry_rate_limited"), 1);
	e->f.status = 200;
	e->f.retry_after[0] = '\0';
	for (int i = 0; i < 4; i++) {
		advance(e, 7000); /* up to 28 s after the 429 */
		rule_failure(e);
	}
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 1);
	assert_int_equal(dropped(e, "sentry_rate_limited"), 5);
	advance(e, 2000); /* 30 s */
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 2);
	assert_int_equal(sent(e), 1);

	/* A rate limit on a 200: honoured as well, for the categories that hold errors. */
	snprintf(e->f.limits, sizeof(e->f.limits), "60:transaction:key, 20:error;default:org");
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	e->f.limits[0] = '\0';
	advance(e, 19999);
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 3);
	advance(e, 1);
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 4);
	assert_int_equal(dropped(e, "sentry_rate_limited"), 6);

	/* Other answers. */
	e->f.status = 400;
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	e->f.status = 502;
	rule_failure(e);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(dropped(e, "rejected"), 1);
	assert_int_equal(dropped(e, "send_failed"), 1);
	env_free(e);
}

/* The queue is bounded: a send that hangs never makes the main loop wait or grow. */
static void test_queue_bound_and_shutdown(void **state)
{
	struct env *e = env_new(100, 100, 2);
	struct http_exchange ex;

	(void)state;
	pthread_mutex_lock(&e->f.lock);
	e->f.gate = true;
	pthread_mutex_unlock(&e->f.lock);
	rule_failure(e); /* taken by the thread, which waits at the gate */
	for (bool waiting = false; !waiting;) {
		pthread_mutex_lock(&e->f.lock);
		waiting = e->f.waiting;
		pthread_mutex_unlock(&e->f.lock);
	}
	rule_failure(e);
	rule_failure(e);
	rule_failure(e);
	assert_int_equal(dropped(e, "queue_full"), 1);
	pthread_mutex_lock(&e->f.lock);
	e->f.gate = false;
	pthread_cond_broadcast(&e->f.open);
	pthread_mutex_unlock(&e->f.lock);
	assert_int_equal(sentry_reporter_flush(e->r, 5000), 0);
	assert_int_equal(e->f.calls, 3);
	/* A failed Stripe call still in its window is reported at shutdown. */
	ex = stripe_call(500, "idem-9", api_error);
	feed_stripe(e, &ex);
	sentry_reporter_free(e->r, 5000);
	e->r = NULL;
	assert_int_equal(e->f.calls, 4);
	assert_null(strstr(e->f.bodies[3], "\"business_route\""));
	pseudonymizer_free(e->p);
	metrics_registry_free(e->reg);
	free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dsn_parse),
	    cmocka_unit_test(test_words),
	    cmocka_unit_test(test_rate_limit_headers),
	    cmocka_unit_test(test_event_json_golden),
	    cmocka_unit_test(test_stripe_final_attempt),
	    cmocka_unit_test(test_webhooks_and_routes),
	    cmocka_unit_test(test_token_bucket),
	    cmocka_unit_test(test_sentry_429),
	    cmocka_unit_test(test_queue_bound_and_shutdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
