// SPDX-License-Identifier: MIT
/* json_view: what the Stripe stage reads out of bodies, and what it must refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bizprobe/json_view.h"

static struct json_doc *parse(const char *text)
{
	return json_doc_parse((const uint8_t *)text, strlen(text));
}

static void test_members_by_type(void **state)
{
	struct json_doc *d = parse(" {\"id\":\"pi_1\",\"amount\":2000,\"neg\":-7,\"ratio\":1.5,"
				   "\"big\":1e3,\"ok\":true,\"none\":null,\"obj\":{\"k\":\"v\"},"
				   "\"arr\":[1,2]}\n");
	struct json_val root = json_doc_root(d);
	int64_t n = 0;

	assert_non_null(d);
	assert_true(json_is_object(root));
	assert_string_equal(json_string(json_get(root, "id")), "pi_1");
	assert_true(json_int64(json_get(root, "amount"), &n));
	assert_int_equal(n, 2000);
	assert_true(json_int64(json_get(root, "neg"), &n));
	assert_int_equal(n, -7);
	/* Only integers written as such are integers, as json-c and the Stripe API have it. */
	assert_false(json_int64(json_get(root, "ratio"), &n));
	assert_false(json_int64(json_get(root, "big"), &n));
	assert_false(json_int64(json_get(root, "ok"), &n));
	assert_false(json_int64(json_get(root, "none"), &n));
	assert_false(json_int64(json_get(root, "id"), &n));
	assert_null(json_string(json_get(root, "amount")));
	assert_null(json_string(json_get(root, "obj")));
	assert_true(json_is_object(json_get(root, "obj")));
	assert_string_equal(json_string(json_get(json_get(root, "obj"), "k")), "v");
	assert_true(json_is_array(json_get(root, "arr")));
	assert_false(json_present(json_get(root, "missing")));
	/* Absent values are accepted everywhere and stay absent. */
	assert_false(json_present(json_get(json_get(root, "missing"), "k")));
	assert_null(json_string(json_get(root, "missing")));
	assert_false(json_present(json_first(json_get(root, "obj"))));
	json_doc_free(d);
}

/* Keys are matched among an object's own members only, never inside nested values. */
static void test_nesting(void **state)
{
	struct json_doc *d = parse(
	    "{\"a\":{\"id\":\"inner\",\"deep\":{\"id\":\"deeper\"},\"list\":[{\"id\":\"x\"}]},"
	    "\"list\":[[],{},[{\"id\":\"y\"}],\"s\",3],\"id\":\"outer\"}");
	struct json_val root = json_doc_root(d), list, e;
	int64_t v = 0;
	int n = 0;

	assert_non_null(d);
	assert_string_equal(json_string(json_get(root, "id")), "outer");
	assert_string_equal(json_string(json_get(json_get(root, "a"), "id")), "inner");
	assert_string_equal(json_string(json_get(json_get(json_get(root, "a"), "deep"), "id")),
			    "deeper");
	list = json_get(root, "list");
	for (e = json_first(list); json_present(e); e = json_next(list, e), n++) {
		switch (n) {
		case 0:
			assert_true(json_is_array(e));
			break;
		case 1:
			assert_true(json_is_object(e));
			break;
		case 2:
			assert_true(json_is_array(e));
			break;
		case 3:
			assert_string_equal(json_string(e), "s");
			break;
		case 4:
			assert_true(json_int64(e, &v) && v == 3);
			break;
		default:
			fail_msg("element %d of a 5-element array", n);
		}
	}
	assert_int_equal(n, 5);
	e = json_next(list, json_next(list, json_first(list))); /* third element */
	assert_string_equal(json_string(json_get(json_first(e), "id")), "y");
	assert_false(json_present(json_first(json_first(list)))); /* [] */
	json_doc_free(d);
}

/* Strings without an escape are left in place and only terminated; those with one are decoded
 * from their first escape on, wherever it is. Neighbours must not be disturbed either way. */
