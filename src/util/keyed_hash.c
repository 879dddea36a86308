// SPDX-License-Identifier: MIT
/*
 * SipHash through OpenSSL 3's EVP_MAC (see include/bizprobe/keyed_hash.h), rather than a
 * hand-written copy: keyed once per table, each hash restarting the keyed context
 * (include/bizprobe/keyed_mac.h: about 55 ns a hash with OpenSSL 3.0.19, about 105 ns where a
 * context must be duplicated instead).
 */
#include "bizprobe/keyed_hash.h"
#include "bizprobe/keyed_mac.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct keyed_hash {
	struct keyed_mac *mac;
};

static uint8_t process_key[16];
static bool process_key_ok;
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void process_key_init(void)
{
	process_key_ok = RAND_bytes(process_key, sizeof(process_key)) == 1;
}

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* 0 when OpenSSL fails, which a table survives (everything in one bucket) but which never
 * happens with a keyed context. */
uint64_t keyed_hash_bytes(struct keyed_hash *h, const void *p, size_t n)
{
	const struct keyed_mac_part part = {p, n};
	uint8_t out[8];

	return keyed_mac_run(h->mac, &part, 1, out) ? 0 : le64(out);
}

uint64_t keyed_hash_str(struct keyed_hash *h, const char *s)
{
	return keyed_hash_bytes(h, s, strlen(s));
}

struct keyed_hash *keyed_hash_new_with_key(const uint8_t key[16])
{
	struct keyed_hash *h = calloc(1, sizeof(*h));
	size_t size = 8;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
			       OSSL_PARAM_END};

	if (!h)
		return NULL;
	h->mac = keyed_mac_new("SIPHASH", params, key, 16, sizeof(uint64_t));
	if (!h->mac) {
		free(h);
		return NULL;
	}
	return h;
}

struct keyed_hash *keyed_hash_new(void)
{
	pthread_once(&process_key_once, process_key_init);
	if (!process_key_ok)
		return NULL;
	return keyed_hash_new_with_key(process_key);
}

void keyed_hash_free(struct keyed_hash *h)
{
	if (!h)
		return;
	keyed_mac_free(h->mac);
	free(h);
}
