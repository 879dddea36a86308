// SPDX-License-Identifier: MIT
/*
 * Body storage and Content-Encoding decoding. The body buffer grows by doubling up to
 * body_cap + 1 (the +1 is the NUL the public view promises) and never beyond, whether the bytes
 * come straight from the wire or out of zlib: a gzip bomb fills the cap, is marked truncated,
 * and its remaining input is only counted. zlib's own state (about 7 KiB + a 32 KiB window) is
 * allocated once per message buffer and reset, not re-initialized, for the next message.
 */
#include <string.h>
#include <strings.h>

#include "http_internal.h"

#define BODY_INITIAL_ALLOC 4096u

/* windowBits 15 + 32: zlib detects a gzip or a zlib header by itself. */
#define Z_AUTO_WBITS (15 + 32)
/* Negative: raw deflate, which some servers send for "Content-Encoding: deflate". */
#define Z_RAW_WBITS (-15)

static bool coding_is(const char *v, const char *name)
{
	size_t n = strlen(name);

	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, name, n) != 0)
		return false;
	v += n;
	while (*v == ' ' || *v == '\t')
		v++;
	return *v == '\0';
}

static const char *find_header(const struct http_msgbuf *m, const char *name)
{
	size_t len = strlen(name);
	unsigned i;

	for (i = 0; i < m->n_headers; i++) {
		size_t off = m->name_off[i];

		/* Runs for every message: most names are cut off by their length (a NUL exactly
		 * len bytes in; every byte before hdr_len is ours) before any byte is compared. */
		if (off + len < m->hdr_len && m->hdr[off + len] == '\0' &&
		    strncasecmp(m->hdr + off, name, len) == 0)
			return m->hdr + m->value_off[i];
	}
	return NULL;
}

/* Called at the end of the headers. Codings other than gzip/deflate (br, zstd, stacked codings)
 * are kept as sent: we have no Debian-packaged decoder wired in for them yet. */
void http_body_begin(struct http_msgbuf *m)
{
	const char *ce = find_header(m, "Content-Encoding");
	int rc;

	m->decode = HTTP_DECODE_NONE;
	if (!ce || !(coding_is(ce, "gzip") || coding_is(ce, "x-gzip") || coding_is(ce, "deflate")))
		return;
	if (!m->z_ready) {
		memset(&m->z, 0, sizeof(m->z));
		m->z.zalloc = http_mem_zalloc;
		m->z.zfree = http_mem_zfree;
		m->z.opaque = m->t;
		rc = inflateInit2(&m->z, Z_AUTO_WBITS);
		if (rc != Z_OK) {
			/* Over budget (or out of memory): no decoded body. Not the compressed bytes
			 * either, which readers would take for the decoded ones. */
			m->body_truncated = true;
			m->decode = HTTP_DECODE_STOPPED;
			return;
		}
		m->z_ready = true;
	} else if (inflateReset2(&m->z, Z_AUTO_WBITS) != Z_OK) {
		m->body_truncated = true;
		m->decode = HTTP_DECODE_STOPPED;
		return;
	}
	m->z_raw = false;
	m->decode = HTTP_DECODE_RUNNING;
}

/* Makes room for at least one byte more than body_len plus the NUL, growing the buffer only
 * when it is full: a buffer reused for the connection's next message keeps its size rather than
 * doubling at every message up to body_cap (a realloc and a copy each time, and body_cap bytes
 * held by every connection that ever sent two bodies). */
static bool body_grow(struct http_msgbuf *m, size_t cap)
{
	size_t limit = cap + 1;
	size_t n;
	uint8_t *p;

	if (m->body_len + 1 < m->body_alloc)
		return true;
	if (m->body_alloc >= limit)
		return m->body_len + 1 < m->body_alloc;
	n = m->body_alloc ? m->body_alloc * 2 : BODY_INITIAL_ALLOC;
	if (n > limit)
		n = limit;
	p = http_mem_grow(m->t, m->body, m->body_alloc, n);
	if (!p)
		return m->body_len + 1 < m->body_alloc;
	m->body = p;
	m->body_alloc = n;
	return true;
}

