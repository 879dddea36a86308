// SPDX-License-Identifier: MIT
/*
 * Secret and PII scrubbing for text that leaves the process (see include/bizprobe/redact.h).
 * One left-to-right pass; at each position the recognizers are tried in a fixed order (keys,
 * credentials, cards, e-mails) and the first match is replaced. Hand-written scanners rather
 * than <regex.h>: POSIX regex has no Luhn check, no word boundaries, and costs a compile.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "bizprobe/redact.h"

struct redact_out {
	char *buf;
	size_t cap;
	size_t len; /* full length, even past cap */
};

static void out_put(struct redact_out *o, const char *s, size_t n)
{
	if (o->cap && o->len < o->cap - 1) {
		size_t room = o->cap - 1 - o->len;

		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Characters of a key or token body. */
static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

/* Start of a word: nothing word-like right before it. */
static bool at_boundary(const char *in, size_t i)
{
	return i == 0 || !is_word(in[i - 1]);
}

/* Stripe secret key: returns its length (prefix included) or 0; *keep = bytes of prefix kept. */
static size_t match_stripe_key(const char *in, size_t len, size_t i, size_t *keep)
{
	static const char *const prefixes[] = {"sk_live_", "sk_test_", "rk_live_", "rk_test_",
					       "whsec_"};
	size_t k, n;

	if (!at_boundary(in, i))
		return 0;
	for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		size_t pl = strlen(prefixes[k]);

		if (len - i < pl || memcmp(in + i, prefixes[k], pl) != 0)
			continue;
		for (n = pl; i + n < len && is_alnum(in[i + n]); n++)
			;
		/* Real keys are long; a bare prefix in prose is left alone. */
		if (n - pl < 8)
			return 0;
		*keep = pl;
		return n;
	}
	return 0;
}

static bool is_token_char(char c)
{
	return is_alnum(c) || strchr("-._~+/=", c) != NULL;
}

/* "Bearer <token>" / "Basic <token>": returns the whole length, *keep = scheme and spaces. */
static size_t match_auth(const char *in, size_t len, size_t i, size_t *keep)
{
	static const char *const schemes[] = {"Bearer", "Basic"};
	size_t k, n, t;

	if (!at_boundary(in, i))
		return 0;
	for (k = 0; k < 2; k++) {
		size_t sl = strlen(schemes[k]);

		if (len - i < sl + 1 || strncasecmp(in + i, schemes[k], sl) != 0)
			continue;
		n = sl;
		if (in[i + n] != ' ')
			continue;
		while (i + n < len && in[i + n] == ' ')
			n++;
		for (t = n; i + t < len && is_token_char(in[i + t]); t++)
			;
		if (t == n)
			continue;
		*keep = n;
		return t;
	}
	return 0;
}

static bool luhn_ok(const uint8_t *d, size_t n)
{
	unsigned sum = 0;
	size_t k;

	for (k = 0; k < n; k++) {
		unsigned v = d[n - 1 - k];

		if (k & 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

/* Card number: digits with optional single ' ' or '-' between them. Returns its length. */
static size_t match_card(const char *in, size_t len, size_t i)
{
	uint8_t digits[19];
	size_t end_at[19]; /* bytes consumed after each digit */
	size_t nd = 0, p = i;

	if (!is_digit(in[i]) || (i > 0 && is_alnum(in[i - 1])))
		return 0;
	while (p < len && nd < 19) {
		if (!is_digit(in[p]))
			break;
		digits[nd] = (uint8_t)(in[p] - '0');
		end_at[nd] = p + 1 - i;
		nd++;
		p++;
		if (p + 1 < len && (in[p] == ' ' || in[p] == '-') && is_digit(in[p + 1]))
			p++;
	}
	/* Longest candidate first; it must not be followed directly by more digits or letters. */
	while (nd >= 13) {
		size_t e = i + end_at[nd - 1];

		if ((e >= len || !is_alnum(in[e])) && luhn_ok(digits, nd))
			return end_at[nd - 1];
		nd--;
	}
	return 0;
}

static bool is_local_char(char c)
{
	return is_alnum(c) || strchr("._%+-", c) != NULL;
}

/* E-mail: run of local-part characters starting here, '@', dotted domain, TLD of letters. */
static size_t match_email(const char *in, size_t len, size_t i)
{
	size_t p = i, label, dots = 0, last_label_start, last_alpha = 1;

	if (!is_local_char(in[i]) || (i > 0 && is_local_char(in[i - 1])))
		return 0;
	while (p < len && is_local_char(in[p]))
		p++;
	if (p == i || p >= len || in[p] != '@')
		return 0;
	p++;
	last_label_start = p;
	label = 0;
	while (p < len) {
		char c = in[p];

		if (is_alnum(c) || c == '-') {
			label++;
			p++;
			continue;
		}
		if (c == '.' && label > 0 && p + 1 < len && is_alnum(in[p + 1])) {
			dots++;
			label = 0;
			p++;
			last_label_start = p;
			continue;
		}
		break;
	}
	if (!dots || label < 2)
		return 0;
	for (size_t k = last_label_start; k < p; k++) {
		if (!((in[k] >= 'a' && in[k] <= 'z') || (in[k] >= 'A' && in[k] <= 'Z')))
			last_alpha = 0;
	}
	return last_alpha ? p - i : 0;
}

size_t redact_text(const char *in, size_t len, char *out, size_t out_cap)
{
	struct redact_out o = {.buf = out, .cap = out ? out_cap : 0, .len = 0};
	size_t i = 0;

	while (in && i < len) {
		size_t n, keep = 0;

		if ((n = match_stripe_key(in, len, i, &keep)) ||
		    (n = match_auth(in, len, i, &keep))) {
			out_put(&o, in + i, keep);
			out_put(&o, REDACT_MARK, strlen(REDACT_MARK));
		} else if ((n = match_card(in, len, i))) {
			out_put(&o, REDACT_MARK_CARD, strlen(REDACT_MARK_CARD));
		} else if ((n = match_email(in, len, i))) {
			out_put(&o, REDACT_MARK_EMAIL, strlen(REDACT_MARK_EMAIL));
		} else {
			out_put(&o, in + i, 1);
			n = 1;
		}
		i += n;
	}
	if (o.cap)
		o.buf[o.len < o.cap ? o.len : o.cap - 1] = '\0';
	return o.len;
}
