// SPDX-License-Identifier: MIT
#include "bizprobe/trace_format.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bizprobe/form.h"
#include "bizprobe/identity.h"
#include "bizprobe/redact.h"

/*
 * A bounded writer: appends stop at the end of the buffer, and the caller learns of it. need
 * keeps counting past the end, so that a caller can retry with a buffer that fits; the text
 * written so far stays NUL-terminated.
 */
struct out_buf {
	char *p;
	size_t cap, len;
	size_t need; /* bytes the whole text takes, NUL excluded */
	bool overflow;
	int err; /* a negative errno other than -ENOSPC (out of memory) */
	/* \n, \r and \t as such rather than \u000a...: bodies are full of them. Off for the
	 * basic fields, whose bytes tests and scripts compare. */
	bool short_escapes;
};

static void put_mem(struct out_buf *o, const char *s, size_t n)
{
	o->need += n;
	if (o->overflow)
		return;
	if (n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void put(struct out_buf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (o->overflow)
		n = vsnprintf(NULL, 0, fmt, ap);
	else
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->overflow = true;
		return;
	}
	o->need += (size_t)n;
	if (o->overflow)
		return;
	if ((size_t)n >= o->cap - o->len) {
		/* Keep only whole pieces: a cut one would look like data. */
		o->p[o->len] = '\0';
		o->overflow = true;
		return;
	}
	o->len += (size_t)n;
}

/* Bytes of the valid UTF-8 sequence at s[0..n), or 0 when it is not one (overlong forms,
 * surrogates and code points past U+10FFFF are not UTF-8: RFC 3629). */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len, k;
	unsigned cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (k = 1; k < len; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/*
 * JSON string content (RFC 8259), without the quotes: quote and backslash escaped, control bytes
 * and DEL as \u00XX, valid UTF-8 as it is, and each byte that is not part of valid UTF-8 as
 * U+FFFD, so that the line is valid JSON whatever the traced process sent (a strict reader
 * rejects invalid UTF-8 in a document). Runs of plain bytes are copied at once: bodies are long.
 */
static void put_json_chars(struct out_buf *o, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;
	char esc[8];

	while (i < n) {
		unsigned char c = s[i];
		size_t seq;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
			i++;
			continue;
		}
		if (c >= 0x80 && (seq = utf8_seq_len(s + i, n - i))) {
			i += seq;
			continue;
		}
		put_mem(o, str + run, i - run);
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put_mem(o, esc, 2);
		} else if (o->short_escapes && (c == '\n' || c == '\r' || c == '\t')) {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			put_mem(o, esc, 2);
		} else if (c < 0x80) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put_mem(o, esc, 6);
		} else {
			put_mem(o, "\\ufffd", 6);
		}
		run = ++i;
	}
	put_mem(o, str + run, n - run);
}

static void put_json_mem(struct out_buf *o, const char *s, size_t n)
{
	put_mem(o, "\"", 1);
	if (s)
		put_json_chars(o, s, n);
	put_mem(o, "\"", 1);
}

