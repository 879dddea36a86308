/* SPDX-License-Identifier: MIT */
/* The live `bizprobe trace` view: one line per exchange, human or JSON Lines. */
#ifndef BIZPROBE_TRACE_FORMAT_H
#define BIZPROBE_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bizprobe/http_exchange.h"

/*
 * Longest JSON line `trace --json --bodies` prints, and so the longest `rules test` reads: with
 * the default caps (64 KiB of body, 16 KiB of headers per message) a line is a few hundred KiB
 * at most; an exchange whose line would be longer is printed without its detail.
 */
#define TRACE_JSON_LINE_MAX (4u << 20)

/* How the lines show what may identify someone. */
struct trace_opts {
	/* The path and Host as sent (--raw-paths). By default every line shows the path's route
	 * template (redact_path_template: /users/{id}/orders) and the Host through redact_text:
	 * paths carry user ids and e-mails. */
	bool raw_paths;
	size_t max_body; /* TRACE_JSON_DETAIL: body bytes kept per message (0: 65536) */
};

enum trace_line_kind {
	TRACE_TEXT,	    /* trace_format_text */
	TRACE_JSON,	    /* trace_format_json */
	TRACE_JSON_DETAIL,  /* trace_format_json_detail */
	TRACE_JSON_DROPPED, /* trace_format_json_dropped */
};

/* Any of the lines below under opts (NULL: the defaults, which the functions below use).
 * need is used by TRACE_JSON_DETAIL only (may be NULL). Returns as those functions do. */
int trace_format(enum trace_line_kind kind, const struct http_exchange *ex, uint64_t wall_ns,
		 const struct trace_opts *opts, char *buf, size_t cap, size_t *need);

/*
 * One JSON object (no newline): ts (RFC 3339, UTC, microseconds), pid, comm, role, tls, method,
 * host, path (no query; its route template, see struct trace_opts), status, duration_us,
 * req_bytes, resp_bytes (body bytes after de-chunking), truncated. No header values and no
 * bodies: those may carry secrets. wall_ns is the exchange's end as nanoseconds since the epoch.
 * Returns the length, -ENOSPC when cap is too small (buf then holds a terminated prefix) or
 * -ENOMEM.
 */
int trace_format_json(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap);

/*
 * The recording form (`trace --json --bodies`, read back by `bizprobe rules test`): the fields
 * of trace_format_json (the path templated unless opts say raw_paths: a recording meant for
 * `rules test` of routes with {params} is made with --raw-paths), then
 *   query               the query string ("" when none), scrubbed field by field
 *   req_headers         object name -> value; a repeated name is one member, values joined
 *   resp_headers        with ", " ("; " for Cookie)
 *   req_body            the decoded body as a string, scrubbed, at most max_body bytes
 *   req_body_binary     true instead of req_body when the body is not UTF-8 text (or has NULs)
 *   req_body_truncated  the body is not whole (the capture's cap, or max_body)
 *   resp_body, resp_body_binary, resp_body_truncated   the same for the response
 * Scrubbing: the value of Authorization, Proxy-Authorization, Cookie, Set-Cookie,
 * Stripe-Signature, X-Api-Key and of any header, query or form field whose name contains
 * token, secret, auth, key, password, passwd, session, signature or user (any case; User-Agent
 * excepted) becomes "[REDACTED]"; other text goes through redact_text (bizprobe/redact.h: keys,
 * credentials, JWTs, secret-named fields, cards, e-mails), query and form fields
 * percent-decoded first.
 * Strings are JSON-escaped (in the detail fields \n, \r and \t short, others \u00XX); bytes
 * that are not UTF-8 become U+FFFD.
 * Returns the length, -ENOSPC when cap is too small (*need, when need is not NULL, is then the
 * cap that suffices) or -ENOMEM.
 */
int trace_format_json_detail(const struct http_exchange *ex, uint64_t wall_ns, char *buf,
			     size_t cap, size_t max_body, size_t *need);

/* The fields of trace_format_json and "detail_dropped":true: the line printed in place of a
 * detail line that could not be made (too long, out of memory), so that no exchange is lost
 * from a recording without a trace. */
int trace_format_json_dropped(const struct http_exchange *ex, uint64_t wall_ns, char *buf,
			      size_t cap);

/* s[0..len) as a JSON string, quotes included, escaped as the JSON lines are. */
void trace_format_json_write(FILE *out, const char *s, size_t len);

/* "12:00:01.123456 node[4242] server TLS POST api.example.com /v1/x -> 200 1.234ms 10B/20B",
 * the path as its route template (see struct trace_opts). */
int trace_format_text(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap);

/* The opt-in body view: each message's body, redacted (keys, tokens, cards, e-mails, JWTs),
 * cut at max_bytes, indented under the exchange's line. */
void trace_write_bodies(FILE *out, const struct http_exchange *ex, size_t max_bytes);

#endif
