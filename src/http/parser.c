// SPDX-License-Identifier: MIT
/*
 * One llhttp parser (Node.js's HTTP/1.1 parser, 8.1, from Debian's node-llhttp) per direction of
 * a connection, its callbacks, and the decisions around it: which direction carries requests,
 * where a stream (re)starts after garbage or lost bytes, what lost bytes mean. It replaced
 * libhttp-parser 2.9.4 for speed: the headers of a Stripe API exchange parse in ~60% of the time.
 * Its defaults are kept (no lenient flags): it is as strict as the apps' own Node.js servers.
 *
 * Role: the first bytes of a connection decide. "HTTP/" starts a response, anything else is
 * taken as a request (and fails to parse if it is not one). The direction carrying requests is
 * then fixed for the connection's life.
 *
 * Errors: any parse error (garbage, binary, headers over HTTP_HEADER_LIMIT, lost
 * bytes we cannot account for) counts one parse_error and resets the whole connection: both
 * parsers and every exchange in flight are dropped, because after a hole we can no longer tell
 * which response answers which request. Each direction then waits for a chunk that starts with
 * a real start line ("METHOD " on the request side, "HTTP/1." on the response side) and resumes
 * there. Bytes up to HTTP_STASH_BYTES are held across chunks while that is undecided, so a
 * start line split into tiny chunks is still recognized.
 *
 * Lost bytes (chunk->lost): inside a body whose length is known (Content-Length, or a response
 * delimited by the end of the connection) they are stepped over, counted in wire_body_bytes
 * but not stored, and the message is marked truncated: the parser stays in step and the
 * exchange keeps its status and timings. A hole costs the same whatever its size. Anywhere
 * else (headers, chunked framing, between messages, or more lost bytes than the body has left)
 * the position in the stream is unknown and it is a parse error as above.
 */
#include <string.h>

#include "http_internal.h"

static struct http_dir *dir_of(llhttp_t *p)
{
	return p->data;
}

static struct http_msgbuf *cur_msg(struct http_dir *d)
{
	struct http_conn *c = d->conn;

	/* The request being received is the queue's tail, remembered when it began: this runs for
	 * every piece of every header, and finding the tail takes a division (the queue's size is
	 * configured). A reset ends the message (msg_active) and empties the queue. */
	if (d->is_request)
		return d->msg_active && c->q_count ? d->req_msg : NULL;
	return &c->resp[c->cur_resp];
}

static void touch_ts(struct http_dir *d, struct http_msgbuf *m)
{
	if (m && !d->at_eof)
		m->last_ts_ns = d->cur_ts_ns;
}

static int on_message_begin(llhttp_t *p)
{
	struct http_dir *d = dir_of(p);
	struct http_conn *c = d->conn;
	struct http_msgbuf *m;

	if (d->is_request) {
		m = http_conn_req_begin(c);
		d->req_msg = m;
	} else {
		m = &c->resp[c->cur_resp];
		http_msgbuf_reset(m);
		d->orphan = !http_conn_resp_has_target(c);
	}
	if (!m)
		return -1;
	d->msg_active = true;
	d->in_headers = true;
	d->header_bytes = 0;
	d->messages_begun++;
	m->first_ts_ns = d->cur_ts_ns;
	m->last_ts_ns = d->cur_ts_ns;
	return 0;
}

/* False once this message's start line and headers are over HTTP_HEADER_LIMIT. */
static bool header_bytes_add(struct http_dir *d, size_t len)
{
	if (len > HTTP_HEADER_LIMIT - d->header_bytes)
		return false;
	d->header_bytes += (uint32_t)len;
	return true;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_dir *d = dir_of(p);
	struct http_msgbuf *m = cur_msg(d);

	if (!header_bytes_add(d, len))
		return -1;
	if (!m)
		return 0;
	if (!m->method_set) {
		m->method = p->method;
		m->method_set = true;
	}
	http_msgbuf_url(m, at, len, d->conn->t->cfg.header_cap);
	touch_ts(d, m);
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_dir *d = dir_of(p);
	struct http_msgbuf *m = cur_msg(d);

	if (!header_bytes_add(d, len))
		return -1;
	if (m) {
		http_msgbuf_header_field(m, at, len, d->conn->t->cfg.header_cap);
		touch_ts(d, m);
	}
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_dir *d = dir_of(p);
	struct http_msgbuf *m = cur_msg(d);

	if (!header_bytes_add(d, len))
		return -1;
	if (m) {
		http_msgbuf_header_value(m, at, len, d->conn->t->cfg.header_cap);
		touch_ts(d, m);
	}
	return 0;
}