static void put_json_string(struct out_buf *o, const char *s)
{
	put_json_mem(o, s, s ? strlen(s) : 0);
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

/*
 * The host and path every line shows: as sent with raw_paths, else the path's route template
 * and the host scrubbed (a Host header is whatever the client wrote). Both malloc'd; NULL when
 * out of memory.
 */
struct shown {
	char *host, *path;
};

static char *scrubbed_copy(const char *s, bool template)
{
	size_t n = template ? redact_path_template(s, NULL, 0) : redact_text(s, strlen(s), NULL, 0);
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	if (template)
		redact_path_template(s, out, n + 1);
	else
		redact_text(s, strlen(s), out, n + 1);
	return out;
}

static int shown_init(struct shown *sh, const struct http_exchange *ex,
		      const struct trace_opts *opts)
{
	const char *host = ex->host ? ex->host : "", *path = ex->path ? ex->path : "";

	if (opts && opts->raw_paths) {
		sh->host = strdup(host);
		sh->path = strdup(path);
	} else {
		sh->host = scrubbed_copy(host, false);
		sh->path = scrubbed_copy(path, true);
	}
	if (!sh->host || !sh->path) {
		free(sh->host);
		free(sh->path);
		return -ENOMEM;
	}
	return 0;
}

static void shown_free(struct shown *sh)
{
	free(sh->host);
	free(sh->path);
}

/* The basic object without its closing brace: what every JSON line starts with. */
static void put_basic(struct out_buf *o, const struct http_exchange *ex, uint64_t wall_ns,
		      const struct trace_opts *opts)
{
	struct shown sh;
	char ts[48];

	if (shown_init(&sh, ex, opts)) {
		o->err = -ENOMEM;
		return;
	}
	format_wall(wall_ns, ts, sizeof(ts), true);
	put(o, "{\"ts\":\"%s\",\"pid\":%u,\"comm\":", ts, ex->conn.pid);
	put_json_string(o, ex->conn.comm);
	put(o, ",\"role\":\"%s\",\"tls\":%s,\"method\":", role_name(ex->role),
	    ex->conn.tls ? "true" : "false");
	put_json_string(o, ex->method);
	put(o, ",\"host\":");
	put_json_string(o, sh.host);
	put(o, ",\"path\":");
	put_json_string(o, sh.path);
	shown_free(&sh);
	put(o,
	    ",\"status\":%d,\"duration_us\":%llu,\"req_bytes\":%llu,\"resp_bytes\":%llu,"
	    "\"truncated\":%s",
	    ex->status, (unsigned long long)(ex->duration_ns / 1000),
	    (unsigned long long)ex->req.wire_body_bytes,
	    (unsigned long long)ex->resp.wire_body_bytes, ex->truncated ? "true" : "false");
}

static int finish(struct out_buf *o)
{
	if (o->err)
		return o->err;
	return o->overflow ? -ENOSPC : (int)o->len;
}

static int format_json(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap,
		       const struct trace_opts *opts)
{
	struct out_buf o = {.p = buf, .cap = cap};

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	put_basic(&o, ex, wall_ns, opts);
	put_mem(&o, "}", 1);
	return finish(&o);
}

static int format_json_dropped(const struct http_exchange *ex, uint64_t wall_ns, char *buf,
			       size_t cap, const struct trace_opts *opts)
{
	struct out_buf o = {.p = buf, .cap = cap};

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	put_basic(&o, ex, wall_ns, opts);
	put(&o, ",\"detail_dropped\":true}");
	return finish(&o);
}

int trace_format_json(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap)
{
	return format_json(ex, wall_ns, buf, cap, NULL);
}

int trace_format_json_dropped(const struct http_exchange *ex, uint64_t wall_ns, char *buf,
			      size_t cap)
{
	return format_json_dropped(ex, wall_ns, buf, cap, NULL);
}

/*
 * Scrubbing. redact_text knows keys, credentials, JWTs, secret-named fields, cards and e-mails
 * in free text, encoded or not; the detail view adds what only its context shows: headers whose
 * name says they carry a credential or an identity, query and form fields decoded first.
 */

/* A growable string: the scrubbed copies of one field. */
struct str_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct str_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Names whose value is a credential or an identity whatever it looks like: X-User-Id and
 * user_email name a user. User-Agent names a program, and rules read it: it is kept. */
static bool name_is_secret(const char *name, size_t len)
{
	static const char *const exact[] = {"authorization", "proxy-authorization", "cookie",
					    "set-cookie",    "stripe-signature",    "x-api-key"};
	static const char *const parts[] = {"token",	"secret", "auth",    "key",	  "password",
					    "passwd",	"session", "signature", "user"};
	char low[128];
	size_t i;

	if (len >= sizeof(low))
		return true; /* no real name is that long: better hidden than shown */
	for (i = 0; i < len; i++)
		low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] | 0x20 : name[i]);
	low[len] = '\0';
	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(low, exact[i]))
			return true;
	if (!strcmp(low, "user-agent"))
		return false;
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (strstr(low, parts[i]))
			return true;
	return false;
}

