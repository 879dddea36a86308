/* SPDX-License-Identifier: MIT */
/*
 * Who is behind a request, and how bizprobe forgets who it was (src/identity/).
 *
 * Privacy by construction: an identity value (a user id from a JWT claim, a header, a cookie, a
 * Stripe object's metadata) is turned into a pseudonym, HMAC-SHA256 under a secret salt, the
 * moment it is read. The raw value is never stored, logged, traced or exported; callers wipe
 * their copy (explicit_bzero) once pseudonymized.
 */
#ifndef BIZPROBE_IDENTITY_H
#define BIZPROBE_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bizprobe/json_view.h"

/* 64 lowercase hex digits and a NUL. */
#define PSEUDONYM_LEN 65

struct pseudonymizer;

/*
 * salt: USER_TRACKING_SALT's value, or NULL/"" to use salt_file: read from it when it exists
 * (it must be a regular file, symlinks followed, with no group or other permission bits: who
 * can write it can choose the salt; all of its 1-4096 bytes are the salt), else 32 random bytes
 * are created there once (mode 0600, directories made 0700; concurrent starts agree on one
 * file), so that pseudonyms stay stable across restarts. salt_file NULL or "" with no salt: a
 * random salt for this process only. Returns NULL with a message in err (naming the file and
 * the fix; err may be NULL) on failure. The salt is never printed and is wiped on free.
 */
struct pseudonymizer *pseudonymizer_new(const char *salt, const char *salt_file, char *err,
					size_t errlen);
void pseudonymizer_free(struct pseudonymizer *p);
/* out = lowercase hex(HMAC-SHA256(salt, id[0..len))); "" (never a pseudonym) if p is NULL or
 * OpenSSL fails. */
void pseudonymize(const struct pseudonymizer *p, const char *id, size_t len,
		  char out[PSEUDONYM_LEN]);

/*
 * JSON Web Tokens (compact JWS "header.payload.signature", base64url with or without padding).
 */
enum jwt_status {
	JWT_OK = 0,
	JWT_MALFORMED = -1,	/* not three base64url parts, header/payload not a JSON object, over
				 * 8 KiB, or (with a secret) an "exp" that is not an integer */
	JWT_BAD_SIGNATURE = -2, /* a secret was given and the HS256 signature does not match */
	JWT_UNSUPPORTED_ALG = -3, /* a secret was given and alg is not HS256 ("none" included) */
	JWT_EXPIRED = -4,	  /* a secret was given and "exp" is in the past */
};
/*
 * Decodes token[0..len) (no NUL needed). With secret (secret_len > 0) the signature must be
 * HS256 over "header.payload" with that key and exp, when present, later than now (seconds
 * since the epoch); without a secret any alg is read and exp is not checked (the app verifies;
 * bizprobe only reads). On JWT_OK *payload is the payload's document (the caller frees it with
 * json_doc_free); otherwise *payload is NULL. payload may be NULL to only check the token.
 */
enum jwt_status jwt_decode(const char *token, size_t len, const uint8_t *secret,
			   size_t secret_len, int64_t now, struct json_doc **payload);
const char *jwt_status_str(enum jwt_status s);

/* The value of cookie name (case-sensitive, the first one when repeated) in a Cookie header
 * ("a=1; b=2"), spaces around it and surrounding quotes removed. Returns its length, -ENOENT,
 * -ENOSPC (out too small: nothing partial is written) or -EINVAL (name NULL or ""); out is ""
 * on every error. */
int http_cookie_get(const char *cookie_header, const char *name, char *out, size_t size);

/* An IPv4 address cut to its /24 ("203.0.113.7" -> "203.0.113.0"), IPv6 to its /48
 * ("2001:db8:1:2::5" -> "2001:db8:1::"), IPv4-mapped IPv6 to the IPv4 /24 ("::ffff:1.2.3.4" ->
 * "::ffff:1.2.3.0"); surrounding whitespace is ignored; anything else, including a port or
 * brackets, -> "-", as is an address that does not fit in size (INET6_ADDRSTRLEN always does). */
void ip_anonymize(const char *addr, char *out, size_t size);

/* A request opts out of tracking: "Sec-GPC: 1" or "DNT: 1" (header values, NULL when absent;
 * whitespace around the "1" ignored, any other value is no opt-out). */
bool privacy_opted_out(const char *sec_gpc, const char *dnt);

#endif
