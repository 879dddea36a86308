// SPDX-License-Identifier: MIT
/*
 * Secret and PII scrubbing for text that leaves the process (see include/bizprobe/redact.h).
 * One left-to-right pass; at each position the recognizers are tried in a fixed order (keys,
 * client secrets, credentials, JWTs, secret-named fields, cards, e-mails) and the first match
 * is replaced. Hand-written scanners rather than <regex.h>: POSIX regex has no Luhn check, no
 * word boundaries, and costs a compile.
 *
 * The text is what HTTP carries, so each recognizer also reads the encodings an app puts its
 * data in: percent-encoding (%40 for '@', %20 or '+' between card digit groups, card%5Bcvc%5D as
 * a name), JSON escapes (\u0040, a \" inside a string value), form fields and JSON members.
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

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
	return is_digit(c) || is_alpha(c);
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Characters of a key or token body. */
static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

/* in[i] starts "%XX" (any hex pair). */
static bool pct_at(const char *in, size_t len, size_t i)
{
	return i + 2 < len && in[i] == '%' && is_hex(in[i + 1]) && is_hex(in[i + 2]);
}

/* in[i] starts the percent-encoding of c (either case of the hex digits). */
static bool pct_is(const char *in, size_t len, size_t i, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	return pct_at(in, len, i) && (in[i + 1] | 0x20) == hex[c >> 4] &&
	       (in[i + 2] | 0x20) == hex[c & 15];
}

/* in[i] starts a JSON escape of c: \u00XX. */
static bool uesc_is(const char *in, size_t len, size_t i, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";

	return i + 5 < len && in[i] == '\\' && in[i + 1] == 'u' && in[i + 2] == '0' &&
	       in[i + 3] == '0' && (in[i + 4] | 0x20) == hex[c >> 4] &&
	       (in[i + 5] | 0x20) == hex[c & 15];
}

/* Start of a word: nothing word-like right before it. A "%XX" right before counts as a
 * boundary: it is an encoded separator ("%20", "%3D"), not part of the word. */
static bool at_boundary(const char *in, size_t i)
{
	if (i == 0 || !is_word(in[i - 1]))
		return true;
	return i >= 3 && in[i - 3] == '%' && is_hex(in[i - 2]) && is_hex(in[i - 1]);
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

/* Characters of a field name: form names are bracketed and encoded (card%5Bcvc%5D). */
static bool is_name_char(char c)
{
	return is_alnum(c) || c == '_' || c == '-' || c == '.' || c == '[' || c == ']' || c == '%';
}

/*
 * A Stripe client secret: "<object id>_secret_<secret>" (pi_..._secret_..., seti_..., and the
 * older src_ / cs_ forms). It lets a browser confirm the payment, so it is a credential; the
 * object id before it is not and is kept (*keep covers it and "_secret_").
 */
static size_t match_client_secret(const char *in, size_t len, size_t i, size_t *keep)
{
	size_t p = i, n, secret;

	if (!at_boundary(in, i) || !is_alpha(in[i]))
		return 0;
	while (p < len && p - i < 6 && (in[p] >= 'a' && in[p] <= 'z'))
		p++;
	if (p == i || p >= len || in[p] != '_')
		return 0;
	p++;
	n = p;
	while (p < len && is_alnum(in[p]))
		p++;
	if (p - n < 4 || len - p < 8 || memcmp(in + p, "_secret_", 8) != 0)
		return 0;
	p += 8;
	secret = p;
	while (p < len && is_alnum(in[p]))
		p++;
	if (p - secret < 4)
		return 0;
	/* Used as (part of) a name ("pi_1_secret_ab12=45", "..._secret_ab12%5D=45"), it names a
	 * secret field too: the rest of the name and the value go with it, as the secret-field
	 * recognizer would take them (found by fuzz_redact). */
	n = p;
	while (n < len && is_name_char(in[n]) && !pct_is(in, len, n, '@'))
		n++;
	if (n + 1 < len && (in[n] == '=' || in[n] == ':') && in[n + 1] &&
	    !strchr("&;, \t\r\n\"", in[n + 1])) {
		p = n + 1;
		while (p < len && in[p] && !strchr("&;, \t\r\n\"", in[p]))
			p++;
	}
	*keep = secret - i;
	return p - i;
}

static bool is_token_char(char c)
{
	/* c && : strchr finds the terminating NUL too, and a NUL is no token character. */
	return is_alnum(c) || (c && strchr("-._~+/=", c) != NULL);
}

/* Spaces after an authorization scheme, as sent or encoded in a query or form: ' ', '+', %20.
 * Returns the bytes they take. */
static size_t scheme_spaces(const char *in, size_t len, size_t i)
{
	size_t n = 0;

	for (;;) {
		if (i + n < len && (in[i + n] == ' ' || in[i + n] == '+'))
			n++;
		else if (pct_is(in, len, i + n, ' '))
			n += 3;
		else
			return n;
	}
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
		n = sl + scheme_spaces(in, len, i + sl);
		if (n == sl)
			continue;
		for (t = n; i + t < len && (is_token_char(in[i + t]) || pct_at(in, len, i + t));
		     t += in[i + t] == '%' ? 3 : 1)
			;
		if (t == n)
			continue;
		*keep = n;
		return t;
	}
	return 0;
}

