// SPDX-License-Identifier: MIT
/*
 * JSON view over jsmn tokens. The tokens point into the text parsed; a string or a number is
 * decoded only when an accessor reads it, into the document's arena (decode_string). A document
 * made by json_doc_new is reused from one body to the next (json_doc_load): its token arrays and
 * arena stay allocated, so the Stripe stage's parse allocates nothing once they have grown.
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
	const char *text; /* the bytes tokenized: the caller's (json_doc_load) or own */
	size_t len;
	jsmntok_t *tok;
	int *next; /* index of the token after i's subtree: its next sibling, or its parent's end */
	unsigned tok_cap;
	int n;
	bool escapes; /* the text has a backslash: some string may need decoding */
	/* len + 1 bytes: a string or primitive read by an accessor is written here, decoded and
	 * NUL-terminated, at its own offset. Decoding only shrinks, so a token's form fits in
	 * [start, end] and reading it twice writes the same bytes: no bookkeeping, no overflow. */
	char *arena;
	size_t arena_cap;
	char *own; /* json_doc_parse's copy of the text */
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

/* The decoded form of string token t, written into the arena at t's offset and NUL-terminated;
 * its length in *n. Decoding only shrinks (an escape of n bytes yields at most n - 2). Done when
 * an accessor asks, not for every string at parse time: a Stripe object has about a hundred
 * strings and the semantics read a handful. */
