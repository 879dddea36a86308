/* SPDX-License-Identifier: MIT */
/* application/x-www-form-urlencoded (src/semantics/form.c): Stripe's request bodies, query
 * strings and HTML form posts share the encoding. */
#ifndef BIZPROBE_FORM_H
#define BIZPROBE_FORM_H

#include <stddef.h>

/* Looks up key (e.g. "metadata[fan_id]", compared decoded) in an encoded body or query string of
 * len bytes and writes its decoded value (%XX and '+'), NUL-terminated. Returns the decoded
 * length, -ENOENT (absent) or -ENOSPC (does not fit). */
int form_urlencoded_get(const char *body, size_t len, const char *key, char *out, size_t size);

/* Value of one hex digit, or -1. */
int form_hexval(char c);

#endif
