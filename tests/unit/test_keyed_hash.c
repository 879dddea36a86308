// SPDX-License-Identifier: MIT
/* keyed_hash: SipHash-2-4 (the reference implementation's published vectors), the same value on
 * the restarted and the fresh path, and a key of the process's own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/keyed_hash.h"

/* vectors.h of github.com/veorq/SipHash, key 00..0f, message 00..len-1, read little-endian. */
static const struct {
	size_t len;
	uint64_t want;
} vectors[] = {
    {0, 0x726fdb47dd0e0e31ull},
    {1, 0x74f839c593dc67fdull},
    {2, 0x0d6c8009d9a94f5aull},
    {15, 0xa129ca6149be45e5ull},
};

static void test_reference_vectors(void **state)
{
	uint8_t key[16], msg[64];
	struct keyed_hash *h;

	for (int i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	h = keyed_hash_new_with_key(key);
	assert_non_null(h);
	/* Twice each: a restarted context must not carry the previous message. */
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
			assert_int_equal(keyed_hash_bytes(h, msg, vectors[i].len), vectors[i].want);
	keyed_hash_free(h);
}

/* Tables of one process agree with each other; the key is not the all-zero or the test key. */
static void test_process_key(void **state)
{
	uint8_t key[16] = {0};
	struct keyed_hash *a = keyed_hash_new(), *b = keyed_hash_new();
	struct keyed_hash *z = keyed_hash_new_with_key(key);
	const char *id = "evt_1NqXyZ2eZvKYlo2C0abcdefgh";

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(keyed_hash_str(a, id), keyed_hash_str(b, id));
	assert_int_equal(keyed_hash_str(a, id), keyed_hash_bytes(a, id, strlen(id)));
	assert_int_not_equal(keyed_hash_str(a, id), keyed_hash_str(z, id));
	assert_int_not_equal(keyed_hash_str(a, "evt_1"), keyed_hash_str(a, "evt_2"));
	keyed_hash_free(a);
	keyed_hash_free(b);
	keyed_hash_free(z);
	keyed_hash_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reference_vectors),
	    cmocka_unit_test(test_process_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