static void test_escape_positions(void **state)
{
	struct json_doc *d = parse("{\"plain\":\"abc\",\"first\":\"\\nab\",\"mid\":\"a\\tb\","
				   "\"last\":\"ab\\\\\",\"only\":\"\\u00e9\",\"empty\":\"\","
				   "\"after\":\"xyz\",\"n\":12}");
	struct json_val root = json_doc_root(d);
	int64_t n = 0;

	assert_non_null(d);
	assert_string_equal(json_string(json_get(root, "plain")), "abc");
	assert_string_equal(json_string(json_get(root, "first")), "\nab");
	assert_string_equal(json_string(json_get(root, "mid")), "a\tb");
	assert_string_equal(json_string(json_get(root, "last")), "ab\\");
	assert_string_equal(json_string(json_get(root, "only")), "\xc3\xa9");
	assert_string_equal(json_string(json_get(root, "empty")), "");
	assert_string_equal(json_string(json_get(root, "after")), "xyz");
	assert_true(json_int64(json_get(root, "n"), &n));
	assert_int_equal(n, 12);
	json_doc_free(d);
}

static void test_escapes(void **state)
{
	struct json_doc *d = parse("{\"q\\\"k\":\"a\\\"b\\\\c\\/d\\n\\t\",\"u\":\"\\u00e9\\u20ac\","
				   "\"pair\":\"\\ud83d\\ude00\",\"lone\":\"x\\ud800y\","
				   "\"nul\":\"a\\u0000b\",\"raw\":\"\xc3\xa9\"}");
	struct json_val root = json_doc_root(d);

	assert_non_null(d);
	assert_string_equal(json_string(json_get(root, "q\"k")), "a\"b\\c/d\n\t");
	assert_string_equal(json_string(json_get(root, "u")), "\xc3\xa9\xe2\x82\xac");
	assert_string_equal(json_string(json_get(root, "pair")), "\xf0\x9f\x98\x80");
	assert_string_equal(json_string(json_get(root, "lone")), "x\xef\xbf\xbdy");
	assert_string_equal(json_string(json_get(root, "nul")), "a\xef\xbf\xbd"
								"b");
	assert_string_equal(json_string(json_get(root, "raw")), "\xc3\xa9");
	json_doc_free(d);
}

/* A repeated key reads as its last value, as the app's own JSON.parse saw it. */
static void test_repeated_key_last_wins(void **state)
{
	struct json_doc *d = parse("{\"status\":\"failed\",\"x\":1,\"status\":\"succeeded\"}");

	assert_string_equal(json_string(json_get(json_doc_root(d), "status")), "succeeded");
	json_doc_free(d);
}

static void test_int64_range(void **state)
{
	struct json_doc *d = parse("{\"max\":9223372036854775807,\"over\":9223372036854775808,"
				   "\"min\":-9223372036854775808,\"minus\":-,\"word\":nope}");
	struct json_val root;
	int64_t n = 0;

	/* jsmn lets "-" and "nope" through as primitives; they must not read as numbers. */
	assert_non_null(d);
	root = json_doc_root(d);
	assert_true(json_int64(json_get(root, "max"), &n));
	assert_true(n == INT64_MAX);
	assert_false(json_int64(json_get(root, "over"), &n));
	assert_true(json_int64(json_get(root, "min"), &n));
	assert_true(n == INT64_MIN);
	assert_false(json_int64(json_get(root, "minus"), &n));
	assert_false(json_int64(json_get(root, "word"), &n));
	json_doc_free(d);
}

/* Everything that is not exactly one complete object is refused, without a crash. */
static void test_refused(void **state)
{
	static const char *bad[] = {
	    "",
	    "   ",
	    "[1,2]",
	    "\"str\"",
	    "42",
	    "{\"a\":1",			  /* cut */
	    "{\"a\":\"unterminated}",	  /* cut inside a string */
	    "{\"a\":1}{\"b\":2}",	  /* two values */
	    "{\"a\":1} x",		  /* trailing bytes */
	    "{\"a\":\"bad \\x escape\"}", /* invalid escape */
	    "{\"a\":\"\\u12G4\"}",	  /* bad hex */
	    "{\"a\":[1,2}",		  /* mismatched brackets */
	    "{\"a\":1]",		  /* mismatched brackets */
	    "{\"a\":+1}",		  /* not a JSON number */
	    "}",
	};
	static const uint8_t with_nul[] = "{\"a\":\"x\"}\0{";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_doc *d = parse(bad[i]);

		if (d)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_null(json_doc_parse(with_nul, sizeof(with_nul) - 1));
	assert_null(json_doc_parse(NULL, 10));
	assert_null(json_doc_parse((const uint8_t *)"{}", 0));
	assert_null(json_doc_root(NULL).doc);
}

