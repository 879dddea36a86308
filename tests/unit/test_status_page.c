// SPDX-License-Identifier: MIT
/* The status page (src/export/status_page.c and its HTTP side in metrics_server.c): the login's
 * token check, throttling and input bounds, the session cookie, the JSON of /api/status against
 * a registry built here, and the login -> cookie -> /api/status flow on a real libmicrohttpd
 * daemon fetched with raw sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bizprobe/metrics_server.h"
#include "bizprobe/status_page.h"

#define T0 1800000000 /* a minute's start: 1800000000 / 60 is whole */

static const char *session_of(struct status_auth *a, char *buf, size_t size)
{
	char *semi;

	assert_int_equal(status_auth_set_cookie(a, false, buf, size), 0);
	semi = strchr(buf, ';');
	assert_non_null(semi);
	*semi = '\0';
	return buf; /* "bizprobe_session=<hex>" */
}

static void test_login(void **state)
{
	struct status_auth *a = status_auth_new("s3cr+t&token=x");
	uint64_t counts[4];
	char big[STATUS_LOGIN_BODY_MAX + 2];
	char tok[STATUS_TOKEN_MAX + 20];

	assert_null(status_auth_new(NULL));
	assert_null(status_auth_new(""));
	assert_non_null(a);
	/* The form encodes what it sends: the token is compared decoded. */
	assert_int_equal(status_auth_login(a, "token=s3cr%2Bt%26token%3Dx", 26, T0),
			 STATUS_LOGIN_OK);
	assert_int_equal(status_auth_login(a, "a=1&token=s3cr%2Bt%26token%3Dx&b=2", 34, T0),
			 STATUS_LOGIN_OK);
	assert_int_equal(status_auth_login(a, "token=s3cr+t&token=x", 20, T0),
			 STATUS_LOGIN_REFUSED);
	assert_int_equal(status_auth_login(a, "token=s3cr%2Bt%26token%3D", 25, T0),
			 STATUS_LOGIN_REFUSED);
	/* len bounds what is read: the right token past len does not count. */
	assert_int_equal(status_auth_login(a, "token=s3cr%2Bt%26token%3Dx", 20, T0),
			 STATUS_LOGIN_REFUSED);
	assert_int_equal(status_auth_login(a, "tok=s3cr", 8, T0), STATUS_LOGIN_MALFORMED);
	assert_int_equal(status_auth_login(a, "token=", 6, T0), STATUS_LOGIN_MALFORMED);
	assert_int_equal(status_auth_login(a, NULL, 0, T0), STATUS_LOGIN_MALFORMED);
	memset(big, 'a', sizeof(big));
	memcpy(big, "token=", 6);
	assert_int_equal(status_auth_login(a, big, sizeof(big), T0), STATUS_LOGIN_MALFORMED);
	memset(tok, 'b', sizeof(tok));
	memcpy(tok, "token=", 6);
	assert_int_equal(status_auth_login(a, tok, sizeof(tok), T0), STATUS_LOGIN_MALFORMED);
	status_auth_counts(a, counts);
	assert_int_equal(counts[STATUS_LOGIN_OK], 2);
	assert_int_equal(counts[STATUS_LOGIN_REFUSED], 3);
	assert_int_equal(counts[STATUS_LOGIN_MALFORMED], 5);
	status_auth_free(a);
}

static void test_throttle(void **state)
{
	struct status_auth *a = status_auth_new("right");
	uint64_t counts[4];

	for (unsigned i = 0; i < STATUS_LOGIN_FAILURES_PER_MIN; i++)
		assert_int_equal(status_auth_login(a, "token=wrong", 11, T0 + 5),
				 STATUS_LOGIN_REFUSED);
	/* The budget is spent: even the right token waits for the next minute. */
	assert_int_equal(status_auth_login(a, "token=right", 11, T0 + 59), STATUS_LOGIN_THROTTLED);
	assert_int_equal(status_auth_login(a, "token=right", 11, T0 + 60), STATUS_LOGIN_OK);
	status_auth_counts(a, counts);
	assert_int_equal(counts[STATUS_LOGIN_THROTTLED], 1);
	status_auth_free(a);
}

