// SPDX-License-Identifier: MIT
/*
 * SipHash through OpenSSL 3's EVP_MAC (see include/bizprobe/keyed_hash.h), rather than a
 * hand-written copy: the MAC is fetched once per table, and each hash restarts the keyed
 * context. OpenSSL 3.0.19 restarts a keyed SipHash context on EVP_MAC_init with a NULL key (about
 * 55 ns a hash); whether an OpenSSL does is checked once per table against a fresh context, and
 * where it does not, each hash duplicates the keyed template instead (about 105 ns).
 */
#include "bizprobe/keyed_hash.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct keyed_hash {
	EVP_MAC *mac;
	EVP_MAC_CTX *tmpl; /* keyed, never updated */
	EVP_MAC_CTX *work; /* restarted for each hash when reinit works */
	bool reinit;
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

/* One SipHash of p with ctx, which must be freshly keyed or restarted. 0 when OpenSSL fails,
 * which a table survives (everything in one bucket) but which never happens with a keyed ctx. */
static uint64_t run(EVP_MAC_CTX *ctx, const void *p, size_t n)
{
	uint8_t out[8];
	size_t len = 0;

	if (!EVP_MAC_update(ctx, p, n) || !EVP_MAC_final(ctx, out, &len, sizeof(out)) ||
	    len != sizeof(out))
		return 0;
	return le64(out);
}

uint64_t keyed_hash_bytes(struct keyed_hash *h, const void *p, size_t n)
{
	EVP_MAC_CTX *c;
	uint64_t v;

	if (h->reinit && EVP_MAC_init(h->work, NULL, 0, NULL))
		return run(h->work, p, n);
	c = EVP_MAC_CTX_dup(h->tmpl);
	if (!c)
		return 0;
	v = run(c, p, n);
	EVP_MAC_CTX_free(c);
	return v;
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
	static const char probe[] = "keyed_hash restart probe";

	if (!h)
		return NULL;
	h->mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	h->tmpl = h->mac ? EVP_MAC_CTX_new(h->mac) : NULL;
	if (!h->tmpl || !EVP_MAC_init(h->tmpl, key, 16, params)) {
		keyed_hash_free(h);
		return NULL;
	}
	/* Restarting is used only if it gives what a fresh context gives, twice running. */
	h->work = EVP_MAC_CTX_dup(h->tmpl);
	if (h->work) {
		uint64_t want = keyed_hash_bytes(h, probe, sizeof(probe) - 1);

		h->reinit = true;
		h->reinit = want && keyed_hash_bytes(h, probe, sizeof(probe) - 1) == want &&
			    keyed_hash_bytes(h, probe, sizeof(probe) - 1) == want;
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
	EVP_MAC_CTX_free(h->work);
	EVP_MAC_CTX_free(h->tmpl);
	EVP_MAC_free(h->mac);
	free(h);
}
