/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the HTTP stage's unit tests: a callback that deep-copies every delivered
 * exchange (the originals die with the call), and feeding helpers for byte streams.
 */
#ifndef BIZPROBE_HTTP_TEST_UTIL_H
#define BIZPROBE_HTTP_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "bizprobe/http_exchange.h"

struct rec_msg {
	unsigned n_headers;
	char *names[HTTP_MAX_HEADERS];
	char *values[HTTP_MAX_HEADERS];
	bool headers_truncated;
	uint8_t *body;
	size_t body_len;
	uint64_t wire_body_bytes;
	bool body_truncated;
	bool body_skipped;
	uint64_t first_ts_ns;
	uint64_t last_ts_ns;
};

struct rec_ex {
	struct conn_ref conn;
	enum http_role role;
	char method[16];
	char *target, *path, *query, *host;
	int status;
	struct rec_msg req, resp;
	uint64_t duration_ns;
	bool truncated;
};

struct recorder {
	struct rec_ex *ex;
	size_t n, cap;
};

static inline char *rec_strdup(const char *s)
{
	char *d;

	assert_non_null(s);
	d = strdup(s);
	assert_non_null(d);
	return d;
}

static inline void rec_copy_msg(struct rec_msg *d, const struct http_message *m)
{
	unsigned i;

	d->n_headers = m->n_headers;
	for (i = 0; i < m->n_headers; i++) {
		d->names[i] = rec_strdup(m->headers[i].name);
		d->values[i] = rec_strdup(m->headers[i].value);
	}
	d->headers_truncated = m->headers_truncated;
	assert_non_null(m->body);
	/* The stage promises a NUL after the body. */
	assert_int_equal(m->body[m->body_len], 0);
	d->body = malloc(m->body_len + 1);
	assert_non_null(d->body);
	memcpy(d->body, m->body, m->body_len + 1);
	d->body_len = m->body_len;
	d->wire_body_bytes = m->wire_body_bytes;
	d->body_truncated = m->body_truncated;
	d->body_skipped = m->body_skipped;
	d->first_ts_ns = m->first_ts_ns;
	d->last_ts_ns = m->last_ts_ns;
}

static inline void rec_cb(const struct http_exchange *ex, void *ctx)
{
	struct recorder *r = ctx;
	struct rec_ex *d;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->ex = realloc(r->ex, r->cap * sizeof(*r->ex));
		assert_non_null(r->ex);
	}
	d = &r->ex[r->n++];
	memset(d, 0, sizeof(*d));
	d->conn = ex->conn;
	d->role = ex->role;
	memcpy(d->method, ex->method, sizeof(d->method));
	d->target = rec_strdup(ex->target);
	d->path = rec_strdup(ex->path);
	d->query = rec_strdup(ex->query);
	d->host = rec_strdup(ex->host);
	d->status = ex->status;
	rec_copy_msg(&d->req, &ex->req);
	rec_copy_msg(&d->resp, &ex->resp);
	d->duration_ns = ex->duration_ns;
	d->truncated = ex->truncated;
}

static inline void rec_free_msg(struct rec_msg *m)
{
	unsigned i;

	for (i = 0; i < m->n_headers; i++) {
		free(m->names[i]);
		free(m->values[i]);
	}
	free(m->body);
}

static inline void rec_clear(struct recorder *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->ex[i].target);
		free(r->ex[i].path);
		free(r->ex[i].query);
		free(r->ex[i].host);
		rec_free_msg(&r->ex[i].req);
		rec_free_msg(&r->ex[i].resp);
	}
	r->n = 0;
}

static inline void rec_free(struct recorder *r)
{
	rec_clear(r);
	free(r->ex);
	r->ex = NULL;
	r->cap = 0;
}

static inline const char *rec_header(const struct rec_msg *m, const char *name)
{
	unsigned i;

	for (i = 0; i < m->n_headers; i++) {
		if (strcasecmp(m->names[i], name) == 0)
			return m->values[i];
	}
	return NULL;
}

static inline struct conn_ref test_conn(uint32_t pid, uint64_t id)
{
	struct conn_ref c;

	memset(&c, 0, sizeof(c));
	c.pid = pid;
	c.id = id;
	c.generation = 1;
	strcpy(c.comm, "test");
	return c;
}

static inline void feed_bytes(struct http_tracker *t, const struct conn_ref *conn, enum bp_dir dir,
			      const void *data, size_t len, uint64_t ts, uint32_t lost)
{
	struct capture_chunk ch;

	memset(&ch, 0, sizeof(ch));
	ch.conn = *conn;
	ch.ts_ns = ts;
	ch.dir = dir;
	ch.data = data;
	ch.len = (uint32_t)len;
	ch.lost = lost;
	assert_int_equal(http_tracker_feed(t, &ch), 0);
}

static inline void feed_str(struct http_tracker *t, const struct conn_ref *conn, enum bp_dir dir,
			    const char *s, uint64_t ts)
{
	feed_bytes(t, conn, dir, s, strlen(s), ts, 0);
}

/* A conversation: segments in the order the process moved them. */
struct seg {
	enum bp_dir dir;
	const char *data;
	size_t len; /* 0: strlen(data) */
};

static inline size_t seg_len(const struct seg *s)
{
	return s->len ? s->len : strlen(s->data);
}

/* Feeds every segment whole, except that the byte at global offset split (counting across all
 * segments) starts a new chunk. split == 0 or past the end: no split. */
static inline void feed_split(struct http_tracker *t, const struct conn_ref *conn,
			      const struct seg *segs, size_t n, size_t split)
{
	size_t off = 0, i;
	uint64_t ts = 1000;

	for (i = 0; i < n; i++) {
		size_t len = seg_len(&segs[i]);

		if (split > off && split < off + len) {
			size_t a = split - off;

			feed_bytes(t, conn, segs[i].dir, segs[i].data, a, ts++, 0);
			feed_bytes(t, conn, segs[i].dir, segs[i].data + a, len - a, ts++, 0);
		} else {
			feed_bytes(t, conn, segs[i].dir, segs[i].data, len, ts++, 0);
		}
		off += len;
	}
}

/* One byte per chunk. */
static inline void feed_bytewise(struct http_tracker *t, const struct conn_ref *conn,
				 const struct seg *segs, size_t n)
{
	size_t i, j;
	uint64_t ts = 1000;

	for (i = 0; i < n; i++) {
		size_t len = seg_len(&segs[i]);

		for (j = 0; j < len; j++)
			feed_bytes(t, conn, segs[i].dir, segs[i].data + j, 1, ts++, 0);
	}
}

static inline size_t segs_total(const struct seg *segs, size_t n)
{
	size_t i, total = 0;

	for (i = 0; i < n; i++)
		total += seg_len(&segs[i]);
	return total;
}

static inline struct http_tracker_stats tracker_stats(const struct http_tracker *t)
{
	struct http_tracker_stats s;

	http_tracker_get_stats(t, &s);
	return s;
}

#endif
