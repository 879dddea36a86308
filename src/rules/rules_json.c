// SPDX-License-Identifier: MIT
/*
 * JSON bodies for rules: jsmn tokens over the exchange's own bytes.
 *
 * Why not json_view (bizprobe/json_view.h): a label is a JSON value "as written" (12.5, true),
 * which json_view has no accessor for, and json_view copies the body to decode strings in
 * place. Here nothing is copied: the tokens point into the body, and a string is decoded only
 * when a rule reads it, into the caller's bounded buffer. The token arrays are kept from one
 * exchange to the next, so a parse allocates nothing once they have grown to the bodies seen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
/* As in json_view.c: without parent links jsmn rescans earlier tokens at every comma. */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "rules_internal.h"

struct rules_json {
	const char *text;
	jsmntok_t *tok;
	int *next; /* index of the token after i's subtree */
	unsigned cap;
	int n;
};

struct rules_json *rules_json_new(void)
{
	return calloc(1, sizeof(struct rules_json));
}

void rules_json_free(struct rules_json *j)
{
	if (!j)
		return;
	free(j->tok);
	free(j->next);
	free(j);
}

static int rules_json_grow(struct rules_json *j, unsigned cap)
{
	jsmntok_t *tok = realloc(j->tok, cap * sizeof(*tok));
	int *next;

	if (!tok)
		return -ENOMEM;
	j->tok = tok;
	next = realloc(j->next, cap * sizeof(*next));
	if (!next)
		return -ENOMEM;
	j->next = next;
	j->cap = cap;
	return 0;
}

static bool rules_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int rules_json_parse(struct rules_json *j, const char *text, size_t len)
{
	jsmn_parser p;
	int r, end;

	j->n = 0;
	j->text = text;
	if (!text || !len || len >= (size_t)INT32_MAX)
		return -EINVAL;
	if (!j->cap && rules_json_grow(j, 64))
		return -ENOMEM;
	jsmn_init(&p);
	for (;;) {
		r = jsmn_parse(&p, text, len, j->tok, j->cap);
		if (r != JSMN_ERROR_NOMEM)
			break;
		/* A token takes at least one byte, so cap never needs to pass len + 1. */
		if (j->cap > len + 1 || rules_json_grow(j, j->cap * 2))
			return -ENOMEM;
	}
	if (r < 1 || (j->tok[0].type != JSMN_OBJECT && j->tok[0].type != JSMN_ARRAY) ||
	    j->tok[0].end < 0)
		return -EINVAL;
	j->n = (int)p.toknext;
	for (int i = j->n - 1; i >= 0; i--) {
		int k = i + 1;

		if (j->tok[i].end < 0)
			return -EINVAL;
		if (j->tok[i].type == JSMN_OBJECT || j->tok[i].type == JSMN_ARRAY)
			while (k < j->n && j->tok[k].start < j->tok[i].end)
				k = j->next[k];
		j->next[i] = k;
	}
	if (j->next[0] != j->n)
		goto bad;
	for (end = j->tok[0].end; (size_t)end < len; end++)
		if (!rules_json_space(text[end]))
			goto bad;
	return 0;
bad:
	j->n = 0;
	return -EINVAL;
}

static unsigned rules_hex4(const char *p)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		char c = p[k];

		v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* Appends b to out unless it is full; returns false when it is. */
static bool rules_put(char *out, size_t size, size_t *o, char b)
{
	if (*o + 1 >= size)
		return false;
	out[(*o)++] = b;
	return true;
}

static bool rules_put_utf8(char *out, size_t size, size_t *o, unsigned cp)
{
	if (cp < 0x80)
		return rules_put(out, size, o, (char)cp);
	if (cp < 0x800)
		return rules_put(out, size, o, (char)(0xc0 | cp >> 6)) &&
		       rules_put(out, size, o, (char)(0x80 | (cp & 0x3f)));
	if (cp < 0x10000)
		return rules_put(out, size, o, (char)(0xe0 | cp >> 12)) &&
		       rules_put(out, size, o, (char)(0x80 | (cp >> 6 & 0x3f))) &&
		       rules_put(out, size, o, (char)(0x80 | (cp & 0x3f)));
	return rules_put(out, size, o, (char)(0xf0 | cp >> 18)) &&
	       rules_put(out, size, o, (char)(0x80 | (cp >> 12 & 0x3f))) &&
	       rules_put(out, size, o, (char)(0x80 | (cp >> 6 & 0x3f))) &&
	       rules_put(out, size, o, (char)(0x80 | (cp & 0x3f)));
}

/* Decodes the string s[0..n) (jsmn checked its escapes) into out; returns the length or
 * -ENOSPC. U+0000 and lone surrogates become U+FFFD, as in json_view.c. */
