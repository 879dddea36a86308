// SPDX-License-Identifier: MIT
/* A MAC keyed once and restarted per message (see include/bizprobe/keyed_mac.h). */
#include "bizprobe/keyed_mac.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The longest MAC a probe compares: HMAC-SHA512. */
#define PROBE_OUT_MAX 64

struct keyed_mac {
	EVP_MAC *mac;
	EVP_MAC_CTX *tmpl; /* keyed, never updated */
	EVP_MAC_CTX *work; /* restarted for each run when reinit works */
	size_t out_len;
	bool reinit;
};

/* One MAC of parts with ctx, which must be freshly keyed or restarted. */
static int run(EVP_MAC_CTX *ctx, const struct keyed_mac_part *parts, size_t n, uint8_t *out,
	       size_t out_len)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++)
		if (parts[i].n && !EVP_MAC_update(ctx, parts[i].p, parts[i].n))
			return -EIO;
	if (!EVP_MAC_final(ctx, out, &len, out_len) || len != out_len)
		return -EIO;
	return 0;
}

int keyed_mac_run(struct keyed_mac *m, const struct keyed_mac_part *parts, size_t n,
		  uint8_t *out)
{
	EVP_MAC_CTX *c;
	int err;

	if (m->reinit && EVP_MAC_init(m->work, NULL, 0, NULL))
		return run(m->work, parts, n, out, m->out_len);
	c = EVP_MAC_CTX_dup(m->tmpl);
	if (!c)
		return -EIO;
	err = run(c, parts, n, out, m->out_len);
	EVP_MAC_CTX_free(c);
	return err;
}

struct keyed_mac *keyed_mac_new(const char *name, const struct ossl_param_st *params,
				const void *key, size_t key_len, size_t out_len)
{
	static const char text[] = "keyed_mac restart probe";
	const struct keyed_mac_part probe = {text, sizeof(text) - 1};
	uint8_t want[PROBE_OUT_MAX], got[PROBE_OUT_MAX];
	struct keyed_mac *m = out_len <= PROBE_OUT_MAX ? calloc(1, sizeof(*m)) : NULL;

	if (!m)
		return NULL;
	m->out_len = out_len;
	m->mac = EVP_MAC_fetch(NULL, name, NULL);
	m->tmpl = m->mac ? EVP_MAC_CTX_new(m->mac) : NULL;
	if (!m->tmpl || !EVP_MAC_init(m->tmpl, key, key_len, params)) {
		keyed_mac_free(m);
		return NULL;
	}
	/* Restarting is used only if it gives what a fresh context gives, twice running. */
	m->work = EVP_MAC_CTX_dup(m->tmpl);
	if (m->work && !keyed_mac_run(m, &probe, 1, want)) {
		m->reinit = true;
		m->reinit = !keyed_mac_run(m, &probe, 1, got) && !memcmp(got, want, out_len) &&
			    !keyed_mac_run(m, &probe, 1, got) && !memcmp(got, want, out_len);
	}
	return m;
}

void keyed_mac_free(struct keyed_mac *m)
{
	if (!m)
		return;
	EVP_MAC_CTX_free(m->work);
	EVP_MAC_CTX_free(m->tmpl);
	EVP_MAC_free(m->mac);
	free(m);
}
