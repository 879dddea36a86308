// SPDX-License-Identifier: MIT
/* The trace view's line formats, against golden strings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_golden),
		cmocka_unit_test(test_json_escapes_and_no_query),
		cmocka_unit_test(test_text_golden),
		cmocka_unit_test(test_short_buffer_is_an_error_not_an_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
