// SPDX-License-Identifier: MIT
/*
 * JWT (RFC 7519) in compact JWS form (RFC 7515), read for the claims that say who a request is
 * from. The token comes from captured traffic, so every byte is hostile: the length is capped
 * before anything is decoded, each part must be strict base64url, and the JSON goes through the
 * json_view parser, which accepts only a complete object.
 *
 * With a secret the token must be HS256 and verify: the algorithm is fixed here rather than
 * taken from the header, which is how "alg":"none" and algorithm-confusion tokens get through
 * verifiers that trust it.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/identity.h"

/* Browsers cap a cookie at 4 KiB and servers a header line at 8 KiB; a larger token is not one
 * an app accepted, and the cap bounds the allocations below. */
#define JWT_MAX_LEN   8192
#define JWT_HS256_LEN 32

static int8_t b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (int8_t)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (int8_t)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (int8_t)(c - '0' + 52);
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * base64url (RFC 4648 section 5) of in[0..len) into out, which has room for len * 3 / 4 bytes.
 * JWS omits the padding, but some encoders keep it: either is accepted, partial padding is not.
 * Unused low bits of the last character must be zero, so that each byte string has exactly one
 * encoding and a signature cannot be altered without changing what it decodes to.
 */
static int b64url_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
	size_t pad = 0, n = 0, i;
	uint32_t acc = 0;
	int bits = 0;

	while (pad < 2 && pad < len && in[len - 1 - pad] == '=')
		pad++;
	len -= pad;
	/* Padding, when present, completes the last group of four exactly. */
	if (len % 4 == 1 || (pad && 4 - len % 4 != pad))
		return -1;
	for (i = 0; i < len; i++) {
		int8_t v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc) /* bits beyond the last byte */
		return -1;
	*out_len = n;
	return 0;
}

static bool hs256_verifies(const char *signing_input, size_t len, const uint8_t *secret,
			   size_t secret_len, const uint8_t *sig, size_t sig_len)
{
	uint8_t mac[JWT_HS256_LEN];
	size_t mac_len = 0;
	bool ok;

	if (sig_len != JWT_HS256_LEN)
		return false;
	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secret_len,
		       (const unsigned char *)signing_input, len, mac, sizeof(mac), &mac_len) ||
	    mac_len != sizeof(mac))
		return false;
	ok = CRYPTO_memcmp(mac, sig, sizeof(mac)) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return ok;
}

enum jwt_status jwt_decode(const char *token, size_t len, const uint8_t *secret, size_t secret_len,
			   int64_t now, struct json_doc **payload)
{
	const char *dot1, *dot2, *end = token + len;
	size_t header_len, payload_len, sig_len, n_header, n_payload, n_sig;
	struct json_doc *header = NULL, *body = NULL;
	enum jwt_status st = JWT_MALFORMED;
	uint8_t *buf = NULL, *dec_header, *dec_payload, *dec_sig;
	bool verify = secret_len > 0;
	int64_t exp = 0;

	if (payload)
		*payload = NULL;
	if (!token || !len || len > JWT_MAX_LEN)
		return JWT_MALFORMED;
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
	/* Exactly two dots: five parts would be JWE, which is encrypted and not ours to read. */
	if (!dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)))
		return JWT_MALFORMED;
	header_len = (size_t)(dot1 - token);
	payload_len = (size_t)(dot2 - dot1 - 1);
	sig_len = (size_t)(end - dot2 - 1);
	if (!header_len || !payload_len)
		return JWT_MALFORMED;

	/* Each part decodes to at most 3/4 of its length, so the three fit in len bytes. */
	buf = malloc(len);
	if (!buf)
		return JWT_MALFORMED;
	dec_header = buf;
	dec_payload = dec_header + header_len * 3 / 4;
	dec_sig = dec_payload + payload_len * 3 / 4;
	if (b64url_decode(token, header_len, dec_header, &n_header) ||
	    b64url_decode(dot1 + 1, payload_len, dec_payload, &n_payload) ||
	    b64url_decode(dot2 + 1, sig_len, dec_sig, &n_sig))
		goto cleanup;
	header = json_doc_parse(dec_header, n_header);
	if (!header)
		goto cleanup;

	if (verify) {
		const char *alg = json_string(json_get(json_doc_root(header), "alg"));

		if (!alg || strcmp(alg, "HS256")) {
			st = JWT_UNSUPPORTED_ALG;
			goto cleanup;
		}
		/* A NULL secret with a length is a caller's bug: fail closed, never unverified. */
		if (!secret || !hs256_verifies(token, (size_t)(dot2 - token), secret, secret_len,
					       dec_sig, n_sig)) {
			st = JWT_BAD_SIGNATURE;
			goto cleanup;
		}
	}

	/* Parsed only now: with a secret, JSON that nobody signed is never tokenized. */
	body = json_doc_parse(dec_payload, n_payload);
	if (!body)
		goto cleanup;
	if (verify) {
		struct json_val v = json_get(json_doc_root(body), "exp");

		/* An exp that is not an int64 (a string, a fraction, 1e400) cannot be compared:
		 * refused rather than treated as never expiring. */
		if (json_present(v) && !json_int64(v, &exp))
			goto cleanup;
		if (json_present(v) && exp <= now) {
			st = JWT_EXPIRED;
			goto cleanup;
		}
	}
	st = JWT_OK;
	if (payload) {
		*payload = body;
		body = NULL;
	}
cleanup:
	json_doc_free(body);
	json_doc_free(header);
	/* The payload holds the raw identity values. */
	OPENSSL_cleanse(buf, len);
	free(buf);
	return st;
}

const char *jwt_status_str(enum jwt_status s)
{
	switch (s) {
	case JWT_OK:
		return "ok";
	case JWT_MALFORMED:
		return "malformed";
	case JWT_BAD_SIGNATURE:
		return "bad signature";
	case JWT_UNSUPPORTED_ALG:
		return "unsupported alg";
	case JWT_EXPIRED:
		return "expired";
	}
	return "unknown";
}
