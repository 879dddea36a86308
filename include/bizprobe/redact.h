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
 *   Authorization credentials       "Bearer <token>" -> "Bearer [REDACTED]" (also "Basic")
 *   Card numbers                    13-19 digits, optionally grouped by single spaces or dashes,
 *                                   passing the Luhn check -> "[REDACTED_CARD]"
 *   E-mail addresses                local@domain.tld -> "[REDACTED_EMAIL]"
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

#endif
