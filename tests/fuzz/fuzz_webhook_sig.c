// SPDX-License-Identifier: MIT
/*
 * Stripe-Signature verification (webhook_verify_signature) on any header and body: it answers
 * 0, -EINVAL, -EPERM or -ETIMEDOUT and reads nothing past either. Half the inputs carry a valid
 * signature of their body, which the header bytes then perturb, so the comparison is reached.
 */
#include <errno.h>
#include <openssl/hmac.h>
#include <stdio.h>

#include "bizprobe/stripe.h"
#include "fuzz_util.h"

#define SECRET "whsec_fuzz_5a3f9c1e7b2d4a6f8e0c1b3d"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t mode = fuzz_u8(&in);
	time_t now = 1764300000 + (int8_t)fuzz_u8(&in) * 100;
	size_t body_len;
	const uint8_t *b = fuzz_bytes(&in, 4096, &body_len);
	uint8_t *body = fuzz_dup(b, body_len);
	char *tail = fuzz_str(&in, 512), *header;
	int rc;

	if (mode & 1) {
		unsigned char mac[32];
		unsigned mac_len = 0;
		char hex[65];
		static const char t[] = "1764300000.";
		uint8_t *msg = malloc(sizeof(t) - 1 + body_len + 1);

		if (!msg)
			abort();
		memcpy(msg, t, sizeof(t) - 1);
		memcpy(msg + sizeof(t) - 1, body, body_len);
		HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, sizeof(t) - 1 + body_len, mac,
		     &mac_len);
		free(msg);
		for (unsigned i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", mac[i]);
		if (asprintf(&header, "t=1764300000,v1=%s%s", hex, tail) < 0)
			abort();
	} else {
		header = strdup(tail);
	}
	rc = webhook_verify_signature(header, body, body_len, mode & 2 ? SECRET : "whsec_other",
				      now, mode & 4 ? 0 : 300);
	if (rc != 0 && rc != -EINVAL && rc != -EPERM && rc != -ETIMEDOUT)
		abort();
	free(header);
	free(tail);
	free(body);
	return 0;
}