/* redact_text into b. */
static void sb_put_redacted(struct str_buf *b, const char *in, size_t len)
{
	size_t need = redact_text(in, len, NULL, 0);
	char *red = malloc(need + 1);

	if (!red) {
		b->oom = true;
		return;
	}
	redact_text(in, len, red, need + 1);
	sb_put(b, red, need);
	free(red);
}

/* Decodes %XX and '+' (as form.h's lookups do); *n becomes the decoded length. */
static char *form_decode_copy(const char *in, size_t len, size_t *n)
{
	char *out = malloc(len + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < len && form_hexval(in[i + 1]) >= 0 &&
			   form_hexval(in[i + 2]) >= 0) {
			c = (char)(form_hexval(in[i + 1]) * 16 + form_hexval(in[i + 2]));
			i += 2;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*n = o;
	return out;
}

static void sb_put_form_encoded(struct str_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[3] = {'%', hex[c >> 4], hex[c & 15]};

		if (c > 0x20 && c < 0x7f && c != '%' && c != '&' && c != '=' && c != '+' &&
		    c != '#')
			sb_put(b, s + i, 1);
		else
			sb_put(b, e, 3);
	}
}

/* One name or value of a form: as it was when scrubbing its decoded form changes nothing
 * (the recording keeps the app's encoding), else the scrubbed decoded text, encoded again. */
static void sb_put_form_part(struct str_buf *b, const char *s, size_t n)
{
	struct str_buf red = {0};
	size_t dlen;
	char *dec = form_decode_copy(s, n, &dlen);

	if (!dec) {
		b->oom = true;
		return;
	}
	sb_put_redacted(&red, dec, dlen);
	if (red.oom)
		b->oom = true;
	else if (red.len == dlen && !memcmp(red.p, dec, dlen))
		sb_put(b, s, n);
	else
		sb_put_form_encoded(b, red.p, red.len);
	free(red.p);
	free(dec);
}

/* A query string or form body: pairs whose decoded name is secret-like keep only the name. */
static void sb_put_form_redacted(struct str_buf *b, const char *in, size_t len)
{
	const char *p = in, *end = in + len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		const char *name_end = eq ? eq : pair_end;
		size_t dlen;
		char *dname = form_decode_copy(p, (size_t)(name_end - p), &dlen);

		if (!dname) {
			b->oom = true;
			return;
		}
		sb_put_form_part(b, p, (size_t)(name_end - p));
		if (eq) {
			sb_put(b, "=", 1);
			if (name_is_secret(dname, dlen))
				sb_put(b, REDACT_MARK, strlen(REDACT_MARK));
			else
				sb_put_form_part(b, eq + 1, (size_t)(pair_end - eq - 1));
		}
		free(dname);
		if (amp)
			sb_put(b, "&", 1);
		p = amp ? amp + 1 : end;
	}
}

/* A header value that is not secret-named: free text, except that a URL's query (Referer,
 * Location) is scrubbed field by field. */
static void sb_put_header_value(struct str_buf *b, const char *v)
{
	const char *q = strchr(v, '?');

	if (!q) {
		sb_put_redacted(b, v, strlen(v));
		return;
	}
	sb_put_redacted(b, v, (size_t)(q - v + 1));
	sb_put_form_redacted(b, q + 1, strlen(q + 1));
}

/* Headers that carry the client's address, which is shown cut to its /24 or /48 only. */
static bool header_is_client_ip(const char *name)
{
	static const char *const names[] = {
	    "x-forwarded-for", "x-real-ip",	      "true-client-ip",	 "cf-connecting-ip",
	    "x-client-ip",     "x-cluster-client-ip", "fastly-client-ip"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(name, names[i]))
			return true;
	return false;
}

