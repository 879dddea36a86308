// SPDX-License-Identifier: MIT
/* The trace view's line formats, against golden strings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/trace_format.h"

/* 2026-11-28T05:00:01.250000Z */
#define WALL_NS 1795842001250000000ull

static struct http_exchange sample(void)
{
	struct http_exchange ex;

	memset(&ex, 0, sizeof(ex));
	ex.conn.pid = 4242;
	ex.conn.tls = true;
	strcpy(ex.conn.comm, "node");
	ex.role = HTTP_ROLE_CLIENT;
	strcpy(ex.method, "POST");
	ex.target = "/v1/payment_intents?expand[]=latest_charge";
	ex.path = "/v1/payment_intents";
	ex.query = "expand[]=latest_charge";
	ex.host = "api.stripe.com";
	ex.status = 402;
	ex.duration_ns = 1234567;
	ex.req.wire_body_bytes = 120;
	ex.resp.wire_body_bytes = 987;
	return ex;
}

static void test_json_golden(void **state)
{
	struct http_exchange ex = sample();
	char buf[1024];
	int n = trace_format_json(&ex, WALL_NS, buf, sizeof(buf));

	assert_string_equal(buf, "{\"ts\":\"2026-11-28T05:00:01.250000Z\",\"pid\":4242,"
				 "\"comm\":\"node\",\"role\":\"client\",\"tls\":true,"
				 "\"method\":\"POST\",\"host\":\"api.stripe.com\","
				 "\"path\":\"/v1/payment_intents\",\"status\":402,"
				 "\"duration_us\":1234,\"req_bytes\":120,\"resp_bytes\":987,"
				 "\"truncated\":false}");
	assert_int_equal(n, (int)strlen(buf));
}

static void test_json_escapes_and_no_query(void **state)
{
	struct http_exchange ex = sample();
	char buf[1024];

	strcpy(ex.conn.comm, "a\"b\\c\x01");
	ex.path = "/p\"x\n";
	ex.role = HTTP_ROLE_SERVER;
	ex.conn.tls = false;
	ex.truncated = true;
	assert_true(trace_format_json(&ex, WALL_NS, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "\"comm\":\"a\\\"b\\\\c\\u0001\""));
	assert_non_null(strstr(buf, "\"path\":\"/p\\\"x\\u000a\""));
	assert_non_null(strstr(buf, "\"role\":\"server\",\"tls\":false"));
	assert_non_null(strstr(buf, "\"truncated\":true}"));
	assert_null(strstr(buf, "expand"));
}

