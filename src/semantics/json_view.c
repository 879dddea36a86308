// SPDX-License-Identifier: MIT
/*
 * JSON view over jsmn tokens. The document owns a copy of the text; once jsmn has tokenized it
 * the delimiters are no longer needed, so every string is decoded in place and every string and
 * primitive is NUL-terminated where its closing quote or delimiter was.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
/* Each token remembers its parent: without it jsmn finds the enclosing container by scanning
 * back over every earlier token at each comma and closing bracket, quadratic in the members of
 * an object (a Stripe object has about fifty). */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "bizprobe/json_view.h"

struct json_doc {
	jsmntok_t *tok;
	int *next; /* index of the token after i's subtree: its next sibling, or its parent's end */
	int n;
	size_t len;
	char text[]; /* len + 1 bytes */
};

static const struct json_val absent = {NULL, -1};

static unsigned hex4(const char *p)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		char c = p[k];

		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | (cp >> 12 & 0x3f));
		*o++ = (char)(0x80 | (cp >> 6 & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* \uXXXX at in (jsmn checked the four hex digits); a surrogate pair is joined. A lone surrogate
 * or U+0000 becomes U+FFFD: a NUL would cut the C string and a lone half is not UTF-8. */
static const char *decode_u(const char *in, const char *end, char **out)
{
	unsigned cp = hex4(in);

	in += 4;
	if (cp >= 0xd800 && cp < 0xdc00 && end - in >= 6 && in[0] == '\\' && in[1] == 'u') {
		unsigned lo = hex4(in + 2);

		if (lo >= 0xdc00 && lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			in += 6;
		}
	}
	if (cp == 0 || (cp >= 0xd800 && cp < 0xe000))
		cp = 0xfffd;
	*out = put_utf8(*out, cp);
	return in;
}

/* Decoding only shrinks (an escape of n bytes yields at most n - 2), so it runs in place; the
 * token's end moves to the decoded end. */
static void decode_string(char *text, jsmntok_t *t)
{
	const char *end = text + t->end;
	/* Most strings have no escape: bytes before the first one are already in place. */
	const char *in = memchr(text + t->start, '\\', (size_t)(t->end - t->start));
	char *out;

	if (!in) {
		text[t->end] = '\0';
		return;
	}
	out = text + (in - text);
	while (in < end) {
		char c = *in++;

		if (c != '\\') {
			*out++ = c;
			continue;
		}
		switch (c = *in++) {
		case 'b':
			*out++ = '\b';
			break;
		case 'f':
			*out++ = '\f';
			break;
		case 'n':
			*out++ = '\n';
			break;
		case 'r':
			*out++ = '\r';
			break;
		case 't':
			*out++ = '\t';
			break;
		case 'u':
			in = decode_u(in, end, &out);
			break;
		default: /* " \ / (jsmn rejects every other escape) */
			*out++ = c;
			break;
		}
	}
	*out = '\0';
	t->end = (int)(out - text);
}

/* Tokens in jsmn come in document order, so a subtree is the run of tokens that start before
 * its root ends. Walking backwards, each container skips over its children's subtrees. */
static void link_subtrees(struct json_doc *d)
{
	for (int i = d->n - 1; i >= 0; i--) {
		int k = i + 1;

		if (d->tok[i].type == JSMN_OBJECT || d->tok[i].type == JSMN_ARRAY)
			while (k < d->n && d->tok[k].start < d->tok[i].end)
				k = d->next[k];
		d->next[i] = k;
	}
}

static int tokenize(struct json_doc *d, size_t len)
{
	unsigned cap = (unsigned)(len / 8 + 16);
	jsmn_parser p;
	int r;

	jsmn_init(&p);
	for (;;) {
		jsmntok_t *grown = realloc(d->tok, cap * sizeof(*grown));

		if (!grown)
			return -1;
		d->tok = grown;
		/* Out of tokens: jsmn resumes where it stopped once given a larger array. */
		r = jsmn_parse(&p, d->text, len, d->tok, cap);
		if (r != JSMN_ERROR_NOMEM)
			break;
		cap *= 2;
	}
	if (r < 1)
		return -1;
	d->n = (int)p.toknext;
	return 0;
}

static bool only_whitespace(const char *s, const char *end)
{
	for (; s < end; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return false;
	return true;
}

struct json_doc *json_doc_parse(const uint8_t *text, size_t len)
{
	struct json_doc *d;

	if (!text || !len || len >= (size_t)INT32_MAX)
		return NULL;
	d = calloc(1, sizeof(*d) + len + 1);
	if (!d)
		return NULL;
	d->len = len;
	memcpy(d->text, text, len);
	if (tokenize(d, len) || d->tok[0].type != JSMN_OBJECT || d->tok[0].end < 0 ||
	    !only_whitespace(d->text + d->tok[0].end, d->text + len))
		goto fail;
	d->next = malloc((size_t)d->n * sizeof(*d->next));
	if (!d->next)
		goto fail;
	link_subtrees(d);
	if (d->next[0] != d->n) /* a second value after the object */
		goto fail;
	/* After the links: decoding moves string ends. */
	for (int i = 0; i < d->n; i++) {
		if (d->tok[i].type == JSMN_STRING)
			decode_string(d->text, &d->tok[i]);
		else if (d->tok[i].type == JSMN_PRIMITIVE)
			d->text[d->tok[i].end] = '\0';
	}
	return d;
fail:
	json_doc_free(d);
	return NULL;
}

void json_doc_free(struct json_doc *d)
{
	if (!d)
		return;
	free(d->tok);
	free(d->next);
	/* Bodies carry user ids (a JWT's payload, a registration's answer) that identity code
	 * pseudonymizes and then must not leave behind in freed memory. */
	explicit_bzero(d->text, d->len);
	free(d);
}

struct json_val json_doc_root(const struct json_doc *d)
{
	return d ? (struct json_val){d, 0} : absent;
}

static const jsmntok_t *token(struct json_val v)
{
	return v.doc && v.i >= 0 && v.i < v.doc->n ? &v.doc->tok[v.i] : NULL;
}

bool json_present(struct json_val v)
{
	return token(v) != NULL;
}

bool json_is_object(struct json_val v)
{
	const jsmntok_t *t = token(v);

	return t && t->type == JSMN_OBJECT;
}

bool json_is_array(struct json_val v)
{
	const jsmntok_t *t = token(v);

	return t && t->type == JSMN_ARRAY;
}

struct json_val json_get(struct json_val obj, const char *key)
{
	struct json_val found = absent;
	const struct json_doc *d = obj.doc;
	size_t key_len = strlen(key);
	int end, k;

	if (!json_is_object(obj))
		return absent;
	end = d->next[obj.i];
	/* Members are key, value, key, value...; anything else ends the walk. */
	for (k = obj.i + 1; k + 1 < end && d->tok[k].type == JSMN_STRING; k = d->next[k + 1]) {
		const jsmntok_t *name = &d->tok[k];

		if ((size_t)(name->end - name->start) == key_len &&
		    !memcmp(d->text + name->start, key, key_len))
			found = (struct json_val){d, k + 1};
	}
	return found;
}

const char *json_string(struct json_val v)
{
	const jsmntok_t *t = token(v);

	return t && t->type == JSMN_STRING ? v.doc->text + t->start : NULL;
}

bool json_int64(struct json_val v, int64_t *out)
{
	const jsmntok_t *t = token(v);
	const char *s, *digits;
	char *end;
	long long n;

	if (!t || t->type != JSMN_PRIMITIVE)
		return false;
	s = v.doc->text + t->start;
	digits = s + (*s == '-');
	if (*digits < '0' || *digits > '9' || strspn(digits, "0123456789") != strlen(digits))
		return false;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return false;
	*out = n;
	return true;
}

struct json_val json_first(struct json_val arr)
{
	if (!json_is_array(arr) || arr.i + 1 >= arr.doc->next[arr.i])
		return absent;
	return (struct json_val){arr.doc, arr.i + 1};
}

struct json_val json_next(struct json_val arr, struct json_val elem)
{
	int k;

	if (!json_is_array(arr) || !json_present(elem) || elem.doc != arr.doc)
		return absent;
	k = arr.doc->next[elem.i];
	return k < arr.doc->next[arr.i] ? (struct json_val){arr.doc, k} : absent;
}
