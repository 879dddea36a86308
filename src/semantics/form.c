// SPDX-License-Identifier: MIT
/* application/x-www-form-urlencoded lookups: Stripe request bodies, query strings, HTML forms. */
#include <errno.h>
#include <string.h>

#include "bizprobe/form.h"

int form_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes %XX and '+' of [in, in+len) into out; returns the decoded length or -ENOSPC. */
static int form_decode(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < len && form_hexval(in[i + 1]) >= 0 &&
			   form_hexval(in[i + 2]) >= 0) {
			c = (char)(form_hexval(in[i + 1]) * 16 + form_hexval(in[i + 2]));
			i += 2;
		}
		if (o + 1 >= size)
			return -ENOSPC;
		out[o++] = c;
	}
	if (size)
		out[o] = '\0';
	return (int)o;
}

int form_urlencoded_get(const char *body, size_t len, const char *key, char *out, size_t size)
{
	const char *p = body, *end = body + len;
	char name[256];

	if (!body || !key || !out || !size)
		return -ENOENT;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		const char *name_end = eq ? eq : pair_end;

		/* Keys arrive encoded (metadata%5Bfan_id%5D); compare decoded. */
		if (form_decode(p, (size_t)(name_end - p), name, sizeof(name)) >= 0 &&
		    !strcmp(name, key)) {
			if (!eq)
				return form_decode("", 0, out, size);
			return form_decode(eq + 1, (size_t)(pair_end - eq - 1), out, size);
		}
		p = pair_end + 1;
	}
	return -ENOENT;
}