/* One address of a list, cut by ip_anonymize: "-" for anything that is not an address. */
static void sb_put_ip(struct str_buf *b, const char *s, size_t n)
{
	char in[64], out[64];

	if (n >= sizeof(in))
		n = sizeof(in) - 1; /* longer than any address: ip_anonymize says "-" */
	memcpy(in, s, n);
	in[n] = '\0';
	ip_anonymize(in, out, sizeof(out));
	sb_put(b, out, strlen(out));
}

/* An IPv6 node of Forwarded is quoted and bracketed ("[2001:db8:1::]"). */
static void sb_put_ip_quoted(struct str_buf *b, const char *s, size_t n)
{
	struct str_buf ip = {0};

	sb_put_ip(&ip, s, n);
	if (ip.oom) {
		b->oom = true;
	} else if (strchr(ip.p, ':')) {
		sb_put(b, "\"[", 2);
		sb_put(b, ip.p, ip.len);
		sb_put(b, "]\"", 2);
	} else {
		sb_put(b, ip.p, ip.len);
	}
	free(ip.p);
}

/* "203.0.113.7, 10.1.2.3" -> "203.0.113.0, 10.1.2.0". */
static void sb_put_ip_list(struct str_buf *b, const char *v)
{
	for (bool first = true;; first = false) {
		size_t n = strcspn(v, ",");

		if (!first)
			sb_put(b, ", ", 2);
		sb_put_ip(b, v, n);
		if (!v[n])
			break;
		v += n + 1;
	}
}

/* Forwarded (RFC 7239): the for= and by= nodes are addresses ("192.0.2.60",
 * "\"[2001:db8::1]:4711\""), cut without their port; an obfuscated node ("_hidden", "unknown")
 * becomes "-", as ip_anonymize says of anything that is not an address. */
static void sb_put_forwarded(struct str_buf *b, const char *v)
{
	while (*v) {
		size_t n = strcspn(v, ",;");
		const char *eq = memchr(v, '=', n);
		const char *name = v;

		while (name < v + n && (*name == ' ' || *name == '\t'))
			name++;
		if (eq && ((eq - name == 3 && !strncasecmp(name, "for", 3)) ||
			   (eq - name == 2 && !strncasecmp(name, "by", 2)))) {
			const char *a = eq + 1, *end = v + n, *colon;

			if (a < end && *a == '"')
				a++;
			if (end > a && end[-1] == '"')
				end--;
			colon = memchr(a, ':', (size_t)(end - a));
			if (a < end && *a == '[') {
				const char *close = memchr(a, ']', (size_t)(end - a));

				a++;
				end = close ? close : end;
			} else if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
				end = colon; /* IPv4:port */
			}
			sb_put(b, v, (size_t)(eq + 1 - v));
			sb_put_ip_quoted(b, a, (size_t)(end - a));
		} else {
			sb_put_redacted(b, v, n);
		}
		if (!v[n])
			break;
		sb_put(b, v + n, 1);
		v += n + 1;
	}
}

static void put_str_buf(struct out_buf *o, struct str_buf *b)
{
	if (b->oom) {
		o->err = -ENOMEM;
		return;
	}
	put_json_mem(o, b->p ? b->p : "", b->len);
}

/*
 * Headers as one object: a name repeated in the message (two Accept headers) is one member
 * whose values are joined as RFC 9110 5.3 allows (", "; "; " for Cookie), so that every reader
 * of the object sees all of them; the first spelling of the name is kept.
 */
