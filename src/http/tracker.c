// SPDX-License-Identifier: MIT
/*
 * The HTTP stage's public entry points and each connection's exchange queue.
 *
 * Requests wait in a FIFO (bounded by max_pipelined) until their response completes; responses
 * match the oldest request without one. An exchange is delivered when both halves are complete,
 * so a response that finishes first (a server answering 413 before reading the upload) is
 * parked until its request completes.
 *
 * Connection end (close, eviction, process exit): a response delimited by the end of the stream
 * completes and is delivered. Every other exchange still in flight counts once in `incomplete`
 * and is not delivered, except one whose final response is complete but whose request was cut
 * off: that one is delivered with truncated = true (its status is worth having), and counts in
 * both `incomplete` and `truncated`. A request that completed but never got a response also
 * counts as incomplete: the exchange was cut off.
 *
 * Memory: allocations happen when a connection is first seen (its struct and queue), when its
 * pipelining gets deeper than ever before (one more request buffer, up to max_pipelined), and
 * when a message buffer must grow (within header_cap / body_cap); feeding a chunk allocates
 * nothing otherwise. Buffers are kept for the connection's next messages and freed with it.
 *
 * The callback must not call back into the same tracker: it runs inside the parser.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

struct http_msgbuf *http_conn_req_current(struct http_conn *c)
{
	if (!c->q_count || !c->dir[c->req_dir].msg_active)
		return NULL;
	return c->queue[(c->q_head + c->q_count - 1) % c->t->cfg.max_pipelined];
}

const struct http_msgbuf *http_conn_req_head(const struct http_conn *c)
{
	return c->q_count ? c->queue[c->q_head] : NULL;
}

static void queue_pop(struct http_conn *c)
{
	struct http_msgbuf *m = c->queue[c->q_head];

	c->free_bufs[c->n_free++] = m;
	c->q_head = (c->q_head + 1) % c->t->cfg.max_pipelined;
	c->q_count--;
}

struct http_msgbuf *http_conn_req_begin(struct http_conn *c)
{
	unsigned max = c->t->cfg.max_pipelined;
	struct http_msgbuf *m;

	if (c->q_count == max) {
		/* Responses are not keeping up (or are not captured at all): give up on the
		 * oldest request rather than on the new ones. */
		c->t->stats.incomplete++;
		if (c->dir[!c->req_dir].msg_active)
			c->dir[!c->req_dir].orphan = true;
		queue_pop(c);
		c->parked = false;
	}
	if (c->n_free) {
		m = c->free_bufs[--c->n_free];
	} else {
		/* Deeper pipelining than ever before on this conn; bounded by max_pipelined. */
		m = calloc(1, sizeof(*m));
		if (!m)
			return NULL;
		c->req_bufs[c->n_req_bufs++] = m;
	}
	http_msgbuf_reset(m);
	c->queue[(c->q_head + c->q_count) % max] = m;
	c->q_count++;
	return m;
}

/* The head has a response parked: deliver it now that its request is complete. */
void http_conn_req_complete(struct http_conn *c)
{
	c->ever_parsed = true;
	if (!c->parked)
		return;
	c->parked = false;
	http_exchange_deliver(c->t, c, c->queue[c->q_head], &c->resp[c->cur_resp ^ 1], false);
	queue_pop(c);
}

bool http_conn_resp_has_target(const struct http_conn *c)
{
	return c->q_count > (c->parked ? 1u : 0u);
}

void http_conn_resp_complete(struct http_conn *c)
{
	struct http_msgbuf *req = c->queue[c->q_head];

	c->ever_parsed = true;
	if (req->complete) {
		http_exchange_deliver(c->t, c, req, &c->resp[c->cur_resp], false);
		queue_pop(c);
		return;
	}
	/* Only the request still being received can be incomplete, so it is the only one. */
	c->parked = true;
	c->cur_resp ^= 1;
}

/* Drops every exchange in flight and the parsers' state; the role survives only if some message
 * parsed completely (else it came from the bytes that just failed). */
void http_conn_reset(struct http_conn *c)
{
	unsigned i;

	while (c->q_count)
		queue_pop(c);
	c->parked = false;
	for (i = 0; i < 2; i++) {
		c->dir[i].sync = HTTP_SYNC_NONE;
		c->dir[i].msg_active = false;
		c->dir[i].orphan = false;
		c->dir[i].stash_len = 0;
	}
	if (!c->ever_parsed)
		c->role_known = false;
	c->strict_sync = true;
}

static void conn_free(struct http_conn *c)
{
	unsigned i;

	if (!c)
		return;
	for (i = 0; i < c->n_req_bufs; i++) {
		http_msgbuf_free(c->req_bufs[i]);
		free(c->req_bufs[i]);
	}
	http_msgbuf_free(&c->resp[0]);
	http_msgbuf_free(&c->resp[1]);
	free(c->req_bufs);
	free(c->queue);
	free(c->free_bufs);
	free(c);
}

