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
 * nothing otherwise. Buffers are kept for the connection's next messages and freed with it, or
 * earlier when the budget needs them (http_internal.h: every allocation is charged to
 * memory_limit, and going over it reclaims the least recently fed connections first).
 *
 * The callback must not call back into the same tracker: it runs inside the parser.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

static void conn_finish(struct http_tracker *t, struct http_conn *c, bool eof, int drop_cause);
static bool conn_trim(struct http_conn *c);

/* ---- the memory budget ---- */

static size_t conn_bytes(const struct http_tracker *t)
{
	return sizeof(struct http_conn) + 3 * (size_t)t->cfg.max_pipelined * sizeof(void *);
}

static bool fits(const struct http_tracker *t, size_t n)
{
	return n <= t->cfg.memory_limit && t->mem_used <= t->cfg.memory_limit - n;
}

/* Exchanges of c that are under way and would be lost with it. */
static unsigned conn_in_flight(const struct http_conn *c)
{
	unsigned n;

	if (c->upgraded || !c->role_known)
		return 0;
	n = c->q_count;
	if (c->dir[!c->req_dir].msg_active && c->dir[!c->req_dir].orphan)
		n++;
	return n;
}

/*
 * Two passes, each oldest (least recently fed) connection first, each stopping once n fits:
 *   1. idle storage, which loses nothing: the buffers of messages not under way (warm buffers
 *      kept for a connection's next messages), the fed connection's included. Skipped when no
 *      message has ended since a pass that found too little, so that a flood of connections
 *      that all hold a partial request does not walk the table at every charge.
 *   2. connections, the fed one excepted: a connection with exchanges in flight loses them
 *      (counted under HTTP_DROP_MEMORY); one with nothing in flight loses nothing (its next
 *      bytes start a new one).
 */
static void reclaim(struct http_tracker *t, size_t n)
{
	struct http_conn *c, *prev;

	t->reclaiming = true;
	if (t->idle_hint) {
		for (c = t->conns.lru_last; c && !fits(t, n); c = c->lru_prev) {
			if (conn_trim(c))
				t->stats.memory_trimmed++;
		}
		if (!fits(t, n))
			t->idle_hint = false;
	}
	for (c = t->conns.lru_last; c && !fits(t, n); c = prev) {
		prev = c->lru_prev;
		if (c == t->feeding)
			continue;
		t->stats.evicted_memory++;
		conn_finish(t, c, false, HTTP_DROP_MEMORY);
	}
	t->reclaiming = false;
}

bool http_mem_charge(struct http_tracker *t, size_t n)
{
	if (!fits(t, n) && !t->reclaiming)
		reclaim(t, n);
	if (!fits(t, n)) {
		t->stats.memory_refused++;
		return false;
	}
	t->mem_used += n;
	if (t->mem_used > t->stats.memory_peak_bytes)
		t->stats.memory_peak_bytes = t->mem_used;
	return true;
}

void http_mem_uncharge(struct http_tracker *t, size_t n)
{
	t->mem_used = n < t->mem_used ? t->mem_used - n : 0;
}

void *http_mem_grow(struct http_tracker *t, void *p, size_t old, size_t new_size)
{
	void *q;

	if (!http_mem_charge(t, new_size - old))
		return NULL;
	q = realloc(p, new_size);
	if (!q) {
		http_mem_uncharge(t, new_size - old);
		t->stats.alloc_failed++;
	}
	return q;
}

void http_mem_free(struct http_tracker *t, void *p, size_t size)
{
	if (!p)
		return;
	free(p);
	http_mem_uncharge(t, size);
}

/* zlib's allocations carry their size in front, so that the free can uncharge it. */
struct zhdr {
	size_t size;
	max_align_t align[];
};

void *http_mem_zalloc(void *opaque, unsigned items, unsigned size)
{
	struct http_tracker *t = opaque;
	size_t n;
	struct zhdr *h;

	if (size && items > (SIZE_MAX - sizeof(*h)) / size)
		return NULL;
	n = (size_t)items * size + sizeof(*h);
	if (!http_mem_charge(t, n))
		return NULL;
	h = malloc(n);
	if (!h) {
		http_mem_uncharge(t, n);
		t->stats.alloc_failed++;
		return NULL;
	}
	h->size = n;
	return h->align;
}

void http_mem_zfree(void *opaque, void *p)
{
	struct zhdr *h;

	if (!p)
		return;
	h = (struct zhdr *)((char *)p - offsetof(struct zhdr, align));
	http_mem_uncharge(opaque, h->size);
	free(h);
}

struct http_msgbuf *http_conn_req_head(const struct http_conn *c)
{
	return c->q_count ? c->queue[c->q_head] : NULL;
}

