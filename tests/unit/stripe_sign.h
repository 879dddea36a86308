/* SPDX-License-Identifier: MIT */
/*
 * Stripe's webhook signature (v1: HMAC-SHA256 of "<t>.<body>" with the endpoint secret, hex),
 * computed with OpenSSL's one-shot HMAC(), independently of webhook.c's EVP_MAC code: the unit
 * tests and bench/pipeline_bench.c sign the deliveries they feed with it.
 */
#ifndef BIZPROBE_STRIPE_SIGN_H
#define BIZPROBE_STRIPE_SIGN_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Writes the 64 hex digits and a NUL to hex; false when out of memory. */
static inline bool stripe_sign_v1(char hex[65], const char *secret, time_t ts, const char *body)
{
	unsigned char mac[32];
	unsigned int maclen = 0;
	char prefix[32];
	size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%lld.", (long long)ts);
	size_t blen = strlen(body);
	unsigned char *msg = malloc(plen + blen);

	if (!msg)
		return false;
	memcpy(msg, prefix, plen);
	memcpy(msg + plen, body, blen);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, plen + blen, mac, &maclen);
	free(msg);
	for (unsigned i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	return true;
}

#endif
