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
    /* Any grouping: up to three separators between two digits (issue 16). */
    {"4242--4242-4242-4242", "[REDACTED_CARD]"},
    {"4242----4242-4242-4242", "4242----4242-4242-4242"}, /* four break it */
    {"amount=1999&currency=usd", "amount=1999&currency=usd"},
    /* E-mail. */
    {"email=jane.doe+tag@example.co.uk&x", "email=[REDACTED_EMAIL]&x"},
    {"<a@b.io>", "<[REDACTED_EMAIL]>"},
    {"mailto:john_smith@mail.example.com.", "mailto:[REDACTED_EMAIL]."},
    {"user@localhost", "user@localhost"},
    {"x@y.1", "x@y.1"},
    {"@example.com", "@example.com"},
    {"a@b.c", "a@b.c"},
    /* Cards as HTTP carries them: form-encoded spaces, percent-encoding, dots, JSON. */
    {"number=4242+4242+4242+4242&exp_month=12", "number=[REDACTED_CARD]&exp_month=12"},
    {"card%5Bnumber%5D=4242%204242%204242%204242", "card%5Bnumber%5D=[REDACTED_CARD]"},
    {"4242.4242.4242.4242", "[REDACTED_CARD]"},
    {"3782 822463 10005", "[REDACTED_CARD]"},	  /* amex 4-6-5 */
    {"4242 - 4242 - 4242 - 4242", "[REDACTED_CARD]"}, /* spaced dashes */
    {"\"n\":\"4242\\u00204242\\u00204242\\u00204242\"", "\"n\":\"[REDACTED_CARD]\""},
    {"4242%2D4242%2D4242%2D4242", "[REDACTED_CARD]"},
    {"10.20.30.40 192.168.100.200", "10.20.30.40 192.168.100.200"}, /* addresses: too short */
    /* E-mail as HTTP carries it. */
    {"receipt_email=fan%40example.com&amount=5", "receipt_email=[REDACTED_EMAIL]&amount=5"},
    {"/users/alice@example.com/orders", "/users/[REDACTED_EMAIL]/orders"},
    {"/users/alice%40example.com", "/users/[REDACTED_EMAIL]"},
    {"/users/alice%40EXAMPLE.org?x=1", "/users/[REDACTED_EMAIL]?x=1"},
    {"{\"e\":\"fan\\u0040example.com\"}", "{\"e\":\"[REDACTED_EMAIL]\"}"},
    {"to=a.b%2Btag%40mail.example.net", "to=[REDACTED_EMAIL]"},
    /* The domain ends at its last alphabetic TLD (an address glued to ".0042" was missed). */
    {"bob@example.com.0042", "[REDACTED_EMAIL].0042"},
    {"/u/alice@example.com.0000ple.com.17", "/u/[REDACTED_EMAIL].17"},
    /* Passwords, CVC and other secret-named fields: JSON, forms, queries, plain text. */
    {"{\"password\":\"hunter2\",\"user\":\"bob\"}", "{\"password\":\"[REDACTED]\",\"user\":\"bob\"}"},
    {"{\"password\": \"a\\\"b, c\", \"n\": 1}", "{\"password\": \"[REDACTED]\", \"n\": 1}"},
    {"{\"cvc\":123,\"exp\":\"12/30\"}", "{\"cvc\":[REDACTED],\"exp\":\"12/30\"}"},
    {"card[cvc]=314&card[exp_year]=2030", "card[cvc]=[REDACTED]&card[exp_year]=2030"},
    {"card%5Bcvc%5D=314&x=1", "card%5Bcvc%5D=[REDACTED]&x=1"},
    {"user=bob&password=hunter2", "user=bob&password=[REDACTED]"},
    {"new_password=p%40ss&cvv2=999", "new_password=[REDACTED]&cvv2=[REDACTED]"},
    {"PASSWORD: hunter2\r\n", "PASSWORD: [REDACTED]\r\n"},
    {"{\"client_secret\":\"abc\"}", "{\"client_secret\":\"[REDACTED]\"}"},
    {"{\"token\":null}", "{\"token\":[REDACTED]}"},
    {"{\"password\":{\"min\":8}}", "{\"password\":{\"min\":8}}"}, /* an object: its members */
    {"{\\\"password\\\":\\\"x1\\\"}", "{\\\"password\\\":\\\"[REDACTED]\\\"}"},
    {"passwords are long", "passwords are long"},
    {"password=[x]&a=1", "password=[REDACTED]&a=1"}, /* a form value may start with '[' */
    /* An address right before a field name is the e-mail's, not a name's (fuzz_redact). */
    {"email=a%40b.io&password=x", "email=[REDACTED_EMAIL]&password=[REDACTED]"},
    {"to=a%40b.iopassword=x", "to=[REDACTED_EMAIL]=x"},
    /* Stripe client secrets anywhere: the object id stays, the secret goes. */
    {"pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
     "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_[REDACTED]"},
    {"cs=seti_1Mm8s8LkdIwHu7ix0OXBfTRG_secret_NXDTOCsyeDtyhkZc9yCU",
     "cs=seti_1Mm8s8LkdIwHu7ix0OXBfTRG_secret_[REDACTED]"},
    {"pi_123_secret_", "pi_123_secret_"},
    {"pi_1abc_secret_def12=45&x=1", "pi_1abc_secret_[REDACTED]&x=1"}, /* as a name (fuzz) */
    {"pi_1abc_secret_def12%5D=314&x", "pi_1abc_secret_[REDACTED]&x"},
    /* What follows a replacement starts afresh: the address after a secret (fuzz_redact). */
    {"pi_1abc_secret_debc.bob_x%40example.com", "pi_1abc_secret_[REDACTED][REDACTED_EMAIL]"},
    /* JWTs anywhere, bearer and basic credentials in encoded forms. */
    {"session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1LTQyIn0.c2lnbmF0dXJl; Path=/",
     "session=[REDACTED]; Path=/"},
    {"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "[REDACTED]"},
    {"eyJ notajwt", "eyJ notajwt"},
    {"auth=Bearer%20abc123&x=1", "auth=Bearer%20[REDACTED]&x=1"},
    {"h=Basic+dXNlcjpwYXNz", "h=Basic+[REDACTED]"},
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
	/* A NUL is no part of an address or a token: what follows it is still found (a NUL
	 * before an e-mail hid it once: fuzz_redact). */
	{
		const char nul_mail[] = "x\0alice@example.com \0\0Bearer \0tok";
		const char want[] = "x\0[REDACTED_EMAIL] \0\0Bearer \0tok";

		n = redact_text(nul_mail, sizeof(nul_mail) - 1, out, sizeof(out));
		assert_int_equal(n, sizeof(want) - 1);
		assert_memory_equal(out, want, sizeof(want));
	}
	/* A card cut by len is not a card. */
	n = redact_text(in, 6 + 12, out, sizeof(out));
	assert_memory_equal(out, "ab\0cd 424242424242", n + 1);
}