static bool is_b64url(char c)
{
	return is_alnum(c) || c == '-' || c == '_';
}

/* A compact JWS: "eyJ" (base64url of '{"') header, '.', payload, '.', signature. Returns its
 * length or 0. */
static size_t match_jwt(const char *in, size_t len, size_t i)
{
	size_t n = i, part;

	if (len - i < 3 || memcmp(in + i, "eyJ", 3) || (i > 0 && is_b64url(in[i - 1])))
		return 0;
	for (part = 0; part < 3; part++) {
		size_t start = n;

		while (n < len && is_b64url(in[n]))
			n++;
		/* Header and payload are JSON objects, never short; the signature may be empty
		 * (alg none). */
		if (part < 2 && n - start < 4)
			return 0;
		if (part < 2) {
			if (n >= len || in[n] != '.')
				return 0;
			n++;
		}
	}
	return n - i;
}

/*
 * Secret-named fields: a JSON member ("password": "...", "cvc": 123), a form or query field
 * (password=..., card%5Bcvc%5D=...), or "name: value" in plain text, whose name says its value
 * is a credential or card data. The name and punctuation are kept, the value replaced (a JSON
 * string keeps its quotes). Objects and arrays are not values here: their members are scanned
 * on their own.
 */

static bool name_is_secret(const char *name, size_t n)
{
	static const char *const parts[] = {
	    "password", "passwd",   "passphrase", "pwd",	 "secret",     "cvc",
	    "cvv",	"card_code", "security_code", "securitycode", "token",	"apikey",
	    "api_key",	"api-key",  "authorization", "credential",	 "private_key", "privatekey",
	};
	char low[64];

	if (n >= sizeof(low))
		return false; /* no name of ours is that long; a long run is data */
	for (size_t i = 0; i < n; i++)
		low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] | 0x20 : name[i]);
	low[n] = '\0';
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (strstr(low, parts[i]))
			return true;
	return false;
}

static size_t skip_spaces(const char *in, size_t len, size_t p)
{
	while (p < len && (in[p] == ' ' || in[p] == '\t'))
		p++;
	return p;
}

/* Returns the length of name + separator + value at i, *keep = what is kept (name and
 * separator, and a JSON string's opening quote), *close = bytes kept after the marker (its
 * closing quote). 0 when no secret field starts here. */