static void put_headers(struct out_buf *o, const struct http_message *m)
{
	bool first = true;

	put_mem(o, "{", 1);
	for (unsigned i = 0; i < m->n_headers; i++) {
		const char *name = m->headers[i].name;
		struct str_buf b = {0};
		bool seen = false, secret;
		unsigned k;

		if (!name || !m->headers[i].value)
			continue;
		for (k = 0; k < i && !seen; k++)
			seen = m->headers[k].name && !strcasecmp(m->headers[k].name, name);
		if (seen)
			continue;
		secret = name_is_secret(name, strlen(name));
		if (secret)
			sb_put(&b, REDACT_MARK, strlen(REDACT_MARK));
		for (k = i; k < m->n_headers && !secret; k++) {
			if (!m->headers[k].name || !m->headers[k].value ||
			    strcasecmp(m->headers[k].name, name))
				continue;
			if (k != i)
				sb_put(&b, strcasecmp(name, "cookie") ? ", " : "; ", 2);
			if (header_is_client_ip(name))
				sb_put_ip_list(&b, m->headers[k].value);
			else if (!strcasecmp(name, "forwarded"))
				sb_put_forwarded(&b, m->headers[k].value);
			else
				sb_put_header_value(&b, m->headers[k].value);
		}
		if (!first)
			put_mem(o, ",", 1);
		first = false;
		put_json_string(o, name);
		put_mem(o, ":", 1);
		put_str_buf(o, &b);
		free(b.p);
	}
	put_mem(o, "}", 1);
}

/*
 * Length of the text at s[0..n) when it is UTF-8 without NUL bytes, else -1. A multi-byte
 * character cut by the end (the body cap fell inside it) does not make it binary: it is left
 * out of the length.
 */
static long utf8_text_len(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t seq;

		if (s[i] == 0)
			return -1;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		seq = utf8_seq_len(s + i, n - i);
		if (!seq) {
			unsigned char c = s[i];
			size_t want = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

			/* A cut character: a lead byte and continuation bytes up to the end. */
			if (c < 0xc2 || c > 0xf4 || n - i >= want)
				return -1;
			for (size_t k = i + 1; k < n; k++)
				if ((s[k] & 0xc0) != 0x80)
					return -1;
			return (long)i;
		}
		i += seq;
	}
	return (long)i;
}

static bool is_form(const struct http_message *m)
{
	const char *ct = http_message_header(m, "Content-Type");

	return ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
}

static void put_body(struct out_buf *o, const char *label, const struct http_message *m,
		     size_t max_body)
{
	const unsigned char *body = m->body;
	struct str_buf b = {0};
	bool cut = m->body_truncated;
	long text_len = body ? utf8_text_len(body, m->body_len) : 0;
	size_t n;

	if (text_len < 0) {
		put(o, ",\"%s_body_binary\":true,\"%s_body_truncated\":%s", label, label,
		    cut ? "true" : "false");
		return;
	}
	if ((size_t)text_len < m->body_len)
		cut = true;
	/* Scrubbed whole, then cut: an e-mail across the cut is still recognized. */
	if (is_form(m))
		sb_put_form_redacted(&b, (const char *)body, (size_t)text_len);
	else
		sb_put_redacted(&b, (const char *)body, (size_t)text_len);
	if (b.oom) {
		o->err = -ENOMEM;
		free(b.p);
		return;
	}
	n = b.len;
	if (n > max_body) {
		n = max_body;
		/* Not inside a character. */
		while (n > 0 && ((unsigned char)b.p[n] & 0xc0) == 0x80)
			n--;
		cut = true;
	}
	put(o, ",\"%s_body\":", label);
	put_json_mem(o, b.p ? b.p : "", n);
	put(o, ",\"%s_body_truncated\":%s", label, cut ? "true" : "false");
	free(b.p);
}

static int format_json_detail(const struct http_exchange *ex, uint64_t wall_ns, char *buf,
			      size_t cap, size_t max_body, size_t *need,
			      const struct trace_opts *opts)
{
	struct out_buf o = {.p = buf, .cap = cap};
	struct str_buf q = {0};
	int rc;

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	put_basic(&o, ex, wall_ns, opts);
	o.short_escapes = true;
	if (ex->query && *ex->query)
		sb_put_form_redacted(&q, ex->query, strlen(ex->query));
	put(&o, ",\"query\":");
	put_str_buf(&o, &q);
	free(q.p);
	put(&o, ",\"req_headers\":");
	put_headers(&o, &ex->req);
	put(&o, ",\"resp_headers\":");
	put_headers(&o, &ex->resp);
	put_body(&o, "req", &ex->req, max_body);
	put_body(&o, "resp", &ex->resp, max_body);
	put_mem(&o, "}", 1);
	rc = finish(&o);
	if (need)
		*need = o.need + 1;
	return rc;
}