static void test_text_golden(void **state)
{
	struct http_exchange ex = sample();
	char buf[512];

	assert_true(trace_format_text(&ex, WALL_NS, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "05:00:01.250000 node[4242] client TLS   POST api.stripe.com "
				 "/v1/payment_intents -> 402 1.235ms 120B/987B");
}

static void test_short_buffer_is_an_error_not_an_overflow(void **state)
{
	struct http_exchange ex = sample();
	char buf[40];

	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(trace_format_json(&ex, WALL_NS, buf, sizeof(buf)), -ENOSPC);
	assert_int_equal(trace_format_text(&ex, WALL_NS, buf, 10), -ENOSPC);
	/* Whatever was written stays a terminated string inside the buffer. */
	assert_true(memchr(buf, '\0', 10) != NULL);
}

/*
 * The recording form (trace_format_json_detail). The basic part is the golden line above; the
 * detail that follows it is spelled out here whole.
 */
#define BASIC_SERVER                                                                               \
	"{\"ts\":\"2026-11-28T05:00:01.250000Z\",\"pid\":4242,\"comm\":\"node\","                  \
	"\"role\":\"server\",\"tls\":true,\"method\":\"POST\",\"host\":\"api.example.com\","       \
	"\"path\":\"/api/register\",\"status\":201,\"duration_us\":1234,\"req_bytes\":120,"        \
	"\"resp_bytes\":987,\"truncated\":false"

static void set_body(struct http_message *m, const char *body)
{
	m->body = (const uint8_t *)body;
	m->body_len = strlen(body);
}

static void add_header(struct http_message *m, const char *name, const char *value)
{
	m->headers[m->n_headers].name = name;
	m->headers[m->n_headers++].value = value;
}

static struct http_exchange register_sample(void)
{
	struct http_exchange ex = sample();

	ex.role = HTTP_ROLE_SERVER;
	ex.host = "api.example.com";
	ex.target = "/api/register?utm_source=news&email=alice%40example.com&api_key=k1";
	ex.path = "/api/register";
	ex.query = "utm_source=news&email=alice%40example.com&api_key=k1";
	ex.status = 201;
	return ex;
}

static void test_detail_golden(void **state)
{
	struct http_exchange ex = register_sample();
	char buf[4096];
	size_t need = 0;
	int n;

	add_header(&ex.req, "Host", "api.example.com");
	add_header(&ex.req, "Content-Type", "application/json");
	add_header(&ex.req, "Authorization", "Bearer abc.def.ghi");
	add_header(&ex.req, "Cookie", "uid=u-1");
	add_header(&ex.req, "X-User-Id", "u-42");
	add_header(&ex.req, "Accept", "text/html");
	add_header(&ex.req, "cookie", "sid=s-2");
	add_header(&ex.req, "Accept", "application/json");
	add_header(&ex.req, "X-CSRF-Token", "t0k");
	add_header(&ex.req, "Proxy-Authorization", "Basic dXNlcjpwYXNz");
	add_header(&ex.req, "X-Forwarded-For", "203.0.113.7, 2001:db8:1:2::5");
	add_header(&ex.req, "Referer", "https://shop.example/?ref=bob%40example.com&q=shoes");
	add_header(&ex.req, "X-Note", "from carol@example.com");
	set_body(&ex.req, "{\"email\":\"alice@example.com\",\"role\":\"fan\","
			  "\"card\":\"4242 4242 4242 4242\"}");
	add_header(&ex.resp, "Set-Cookie", "sid=s-3; HttpOnly");
	add_header(&ex.resp, "Content-Type", "application/json");
	add_header(&ex.resp, "Stripe-Signature", "t=1,v1=abc");
	set_body(&ex.resp, "{\"user\":{\"id\":\"u-42\"},\"token\":\"eyJhbGciOiJIUzI1NiJ9."
			   "eyJzdWIiOiJ1LTQyIn0.c2lnbmF0dXJl\"}");

	n = trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 65536, &need);
	assert_string_equal(
	    buf, BASIC_SERVER
	    ",\"query\":\"utm_source=news&email=[REDACTED_EMAIL]&api_key=[REDACTED]\""
	    ",\"req_headers\":{\"Host\":\"api.example.com\",\"Content-Type\":\"application/json\","
	    "\"Authorization\":\"[REDACTED]\",\"Cookie\":\"[REDACTED]\",\"X-User-Id\":\"[REDACTED]\","
	    "\"Accept\":\"text/html, application/json\",\"X-CSRF-Token\":\"[REDACTED]\","
	    "\"Proxy-Authorization\":\"[REDACTED]\","
	    "\"X-Forwarded-For\":\"203.0.113.0, 2001:db8:1::\","
	    "\"Referer\":\"https://shop.example/?ref=[REDACTED_EMAIL]&q=shoes\","
	    "\"X-Note\":\"from [REDACTED_EMAIL]\"}"
	    ",\"resp_headers\":{\"Set-Cookie\":\"[REDACTED]\",\"Content-Type\":\"application/"
	    "json\","
	    "\"Stripe-Signature\":\"[REDACTED]\"}"
	    ",\"req_body\":\"{\\\"email\\\":\\\"[REDACTED_EMAIL]\\\",\\\"role\\\":\\\"fan\\\","
	    "\\\"card\\\":\\\"[REDACTED_CARD]\\\"}\",\"req_body_truncated\":false"
	    ",\"resp_body\":\"{\\\"user\\\":{\\\"id\\\":\\\"u-42\\\"},"
	    "\\\"token\\\":\\\"[REDACTED]\\\"}\",\"resp_body_truncated\":false}");
	assert_int_equal(n, (int)strlen(buf));
	assert_int_equal(need, strlen(buf) + 1);
	/* Nothing of a secret or an address survives anywhere in the line. */
	assert_null(strstr(buf, "alice"));
	assert_null(strstr(buf, "bob"));
	assert_null(strstr(buf, "carol"));
	assert_null(strstr(buf, "abc"));
	assert_null(strstr(buf, "s-2"));
	assert_null(strstr(buf, "s-3"));
	assert_null(strstr(buf, "t0k"));
	assert_null(strstr(buf, "4242 4242"));
	assert_null(strstr(buf, "eyJ"));
	assert_null(strstr(buf, "203.0.113.7"));
	assert_null(strstr(buf, "k1"));
}

