// SPDX-License-Identifier: MIT
/*
 * One cookie out of a Cookie request header (RFC 6265 section 5.4: "a=1; b=2"). Lenient about
 * spacing, as servers are, since apps and proxies differ in what they send; strict about the
 * name, which is case-sensitive.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "bizprobe/identity.h"

static bool cookie_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Trims spaces and tabs off both ends of [*s, *e). */
static void cookie_trim(const char **s, const char **e)
{
	while (*s < *e && cookie_space(**s))
		(*s)++;
	while (*e > *s && cookie_space((*e)[-1]))
		(*e)--;
}

int http_cookie_get(const char *cookie_header, const char *name, char *out, size_t size)
{
	size_t name_len = name ? strlen(name) : 0;
	const char *p = cookie_header;

	if (out && size)
		out[0] = '\0';
	if (!name_len)
		return -EINVAL;
	if (!p)
		return -ENOENT;
	while (*p) {
		const char *end = p + strcspn(p, ";"), *eq = memchr(p, '=', (size_t)(end - p));
		const char *ns = p, *ne = eq, *vs, *ve = end;
		size_t vlen;

		p = *end ? end + 1 : end;
		/* A pair without "=" has no name a lookup could match (RFC 6265bis gives it ""). */
		if (!eq)
			continue;
		cookie_trim(&ns, &ne);
		if ((size_t)(ne - ns) != name_len || memcmp(ns, name, name_len))
			continue;
		vs = eq + 1;
		cookie_trim(&vs, &ve);
		if (ve - vs >= 2 && vs[0] == '"' && ve[-1] == '"') {
			vs++;
			ve--;
		}
		vlen = (size_t)(ve - vs);
		/* Nothing partial is written: a cut identity value would pseudonymize to a
		 * different, wrong user. */
		if (vlen >= size || vlen > INT_MAX)
			return -ENOSPC;
		memcpy(out, vs, vlen);
		out[vlen] = '\0';
		return (int)vlen;
	}
	return -ENOENT;
}