static void test_session_cookie(void **state)
{
	struct status_auth *a = status_auth_new("tok"), *b = status_auth_new("tok");
	char cookie[256], hdr[512], other[256], *huge;
	const char *mine = session_of(a, cookie, sizeof(cookie));

	/* One random value per process (here: per status_auth), never the token. */
	assert_int_equal(strlen(mine), sizeof(STATUS_COOKIE_NAME) + STATUS_SESSION_HEX_LEN);
	assert_int_equal(strspn(mine + sizeof(STATUS_COOKIE_NAME), "0123456789abcdef"),
			 STATUS_SESSION_HEX_LEN);
	assert_string_not_equal(mine, session_of(b, other, sizeof(other)));
	assert_true(status_auth_session_ok(a, mine));
	assert_false(status_auth_session_ok(b, mine));
	snprintf(hdr, sizeof(hdr), "theme=dark; %s; lang=en", mine);
	assert_true(status_auth_session_ok(a, hdr));
	snprintf(hdr, sizeof(hdr), "%s=stale;%s", STATUS_COOKIE_NAME, mine);
	assert_true(status_auth_session_ok(a, hdr));
	snprintf(hdr, sizeof(hdr), "x%s", mine); /* another cookie's name ending in ours */
	assert_false(status_auth_session_ok(a, hdr));
	snprintf(hdr, sizeof(hdr), "%s0", mine); /* one digit too many */
	assert_false(status_auth_session_ok(a, hdr));
	snprintf(hdr, sizeof(hdr), "%.*s", (int)strlen(mine) - 1, mine);
	assert_false(status_auth_session_ok(a, hdr));
	assert_false(status_auth_session_ok(a, STATUS_COOKIE_NAME "=tok"));
	assert_false(status_auth_session_ok(a, ""));
	assert_false(status_auth_session_ok(a, NULL));
	assert_false(status_auth_session_ok(NULL, mine));
	/* A Cookie header past the bound is no session, even holding the right value. */
	huge = malloc(STATUS_COOKIE_HEADER_MAX + 200);
	memset(huge, 'a', STATUS_COOKIE_HEADER_MAX);
	snprintf(huge + STATUS_COOKIE_HEADER_MAX - 10, 200, "; %s", mine);
	assert_false(status_auth_session_ok(a, huge));
	free(huge);

	assert_int_equal(status_auth_set_cookie(a, true, cookie, sizeof(cookie)), 0);
	assert_non_null(
	    strstr(cookie, "; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict; Secure"));
	assert_int_equal(status_auth_set_cookie(a, true, cookie, 20), -ENOSPC);
	assert_string_equal(status_auth_clear_cookie(false),
			    "bizprobe_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
	status_auth_free(a);
	status_auth_free(b);
}

static void test_login_page_and_assets(void **state)
{
	char *page = status_login_page("Wrong token.");
	char *plain = status_login_page(NULL);

	assert_non_null(strstr(page, "<p class=\"error\" id=\"login-error\" role=\"alert\">"
				     "Wrong token.</p>"));
	assert_null(strstr(page, "<!--MESSAGE-->"));
	assert_non_null(strstr(page, "<form id=\"login-form\" method=\"post\" action=\"/login\""));
	assert_null(strstr(plain, "login-error"));
	assert_int_equal(strlen(plain), status_asset_login()->len);
	assert_non_null(strstr(status_asset_dashboard()->data, "<script src=\"/status.js\""));
	assert_string_equal(status_asset_find("/status.js")->content_type,
			    "text/javascript; charset=utf-8");
	assert_non_null(status_asset_find("/status.css"));
	assert_null(status_asset_find("/login"));
	assert_null(status_asset_find("/"));
	/* Nothing fetched from elsewhere. */
	assert_null(strstr(status_asset_dashboard()->data, "http"));
	assert_null(strstr(status_asset_find("/status.js")->data, "https://"));
	free(page);
	free(plain);
}

/* ---- /api/status on a registry of the business and self families ---- */

static struct metrics_family *family(struct metrics_registry *reg, const char *name,
				     enum metrics_type type, const char *const *labels, unsigned n)
{
	static const double buckets[] = {10, 100};
	struct metrics_family_opts o = {
	    .name = name, .help = "h", .type = type, .label_names = labels, .n_labels = n};
	struct metrics_family *f;

	if (type == METRICS_HISTOGRAM) {
		o.buckets = buckets;
		o.n_buckets = 2;
	}
	assert_int_equal(metrics_family_register(reg, &o, &f), 0);
	return f;
}

static unsigned fake_admin(const char *range, char **json, void *ctx)
{
	assert_string_equal(range, "30d");
	*json = strdup("{\"range\":\"30d\",\"summary\":{\"registrations\":4},\"daily\":[1,2]}");
	return 200;
}

static double num(json_object *root, const char *path)
{
	char buf[256], *save = NULL;
	json_object *o = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
		if (!json_object_object_get_ex(o, k, &o)) {
			fail_msg("%s: no %s", path, k);
		}
	}
	return json_object_get_double(o);
}