static int rules_json_decode(const char *s, size_t n, char *out, size_t size)
{
	size_t i = 0, o = 0;

	while (i < n) {
		char c = s[i++];
		unsigned cp;

		if (c != '\\') {
			if (!rules_put(out, size, &o, c))
				return -ENOSPC;
			continue;
		}
		if (i >= n)
			break;
		c = s[i++];
		switch (c) {
		case 'b':
			c = '\b';
			break;
		case 'f':
			c = '\f';
			break;
		case 'n':
			c = '\n';
			break;
		case 'r':
			c = '\r';
			break;
		case 't':
			c = '\t';
			break;
		case 'u':
			if (n - i < 4)
				return -ENOSPC;
			cp = rules_hex4(s + i);
			i += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && n - i >= 6 && s[i] == '\\' &&
			    s[i + 1] == 'u') {
				unsigned lo = rules_hex4(s + i + 2);

				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					i += 6;
				}
			}
			if (cp == 0 || (cp >= 0xd800 && cp < 0xe000))
				cp = 0xfffd;
			if (!rules_put_utf8(out, size, &o, cp))
				return -ENOSPC;
			continue;
		default: /* " \ / */
			break;
		}
		if (!rules_put(out, size, &o, c))
			return -ENOSPC;
	}
	if (size)
		out[o] = '\0';
	return (int)o;
}

/* Whether the member name at token k is key (compared decoded: "na\u006de" is "name"). */
static bool rules_json_key_is(const struct rules_json *j, int k, const char *key, size_t key_len)
{
	const jsmntok_t *t = &j->tok[k];
	size_t n = (size_t)(t->end - t->start);
	const char *s = j->text + t->start;
	char buf[RULES_MAX_ARG + 8];
	int dn;

	if (!memchr(s, '\\', n))
		return n == key_len && !memcmp(s, key, n);
	dn = rules_json_decode(s, n, buf, sizeof(buf));
	return dn >= 0 && (size_t)dn == key_len && !memcmp(buf, key, key_len);
}

static int rules_json_member(const struct rules_json *j, int obj, const struct rules_jstep *st)
{
	int end = j->next[obj], found = -1;

	/* The last of repeated keys wins, as with JSON.parse (and json_view). */
	for (int k = obj + 1; k + 1 < end && j->tok[k].type == JSMN_STRING; k = j->next[k + 1])
		if (rules_json_key_is(j, k, st->key, st->key_len))
			found = k + 1;
	return found;
}

static int rules_json_element(const struct rules_json *j, int arr, long index)
{
	int end = j->next[arr], k = arr + 1;

	for (long n = 0; k < end; n++, k = j->next[k])
		if (n == index)
			return k;
	return -1;
}

int rules_json_get(const struct rules_json *j, const struct rules_jstep *path, unsigned n,
		   char *out, size_t size)
{
	const jsmntok_t *t;
	const char *s;
	size_t len;
	int cur = 0;

	if (!j->n)
		return -ENOENT;
	for (unsigned i = 0; i < n && cur >= 0; i++) {
		if (j->tok[cur].type == JSMN_OBJECT)
			cur = rules_json_member(j, cur, &path[i]);
		else if (j->tok[cur].type == JSMN_ARRAY && path[i].index >= 0)
			cur = rules_json_element(j, cur, path[i].index);
		else
			cur = -1;
	}
	if (cur < 0)
		return -ENOENT;
	t = &j->tok[cur];
	s = j->text + t->start;
	len = (size_t)(t->end - t->start);
	if (t->type == JSMN_STRING)
		return rules_json_decode(s, len, out, size);
	if (t->type != JSMN_PRIMITIVE || (len == 4 && !memcmp(s, "null", 4)))
		return -ENOENT;
	/* A number or true/false, as written. */
	if (len + 1 > size)
		return -ENOSPC;
	memcpy(out, s, len);
	out[len] = '\0';
	return (int)len;
}

int rules_jpath_parse(const char *text, char **buf, struct rules_jstep *steps, unsigned max)
{
	size_t len = strlen(text);
	unsigned n = 0;
	char *b, *p;

	*buf = NULL;
	if (!len)
		return -EINVAL;
	/* "a[0]" becomes "a" "0": the copy needs at most one byte per input byte and a NUL. */
	b = malloc(len + 2);
	if (!b)
		return -ENOMEM;
	p = b;
	for (size_t i = 0; i < len;) {
		bool bracket = text[i] == '[';
		size_t start, end;

		if (n == max)
			goto bad;
		if (bracket) {
			start = ++i;
			while (i < len && text[i] >= '0' && text[i] <= '9')
				i++;
			if (i == start || i >= len || text[i] != ']')
				goto bad;
			end = i++;
		} else {
			start = i;
			while (i < len && text[i] != '.' && text[i] != '[' && text[i] != ']')
				i++;
			end = i;
			if (end == start || (i < len && text[i] == ']'))
				goto bad;
		}
		/* After a step: the end, a '.' and another name, or a '['. */
		if (i < len && text[i] == '.') {
			i++;
			if (i >= len || text[i] == '.' || text[i] == '[')
				goto bad;
		} else if (i < len && text[i] != '[') {
			goto bad;
		}
		memcpy(p, text + start, end - start);
		steps[n].key = p;
		steps[n].key_len = end - start;
		p[end - start] = '\0';
		p += end - start + 1;
		steps[n].index = -1;
		if (steps[n].key_len <= 9 && strspn(steps[n].key, "0123456789") == steps[n].key_len)
			steps[n].index = strtol(steps[n].key, NULL, 10);
		n++;
	}
	*buf = b;
	return (int)n;
bad:
	free(b);
	return -EINVAL;
}
