// SPDX-License-Identifier: MIT
#include "bizprobe/trace_format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bizprobe/redact.h"

/* A bounded writer: appends stop at the end of the buffer, and the caller learns of it. */
struct out_buf {
	char *p;
	size_t cap, len;
	bool overflow;
};

static void put(struct out_buf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

/* JSON string escaping (RFC 8259): quotes, backslash and control bytes; other bytes as they
 * are, since HTTP header text is ASCII in practice and invalid UTF-8 is the producer's. */
static void put_json_string(struct out_buf *o, const char *s)
{
	put(o, "\"");
	for (; s && *s && !o->overflow; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

static void format_wall(uint64_t wall_ns, char *buf, size_t cap, bool date)
{
	time_t sec = (time_t)(wall_ns / 1000000000ull);
	unsigned usec = (unsigned)((wall_ns % 1000000000ull) / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), date ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%06u%s", base, usec, date ? "Z" : "");
}

static const char *role_name(enum http_role r)
{
	return r == HTTP_ROLE_SERVER ? "server" : "client";
}

int trace_format_json(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap)
{
	struct out_buf o = {.p = buf, .cap = cap};
	char ts[48];

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	format_wall(wall_ns, ts, sizeof(ts), true);
	put(&o, "{\"ts\":\"%s\",\"pid\":%u,\"comm\":", ts, ex->conn.pid);
	put_json_string(&o, ex->conn.comm);
	put(&o, ",\"role\":\"%s\",\"tls\":%s,\"method\":", role_name(ex->role),
	    ex->conn.tls ? "true" : "false");
	put_json_string(&o, ex->method);
	put(&o, ",\"host\":");
	put_json_string(&o, ex->host);
	put(&o, ",\"path\":");
	put_json_string(&o, ex->path);
	put(&o,
	    ",\"status\":%d,\"duration_us\":%llu,\"req_bytes\":%llu,\"resp_bytes\":%llu,"
	    "\"truncated\":%s}",
	    ex->status, (unsigned long long)(ex->duration_ns / 1000),
	    (unsigned long long)ex->req.wire_body_bytes,
	    (unsigned long long)ex->resp.wire_body_bytes, ex->truncated ? "true" : "false");
	return o.overflow ? -ENOSPC : (int)o.len;
}

int trace_format_text(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap)
{
	struct out_buf o = {.p = buf, .cap = cap};
	char ts[48];

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	format_wall(wall_ns, ts, sizeof(ts), false);
	put(&o, "%s %s[%u] %-6s %-5s %s %s %s -> %d %.3fms %lluB/%lluB%s", ts, ex->conn.comm,
	    ex->conn.pid, role_name(ex->role), ex->conn.tls ? "TLS" : "plain", ex->method,
	    ex->host[0] ? ex->host : "-", ex->path, ex->status, (double)ex->duration_ns / 1e6,
	    (unsigned long long)ex->req.wire_body_bytes,
	    (unsigned long long)ex->resp.wire_body_bytes, ex->truncated ? " [truncated]" : "");
	return o.overflow ? -ENOSPC : (int)o.len;
}

static void write_body(FILE *out, const char *label, const struct http_message *m,
		       size_t max_bytes)
{
	size_t n = m->body_len < max_bytes ? m->body_len : max_bytes;
	size_t need;
	char *red;

	if (!m->body || !m->body_len)
		return;
	need = redact_text((const char *)m->body, n, NULL, 0) + 1;
	red = malloc(need);
	if (!red)
		return;
	redact_text((const char *)m->body, n, red, need);
	/* Bodies may hold binary bytes: show printable ASCII only. */
	for (char *c = red; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t')
			*c = '.';
	fprintf(out, "    %s body (%zu of %zu bytes):\n      %s\n", label, n, m->body_len, red);
	free(red);
}

void trace_write_bodies(FILE *out, const struct http_exchange *ex, size_t max_bytes)
{
	write_body(out, "request", &ex->req, max_bytes);
	write_body(out, "response", &ex->resp, max_bytes);
}