static struct http_conn *conn_new(struct http_tracker *t, const struct conn_ref *ref)
{
	unsigned max = t->cfg.max_pipelined;
	struct http_conn *c;
	unsigned i;

	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->t = t;
	c->ref = *ref;
	c->req_bufs = calloc(max, sizeof(*c->req_bufs));
	c->queue = calloc(max, sizeof(*c->queue));
	c->free_bufs = calloc(max, sizeof(*c->free_bufs));
	if (!c->req_bufs || !c->queue || !c->free_bufs)
		goto err;
	for (i = 0; i < 2; i++)
		c->dir[i].conn = c;
	return c;
err:
	conn_free(c);
	return NULL;
}

/* Ends a connection: eof says whether the stream really ended (close, exit) or we just stop
 * watching it (eviction), in which case nothing is completed by end of stream. */
static void conn_finish(struct http_tracker *t, struct http_conn *c, bool eof)
{
	if (eof && c->role_known && !c->upgraded)
		http_dir_eof(c, (enum bp_dir) !c->req_dir);
	if (!c->upgraded) {
		if (c->parked) {
			struct http_msgbuf *req = c->queue[c->q_head];

			c->parked = false;
			req->body_truncated = true;
			t->stats.incomplete++;
			http_exchange_deliver(t, c, req, &c->resp[c->cur_resp ^ 1], true);
			queue_pop(c);
		}
		t->stats.incomplete += c->q_count;
		/* A response under way with no request left to match it. */
		if (c->role_known && c->dir[!c->req_dir].msg_active && c->dir[!c->req_dir].orphan)
			t->stats.incomplete++;
	}
	http_conn_table_remove(&t->conns, c);
	conn_free(c);
}

struct http_tracker *http_tracker_new(const struct http_tracker_config *cfg, http_exchange_cb cb,
				      void *ctx)
{
	struct http_tracker *t;

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (cfg)
		t->cfg = *cfg;
	/* 0 means "default" for every field: a zero cap would make the stage useless. */
	if (!t->cfg.body_cap)
		t->cfg.body_cap = HTTP_DEFAULT_BODY_CAP;
	if (!t->cfg.header_cap)
		t->cfg.header_cap = HTTP_DEFAULT_HEADER_CAP;
	if (!t->cfg.max_conns)
		t->cfg.max_conns = HTTP_DEFAULT_MAX_CONNS;
	if (!t->cfg.max_pipelined)
		t->cfg.max_pipelined = HTTP_DEFAULT_MAX_PIPELINED;
	/* Offsets into the header buffer are 32-bit. */
	if (t->cfg.header_cap > UINT32_MAX / 2)
		t->cfg.header_cap = UINT32_MAX / 2;
	t->cb = cb;
	t->ctx = ctx;
	http_dir_settings_fill(&t->settings);
	t->split_cap = 2 * t->cfg.header_cap + 2;
	t->split_buf = malloc(t->split_cap);
	if (!t->split_buf || http_conn_table_init(&t->conns, t->cfg.max_conns) < 0) {
		free(t->split_buf);
		free(t);
		return NULL;
	}
	return t;
}

void http_tracker_free(struct http_tracker *t)
{
	if (!t)
		return;
	/* Tearing down is not the end of the connections: nothing is counted or delivered. */
	while (t->conns.lru_first) {
		struct http_conn *c = t->conns.lru_first;

		http_conn_table_remove(&t->conns, c);
		conn_free(c);
	}
	http_conn_table_destroy(&t->conns);
	free(t->split_buf);
	free(t);
}

int http_tracker_feed(struct http_tracker *t, const struct capture_chunk *chunk)
{
	struct http_conn *c;
	int err;

	if (!t || !chunk || (chunk->len && !chunk->data) || chunk->dir > BP_DIR_INGRESS)
		return -EINVAL;
	c = http_conn_table_find(&t->conns, &chunk->conn);
	if (!c) {
		if (!chunk->len)
			return 0; /* a gap with no stream to put it in */
		if (t->conns.count >= t->cfg.max_conns && t->conns.lru_last) {
			t->stats.evicted++;
			conn_finish(t, t->conns.lru_last, false);
		}
		c = conn_new(t, &chunk->conn);
		if (!c)
			return -ENOMEM;
		err = http_conn_table_insert(&t->conns, c);
		if (err < 0) {
			conn_free(c);
			return err;
		}
	} else {
		http_conn_table_touch(&t->conns, c);
	}
	http_dir_feed(c, chunk->dir, chunk->data, chunk->len, chunk->ts_ns);
	if (chunk->lost) {
		c->dir[chunk->dir].cur_ts_ns = chunk->ts_ns;
		http_dir_gap(c, chunk->dir, chunk->lost);
	}
	return 0;
}

void http_tracker_close(struct http_tracker *t, const struct conn_ref *conn, uint64_t ts_ns)
{
	struct http_conn *c;

	if (!t || !conn)
		return;
	c = http_conn_table_find(&t->conns, conn);
	if (c)
		conn_finish(t, c, true);
}

void http_tracker_forget_pid(struct http_tracker *t, uint32_t pid)
{
	struct http_conn *c, *next;

	if (!t)
		return;
	for (c = t->conns.lru_first; c; c = next) {
		next = c->lru_next;
		if (c->ref.pid == pid)
			conn_finish(t, c, true);
	}
}

void http_tracker_get_stats(const struct http_tracker *t, struct http_tracker_stats *out)
{
	if (!out)
		return;
	if (!t) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = t->stats;
}