/* Every prefix of a real Stripe object is refused, the whole is read: a cut capture never
 * yields a half-read object. Also a body far larger than the first token guess. */
static void test_prefixes_and_growth(void **state)
{
	const char *pi = "{\"id\":\"pi_3\",\"object\":\"payment_intent\",\"amount\":1999,"
			 "\"currency\":\"eur\",\"last_payment_error\":{\"code\":\"card_declined\","
			 "\"decline_code\":\"insufficient_funds\",\"charge\":\"ch_1\"},"
			 "\"latest_charge\":{\"id\":\"ch_1\",\"object\":\"charge\"},"
			 "\"status\":\"requires_payment_method\",\"metadata\":{}}";
	size_t len = strlen(pi), n = 20000, size = 16 + n * 4;
	char *big = malloc(size), *p = big;
	struct json_doc *d;
	int64_t v = 0;
	int count = 0;

	for (size_t cut = 0; cut < len; cut++)
		assert_null(json_doc_parse((const uint8_t *)pi, cut));
	d = parse(pi);
	assert_non_null(d);
	assert_string_equal(
	    json_string(json_get(json_get(json_doc_root(d), "last_payment_error"), "decline_code")),
	    "insufficient_funds");
	json_doc_free(d);

	assert_non_null(big);
	p += sprintf(p, "{\"data\":[");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s1", i ? "," : "");
	p += sprintf(p, "],\"n\":%zu}", n);
	d = json_doc_parse((const uint8_t *)big, (size_t)(p - big));
	assert_non_null(d);
	assert_true(json_int64(json_get(json_doc_root(d), "n"), &v));
	assert_int_equal(v, (int64_t)n);
	for (struct json_val e = json_first(json_get(json_doc_root(d), "data")); json_present(e);
	     e = json_next(json_get(json_doc_root(d), "data"), e))
		count++;
	assert_int_equal(count, (int)n);
	json_doc_free(d);
	free(big);
}

/* One document reused as the Stripe stage reuses it: each load reads only its own text, a
 * refused load leaves nothing readable, the text is not modified, and a name written with an
 * escape still matches in a body that has one (and only then is a name decoded). */
static void test_reused_document(void **state)
{
	static const char first[] = "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\","
				    "\"data\":{\"object\":{\"amount\":500}}}";
	static const char second[] = "{\"\\u0069d\":\"pi_\\u00e9\",\"n\":-3}";
	char text[sizeof(first)];
	struct json_doc *d = json_doc_new();
	struct json_val root;
	int64_t n = 0;

	assert_non_null(d);
	memcpy(text, first, sizeof(first));
	assert_int_equal(json_doc_load(d, (const uint8_t *)text, sizeof(first) - 1), 0);
	root = json_doc_root(d);
	assert_string_equal(json_string(json_get(root, "type")), "payment_intent.succeeded");
	assert_string_equal(json_string(json_get(root, "id")), "evt_1");
	assert_true(json_int64(json_get(json_get(json_get(root, "data"), "object"), "amount"), &n));
	assert_int_equal(n, 500);
	assert_memory_equal(text, first, sizeof(first));

	assert_int_equal(json_doc_load(d, (const uint8_t *)second, sizeof(second) - 1), 0);
	root = json_doc_root(d);
	assert_string_equal(json_string(json_get(root, "id")), "pi_\xc3\xa9");
	assert_false(json_present(json_get(root, "type")));
	assert_true(json_int64(json_get(root, "n"), &n));
	assert_int_equal(n, -3);

	assert_int_equal(json_doc_load(d, (const uint8_t *)"{\"id\":", 6), -EINVAL);
	assert_false(json_present(json_doc_root(d)));
	assert_null(json_string(json_get(json_doc_root(d), "id")));
	assert_int_equal(json_doc_load(d, NULL, 4), -EINVAL);
	assert_int_equal(json_doc_load(NULL, (const uint8_t *)"{}", 2), -EINVAL);

	assert_int_equal(json_doc_load(d, (const uint8_t *)"{\"id\":\"x\"}", 10), 0);
	assert_string_equal(json_string(json_get(json_doc_root(d), "id")), "x");
	json_doc_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_members_by_type),
	    cmocka_unit_test(test_nesting),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_escape_positions),
	    cmocka_unit_test(test_repeated_key_last_wins),
	    cmocka_unit_test(test_int64_range),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_prefixes_and_growth),
	    cmocka_unit_test(test_reused_document),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
