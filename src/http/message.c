// SPDX-License-Identifier: MIT
/*
 * Start line and header storage of one message. llhttp hands us names, values and the
 * request-target in arbitrary pieces (a piece per chunk it was split across), so they are
 * appended to one buffer and NUL-terminated when the next element starts. The buffer grows by
 * doubling up to header_cap and never beyond: a header that does not fit is dropped whole
 * (rolled back) and headers_truncated is set, so a 1 MiB header costs at most header_cap.
 */
#include <string.h>
#include <strings.h>

#include "http_internal.h"

#define HDR_INITIAL_ALLOC 1024u

void http_msgbuf_reset(struct http_msgbuf *m)
{
	m->hdr_len = 0;
	m->url_len = 0;
	m->cur_start = 0;
	m->n_headers = 0;
	m->url_done = false;
	m->have_cur = false;
	m->cur_value = false;
	m->dropping = false;
	m->headers_done = false;
	m->headers_truncated = false;
	m->body_len = 0;
	m->wire_body_bytes = 0;
	m->body_truncated = false;
	m->decode = HTTP_DECODE_NONE;
	m->z_raw = false;
	m->first_ts_ns = 0;
	m->last_ts_ns = 0;
	m->status = 0;
	m->method = 0;
	m->method_set = false;
	m->bodies = HTTP_BODIES_UNASKED;
	m->complete = false;
}

void http_msgbuf_free(struct http_msgbuf *m)
{
	http_mem_free(m->t, m->hdr, m->hdr_alloc);
	http_mem_free(m->t, m->body, m->body_alloc);
	if (m->z_ready)
		inflateEnd(&m->z); /* through http_mem_zfree */
	m->hdr = NULL;
	m->body = NULL;
	m->hdr_alloc = 0;
	m->body_alloc = 0;
	m->z_ready = false;
}

/* Makes room for need more bytes plus a NUL, within cap. False: it does not fit. */
static bool hdr_reserve(struct http_msgbuf *m, size_t need, size_t cap)
{
	size_t want = (size_t)m->hdr_len + need + 1;
	size_t n;
	char *p;

	if (want > cap)
		return false;
	if (want <= m->hdr_alloc)
		return true;
	n = m->hdr_alloc ? m->hdr_alloc : HDR_INITIAL_ALLOC;
	while (n < want)
		n *= 2;
	if (n > cap)
		n = cap;
	p = http_mem_grow(m->t, m->hdr, m->hdr_alloc, n);
	if (!p)
		return false;
	m->hdr = p;
	m->hdr_alloc = (uint32_t)n;
	return true;
}

static bool hdr_append(struct http_msgbuf *m, const char *at, size_t len, size_t cap)
{
	if (!hdr_reserve(m, len, cap))
		return false;
	memcpy(m->hdr + m->hdr_len, at, len);
	m->hdr_len += (uint32_t)len;
	return true;
}

/* Terminates the request-target before the first header goes in after it. */
static void url_finish(struct http_msgbuf *m, size_t cap)
{
	if (m->url_done)
		return;
	m->url_done = true;
	/* hdr_reserve always leaves room for this NUL. */
	if (m->hdr_len < m->hdr_alloc) {
		m->hdr[m->hdr_len++] = '\0';
	} else if (hdr_reserve(m, 0, cap + 1)) {
		m->hdr[m->hdr_len++] = '\0';
	}
}

void http_msgbuf_url(struct http_msgbuf *m, const char *at, size_t len, size_t cap)
{
	size_t room;

	if (m->url_done)
		return;
	if (hdr_append(m, at, len, cap)) {
		m->url_len += (uint32_t)len;
		return;
	}
	/* Keep the prefix that fits; a cut target is still the best path we have. */
	m->headers_truncated = true;
	room = cap > (size_t)m->hdr_len + 1 ? cap - m->hdr_len - 1 : 0;
	if (room > len)
		room = len;
	if (room && hdr_append(m, at, room, cap))
		m->url_len += (uint32_t)room;
}