/* A body with a NUL or bytes that are not UTF-8 is not text: it is left out, and said so. */
static void test_detail_binary_body(void **state)
{
	static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0};
	static const uint8_t nul[] = {'a', 0, 'b'};
	struct http_exchange ex = register_sample();
	char buf[2048];

	ex.query = "";
	ex.req.body = nul;
	ex.req.body_len = sizeof(nul);
	ex.resp.body = png;
	ex.resp.body_len = sizeof(png);
	ex.resp.body_truncated = true;
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 65536, NULL) > 0);
	assert_string_equal(buf, BASIC_SERVER
			    ",\"query\":\"\",\"req_headers\":{},\"resp_headers\":{}"
			    ",\"req_body_binary\":true,\"req_body_truncated\":false"
			    ",\"resp_body_binary\":true,\"resp_body_truncated\":true}");
}

/* Quotes, backslashes, control bytes and DEL escaped; UTF-8 kept; bytes that are not UTF-8
 * (in a header, a path) become U+FFFD so that the line stays valid JSON. */
static void test_detail_escapes(void **state)
{
	struct http_exchange ex = register_sample();
	char buf[2048];

	ex.query = "";
	ex.path = "/caf\xc3\xa9/\xff\xc3(";
	add_header(&ex.req, "X-Quote", "say \"hi\" \\ \x01\x1f\x7f \xe2\x82\xac \xed\xa0\x80");
	set_body(&ex.req, "line1\nline2\t\r\"q\"\\ \xf0\x9f\x98\x80");
	set_body(&ex.resp, "");
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 65536, NULL) > 0);
	assert_non_null(strstr(buf, "\"path\":\"/caf\xc3\xa9/\\ufffd\\ufffd(\""));
	assert_non_null(strstr(buf, "\"req_headers\":{\"X-Quote\":\"say \\\"hi\\\" \\\\ "
				    "\\u0001\\u001f\\u007f \xe2\x82\xac \\ufffd\\ufffd\\ufffd\"}"));
	assert_non_null(strstr(buf, ",\"req_body\":\"line1\\nline2\\t\\r\\\"q\\\"\\\\ "
				    "\xf0\x9f\x98\x80\",\"req_body_truncated\":false"));
	assert_non_null(strstr(buf, ",\"resp_body\":\"\",\"resp_body_truncated\":false}"));
}

/* The cut: after redaction (an e-mail across it is still hidden), never inside a character,
 * and a character the capture's cap cut in two is dropped, not a reason to call it binary. */
static void test_detail_body_cut(void **state)
{
	struct http_exchange ex = register_sample();
	char buf[2048];

	ex.query = "";
	set_body(&ex.req, "12345678 alice@example.com");
	set_body(&ex.resp, "abcdefgh\xc3\xa9xyz\xe2\x82");
	ex.resp.body_truncated = true;
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 13, NULL) > 0);
	assert_non_null(
	    strstr(buf, ",\"req_body\":\"12345678 [RED\",\"req_body_truncated\":true,"));
	/* The euro sign the capture cut after two of its three bytes is left out. */
	assert_non_null(strstr(buf, ",\"resp_body\":\"abcdefgh\xc3\xa9xyz\","
				    "\"resp_body_truncated\":true}"));
	/* A cut at 9 falls between the two bytes of the e-acute: back to its start... */
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 9, NULL) > 0);
	assert_non_null(strstr(buf, ",\"resp_body\":\"abcdefgh\","));
	/* ...and at 10 it fits whole. */
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 10, NULL) > 0);
	assert_non_null(strstr(buf, ",\"resp_body\":\"abcdefgh\xc3\xa9\","));
	assert_null(strstr(buf, "alice"));
}