static void test_status_json(void **state)
{
	static const char *const status_cur[] = {"status", "currency"};
	static const char *const cur[] = {"currency"};
	static const char *const period_type[] = {"period", "user_type"};
	static const char *const reason[] = {"reason"};
	struct metrics_registry *reg = metrics_registry_new();
	struct recent_events *re = recent_events_new();
	struct metrics_family *pay, *amounts, *mrr, *active, *lost, *traced;
	struct status_sources src = {.reg = reg, .ns = "shop", .recent = re, .admin = fake_admin};
	struct business_event ev = {.kind = BIZ_PAYMENT_ATTEMPT,
				    .name = "payment_succeeded",
				    .labels = {{"status", "succeeded"}, {"code", ""}},
				    .n_labels = 2,
				    .user = "feedfeedfeedfeed",
				    .wall_ns = (uint64_t)T0 * 1000000000ull};
	json_object *root, *o, *e;
	char *json;

	pay = family(reg, "shop_payment_attempts_total", METRICS_COUNTER, status_cur, 2);
	amounts = family(reg, "shop_payment_amounts", METRICS_HISTOGRAM, cur, 1);
	mrr = family(reg, "shop_subscription_revenue", METRICS_GAUGE, cur, 1);
	active = family(reg, "shop_active_users", METRICS_GAUGE, period_type, 2);
	lost = family(reg, "bizprobe_events_lost_total", METRICS_COUNTER, reason, 1);
	traced = family(reg, "bizprobe_traced_processes", METRICS_GAUGE, NULL, 0);
	/* Another namespace's family of the same suffix is not ours. */
	family(reg, "other_payment_attempts_total", METRICS_COUNTER, status_cur, 2);
	metrics_add(pay, (const char *[]){"succeeded", "USD"}, 3);
	metrics_add(pay, (const char *[]){"succeeded", "EUR"}, 2);
	metrics_add(pay, (const char *[]){"failed", "USD"}, 1);
	metrics_observe(amounts, (const char *[]){"USD"}, 25);
	metrics_observe(amounts, (const char *[]){"USD"}, 4.99);
	metrics_set(mrr, (const char *[]){"USD"}, 9.99);
	metrics_set(active, (const char *[]){"24h", "total"}, 7);
	metrics_set(active, (const char *[]){"24h", "free"}, 3);
	metrics_add(lost, (const char *[]){"ringbuf_full"}, 2);
	metrics_add(lost, (const char *[]){"copy"}, 1);
	metrics_set(traced, NULL, 0);
	recent_events_on_event(re, &ev);

	assert_int_equal(status_page_json(&src, T0 + 5, &json), 0);
	root = json_tokener_parse(json);
	assert_non_null(root);
	assert_true(num(root, "payments.total") == 6);
	assert_true(num(root, "payments.succeeded") == 5);
	assert_true(num(root, "payments.failed") == 1);
	assert_true(num(root, "payments.success_rate") == 5.0 / 6 * 100);
	assert_true(num(root, "payments.by_status.succeeded") == 5);
	assert_true(num(root, "revenue.USD.amount") == 25 + 4.99);
	assert_true(num(root, "revenue.USD.payments") == 2);
	assert_true(num(root, "mrr.USD") == 9.99);
	assert_true(num(root, "users.active.24h") == 7);
	assert_true(num(root, "health.events_lost") == 3);
	assert_true(num(root, "health.traced_processes") == 0);
	assert_false(json_object_get_boolean(
	    json_object_object_get(json_object_object_get(root, "health"), "attached")));
	/* Families that do not exist: no figure at all, not a made-up 0. */
	assert_false(
	    json_object_object_get_ex(json_object_object_get(root, "users"), "registrations", &o));
	assert_false(json_object_object_get_ex(json_object_object_get(root, "health"),
					       "http_parse_errors", &o));
	/* The admin summary, without its per-day tables. */
	assert_true(num(root, "summary.summary.registrations") == 4);
	assert_false(
	    json_object_object_get_ex(json_object_object_get(root, "summary"), "daily", &o));
	/* The event: name, non-empty labels, time; no user. */
	assert_true(num(root, "events_seen") == 1);
	e = json_object_array_get_idx(json_object_object_get(root, "events"), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "name")),
			    "payment_succeeded");
	assert_int_equal(json_object_object_length(json_object_object_get(e, "labels")), 1);
	assert_true(num(e, "time_ms") == (double)T0 * 1000);
	assert_null(strstr(json, "feedfeed"));
	o = json_object_object_get(json_object_object_get(root, "history"), "payments_succeeded");
	assert_int_equal(json_object_array_length(o), RECENT_EVENTS_BUCKETS);
	assert_int_equal(
	    json_object_get_int(json_object_array_get_idx(o, RECENT_EVENTS_BUCKETS - 1)), 1);
	json_object_put(root);
	free(json);

	/* No success rate without a payment; no summary without a handler. */
	src.admin = NULL;
	src.ns = "nothing";
	assert_int_equal(status_page_json(&src, T0, &json), 0);
	root = json_tokener_parse(json);
	assert_true(json_object_object_get_ex(root, "summary", &o) && o == NULL);
	assert_false(
	    json_object_object_get_ex(json_object_object_get(root, "payments"), "total", &o));
	json_object_put(root);
	free(json);
	recent_events_free(re);
	metrics_registry_free(reg);
}