static void body_store(struct http_msgbuf *m, const uint8_t *data, size_t len, size_t cap)
{
	while (len) {
		size_t room;

		if (m->body_len >= cap || !body_grow(m, cap)) {
			m->body_truncated = true;
			return;
		}
		room = m->body_alloc - 1 - m->body_len;
		if (room > cap - m->body_len)
			room = cap - m->body_len;
		if (room > len)
			room = len;
		memcpy(m->body + m->body_len, data, room);
		m->body_len += room;
		data += room;
		len -= room;
	}
}

/* Inflates data into the body. Returns a zlib error code on corrupt input, else Z_OK. */
static int inflate_some(struct http_msgbuf *m, const uint8_t *data, size_t len, size_t cap)
{
	z_stream *z = &m->z;
	int rc = Z_OK;

	z->next_in = (Bytef *)data;
	z->avail_in = (uInt)len;
	while (m->decode == HTTP_DECODE_RUNNING) {
		uint8_t probe[64];
		bool probing = m->body_len >= cap || !body_grow(m, cap);
		size_t room;

		if (probing) {
			/* Full: any further output means the decoded body is longer than the cap.
			 */
			room = sizeof(probe);
			z->next_out = probe;
		} else {
			room = m->body_alloc - 1 - m->body_len;
			if (room > cap - m->body_len)
				room = cap - m->body_len;
			z->next_out = m->body + m->body_len;
		}
		z->avail_out = (uInt)room;
		rc = inflate(z, Z_NO_FLUSH);
		if (probing && z->avail_out < room) {
			m->body_truncated = true;
			m->decode = HTTP_DECODE_STOPPED;
			break;
		}
		if (!probing)
			m->body_len += room - z->avail_out;
		if (rc == Z_STREAM_END) {
			/* Bytes after the end (a second gzip member, garbage) are not decoded. */
			m->decode = HTTP_DECODE_DONE;
			rc = Z_OK;
			break;
		}
		if (rc == Z_BUF_ERROR) {
			rc = Z_OK; /* no progress possible: needs more input */
			break;
		}
		if (rc != Z_OK)
			break;
		if (z->avail_in == 0 && z->avail_out != 0)
			break;
	}
	z->next_in = NULL;
	z->avail_in = 0;
	return rc;
}

void http_body_feed(struct http_msgbuf *m, const uint8_t *data, size_t len, size_t cap)
{
	uint64_t before = m->wire_body_bytes;
	int rc;

	m->wire_body_bytes += len;
	if (m->decode == HTTP_DECODE_NONE) {
		body_store(m, data, len, cap);
		return;
	}
	if (m->decode != HTTP_DECODE_RUNNING)
		return;
	rc = inflate_some(m, data, len, cap);
	if (rc != Z_OK && !m->z_raw && m->z.total_out == 0 && before <= sizeof(m->z_head) &&
	    inflateReset2(&m->z, Z_RAW_WBITS) == Z_OK) {
		/* Not gzip/zlib from the first bytes on: replay them as raw deflate. */
		m->z_raw = true;
		rc = inflate_some(m, m->z_head, (size_t)before, cap);
		if (rc == Z_OK)
			rc = inflate_some(m, data, len, cap);
	}
	if (rc != Z_OK) {
		m->body_truncated = true;
		m->decode = HTTP_DECODE_STOPPED;
	}
	if (before < sizeof(m->z_head)) {
		size_t n = sizeof(m->z_head) - (size_t)before;

		memcpy(m->z_head + before, data, n < len ? n : len);
	}
}

/* Lost bytes inside the body: counted, not stored, and nothing after them is stored or
 * inflated either. */
void http_body_gap(struct http_msgbuf *m, uint64_t len)
{
	m->wire_body_bytes += len;
	m->body_truncated = true;
	if (m->decode == HTTP_DECODE_SKIPPED)
		return;
	/* Keep the body a true prefix: bytes after the hole are counted, not stored. */
	m->decode = HTTP_DECODE_STOPPED;
}

void http_body_skip(struct http_msgbuf *m)
{
	m->decode = HTTP_DECODE_SKIPPED;
}

/* An encoded body that ended before zlib saw its end was cut or corrupt. */
void http_body_end(struct http_msgbuf *m)
{
	if (m->decode == HTTP_DECODE_SKIPPED && m->wire_body_bytes > 0)
		m->t->stats.bodies_skipped++;
	if (m->decode == HTTP_DECODE_RUNNING && m->wire_body_bytes > 0)
		m->body_truncated = true;
	if (m->decode == HTTP_DECODE_RUNNING)
		m->decode = HTTP_DECODE_STOPPED;
}