static void queue_pop(struct http_conn *c)
{
	struct http_msgbuf *m = c->queue[c->q_head];

	c->t->idle_hint = true; /* m's storage is idle now: reclaim may take it */
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
		c->t->stats.dropped[HTTP_DROP_PIPELINE]++;
		if (c->dir[!c->req_dir].msg_active)
			c->dir[!c->req_dir].orphan = true;
		queue_pop(c);
		c->parked = false;
	}
	if (c->n_free) {
		m = c->free_bufs[--c->n_free];
	} else {
		/* Deeper pipelining than ever before on this conn; bounded by max_pipelined. */
		/* Failing, this request is lost (counted here: it is in no queue), and the parse
		 * error that follows drops the others under the same cause. */
		if (!http_mem_charge(c->t, sizeof(*m))) {
			c->t->stats.dropped[HTTP_DROP_MEMORY]++;
			c->reset_cause = HTTP_DROP_MEMORY;
			return NULL;
		}
		m = calloc(1, sizeof(*m));
		if (!m) {
			http_mem_uncharge(c->t, sizeof(*m));
			c->t->stats.alloc_failed++;
			c->t->stats.dropped[HTTP_DROP_OUT_OF_MEMORY]++;
			c->reset_cause = HTTP_DROP_OUT_OF_MEMORY;
			return NULL;
		}
		m->t = c->t;
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

	c->t->idle_hint = true; /* the response buffer's storage is idle once delivered */
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
 * parsed completely (else it came from the bytes that just failed). The exchanges dropped count
 * under the cause the conn recorded (memory for a buffer the budget refused), else a parse
 * error. */
void http_conn_reset(struct http_conn *c)
{
	unsigned i;

	c->t->stats.dropped[c->reset_cause] += conn_in_flight(c);
	c->reset_cause = HTTP_DROP_PARSE_ERROR;
	while (c->q_count)
		queue_pop(c);
	c->parked = false;
	for (i = 0; i < 2; i++) {
		c->dir[i].sync = HTTP_SYNC_NONE;
		c->dir[i].msg_active = false;
		c->dir[i].in_headers = false;
		c->dir[i].orphan = false;
		c->dir[i].stash_len = 0;
	}
	if (!c->ever_parsed)
		c->role_known = false;
	c->strict_sync = true;
}

static void free_req_bufs(struct http_conn *c)
{
	unsigned i;

	for (i = 0; i < c->n_req_bufs; i++) {
		http_msgbuf_free(c->req_bufs[i]);
		free(c->req_bufs[i]);
		http_mem_uncharge(c->t, sizeof(*c->req_bufs[i]));
		c->req_bufs[i] = NULL;
	}
	c->n_req_bufs = 0;
	c->n_free = 0;
}

static void conn_free(struct http_conn *c)
{
	if (!c)
		return;
	free_req_bufs(c);
	http_msgbuf_free(&c->resp[0]);
	http_msgbuf_free(&c->resp[1]);
	free(c->req_bufs);
	free(c->queue);
	free(c->free_bufs);
	http_mem_uncharge(c->t, conn_bytes(c->t));
	free(c);
}

static bool msgbuf_holds(const struct http_msgbuf *m)
{
	return m->hdr || m->body || m->z_ready;
}

/* Response buffer k holds no message under way: neither the one being parsed nor a parked one. */
static bool resp_idle(const struct http_conn *c, unsigned k)
{
	if (!c->role_known)
		return true;
	if (k == c->cur_resp)
		return !c->dir[!c->req_dir].msg_active;
	return !c->parked;
}

/* Frees the storage of c's messages that are not under way (the warm buffers a connection keeps
 * for its next messages, which allocate them again); with no request queued, the request
 * buffers themselves. True when it freed something. */
static bool conn_trim(struct http_conn *c)
{
	bool freed = false;
	unsigned i, k;

	if (!c->q_count && c->n_req_bufs) {
		free_req_bufs(c);
		freed = true;
	}
	for (i = 0; i < c->n_free; i++) {
		freed |= msgbuf_holds(c->free_bufs[i]);
		http_msgbuf_free(c->free_bufs[i]);
	}
	for (k = 0; k < 2; k++) {
		if (resp_idle(c, k) && msgbuf_holds(&c->resp[k])) {
			http_msgbuf_free(&c->resp[k]);
			freed = true;
		}
	}
	return freed;
}

static struct http_conn *conn_new(struct http_tracker *t, const struct conn_ref *ref)
{
	unsigned max = t->cfg.max_pipelined;
	struct http_conn *c;
	unsigned i;

	if (!http_mem_charge(t, conn_bytes(t))) {
		errno = ENOBUFS;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		http_mem_uncharge(t, conn_bytes(t));
		errno = ENOMEM;
		return NULL;
	}
	c->t = t;
	c->ref = *ref;
	c->reset_cause = HTTP_DROP_PARSE_ERROR;
	c->resp[0].t = t;
	c->resp[1].t = t;
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
	errno = ENOMEM;
	return NULL;
}

/* Ends a connection: eof says whether the stream really ended (close, exit) or we just stop
 * watching it (eviction), in which case nothing is completed by end of stream. drop_cause (an
 * enum http_drop_cause, or -1 for a real end) is why the exchanges still in flight are lost. */
static void conn_finish(struct http_tracker *t, struct http_conn *c, bool eof, int drop_cause)
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
		if (drop_cause >= 0)
			t->stats.dropped[drop_cause] += conn_in_flight(c);
	}
	http_conn_table_remove(&t->conns, c);
	conn_free(c);
}

