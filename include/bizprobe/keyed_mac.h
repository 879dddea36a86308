/* SPDX-License-Identifier: MIT */
/*
 * A MAC keyed once (OpenSSL 3's EVP_MAC: SipHash for keyed_hash.h, HMAC-SHA256 for Stripe's
 * webhook signatures), then run on many messages: fetching the MAC, making a context and
 * absorbing the key cost more than the MAC of a short message. Each run restarts one keyed
 * context (EVP_MAC_init with a NULL key keeps the key in OpenSSL 3.0's SipHash and HMAC) where a
 * probe at setup shows that a restarted context gives what a fresh one gives; elsewhere each run
 * duplicates the keyed template.
 *
 * It holds an OpenSSL context: one per user, not shared between threads.
 */
#ifndef BIZPROBE_KEYED_MAC_H
#define BIZPROBE_KEYED_MAC_H

#include <stddef.h>
#include <stdint.h>

struct ossl_param_st; /* OSSL_PARAM */
struct keyed_mac;

/* One piece of a message: a run MACs the concatenation of its parts. */
struct keyed_mac_part {
	const void *p;
	size_t n;
};

/* The MAC named (EVP_MAC_fetch: "SIPHASH", "HMAC") under key with params, producing out_len
 * bytes per run. NULL when OpenSSL cannot provide it or memory is short. */
struct keyed_mac *keyed_mac_new(const char *name, const struct ossl_param_st *params,
				const void *key, size_t key_len, size_t out_len);
void keyed_mac_free(struct keyed_mac *m);

/* The MAC of parts[0..n) concatenated into out (out_len bytes); 0, or -EIO when OpenSSL fails. */
int keyed_mac_run(struct keyed_mac *m, const struct keyed_mac_part *parts, size_t n,
		  uint8_t *out);

#endif
