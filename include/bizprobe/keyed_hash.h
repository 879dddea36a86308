/* SPDX-License-Identifier: MIT */
/*
 * A keyed hash for tables whose keys a stranger chooses (Stripe evt_ ids, label values read
 * from requests): SipHash-2-4 (OpenSSL 3's EVP_MAC "SIPHASH") under a key drawn once per process
 * from RAND_bytes, so that nobody outside the process can compute which keys collide and turn a
 * table into a list (hash flooding). An unkeyed hash (FNV) lets a sender pick a thousand ids
 * with one bucket.
 *
 * One struct keyed_hash per table: it holds an OpenSSL MAC context, which is not shared between
 * threads; use it where the table itself is used.
 */
#ifndef BIZPROBE_KEYED_HASH_H
#define BIZPROBE_KEYED_HASH_H

#include <stddef.h>
#include <stdint.h>

struct keyed_hash;

/* Under the process's key. NULL when OpenSSL cannot provide SipHash or memory is short. */
struct keyed_hash *keyed_hash_new(void);
/* Under the given key: tests, against SipHash's published vectors. */
struct keyed_hash *keyed_hash_new_with_key(const uint8_t key[16]);
void keyed_hash_free(struct keyed_hash *h);

/* SipHash-2-4 of p[0..n), as the little-endian 64-bit number the reference code returns. */
uint64_t keyed_hash_bytes(struct keyed_hash *h, const void *p, size_t n);
uint64_t keyed_hash_str(struct keyed_hash *h, const char *s);

#endif