/* ---- the HTTP flow on a real daemon ---- */

static char *fetch(uint16_t port, const char *request)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char *buf = malloc(262144);
	size_t used = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((n = read(fd, buf + used, 262143 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(fd);
	return buf;
}

static char *post_login(uint16_t port, const char *body)
{
	char req[8192];

	snprintf(req, sizeof(req),
		 "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
		 "application/x-www-form-urlencoded\r\nContent-Length: %zu\r\nConnection: "
		 "close\r\n\r\n%s",
		 strlen(body), body);
	return fetch(port, req);
}

static char *get_with(uint16_t port, const char *path, const char *hdr)
{
	char req[1024];

	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%sConnection: close\r\n\r\n", path,
		 hdr ? hdr : "", hdr ? "\r\n" : "");
	return fetch(port, req);
}

static void test_http_flow(void **state)
{
	struct metrics_registry *reg = metrics_registry_new();
	struct metrics_server *srv = NULL;
	struct metrics_server_config cfg = {.listen = "127.0.0.1:0", .admin_token = "adm1n"};
	char *r, *sc, cookie[256], big[6000];
	uint16_t port;

	assert_int_equal(metrics_server_start(reg, &cfg, &srv), 0);
	port = metrics_server_port(srv);
	r = get_with(port, "/", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strstr(r, "id=\"login-form\""));
	free(r);
	r = get_with(port, "/api/status", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	free(r);
	r = post_login(port, "token=wrong");
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	assert_null(strcasestr(r, "Set-Cookie"));
	assert_non_null(strstr(r, "Wrong token."));
	free(r);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "token=", 6);
	r = post_login(port, big);
	assert_true(!strncmp(r, "HTTP/1.1 413", 12));
	free(r);
	/* A chunked body is bounded the same way, and read whole when it fits. */
	r = fetch(port, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: "
			"application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n"
			"Connection: close\r\n\r\n6\r\ntoken=\r\n5\r\nadm1n\r\n0\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.1 303", 12));
	free(r);
	r = fetch(port, "POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
			"Connection: close\r\n\r\ntoken=adm1n");
	assert_true(!strncmp(r, "HTTP/1.1 415", 12)); /* not a form */
	free(r);
	r = post_login(port, "token=adm1n");
	assert_true(!strncmp(r, "HTTP/1.1 303", 12));
	assert_non_null(strcasestr(r, "\r\nLocation: /\r\n"));
	sc = strcasestr(r, "\r\nSet-Cookie: ");
	assert_non_null(sc);
	sc += strlen("\r\nSet-Cookie: ");
	assert_null(strstr(r, "adm1n"));
	snprintf(cookie, sizeof(cookie), "Cookie: %.*s", (int)strcspn(sc, ";"), sc);
	free(r);
	r = get_with(port, "/", cookie);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strstr(r, "id=\"dashboard\""));
	free(r);
	r = get_with(port, "/api/status", cookie);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strcasestr(r, "Cache-Control: no-store"));
	assert_non_null(strstr(r, "\"payments\":{"));
	free(r);
	r = get_with(port, "/api/status", "Authorization: Bearer adm1n");
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	free(r);
	/* No state handler: the admin API stays 404 while the page works. */
	r = get_with(port, "/api/admin/metrics", "Authorization: Bearer adm1n");
	assert_true(!strncmp(r, "HTTP/1.1 404", 12));
	free(r);
	r = fetch(port, "POST /logout HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
			"Connection: close\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.1 303", 12));
	assert_non_null(strstr(r, "bizprobe_session=; Path=/; Max-Age=0"));
	free(r);
	r = get_with(port, "/metrics", NULL);
	assert_non_null(strstr(r, "bizprobe_status_logins_total{outcome=\"refused\"} 1\n"));
	assert_non_null(strstr(r, "bizprobe_status_logins_total{outcome=\"malformed\"} 2\n"));
	assert_non_null(strstr(r, "bizprobe_status_logins_total{outcome=\"ok\"} 2\n"));
	free(r);
	metrics_server_stop(srv);

	/* Off without a token: a page that says so. */
	cfg.admin_token = NULL;
	assert_int_equal(metrics_server_start(reg, &cfg, &srv), 0);
	r = get_with(metrics_server_port(srv), "/", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 404", 12));
	assert_non_null(strstr(r, "ADMIN_API_TOKEN is not set"));
	free(r);
	metrics_server_stop(srv);
	metrics_registry_free(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_login),	   cmocka_unit_test(test_throttle),
	    cmocka_unit_test(test_session_cookie), cmocka_unit_test(test_login_page_and_assets),
	    cmocka_unit_test(test_status_json),	   cmocka_unit_test(test_http_flow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
