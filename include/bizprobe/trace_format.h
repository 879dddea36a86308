/* SPDX-License-Identifier: MIT */
/* The live `bizprobe trace` view: one line per exchange, human or JSON Lines. */
#ifndef BIZPROBE_TRACE_FORMAT_H
#define BIZPROBE_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bizprobe/http_exchange.h"

/*
 * One JSON object (no newline): ts (RFC 3339, UTC, microseconds), pid, comm, role, tls, method,
 * host, path (no query), status, duration_us, req_bytes, resp_bytes (body bytes after
 * de-chunking), truncated. No header values and no bodies: those may carry secrets.
 * wall_ns is the exchange's end as nanoseconds since the epoch.
 */
int trace_format_json(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap);

/* "12:00:01.123456 node[4242] server TLS POST api.example.com /v1/x -> 200 1.234ms 10B/20B". */
int trace_format_text(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap);

/* The opt-in body view: each message's body, redacted (keys, tokens, cards, e-mails), cut at
 * max_bytes, indented under the exchange's line. */
void trace_write_bodies(FILE *out, const struct http_exchange *ex, size_t max_bytes);

#endif