static char *decode_string(const struct json_doc *d, const jsmntok_t *t, size_t *n)
{
	const char *in = d->text + t->start, *end = d->text + t->end;
	char *first = d->arena + t->start, *out = first;
	/* Most strings have no escape: those are one copy. */
	const char *esc = d->escapes ? memchr(in, '\\', (size_t)(end - in)) : NULL;

	if (!esc)
		esc = end;
	memcpy(out, in, (size_t)(esc - in));
	out += esc - in;
	in = esc;
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
	*n = (size_t)(out - first);
	return first;
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

/* Grows the token arrays to hold cap tokens; kept from one document to the next. */
static int grow_tokens(struct json_doc *d, unsigned cap)
{
	jsmntok_t *tok = realloc(d->tok, cap * sizeof(*tok));
	int *next;

	if (!tok)
		return -1;
	d->tok = tok;
	next = realloc(d->next, cap * sizeof(*next));
	if (!next)
		return -1;
	d->next = next;
	d->tok_cap = cap;
	return 0;
}

static int tokenize(struct json_doc *d, size_t len)
{
	unsigned want = (unsigned)(len / 8 + 16);
	jsmn_parser p;
	int r;

	if (d->tok_cap < want && grow_tokens(d, want))
		return -1;
	jsmn_init(&p);
	for (;;) {
		/* Out of tokens: jsmn resumes where it stopped once given a larger array. */
		r = jsmn_parse(&p, d->text, len, d->tok, d->tok_cap);
		if (r != JSMN_ERROR_NOMEM)
			break;
		/* A token takes at least one byte, so the array never needs more than len + 1. */
		if (d->tok_cap > len + 1 || grow_tokens(d, d->tok_cap * 2))
			return -1;
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

struct json_doc *json_doc_new(void)
{
	return calloc(1, sizeof(struct json_doc));
}

int json_doc_load(struct json_doc *d, const uint8_t *text, size_t len)
{
	if (!d)
		return -EINVAL;
	d->n = 0;
	d->text = NULL;
	d->len = 0;
	if (!text || !len || len >= (size_t)INT32_MAX)
		return -EINVAL;
	if (d->arena_cap < len + 1) {
		char *a = malloc(len + 1);

		if (!a)
			return -ENOMEM;
		if (d->arena) {
			explicit_bzero(d->arena, d->arena_cap);
			free(d->arena);
		}
		d->arena = a;
		d->arena_cap = len + 1;
	}
	d->text = (const char *)text;
	d->len = len;
	/* One scan of the whole text (memchr is vectorized) spares one per name and string. */
	d->escapes = memchr(text, '\\', len) != NULL;
	if (tokenize(d, len) || d->tok[0].type != JSMN_OBJECT || d->tok[0].end < 0 ||
	    !only_whitespace(d->text + d->tok[0].end, d->text + len))
		goto fail;
	link_subtrees(d);
	if (d->next[0] != d->n) /* a second value after the object */
		goto fail;
	return 0;
fail:
	d->n = 0;
	return -EINVAL;
}

struct json_doc *json_doc_parse(const uint8_t *text, size_t len)
{
	struct json_doc *d;

	if (!text || !len || len >= (size_t)INT32_MAX)
		return NULL;
	d = json_doc_new();
	if (!d)
		return NULL;
	d->own = malloc(len);
	if (!d->own)
		goto fail;
	memcpy(d->own, text, len);
	if (json_doc_load(d, (const uint8_t *)d->own, len))
		goto fail;
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
	 * pseudonymizes and then must not leave behind in freed memory. A reused document only
	 * overwrites them with the next body's, as the HTTP stage's reused body buffers do. */
	if (d->arena)
		explicit_bzero(d->arena, d->arena_cap);
	free(d->arena);
	if (d->own)
		explicit_bzero(d->own, d->len);
	free(d->own);
	free(d);
}

struct json_val json_doc_root(const struct json_doc *d)
{
	return d && d->n > 0 ? (struct json_val){d, 0} : absent;
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

/* Whether member name t, as decoded, is key, in a text with a backslash somewhere. Raw bytes
 * first: a name without an escape is itself. One with an escape is longer raw than decoded, so only a longer name that starts like
 * key (or with an escape) and has a backslash is decoded to compare. */
static bool name_is(const struct json_doc *d, const jsmntok_t *t, const char *key, size_t key_len,
		    bool key_plain)
{
	const char *raw = d->text + t->start;
	size_t raw_len = (size_t)(t->end - t->start), n;
	const char *dec;

	if (raw_len < key_len)
		return false;
	if (raw_len == key_len && key_plain)
		return raw_len == key_len && !memcmp(raw, key, key_len);
	if (!key_len || (raw[0] != key[0] && raw[0] != '\\') || !memchr(raw, '\\', raw_len))
		return raw_len == key_len && !memcmp(raw, key, key_len);
	dec = decode_string(d, t, &n);
	return n == key_len && !memcmp(dec, key, key_len);
}

struct json_val json_get(struct json_val obj, const char *key)
{
	struct json_val found = absent;
	const struct json_doc *d = obj.doc;
	size_t key_len = strlen(key);
	bool key_plain = !memchr(key, '\\', key_len);
	int end, k;

	if (!json_is_object(obj))
		return absent;
	end = d->next[obj.i];
	/* Members are key, value, key, value...; anything else ends the walk. Without a backslash
	 * in the text a name is its raw bytes: the loop every lookup of a Stripe object runs over
	 * its fifty members is then a length compare per member, as it was with decoded names. */
	if (!d->escapes) {
		for (k = obj.i + 1; k + 1 < end && d->tok[k].type == JSMN_STRING;
		     k = d->next[k + 1]) {
			const jsmntok_t *name = &d->tok[k];

			if ((size_t)(name->end - name->start) == key_len &&
			    !memcmp(d->text + name->start, key, key_len))
				found = (struct json_val){d, k + 1};
		}
		return found;
	}
	for (k = obj.i + 1; k + 1 < end && d->tok[k].type == JSMN_STRING; k = d->next[k + 1]) {
		if (name_is(d, &d->tok[k], key, key_len, key_plain))
			found = (struct json_val){d, k + 1};
	}
	return found;
}

const char *json_string(struct json_val v)
{
	const jsmntok_t *t = token(v);
	size_t n;

	return t && t->type == JSMN_STRING ? decode_string(v.doc, t, &n) : NULL;
}

bool json_int64(struct json_val v, int64_t *out)
{
	const jsmntok_t *t = token(v);
	const char *s, *digits;
	char *end;
	long long n;
	size_t len;

	if (!t || t->type != JSMN_PRIMITIVE)
		return false;
	/* A copy in the arena, NUL-terminated for strtoll. */
	len = (size_t)(t->end - t->start);
	memcpy(v.doc->arena + t->start, v.doc->text + t->start, len);
	v.doc->arena[t->end] = '\0';
	s = v.doc->arena + t->start;
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
