// SPDX-License-Identifier: MIT
/*
 * Builds the public struct http_exchange from a request and its response and hands it to the
 * callback. Everything it points to lives in the message buffers or the tracker's split buffer
 * and is reused right after the call returns.
 */
#include <string.h>
#include <strings.h>

#include "http_internal.h"

/* Splits a request-target into path (no query, no fragment) and query (no fragment).
 * Absolute-form ("http://host/p?q", sent to proxies) yields the path part; authority-form
 * (CONNECT host:443) and asterisk-form ("*") are their own path. */
static void split_target(struct http_tracker *t, const char *target, const char **path,
			 const char **query)
{
	const char *p = target;
	const char *scheme = strstr(target, "://");
	size_t plen, qlen = 0;
	const char *q = NULL;
	char *out = t->split_buf;

	if (target[0] != '/' && scheme && scheme < target + strcspn(target, "/?#")) {
		p = scheme + 3;
		p += strcspn(p, "/?#");
	}
	plen = strcspn(p, "?#");
	if (p[plen] == '?') {
		q = p + plen + 1;
		qlen = strcspn(q, "#");
	}
	/* split_cap is 2 * header_cap + 2 and the target is shorter than header_cap. */
	if (plen == 0 && p != target) {
		out[0] = '/';
		out[1] = '\0';
		*path = out;
		out += 2;
	} else {
		memcpy(out, p, plen);
		out[plen] = '\0';
		*path = out;
		out += plen + 1;
	}
	if (q)
		memcpy(out, q, qlen);
	out[qlen] = '\0';
	*query = out;
}

/* What the request gives the exchange: connection, role, method, target, host and headers. */
static inline void fill_request_side(struct http_tracker *t, const struct http_conn *c,
				     struct http_msgbuf *req, struct http_exchange *ex)
{
	const char *host;

	ex->conn = c->ref;
	ex->role = c->req_dir == BP_DIR_EGRESS ? HTTP_ROLE_CLIENT : HTTP_ROLE_SERVER;
	memset(ex->method, 0, sizeof(ex->method));
	if (req->method_set) {
		strncpy(ex->method, llhttp_method_name((llhttp_method_t)req->method),
			sizeof(ex->method) - 1);
	}
	ex->target = http_msgbuf_url_str(req);
	split_target(t, ex->target, &ex->path, &ex->query);
	http_msgbuf_view(req, &ex->req);
	host = http_message_header(&ex->req, "Host");
	ex->host = host ? host : "";
}

void http_exchange_deliver(struct http_tracker *t, struct http_conn *c, struct http_msgbuf *req,
			   struct http_msgbuf *resp, bool cut_off)
{
	struct http_exchange ex;

	/* Field by field rather than a memset of the whole struct: its two header arrays are 2 KiB
	 * and http_msgbuf_view fills the used part of each. */
	fill_request_side(t, c, req, &ex);
	ex.status = resp->status;
	http_msgbuf_view(resp, &ex.resp);
	ex.duration_ns =
	    ex.resp.last_ts_ns > ex.req.first_ts_ns ? ex.resp.last_ts_ns - ex.req.first_ts_ns : 0;
	ex.truncated = cut_off || ex.req.headers_truncated || ex.req.body_truncated ||
		       ex.resp.headers_truncated || ex.resp.body_truncated;

	t->stats.exchanges++;
	if (ex.role == HTTP_ROLE_CLIENT)
		t->stats.exchanges_client++;
	else
		t->stats.exchanges_server++;
	if (ex.truncated)
		t->stats.truncated++;
	if (t->cb)
		t->cb(&ex, t->ctx);
}

bool http_exchange_bodies_wanted(struct http_tracker *t, struct http_conn *c,
				 struct http_msgbuf *req)
{
	struct http_exchange head;

	if (!t->cfg.body_filter)
		return true;
	if (req->bodies == HTTP_BODIES_UNASKED) {
		fill_request_side(t, c, req, &head);
		/* The head carries no body, whatever the request's holds by now. */
		head.req.body = (const uint8_t *)"";
		head.req.body_len = 0;
		head.req.body_truncated = false;
		head.req.body_skipped = false;
		head.status = 0;
		memset(&head.resp, 0, sizeof(head.resp));
		head.resp.body = (const uint8_t *)"";
		head.duration_ns = 0;
		head.truncated = false;
		req->bodies = t->cfg.body_filter(&head, t->cfg.body_filter_ctx)
				  ? HTTP_BODIES_WANTED
				  : HTTP_BODIES_UNWANTED;
	}
	return req->bodies == HTTP_BODIES_WANTED;
}