/* Whether a body that is about to start is worth asking the body filter about: compressed, of
 * unknown length, or longer than HTTP_BODY_KEPT_UNASKED. A request without a length and not
 * chunked has no body; a response without either runs to the connection's end. */
static inline bool body_worth_asking(const llhttp_t *p, const struct http_msgbuf *m,
				     bool is_request)
{
	if (p->flags & F_CHUNKED)
		return true;
	if (p->flags & F_CONTENT_LENGTH)
		return p->content_length > HTTP_BODY_KEPT_UNASKED ||
		       (p->content_length > 0 && m->decode == HTTP_DECODE_RUNNING);
	return !is_request;
}

/* After http_body_begin of m, a body of the exchange whose request is req: kept, or only
 * counted when the exchange's answer is that nobody reads its bodies. */
static inline void body_filter_apply(struct http_dir *d, struct http_msgbuf *m,
				     struct http_msgbuf *req)
{
	if (req->bodies == HTTP_BODIES_UNASKED && !body_worth_asking(&d->parser, m, d->is_request))
		return;
	if (!http_exchange_bodies_wanted(d->conn->t, d->conn, req))
		http_body_skip(m);
}

/* Return values are llhttp's: 1 = this response has no body, 2 = no body and no more HTTP on
 * this connection. */
static int on_headers_complete(llhttp_t *p)
{
	struct http_dir *d = dir_of(p);
	struct http_conn *c = d->conn;
	struct http_msgbuf *m = cur_msg(d);
	struct http_msgbuf *req;
	unsigned req_method = HTTP_GET;

	d->in_headers = false;
	if (!m)
		return 0;
	http_msgbuf_headers_done(m, c->t->cfg.header_cap);
	touch_ts(d, m);
	if (d->is_request) {
		m->method = p->method;
		m->method_set = true;
		http_body_begin(m);
		body_filter_apply(d, m, m);
		return 0;
	}
	m->status = p->status_code;
	req = d->orphan ? NULL : http_conn_req_head(c);
	if (req && req->method_set)
		req_method = req->method;
	http_body_begin(m);
	if (m->status == 101 || (req_method == HTTP_CONNECT && m->status / 100 == 2))
		return 2;
	/* Whatever Content-Length says: these have no body (RFC 9112 6.3). */
	if (m->status / 100 == 1 || m->status == 204 || m->status == 304 || req_method == HTTP_HEAD)
		return 1;
	/* An orphan's body is kept as before: it is counted unmatched, never delivered. */
	if (req)
		body_filter_apply(d, m, req);
	return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_dir *d = dir_of(p);
	struct http_msgbuf *m = cur_msg(d);

	if (!m)
		return 0;
	if (d->in_gap)
		http_body_gap(m, len);
	else
		http_body_feed(m, (const uint8_t *)at, len, d->conn->t->cfg.body_cap);
	touch_ts(d, m);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct http_dir *d = dir_of(p);
	struct http_conn *c = d->conn;
	/* Before msg_active drops: cur_msg needs it to find the request. */
	struct http_msgbuf *m = cur_msg(d);

	d->msg_active = false;
	if (!m)
		return 0;
	touch_ts(d, m);
	http_body_end(m);
	m->complete = true;
	if (d->is_request) {
		http_conn_req_complete(c);
		return 0;
	}
	if (m->status / 100 == 1 && m->status != 101) {
		/* Interim (100 Continue, 102, 103): the final response is still to come. */
		m->complete = false;
		return 0;
	}
	if (d->orphan) {
		c->t->stats.unmatched++;
		c->ever_parsed = true;
		return 0;
	}
	if (m->status == 101 || p->upgrade)
		c->upgraded = true;
	http_conn_resp_complete(c);
	return 0;
}

void http_dir_settings_fill(llhttp_settings_t *s)
{
	llhttp_settings_init(s);
	s->on_message_begin = on_message_begin;
	s->on_url = on_url;
	s->on_header_field = on_header_field;
	s->on_header_value = on_header_value;
	s->on_headers_complete = on_headers_complete;
	s->on_body = on_body;
	s->on_message_complete = on_message_complete;
}

static void parser_start(struct http_dir *d)
{
	llhttp_init(&d->parser, d->is_request ? HTTP_REQUEST : HTTP_RESPONSE, &d->conn->t->settings);
	d->parser.data = d;
}