static size_t match_secret_field(const char *in, size_t len, size_t i, size_t *keep,
				 size_t *close)
{
	size_t p = i, v, dummy;
	bool json = false;

	if (i > 0 && is_name_char(in[i - 1]))
		return 0;
	/* An encoded '@' ends a name: "a%40b.example" is an address, which the e-mail recognizer
	 * takes, not a field name to print (found by fuzz_redact). */
	while (p < len && is_name_char(in[p]) && !pct_is(in, len, p, '@'))
		p++;
	if (p == i || !name_is_secret(in + i, p - i))
		return 0;
	if (i > 0 && in[i - 1] == '"' && p < len && in[p] == '"') {
		p++; /* a JSON member's name */
		json = true;
	} else if (p + 2 < len && in[p] == '\\' && in[p + 1] == '"' && i > 1 && in[i - 1] == '"' &&
		   in[i - 2] == '\\') {
		p += 2; /* JSON inside a JSON string: \"password\":\"...\" */
		json = true;
	}
	p = skip_spaces(in, len, p);
	if (p >= len)
		return 0;
	if (in[p] == '=' || in[p] == ':') {
		p++;
	} else if (pct_is(in, len, p, '=') || pct_is(in, len, p, ':')) {
		p += 3;
	} else {
		return 0;
	}
	p = skip_spaces(in, len, p);
	if (p >= len)
		return 0;
	v = p;
	if (in[p] == '"' || (in[p] == '\\' && p + 1 < len && in[p + 1] == '"')) {
		/* A string; a nested one (\"...\") ends at the next \", a plain one at the next
		 * unescaped quote. */
		bool nested = in[p] == '\\';

		p += nested ? 2 : 1;
		v = p;
		while (p < len) {
			if (nested && in[p] == '\\' && p + 1 < len && in[p + 1] == '"')
				break;
			if (!nested && in[p] == '\\') {
				p += 2;
				continue;
			}
			if (!nested && in[p] == '"')
				break;
			p++;
		}
		if (p > len)
			p = len;
		*keep = v - i;
		*close = p < len ? (nested ? 2 : 1) : 0;
		return p - i + *close;
	}
	/* "Authorization: Bearer x": the credential recognizer keeps the scheme, as it does
	 * without a name before it. A JSON member's object or array is not a value here. */
	if ((json && (in[p] == '{' || in[p] == '[')) || match_auth(in, len, p, &dummy))
		return 0;
	/* A bare value: a JSON literal up to what ends a member; a form or text value up to what
	 * ends a field or a word ("password=[x]" is a password). */
	while (p < len && in[p] && !strchr(json ? ",}] \t\r\n" : "&;, \t\r\n\"", in[p]))
		p++;
	if (p == v)
		return 0;
	*keep = v - i;
	*close = 0;
	return p - i;
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

/* One separator between card digit groups at in[p]: ' ', '-', '+', '.', or one of them
 * percent-encoded (%20, %2D, %2B, %2E) or JSON-escaped (\u0020). Returns its length or 0. */
static size_t card_sep(const char *in, size_t len, size_t p)
{
	if (p >= len)
		return 0;
	if (in[p] == ' ' || in[p] == '-' || in[p] == '+' || in[p] == '.')
		return 1;
	if (pct_is(in, len, p, ' ') || pct_is(in, len, p, '-') || pct_is(in, len, p, '+') ||
	    pct_is(in, len, p, '.'))
		return 3;
	if (uesc_is(in, len, p, ' '))
		return 6;
	return 0;
}

/* Card number: 13-19 digits in any grouping, up to three separators between two digits (so
 * "4242 - 4242" is one number), passing the Luhn check. Returns its length. */
static size_t match_card(const char *in, size_t len, size_t i)
{
	uint8_t digits[19];
	size_t end_at[19]; /* bytes consumed after each digit */
	size_t nd = 0, p = i;

	/* Not glued to a word before it, except through an encoded separator ("=%204242..."). */
	if (!is_digit(in[i]) ||
	    (i > 0 && is_alnum(in[i - 1]) && !(i >= 3 && pct_at(in, len, i - 3))))
		return 0;
	while (p < len && nd < 19) {
		size_t q, s, k;

		if (!is_digit(in[p]))
			break;
		digits[nd] = (uint8_t)(in[p] - '0');
		end_at[nd] = p + 1 - i;
		nd++;
		p++;
		for (q = p, k = 0; k < 3 && (s = card_sep(in, len, q)); k++)
			q += s;
		if (q > p && q < len && is_digit(in[q]))
			p = q;
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
	/* c && : strchr finds the terminating NUL too. Taken for a local-part character, a NUL
	 * before an address hid it ("x\0alice@example.com" was not redacted: found by
	 * fuzz_redact). */
	return is_alnum(c) || (c && strchr("._%+-", c) != NULL);
}

/* The '@' of an e-mail at in[p]: as such, percent-encoded (%40) or JSON-escaped (\u0040).
 * Returns its length or 0. */
static size_t at_sign(const char *in, size_t len, size_t p)
{
	if (p >= len)
		return 0;
	if (in[p] == '@')
		return 1;
	if (pct_is(in, len, p, '@'))
		return 3;
	if (uesc_is(in, len, p, '@'))
		return 6;
	return 0;
}

/* E-mail: run of local-part characters starting here, '@', dotted domain, TLD of letters. The
 * domain is the longest run of labels that ends in such a TLD: "bob@example.com.0042" is
 * bob@example.com followed by ".0042" (the whole run's last label is no TLD; found by
 * fuzz_redact, where it hid the address). */
static size_t match_email(const char *in, size_t len, size_t i)
{
	size_t p = i, label = 0, dots = 0, label_start, at = 0, best = 0;

	if (!is_local_char(in[i]) || (i > 0 && is_local_char(in[i - 1])))
		return 0;
	/* The local part stops at the at-sign, encoded or not ("fan%40example.com"). */
	while (p < len && is_local_char(in[p]) && !(at = at_sign(in, len, p)))
		p++;
	if (!at)
		at = at_sign(in, len, p);
	if (p == i || !at)
		return 0;
	p += at;
	label_start = p;
	for (;;) {
		bool end = p >= len || !(is_alnum(in[p]) || in[p] == '-');

		if (!end) {
			label++;
			p++;
			continue;
		}
		/* A label ends here: the domain may end with it. */
		if (dots && label >= 2) {
			bool alpha = true;

			for (size_t k = label_start; k < p; k++)
				alpha = alpha && is_alpha(in[k]);
			if (alpha)
				best = p;
		}
		if (p < len && in[p] == '.' && label > 0 && p + 1 < len && is_alnum(in[p + 1])) {
			dots++;
			label = 0;
			p++;
			label_start = p;
			continue;
		}
		break;
	}
	return best ? best - i : 0;
}

size_t redact_text(const char *in, size_t len, char *out, size_t out_cap)
{
	struct redact_out o = {.buf = out, .cap = out ? out_cap : 0, .len = 0};
	size_t i = 0, from = 0;

	while (in && i < len) {
		/* The recognizers see the text from the end of the last replacement on: what was
		 * replaced does not glue to what follows it ("pi_1_secret_abcd.bob@example.com":
		 * the address after the secret is still an address). A second pass over the output,
		 * where a marker stands before it, then finds nothing more (fuzz_redact). */
		const char *b = in + from;
		size_t bl = len - from, bi = i - from;
		size_t n, keep = 0, close = 0;
		bool replaced = true;

		if ((n = match_stripe_key(b, bl, bi, &keep)) ||
		    (n = match_client_secret(b, bl, bi, &keep)) || (n = match_auth(b, bl, bi, &keep))) {
			out_put(&o, in + i, keep);
			out_put(&o, REDACT_MARK, strlen(REDACT_MARK));
		} else if ((n = match_jwt(b, bl, bi))) {
			out_put(&o, REDACT_MARK, strlen(REDACT_MARK));
		} else if ((n = match_secret_field(b, bl, bi, &keep, &close))) {
			out_put(&o, in + i, keep);
			out_put(&o, REDACT_MARK, strlen(REDACT_MARK));
			out_put(&o, in + i + n - close, close);
		} else if ((n = match_card(b, bl, bi))) {
			out_put(&o, REDACT_MARK_CARD, strlen(REDACT_MARK_CARD));
		} else if ((n = match_email(b, bl, bi))) {
			out_put(&o, REDACT_MARK_EMAIL, strlen(REDACT_MARK_EMAIL));
		} else {
			out_put(&o, in + i, 1);
			n = 1;
			replaced = false;
		}
		i += n;
		if (replaced && !close)
			from = i;
	}
	if (o.cap)
		o.buf[o.len < o.cap ? o.len : o.cap - 1] = '\0';
	return o.len;
}

/*
 * Route templates. A path segment is an identifier, not a route word, when it is a number, holds
 * an e-mail's '@' (also %40), is long (20 bytes or more: UUIDs, tokens, base64, slugs that carry
 * names), has digits and is 10 bytes or more (cus_QXg1o8vcGmoR32, ObjectIds), or is hex of 8
 * bytes or more with a digit (short hashes). "v1", "api", "payment_intents" stay.
 */
static bool segment_is_id(const char *s, size_t n)
{
	size_t digits = 0, hex = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '@' || pct_is(s, n, i, '@'))
			return true;
		digits += is_digit(s[i]);
		hex += is_hex(s[i]);
	}
	return digits == n || n >= 20 || (digits && n >= 10) || (hex == n && n >= 8 && digits);
}

size_t redact_path_template(const char *path, char *out, size_t out_cap)
{
	struct redact_out o = {.buf = out, .cap = out ? out_cap : 0, .len = 0};
	const char *p = path ? path : "";

	while (*p) {
		size_t n = strcspn(p, "/");

		if (segment_is_id(p, n))
			out_put(&o, REDACT_PATH_ID, strlen(REDACT_PATH_ID));
		else
			out_put(&o, p, n);
		p += n;
		if (*p == '/') {
			out_put(&o, "/", 1);
			p++;
		}
	}
	if (o.cap)
		o.buf[o.len < o.cap ? o.len : o.cap - 1] = '\0';
	return o.len;
}