int trace_format_json_detail(const struct http_exchange *ex, uint64_t wall_ns, char *buf,
			     size_t cap, size_t max_body, size_t *need)
{
	return format_json_detail(ex, wall_ns, buf, cap, max_body, need, NULL);
}

static int format_text(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap,
		       const struct trace_opts *opts)
{
	struct out_buf o = {.p = buf, .cap = cap};
	struct shown sh;
	char ts[48];

	if (!cap)
		return -ENOSPC;
	buf[0] = '\0';
	if (shown_init(&sh, ex, opts))
		return -ENOMEM;
	format_wall(wall_ns, ts, sizeof(ts), false);
	put(&o, "%s %s[%u] %-6s %-5s %s %s %s -> %d %.3fms %lluB/%lluB%s", ts, ex->conn.comm,
	    ex->conn.pid, role_name(ex->role), ex->conn.tls ? "TLS" : "plain", ex->method,
	    sh.host[0] ? sh.host : "-", sh.path, ex->status, (double)ex->duration_ns / 1e6,
	    (unsigned long long)ex->req.wire_body_bytes,
	    (unsigned long long)ex->resp.wire_body_bytes, ex->truncated ? " [truncated]" : "");
	shown_free(&sh);
	return finish(&o);
}

int trace_format_text(const struct http_exchange *ex, uint64_t wall_ns, char *buf, size_t cap)
{
	return format_text(ex, wall_ns, buf, cap, NULL);
}

int trace_format(enum trace_line_kind kind, const struct http_exchange *ex, uint64_t wall_ns,
		 const struct trace_opts *opts, char *buf, size_t cap, size_t *need)
{
	switch (kind) {
	case TRACE_TEXT:
		return format_text(ex, wall_ns, buf, cap, opts);
	case TRACE_JSON:
		return format_json(ex, wall_ns, buf, cap, opts);
	case TRACE_JSON_DETAIL:
		return format_json_detail(ex, wall_ns, buf, cap, opts ? opts->max_body : 65536, need,
					  opts);
	case TRACE_JSON_DROPPED:
		return format_json_dropped(ex, wall_ns, buf, cap, opts);
	}
	return -EINVAL;
}

void trace_format_json_write(FILE *out, const char *s, size_t len)
{
	char chunk[4096];
	struct out_buf o;
	size_t i = 0;

	fputc('"', out);
	/* In slices, each ending on a character boundary so that no sequence is split. */
	while (i < len) {
		size_t n = len - i < 512 ? len - i : 512;

		while (i + n < len && n > 1 && ((unsigned char)s[i + n] & 0xc0) == 0x80)
			n--;
		o = (struct out_buf){.p = chunk, .cap = sizeof(chunk)};
		put_json_chars(&o, s + i, n);
		fputs(chunk, out);
		i += n;
	}
	fputc('"', out);
}

static void write_body(FILE *out, const char *label, const struct http_message *m, size_t max_bytes)
{
	struct str_buf b = {0};
	size_t n;

	if (!m->body || !m->body_len)
		return;
	sb_put_redacted(&b, (const char *)m->body, m->body_len);
	if (b.oom) {
		free(b.p);
		return;
	}
	n = b.len < max_bytes ? b.len : max_bytes;
	b.p[n] = '\0';
	/* Bodies may hold binary bytes: show printable ASCII only. */
	for (char *c = b.p; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t')
			*c = '.';
	/* The count is of the app's bytes, as before redaction (markers change the length). */
	fprintf(out, "    %s body (%zu of %zu bytes):\n      %s\n", label,
		m->body_len < max_bytes ? m->body_len : max_bytes, m->body_len, b.p);
	free(b.p);
}

void trace_write_bodies(FILE *out, const struct http_exchange *ex, size_t max_bytes)
{
	write_body(out, "request", &ex->req, max_bytes);
	write_body(out, "response", &ex->resp, max_bytes);
}