static void dir_start(struct http_conn *c, enum bp_dir dir, bool is_request)
{
	struct http_dir *d = &c->dir[dir];

	d->conn = c;
	d->is_request = is_request;
	parser_start(d);
	d->sync = HTTP_SYNC_OK;
	d->msg_active = false;
	d->in_headers = false;
	d->orphan = false;
	d->in_gap = false;
	d->at_eof = false;
	d->stash_len = 0;
}

enum verdict { V_NO, V_MORE, V_REQUEST, V_RESPONSE };

/* Compares buf against want as far as both go. */
static enum verdict prefix_match(const uint8_t *buf, size_t n, const char *want, enum verdict yes)
{
	size_t wl = strlen(want);
	size_t k = n < wl ? n : wl;

	if (memcmp(buf, want, k) != 0)
		return V_NO;
	return n >= wl ? yes : V_MORE;
}

static enum verdict match_method(const uint8_t *buf, size_t n)
{
	enum verdict best = V_NO;
	unsigned i;

	/* HTTP's methods as llhttp lists them (those after SOURCE are RTSP's and PRI). */
	for (i = 0; i <= HTTP_SOURCE; i++) {
		const char *name = llhttp_method_name((llhttp_method_t)i);
		char want[24];
		size_t len = strlen(name);
		enum verdict v;

		if (len + 2 > sizeof(want))
			continue;
		memcpy(want, name, len);
		want[len] = ' ';
		want[len + 1] = '\0';
		v = prefix_match(buf, n, want, V_REQUEST);
		if (v == V_REQUEST)
			return v;
		if (v == V_MORE)
			best = V_MORE;
	}
	return best;
}

static enum verdict classify(const struct http_conn *c, enum bp_dir dir, const uint8_t *buf,
			     size_t n)
{
	enum verdict v;

	if (!c->role_known && !c->strict_sync) {
		v = prefix_match(buf, n, "HTTP/", V_RESPONSE);
		return v == V_NO ? V_REQUEST : v;
	}
	if (c->role_known) {
		if (dir == c->req_dir)
			return match_method(buf, n);
		return prefix_match(buf, n, "HTTP/1.", V_RESPONSE);
	}
	v = prefix_match(buf, n, "HTTP/1.", V_RESPONSE);
	if (v == V_RESPONSE)
		return v;
	if (match_method(buf, n) == V_REQUEST)
		return V_REQUEST;
	if (v == V_MORE || match_method(buf, n) == V_MORE)
		return V_MORE;
	return V_NO;
}

/* Also where a message whose buffer was refused ends (on_message_begin failed): that is not the
 * bytes' fault, and http_conn_reset counts it under its own cause. */
static void parse_error(struct http_conn *c)
{
	if (c->reset_cause == HTTP_DROP_PARSE_ERROR)
		c->t->stats.parse_errors++;
	http_conn_reset(c);
}

/* Runs the parser over bytes; false when the connection's parse state was reset. */
static bool run_parser(struct http_conn *c, enum bp_dir dir, const uint8_t *data, size_t len,
		       uint64_t ts_ns)
{
	struct http_dir *d = &c->dir[dir];

	d->cur_ts_ns = ts_ns;
	while (len && !c->upgraded) {
		bool was_in_headers = d->in_headers;
		uint32_t header_bytes = d->header_bytes, begun = d->messages_begun;
		llhttp_errno_t err = llhttp_execute(&d->parser, (const char *)data, len);
		size_t n;

		/* A chunk wholly inside the headers counts whole: what the parser skipped too. */
		if (err == HPE_OK && was_in_headers && d->in_headers && begun == d->messages_begun) {
			d->header_bytes = header_bytes;
			if (!header_bytes_add(d, len)) {
				parse_error(c);
				return false;
			}
		}
		if (err == HPE_OK || c->upgraded)
			break;
		if (err != HPE_PAUSED_UPGRADE) {
			parse_error(c);
			return false;
		}
		/* A request asked for an upgrade (or CONNECT); llhttp stops after it. Until a 101
		 * (or 2xx to CONNECT) arrives the client is still speaking HTTP/1.x. */
		n = (size_t)(llhttp_get_error_pos(&d->parser) - (const char *)data);
		parser_start(d);
		data += n;
		len -= n;
	}
	return true;
}

