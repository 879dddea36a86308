// SPDX-License-Identifier: MIT
/* redact_text: table of inputs and the exact text that must come out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bizprobe/redact.h"

static const struct {
	const char *in;
	const char *want;
} golden[] = {
    {"", ""},
    {"nothing to see here", "nothing to see here"},
    /* Stripe keys: prefix kept, publishable keys kept, short look-alikes kept. */
    {"key=sk_live_51HxYzAbCdEfGhIjKlMn&x=1", "key=sk_live_[REDACTED]&x=1"},
    {"sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_[REDACTED]"},
    {"rk_live_abcdefgh1234 rk_test_ZZZZZZZZZ", "rk_live_[REDACTED] rk_test_[REDACTED]"},
    {"whsec_abcdefghijklmnop", "whsec_[REDACTED]"},
    {"pk_live_51HxYzAbCdEfGhIjKlMn", "pk_live_51HxYzAbCdEfGhIjKlMn"},
    {"mask_live_12345678901", "mask_live_12345678901"},
    {"sk_live_short", "sk_live_short"},
    /* Credentials. */
    {"Authorization: Bearer eyJhbGciOi.J9.x-y_z~+/=", "Authorization: Bearer [REDACTED]"},
    {"authorization: bearer abc123\r\nHost: x", "authorization: bearer [REDACTED]\r\nHost: x"},
    {"Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic [REDACTED]"},
    {"Bearer sk_live_51HxYzAbCdEfGh", "Bearer [REDACTED]"},
    {"the Bearer  of bad news", "the Bearer  [REDACTED] bad news"},
    {"Bearer", "Bearer"},
    {"NotBearer abc", "NotBearer abc"},
    /* Cards: Luhn-valid 13-19 digits, plain or grouped. */
    {"card 4242424242424242 exp", "card [REDACTED_CARD] exp"},
    {"4242 4242 4242 4242", "[REDACTED_CARD]"},
    {"4000-0566-5566-5556,", "[REDACTED_CARD],"},
    {"amex 378282246310005.", "amex [REDACTED_CARD]."},
    {"\"number\":\"5555555555554444\"", "\"number\":\"[REDACTED_CARD]\""},
    {"4242424242424241", "4242424242424241"},	       /* fails Luhn */
    {"424242424242", "424242424242"},		       /* 12 digits */
    {"42424242424242424242", "42424242424242424242"},  /* 20 digits, no card inside ends */
    {"id4242424242424242", "id4242424242424242"},      /* glued to a word */
    {"4242424242424242 1234", "[REDACTED_CARD] 1234"}, /* longest valid prefix group */
    {"4242--4242-4242-4242", "4242--4242-4242-4242"},  /* double separator breaks it */
    {"amount=1999&currency=usd", "amount=1999&currency=usd"},
    /* E-mail. */
    {"email=jane.doe+tag@example.co.uk&x", "email=[REDACTED_EMAIL]&x"},
    {"<a@b.io>", "<[REDACTED_EMAIL]>"},
    {"mailto:john_smith@mail.example.com.", "mailto:[REDACTED_EMAIL]."},
    {"user@localhost", "user@localhost"},
    {"x@y.1", "x@y.1"},
    {"@example.com", "@example.com"},
    {"a@b.c", "a@b.c"},
    /* Several at once. */
    {"{\"email\":\"pay@shop.com\",\"card\":\"4242424242424242\",\"key\":\"sk_test_abcdefgh9\"}",
     "{\"email\":\"[REDACTED_EMAIL]\",\"card\":\"[REDACTED_CARD]\",\"key\":\"sk_test_[REDACTED]"
     "\"}"},
};

static void test_golden(void **state)
{
	char out[512];
	size_t i;

	for (i = 0; i < sizeof(golden) / sizeof(golden[0]); i++) {
		size_t n = redact_text(golden[i].in, strlen(golden[i].in), out, sizeof(out));

		assert_string_equal(out, golden[i].want);
		assert_int_equal(n, strlen(golden[i].want));
	}
}

/* The output is cut at out_cap - 1 and NUL-terminated; the return value is the full length. */
static void test_small_buffer(void **state)
{
	const char *in = "to a@b.io now";
	const char *want = "to [REDACTED_EMAIL] now";
	char out[8];
	size_t n;

	memset(out, 'Z', sizeof(out));
	n = redact_text(in, strlen(in), out, sizeof(out));
	assert_int_equal(n, strlen(want));
	assert_string_equal(out, "to [RED");
	assert_int_equal(redact_text(in, strlen(in), NULL, 0), strlen(want));
	out[0] = 'Q';
	assert_int_equal(redact_text(in, strlen(in), out, 1), strlen(want));
	assert_int_equal(out[0], '\0');
}

/* Length-delimited: bytes past len are not read, embedded NULs pass through. */
static void test_length_and_nul(void **state)
{
	const char in[] = "ab\0cd 4242424242424242";
	char out[64];
	size_t n;

	n = redact_text(in, 5, out, sizeof(out));
	assert_int_equal(n, 5);
	assert_memory_equal(out, "ab\0cd", 6);
	n = redact_text(in, sizeof(in) - 1, out, sizeof(out));
	assert_int_equal(n, 6 + strlen("[REDACTED_CARD]"));
	assert_memory_equal(out, "ab\0cd [REDACTED_CARD]", n + 1);
	/* A card cut by len is not a card. */
	n = redact_text(in, 6 + 12, out, sizeof(out));
	assert_memory_equal(out, "ab\0cd 424242424242", n + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_small_buffer),
	    cmocka_unit_test(test_length_and_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