/* Closes the header being received: NUL after its value, and it counts. */
static void header_finish(struct http_msgbuf *m)
{
	if (!m->have_cur)
		return;
	m->have_cur = false;
	if (m->dropping) {
		m->dropping = false;
		return;
	}
	if (!m->cur_value) {
		/* An empty value ("X-Empty:\r\n") may come with no value callback at all: the
		 * name still gets an empty value (the name's NUL is reserved). */
		m->hdr[m->hdr_len++] = '\0';
		m->value_off[m->n_headers] = m->hdr_len - 1;
		m->n_headers++;
		return;
	}
	m->hdr[m->hdr_len++] = '\0'; /* room reserved by hdr_reserve */
	m->n_headers++;
}

static void header_drop(struct http_msgbuf *m)
{
	m->hdr_len = m->cur_start;
	m->dropping = true;
	m->headers_truncated = true;
}

void http_msgbuf_header_field(struct http_msgbuf *m, const char *at, size_t len, size_t cap)
{
	if (m->headers_done)
		return; /* trailers of a chunked body: not kept */
	url_finish(m, cap);
	if (m->have_cur && m->cur_value)
		header_finish(m);
	if (!m->have_cur) {
		m->have_cur = true;
		m->cur_value = false;
		m->dropping = false;
		m->cur_start = m->hdr_len;
		if (m->n_headers >= HTTP_MAX_HEADERS) {
			header_drop(m);
			return;
		}
		m->name_off[m->n_headers] = m->hdr_len;
	}
	if (m->dropping)
		return;
	if (!hdr_append(m, at, len, cap))
		header_drop(m);
}

void http_msgbuf_header_value(struct http_msgbuf *m, const char *at, size_t len, size_t cap)
{
	if (m->headers_done || !m->have_cur)
		return;
	if (!m->cur_value) {
		/* Even for a dropped header: the next name callback must start a new header. */
		m->cur_value = true;
		if (m->dropping)
			return;
		/* The name's NUL; reserve it together with the first value bytes. */
		if (!hdr_reserve(m, len + 1, cap)) {
			header_drop(m);
			return;
		}
		m->hdr[m->hdr_len++] = '\0';
		m->value_off[m->n_headers] = m->hdr_len;
	}
	if (m->dropping)
		return;
	if (!hdr_append(m, at, len, cap))
		header_drop(m);
}

void http_msgbuf_headers_done(struct http_msgbuf *m, size_t cap)
{
	url_finish(m, cap);
	header_finish(m);
	m->headers_done = true;
}

const char *http_msgbuf_url_str(const struct http_msgbuf *m)
{
	return m->url_done && m->url_len ? m->hdr : "";
}

/* Every field is set but only the first n_headers entries of headers[]: zeroing all
 * HTTP_MAX_HEADERS of them for each message cost more than filling the few that are used. */
void http_msgbuf_view(struct http_msgbuf *m, struct http_message *out)
{
	unsigned i;

	for (i = 0; i < m->n_headers; i++) {
		out->headers[i].name = m->hdr + m->name_off[i];
		out->headers[i].value = m->hdr + m->value_off[i];
	}
	out->n_headers = m->n_headers;
	out->headers_truncated = m->headers_truncated;
	if (m->body) {
		m->body[m->body_len] = '\0'; /* body_alloc >= body_len + 1 always */
		out->body = m->body;
	} else {
		out->body = (const uint8_t *)"";
	}
	out->body_len = m->body_len;
	out->wire_body_bytes = m->wire_body_bytes;
	out->body_truncated = m->body_truncated;
	out->body_skipped = m->decode == HTTP_DECODE_SKIPPED;
	out->first_ts_ns = m->first_ts_ns;
	out->last_ts_ns = m->last_ts_ns;
}

const char *http_message_header(const struct http_message *msg, const char *name)
{
	unsigned i;

	if (!msg || !name)
		return NULL;
	for (i = 0; i < msg->n_headers && i < HTTP_MAX_HEADERS; i++) {
		const char *h = msg->headers[i].name;

		/* Names rarely share their first letter: test it (case folded, exact for ASCII
		 * letters, a mere filter otherwise) before calling strcasecmp. */
		if (h && ((h[0] ^ name[0]) & ~0x20) == 0 && strcasecmp(h, name) == 0)
			return msg->headers[i].value;
	}
	return NULL;
}