/* A form body is scrubbed field by field, as a query string: the percent-encoded e-mail and
 * the password go, the rest keeps its encoding. */
static void test_detail_form_body(void **state)
{
	struct http_exchange ex = register_sample();
	char buf[2048];

	ex.query = "next=%2Fhome&Session_ID=abc&e=dan%40example.com+x";
	add_header(&ex.req, "content-type", "application/x-www-form-urlencoded; charset=utf-8");
	set_body(&ex.req, "email=bob%40example.com&password=hunter2&plan=pro+plus&flag");
	add_header(&ex.resp, "Forwarded",
		   "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\"");
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 65536, NULL) > 0);
	assert_non_null(strstr(buf, ",\"query\":\"next=%2Fhome&Session_ID=[REDACTED]"
				    "&e=[REDACTED_EMAIL]%20x\","));
	assert_non_null(strstr(buf, ",\"req_body\":\"email=[REDACTED_EMAIL]&password=[REDACTED]"
				    "&plan=pro+plus&flag\","));
	assert_non_null(strstr(buf, "\"Forwarded\":\"for=192.0.2.0;proto=https, "
				    "for=\\\"[2001:db8:cafe::]\\\"\""));
	assert_null(strstr(buf, "hunter2"));
	assert_null(strstr(buf, "bob"));
	assert_null(strstr(buf, "dan"));
}

/* Too small a buffer: -ENOSPC and the size that suffices, which then does. */
static void test_detail_need(void **state)
{
	struct http_exchange ex = register_sample();
	char small[64], *big;
	size_t need = 0, again = 0;
	int n;

	set_body(&ex.req, "{\"a\":\"b\\\"c\"}");
	assert_int_equal(trace_format_json_detail(&ex, WALL_NS, small, sizeof(small), 65536, &need),
			 -ENOSPC);
	assert_true(memchr(small, '\0', sizeof(small)) != NULL);
	assert_true(need > sizeof(small));
	big = malloc(need);
	assert_non_null(big);
	n = trace_format_json_detail(&ex, WALL_NS, big, need, 65536, &again);
	assert_int_equal(n, (int)need - 1);
	assert_int_equal(again, need);
	assert_int_equal(trace_format_json_detail(&ex, WALL_NS, big, need - 1, 65536, NULL),
			 -ENOSPC);
	free(big);
}

static void test_json_dropped_golden(void **state)
{
	struct http_exchange ex = register_sample();
	char buf[1024];

	assert_true(trace_format_json_dropped(&ex, WALL_NS, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, BASIC_SERVER ",\"detail_dropped\":true}");
}

static void test_json_write(void **state)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	char big[1500];

	assert_non_null(f);
	trace_format_json_write(f, "a\"\\\n\xc3\xa9\xff", 7);
	/* Long strings go out in slices: a slice boundary never splits a character. */
	for (size_t i = 0; i < sizeof(big); i += 2) {
		big[i] = (char)0xc3;
		big[i + 1] = (char)0xa9;
	}
	trace_format_json_write(f, big + 1, sizeof(big) - 1);
	fclose(f);
	assert_int_equal(strncmp(text, "\"a\\\"\\\\\\u000a\xc3\xa9\\ufffd\"\"\\ufffd", 27), 0);
	/* 749 whole characters after the stray continuation byte, then the closing quote. */
	assert_int_equal(len, 20 + 8 + 749 * 2 + 1);
	for (size_t i = 0; i < 749; i++)
		assert_memory_equal(text + 28 + 2 * i, "\xc3\xa9", 2);
	free(text);
}

