// SPDX-License-Identifier: MIT
/*
 * Route templates ("/api/content/{id}/engagement") and request paths, both as segments. A
 * {param} is a whole segment and matches any one non-empty segment; literal segments compare
 * byte for byte (as sent: percent-encoding is not undone for them). One trailing slash is
 * ignored on either side, as Express and Flask do by default.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"

#define RULES_FNV_OFFSET 0xcbf29ce484222325ULL
#define RULES_FNV_PRIME	 0x100000001b3ULL

static uint64_t rules_fnv_bytes(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * RULES_FNV_PRIME;
	return h;
}

/* The position is part of the hash: /a/{x} and /{x}/a have different shapes anyway, but /a/b
 * and /b/a within one shape must not collide by construction. */
static uint64_t rules_seg_hash(const char *const *seg, const size_t *len, unsigned n, uint32_t mask)
{
	uint64_t h = RULES_FNV_OFFSET;

	for (unsigned i = 0; i < n; i++) {
		if (mask & (1u << i))
			continue;
		h = rules_fnv_bytes(h, (const char *)&i, sizeof(i));
		h = rules_fnv_bytes(h, seg[i], len[i]);
		h = rules_fnv_bytes(h, "/", 1);
	}
	return h;
}

uint64_t rules_path_hash(const struct rules_path *p, uint32_t mask)
{
	return rules_seg_hash(p->seg, p->len, p->n, mask);
}

uint64_t rules_route_hash(const struct rules_route *rt)
{
	size_t len[RULES_MAX_SEGMENTS];

	for (unsigned i = 0; i < rt->n_seg; i++)
		len[i] = strlen(rt->seg[i]);
	return rules_seg_hash((const char *const *)rt->seg, len, rt->n_seg, rt->param_mask);
}

static bool rules_param_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

int rules_route_parse(const char *text, struct rules_route *out, const char **why)
{
	const char *p = text;
	size_t len = strlen(text);

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (text[0] != '/') {
		*why = "a route starts with '/'";
		return -EINVAL;
	}
	if (strpbrk(text, "?#")) {
		*why = "a route is a path: no query ('?') or fragment ('#')";
		return -EINVAL;
	}
	for (const char *c = text; *c; c++) {
		if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
			*why = "a route has no spaces or control characters";
			return -EINVAL;
		}
	}
	out->text = strdup(text);
	if (!out->text)
		return -ENOMEM;
	/* Past the leading '/'; one trailing '/' is not a segment. */
	p++;
	len--;
	if (len && p[len - 1] == '/')
		len--;
	while (len) {
		const char *slash = memchr(p, '/', len);
		size_t n = slash ? (size_t)(slash - p) : len;
		bool param = n >= 2 && p[0] == '{' && p[n - 1] == '}';
		unsigned i = out->n_seg;

		if (!n) {
			*why = "empty segment ('//')";
			goto bad;
		}
		if (i == RULES_MAX_SEGMENTS) {
			*why = "more than 32 segments";
			goto bad;
		}
		if (param) {
			if (n == 2) {
				*why = "empty {}";
				goto bad;
			}
			for (size_t k = 1; k + 1 < n; k++)
				if (!rules_param_char(p[k], k == 1)) {
					*why = "a {param} name is letters, digits and '_', not "
					       "starting with a digit";
					goto bad;
				}
			out->param_mask |= 1u << i;
			out->seg[i] = strndup(p + 1, n - 2);
		} else {
			if (p[0] == '{' && !memchr(p, '}', n)) {
				*why = "unclosed '{'";
				goto bad;
			}
			if (memchr(p, '{', n) || memchr(p, '}', n)) {
				*why = "'{' and '}' only around a whole segment, as in /users/{id}";
				goto bad;
			}
			out->seg[i] = strndup(p, n);
		}
		if (!out->seg[i]) {
			rules_route_free(out);
			return -ENOMEM;
		}
		out->n_seg++;
		if (param) {
			for (unsigned k = 0; k < i; k++)
				if ((out->param_mask & (1u << k)) &&
				    !strcmp(out->seg[k], out->seg[i])) {
					*why = "the same {param} twice";
					goto bad;
				}
		}
		if (!slash || n + 1 > len)
			break;
		p += n + 1;
		len -= n + 1;
		if (!len) {
			*why = "empty segment ('//')";
			goto bad;
		}
	}
	out->hash = rules_route_hash(out);
	return 0;
bad:
	rules_route_free(out);
	return -EINVAL;
}

void rules_route_free(struct rules_route *rt)
{
	for (unsigned i = 0; i < rt->n_seg; i++)
		free(rt->seg[i]);
	free(rt->text);
	memset(rt, 0, sizeof(*rt));
}

int rules_route_param(const struct rules_route *rt, const char *name)
{
	for (unsigned i = 0; i < rt->n_seg; i++)
		if ((rt->param_mask & (1u << i)) && !strcmp(rt->seg[i], name))
			return (int)i;
	return -1;
}

void rules_path_split(const char *path, struct rules_path *out)
{
	size_t len;

	out->n = 0;
	out->routable = false;
	if (!path || path[0] != '/')
		return;
	path++;
	len = strlen(path);
	if (len && path[len - 1] == '/')
		len--;
	while (len) {
		const char *slash = memchr(path, '/', len);
		size_t n = slash ? (size_t)(slash - path) : len;

		if (out->n == RULES_MAX_SEGMENTS)
			return;
		out->seg[out->n] = path;
		out->len[out->n] = n;
		out->n++;
		if (!slash)
			break;
		path += n + 1;
		len -= n + 1;
		if (!len) {
			/* "/a//": the second slash made an empty last segment. */
			if (out->n == RULES_MAX_SEGMENTS)
				return;
			out->seg[out->n] = path;
			out->len[out->n] = 0;
			out->n++;
		}
	}
	out->routable = true;
}

bool rules_route_match(const struct rules_route *rt, const struct rules_path *p)
{
	if (rt->any)
		return true;
	if (!p->routable || p->n != rt->n_seg)
		return false;
	for (unsigned i = 0; i < rt->n_seg; i++) {
		if (rt->param_mask & (1u << i)) {
			if (!p->len[i])
				return false;
		} else if (strlen(rt->seg[i]) != p->len[i] ||
			   memcmp(rt->seg[i], p->seg[i], p->len[i])) {
			return false;
		}
	}
	return true;
}
