/* SPDX-License-Identifier: MIT */
/*
 * Scrubs secrets and personal data out of free text (bodies, header values, log lines) before
 * anything shows it: the live `trace` view, debug logs, error context. Pure functions, no state.
 *
 * Replaced, each with a marker:
 *   Stripe secret/restricted keys   sk_live_..., sk_test_..., rk_live_..., rk_test_...
 *                                   -> prefix kept ("sk_live_[REDACTED]"); mode is not secret.
 *                                   Webhook secrets whsec_... likewise. Publishable pk_ keys are
 *                                   public by design and kept.
 *   Stripe client secrets           pi_..._secret_..., seti_..._secret_... -> the object's id
 *                                   kept ("pi_123_secret_[REDACTED]")
 *   Authorization credentials       "Bearer <token>" -> "Bearer [REDACTED]" (also "Basic"; the
 *                                   space may be '+' or %20, as in a query string)
 *   JSON Web Tokens                 eyJ....(.)... anywhere -> "[REDACTED]"
 *   Secret-named fields             the value of a JSON member, form or query field, or
 *                                   "name: value", whose name contains password, passwd,
 *                                   passphrase, pwd, secret, cvc, cvv, card_code,
 *                                   security_code, token, apikey, api_key, api-key,
 *                                   authorization, credential or private_key (any case; also
 *                                   percent-encoded names like card%5Bcvc%5D) -> "[REDACTED]",
 *                                   a JSON string keeping its quotes
 *   Card numbers                    13-19 digits in any grouping (up to three of ' ', '-', '+',
 *                                   '.' between two digits, also as %20 %2D %2B %2E or
 *                                   \u0020), passing the Luhn check -> "[REDACTED_CARD]"
 *   E-mail addresses                local@domain.tld, the '@' also as %40 or \u0040
 *                                   -> "[REDACTED_EMAIL]"
 * Digit runs that merely look like cards (a 13-digit millisecond timestamp that happens to pass
 * Luhn) are redacted too: for privacy a false positive is the cheap mistake.
 */
#ifndef BIZPROBE_REDACT_H
#define BIZPROBE_REDACT_H

#include <stddef.h>

#define REDACT_MARK	  "[REDACTED]"
#define REDACT_MARK_CARD  "[REDACTED_CARD]"
#define REDACT_MARK_EMAIL "[REDACTED_EMAIL]"

/* Writes the redacted form of in[0..len) to out, at most out_cap - 1 bytes and a NUL (nothing
 * when out_cap is 0; out may then be NULL). in need not be NUL-terminated and may contain NULs.
 * Returns the length of the full redacted text, like snprintf: a result >= out_cap means out
 * was cut (call again with a buffer of the returned size + 1). */
size_t redact_text(const char *in, size_t len, char *out, size_t out_cap);

/* What a path segment that identifies something becomes in a route template. */
#define REDACT_PATH_ID "{id}"

/*
 * The route template of a path (no query): each segment that is an identifier (a number, a
 * UUID, an e-mail, plain or %40-encoded, a long hex or base64 run, a Stripe-like id) becomes
 * "{id}", so /users/alice@example.com/orders/1234 reads /users/{id}/orders/{id}. What the trace
 * view shows of a path unless --raw-paths is given. Output and return value as redact_text.
 */
size_t redact_path_template(const char *path, char *out, size_t out_cap);

#endif