/* Every line shows the route template of the path and a scrubbed Host; --raw-paths shows
 * both as sent. */
static void test_paths_templated_unless_raw(void **state)
{
	struct http_exchange ex = sample();
	struct trace_opts raw = {.raw_paths = true};
	char buf[2048];

	ex.path = "/users/alice@example.com/orders/1234";
	ex.host = "bob@example.com";
	assert_true(trace_format_json(&ex, WALL_NS, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "\"host\":\"[REDACTED_EMAIL]\",\"path\":\"/users/{id}/orders/{id}\""));
	assert_null(strstr(buf, "alice"));
	assert_true(trace_format_text(&ex, WALL_NS, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, " POST [REDACTED_EMAIL] /users/{id}/orders/{id} -> 402 "));
	assert_true(trace_format_json_dropped(&ex, WALL_NS, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "\"path\":\"/users/{id}/orders/{id}\""));
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 100, NULL) > 0);
	assert_non_null(strstr(buf, "\"path\":\"/users/{id}/orders/{id}\""));

	assert_true(trace_format(TRACE_JSON, &ex, WALL_NS, &raw, buf, sizeof(buf), NULL) > 0);
	assert_non_null(strstr(buf, "\"host\":\"bob@example.com\","
				    "\"path\":\"/users/alice@example.com/orders/1234\""));
	assert_true(trace_format(TRACE_TEXT, &ex, WALL_NS, &raw, buf, sizeof(buf), NULL) > 0);
	assert_non_null(strstr(buf, " bob@example.com /users/alice@example.com/orders/1234 -> "));
	assert_true(trace_format(TRACE_JSON_DETAIL, &ex, WALL_NS, &raw, buf, sizeof(buf), NULL) >
		    0);
	assert_non_null(strstr(buf, "\"path\":\"/users/alice@example.com/orders/1234\""));
	/* The defaults through trace_format are the functions' own. */
	assert_true(trace_format(TRACE_JSON_DROPPED, &ex, WALL_NS, NULL, buf, sizeof(buf), NULL) >
		    0);
	assert_non_null(strstr(buf, "/users/{id}/orders/{id}\",\"status\""));
	assert_non_null(strstr(buf, "\"detail_dropped\":true}"));
}

/* Header names that carry an identity are hidden in the detail view; User-Agent is not one. */
static void test_identity_headers_hidden(void **state)
{
	struct http_exchange ex = register_sample();
	char buf[2048];

	ex.query = "username=carol&page=2";
	add_header(&ex.req, "X-User-Id", "u-42");
	add_header(&ex.req, "X-Forwarded-User", "dave");
	add_header(&ex.req, "User-Agent", "curl/8.5.0");
	assert_true(trace_format_json_detail(&ex, WALL_NS, buf, sizeof(buf), 100, NULL) > 0);
	assert_non_null(strstr(buf, "\"query\":\"username=[REDACTED]&page=2\""));
	assert_non_null(strstr(buf, "\"req_headers\":{\"X-User-Id\":\"[REDACTED]\","
				    "\"X-Forwarded-User\":\"[REDACTED]\","
				    "\"User-Agent\":\"curl/8.5.0\"}"));
	assert_null(strstr(buf, "u-42"));
	assert_null(strstr(buf, "dave"));
	assert_null(strstr(buf, "carol"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths_templated_unless_raw),
	    cmocka_unit_test(test_identity_headers_hidden),
	    cmocka_unit_test(test_json_golden),
	    cmocka_unit_test(test_json_escapes_and_no_query),
	    cmocka_unit_test(test_text_golden),
	    cmocka_unit_test(test_short_buffer_is_an_error_not_an_overflow),
	    cmocka_unit_test(test_detail_golden),
	    cmocka_unit_test(test_detail_binary_body),
	    cmocka_unit_test(test_detail_escapes),
	    cmocka_unit_test(test_detail_body_cut),
	    cmocka_unit_test(test_detail_form_body),
	    cmocka_unit_test(test_detail_need),
	    cmocka_unit_test(test_json_dropped_golden),
	    cmocka_unit_test(test_json_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