/* Route templates: what identifies someone becomes {id}, route words stay. */
static const struct {
	const char *in;
	const char *want;
} templates[] = {
    {"", ""},
    {"/", "/"},
    {"/v1/payment_intents", "/v1/payment_intents"},
    {"/users/alice@example.com/orders", "/users/{id}/orders"},
    {"/users/alice%40example.com", "/users/{id}"},
    {"/users/1234/orders/99", "/users/{id}/orders/{id}"},
    {"/items/7/", "/items/{id}/"},
    {"/o/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "/o/{id}"},
    {"/v1/customers/cus_QXg1o8vcGmoR32", "/v1/customers/{id}"},
    {"/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/confirm", "/v1/payment_intents/{id}/confirm"},
    {"/obj/507f1f77bcf86cd799439011", "/obj/{id}"},
    {"/c/deadbee1", "/c/{id}"},
    {"/t/dGhpcyBpcyBhIHNlY3JldCB0b2tlbg", "/t/{id}"},
    {"/api/v2/oauth2/token", "/api/v2/oauth2/token"},
    {"/a//b", "/a//b"},
    {"*", "*"},
};

static void test_path_templates(void **state)
{
	char out[256];

	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		size_t n = redact_path_template(templates[i].in, out, sizeof(out));

		assert_string_equal(out, templates[i].want);
		assert_int_equal(n, strlen(templates[i].want));
	}
	/* Like snprintf: cut output, full length; "1/2/3" grows past its input. */
	assert_int_equal(redact_path_template("/1/2/3", out, 6), strlen("/{id}/{id}/{id}"));
	assert_string_equal(out, "/{id}");
	assert_int_equal(redact_path_template("/1", NULL, 0), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_golden),
	    cmocka_unit_test(test_path_templates),
	    cmocka_unit_test(test_small_buffer),
	    cmocka_unit_test(test_length_and_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