void http_dir_feed(struct http_conn *c, enum bp_dir dir, const uint8_t *data, size_t len,
		   uint64_t ts_ns)
{
	struct http_dir *d = &c->dir[dir];
	uint8_t buf[HTTP_STASH_BYTES];
	size_t prev, take;
	enum verdict v;
	bool is_request;

	if (c->upgraded || !len)
		return;
	if (d->sync == HTTP_SYNC_OK) {
		run_parser(c, dir, data, len, ts_ns);
		return;
	}

	prev = d->stash_len;
	take = sizeof(buf) - prev;
	if (take > len)
		take = len;
	memcpy(buf, d->stash, prev);
	memcpy(buf + prev, data, take);
	v = classify(c, dir, buf, prev + take);
	if (v == V_MORE) {
		/* The longest start token is shorter than the stash, so all of data fit. */
		if (!prev)
			d->stash_ts_ns = ts_ns;
		memcpy(d->stash, buf, prev + take);
		d->stash_len = (uint8_t)(prev + take);
		return;
	}
	d->stash_len = 0;
	if (v == V_NO)
		return; /* not a message start: skip this chunk */

	is_request = v == V_REQUEST;
	if (!c->role_known) {
		c->role_known = true;
		c->req_dir = is_request ? dir : (enum bp_dir) !dir;
		dir_start(c, c->req_dir, true);
		dir_start(c, (enum bp_dir) !c->req_dir, false);
	} else {
		dir_start(c, dir, is_request);
	}
	/* The held bytes carry the timestamp of the chunk that started the message. */
	if (prev && !run_parser(c, dir, buf, prev, d->stash_ts_ns))
		return;
	run_parser(c, dir, data, len, ts_ns);
}

/* The last lost byte of a body goes through the parser as a placeholder (on_body sees in_gap and
 * only counts it), so that llhttp completes the message itself. */
static bool feed_last_lost_byte(struct http_conn *c, enum bp_dir dir)
{
	static const uint8_t placeholder;
	struct http_dir *d = &c->dir[dir];
	bool ok;

	d->in_gap = true;
	ok = run_parser(c, dir, &placeholder, 1, d->cur_ts_ns);
	/* run_parser may have reset the conn, which re-inits the dir: clear in any case. */
	d->in_gap = false;
	return ok;
}

/*
 * n lost bytes that stay inside the current identity body (fewer than a Content-Length has
 * left, or any number in a body that runs to the end of the connection), accounted as on_body
 * would account them, without running the parser over placeholders: a 4 GiB hole would be a
 * million calls. In such a body llhttp reads the remaining length from content_length afresh
 * at each call (and ignores it for a body delimited by the end of the connection), so taking
 * n off it keeps the parser in step.
 */
static void skip_inside_body(struct http_dir *d, struct http_msgbuf *m, uint64_t n, bool to_eof)
{
	if (!to_eof)
		d->parser.content_length -= n;
	http_body_gap(m, n);
	touch_ts(d, m);
}

void http_dir_gap(struct http_conn *c, enum bp_dir dir, uint64_t lost)
{
	struct http_dir *d = &c->dir[dir];
	struct http_msgbuf *m;
	uint64_t left;

	if (c->upgraded || !lost)
		return;
	if (d->sync != HTTP_SYNC_OK) {
		/* A start line being assembled lost its continuation. */
		d->stash_len = 0;
		return;
	}
	m = d->msg_active ? cur_msg(d) : NULL;
	if (!m || !m->headers_done || (d->parser.flags & F_CHUNKED)) {
		parse_error(c);
		return;
	}
	if (llhttp_message_needs_eof(&d->parser)) {
		skip_inside_body(d, m, lost, true);
		return;
	}
	/* In an identity body with a length: content_length is what remains. */
	left = d->parser.content_length;
	if (lost < left) {
		skip_inside_body(d, m, lost, false);
		return;
	}
	if (left > 1)
		skip_inside_body(d, m, left - 1, false);
	if (left && !feed_last_lost_byte(c, dir))
		return;
	/* The hole runs past this body into what follows: the stream is lost until a resync. */
	if (lost > left)
		parse_error(c);
}

void http_dir_eof(struct http_conn *c, enum bp_dir dir)
{
	struct http_dir *d = &c->dir[dir];

	if (c->upgraded || d->sync != HTTP_SYNC_OK || !d->msg_active)
		return;
	d->at_eof = true;
	/* Completes a response delimited by the end of the connection; anything else stays
	 * incomplete (HPE_INVALID_EOF_STATE), which the caller counts. */
	llhttp_finish(&d->parser);
	d->at_eof = false;
}