/* 0 means "default" for every field: a zero cap would make the stage useless. */
static void config_defaults(struct http_tracker_config *c)
{
	if (!c->body_cap)
		c->body_cap = HTTP_DEFAULT_BODY_CAP;
	if (!c->header_cap)
		c->header_cap = HTTP_DEFAULT_HEADER_CAP;
	if (!c->max_conns)
		c->max_conns = HTTP_DEFAULT_MAX_CONNS;
	if (!c->max_pipelined)
		c->max_pipelined = HTTP_DEFAULT_MAX_PIPELINED;
	if (!c->memory_limit)
		c->memory_limit = HTTP_DEFAULT_MEMORY_LIMIT;
	/* Offsets into the header buffer are 32-bit. */
	if (c->header_cap > UINT32_MAX / 2)
		c->header_cap = UINT32_MAX / 2;
}

/* Saturating, so that a cap near SIZE_MAX reads as "too large", not as a small sum. */
static size_t sat_add(size_t a, size_t b)
{
	return a + b < a ? SIZE_MAX : a + b;
}

size_t http_tracker_min_memory(const struct http_tracker_config *cfg)
{
	struct http_tracker_config c = cfg ? *cfg : (struct http_tracker_config){0};
	size_t msg, conn;

	config_defaults(&c);
	/* One message at both caps, inflating: its headers, its body and the NUL, zlib. */
	msg = sat_add(sat_add(c.header_cap, c.body_cap), 1 + HTTP_INFLATE_STATE_BYTES);
	conn = sizeof(struct http_conn) + 3 * (size_t)c.max_pipelined * sizeof(void *) +
	       sizeof(struct http_msgbuf);
	/* A request and its response, and a second response parked before the request ended. */
	return sat_add(conn, sat_add(msg, sat_add(msg, msg)));
}

int http_tracker_config_check(const struct http_tracker_config *cfg, char *err, size_t err_len)
{
	struct http_tracker_config c = cfg ? *cfg : (struct http_tracker_config){0};
	size_t need = http_tracker_min_memory(&c);

	config_defaults(&c);
	if (c.memory_limit >= need)
		return 0;
	if (err && err_len)
		snprintf(err, err_len,
			 "a memory limit of %zu bytes cannot hold one exchange with a body cap of "
			 "%zu and a header cap of %zu bytes (that needs %zu): raise the memory "
			 "limit or lower the body cap",
			 c.memory_limit, c.body_cap, c.header_cap, need);
	return -EINVAL;
}

struct http_tracker *http_tracker_new(const struct http_tracker_config *cfg, http_exchange_cb cb,
				      void *ctx)
{
	struct http_tracker *t;

	if (http_tracker_config_check(cfg, NULL, 0)) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (cfg)
		t->cfg = *cfg;
	config_defaults(&t->cfg);
	t->stats.memory_limit_bytes = t->cfg.memory_limit;
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
			conn_finish(t, t->conns.lru_last, false, HTTP_DROP_CONN_LIMIT);
		}
		c = conn_new(t, &chunk->conn);
		if (!c) {
			/* Its bytes go nowhere: whatever exchange they were part of is lost. */
			if (errno == ENOBUFS) {
				t->stats.dropped[HTTP_DROP_MEMORY]++;
				return -ENOBUFS;
			}
			t->stats.alloc_failed++;
			t->stats.dropped[HTTP_DROP_OUT_OF_MEMORY]++;
			return -ENOMEM;
		}
		err = http_conn_table_insert(&t->conns, c);
		if (err < 0) {
			conn_free(c);
			return err;
		}
	} else {
		http_conn_table_touch(&t->conns, c);
	}
	t->feeding = c;
	http_dir_feed(c, chunk->dir, chunk->data, chunk->len, chunk->ts_ns);
	if (chunk->lost) {
		c->dir[chunk->dir].cur_ts_ns = chunk->ts_ns;
		http_dir_gap(c, chunk->dir, chunk->lost);
	}
	t->feeding = NULL;
	return 0;
}

void http_tracker_close(struct http_tracker *t, const struct conn_ref *conn, uint64_t ts_ns)
{
	struct http_conn *c;

	if (!t || !conn)
		return;
	c = http_conn_table_find(&t->conns, conn);
	if (!c)
		return;
	/* Ending messages allocates nothing; should it ever, it may not reclaim mid-finish. */
	t->reclaiming = true;
	conn_finish(t, c, true, -1);
	t->reclaiming = false;
}

void http_tracker_forget_pid(struct http_tracker *t, uint32_t pid)
{
	struct http_conn *c, *next;

	if (!t)
		return;
	t->reclaiming = true; /* as in http_tracker_close; and next must survive */
	for (c = t->conns.lru_first; c; c = next) {
		next = c->lru_next;
		if (c->ref.pid == pid)
			conn_finish(t, c, true, -1);
	}
	t->reclaiming = false;
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
	out->memory_bytes = t->mem_used;
	out->connections = t->conns.count;
}
