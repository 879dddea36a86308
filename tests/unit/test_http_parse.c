// SPDX-License-Identifier: MIT
/*
 * HTTP stage: message framing, matching and exchange fields. Every multi-message conversation is
 * fed whole, split in two at every byte offset, and one byte per chunk, and must give the same
 * exchanges each time.
 */
#include "http_test_util.h"

struct expect {
	const char *method, *target, *path, *query, *host;
	int status;
	const char *req_body;
	const char *resp_body;
};

static void check_exchanges(const struct recorder *r, const struct expect *e, size_t n,
			    enum http_role role)
{
	size_t i;

	assert_int_equal(r->n, n);
	for (i = 0; i < n; i++) {
		const struct rec_ex *x = &r->ex[i];

		assert_string_equal(x->method, e[i].method);
		assert_string_equal(x->target, e[i].target);
		assert_string_equal(x->path, e[i].path);
		assert_string_equal(x->query, e[i].query);
		assert_string_equal(x->host, e[i].host);
		assert_int_equal(x->status, e[i].status);
		assert_int_equal(x->req.body_len, strlen(e[i].req_body));
		assert_memory_equal(x->req.body, e[i].req_body, strlen(e[i].req_body) + 1);
		assert_int_equal(x->resp.body_len, strlen(e[i].resp_body));
		assert_memory_equal(x->resp.body, e[i].resp_body, strlen(e[i].resp_body) + 1);
		assert_int_equal(x->role, role);
		assert_false(x->truncated);
	}
}

/* Runs a conversation whole, at every split point and byte by byte; each run must deliver
 * exactly the expected exchanges with no error and nothing left over. */
static void run_all_splits(const struct seg *segs, size_t n_segs, const struct expect *e,
			   size_t n_exp, enum http_role role, bool close_at_end)
{
	size_t total = segs_total(segs, n_segs);
	struct conn_ref conn = test_conn(42, 7);
	size_t split;

	for (split = 0; split <= total + 1; split++) {
		struct recorder r = {0};
		struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
		struct http_tracker_stats st;

		assert_non_null(t);
		if (split == total + 1)
			feed_bytewise(t, &conn, segs, n_segs);
		else
			feed_split(t, &conn, segs, n_segs, split);
		if (close_at_end)
			http_tracker_close(t, &conn, 999999);
		check_exchanges(&r, e, n_exp, role);
		st = tracker_stats(t);
		assert_int_equal(st.exchanges, n_exp);
		assert_int_equal(
		    role == HTTP_ROLE_CLIENT ? st.exchanges_client : st.exchanges_server, n_exp);
		assert_int_equal(st.parse_errors, 0);
		assert_int_equal(st.incomplete, 0);
		assert_int_equal(st.unmatched, 0);
		assert_int_equal(st.truncated, 0);
		http_tracker_free(t);
		rec_free(&r);
	}
}

static void test_simple_get_fields(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(100, 5);
	const struct rec_ex *x;

	feed_str(t, &conn, BP_DIR_EGRESS,
		 "GET /v1/charges?limit=3&x=y#frag HTTP/1.1\r\nHost: api.stripe.com\r\n"
		 "Authorization: Bearer sk_test_abc\r\nX-Empty:\r\n\r\n",
		 1000);
	assert_int_equal(r.n, 0);
	feed_str(t, &conn, BP_DIR_INGRESS,
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
		 "{\"ok\":true}",
		 5000);
	assert_int_equal(r.n, 1);
	x = &r.ex[0];
	assert_int_equal(x->conn.pid, 100);
	assert_int_equal(x->conn.id, 5);
	assert_string_equal(x->conn.comm, "test");
	assert_int_equal(x->role, HTTP_ROLE_CLIENT);
	assert_string_equal(x->method, "GET");
	assert_string_equal(x->target, "/v1/charges?limit=3&x=y#frag");
	assert_string_equal(x->path, "/v1/charges");
	assert_string_equal(x->query, "limit=3&x=y");
	assert_string_equal(x->host, "api.stripe.com");
	assert_int_equal(x->status, 200);
	assert_int_equal(x->req.n_headers, 3);
	assert_string_equal(x->req.names[0], "Host");
	assert_string_equal(x->req.values[1], "Bearer sk_test_abc");
	assert_string_equal(x->req.names[2], "X-Empty");
	assert_string_equal(x->req.values[2], "");
	assert_int_equal(x->req.body_len, 0);
	assert_int_equal(x->req.wire_body_bytes, 0);
	assert_int_equal(x->resp.n_headers, 2);
	assert_string_equal(rec_header(&x->resp, "content-type"), "application/json");
	assert_int_equal(x->resp.body_len, 11);
	assert_string_equal((const char *)x->resp.body, "{\"ok\":true}");
	assert_int_equal(x->resp.wire_body_bytes, 11);
	assert_int_equal(x->req.first_ts_ns, 1000);
	assert_int_equal(x->req.last_ts_ns, 1000);
	assert_int_equal(x->resp.first_ts_ns, 5000);
	assert_int_equal(x->resp.last_ts_ns, 5000);
	assert_int_equal(x->duration_ns, 4000);
	assert_false(x->truncated);
	assert_false(x->req.headers_truncated);
	assert_false(x->resp.body_truncated);
	http_tracker_free(t);
	rec_free(&r);
}

static void test_timings_across_chunks(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(1, 1);
	const struct rec_ex *x;

	feed_str(t, &conn, BP_DIR_INGRESS, "POST /signup HTTP/1.1\r\nHost: app\r\nCont", 100);
	feed_str(t, &conn, BP_DIR_INGRESS, "ent-Length: 4\r\n\r\nab", 150);
	feed_str(t, &conn, BP_DIR_INGRESS, "cd", 180);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n", 300);
	assert_int_equal(r.n, 0);
	feed_str(t, &conn, BP_DIR_EGRESS, "ok", 420);
	assert_int_equal(r.n, 1);
	x = &r.ex[0];
	assert_int_equal(x->role, HTTP_ROLE_SERVER);
	assert_string_equal(x->method, "POST");
	assert_string_equal(x->req.body, "abcd");
	assert_int_equal(x->req.first_ts_ns, 100);
	assert_int_equal(x->req.last_ts_ns, 180);
	assert_int_equal(x->resp.first_ts_ns, 300);
	assert_int_equal(x->resp.last_ts_ns, 420);
	assert_int_equal(x->duration_ns, 320);
	assert_int_equal(tracker_stats(t).exchanges_server, 1);
	http_tracker_free(t);
	rec_free(&r);
}

/* Keep-alive: Content-Length, chunked, HEAD, 204 and 304 with a misleading Content-Length. */
static const struct seg keepalive_segs[] = {
    {BP_DIR_EGRESS, "GET /a?q=1 HTTP/1.1\r\nHost: h1\r\n\r\n", 0},
    {BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0},
    {BP_DIR_EGRESS, "POST /b HTTP/1.1\r\nHost: h2\r\nContent-Length: 3\r\n\r\nxyz", 0},
    {BP_DIR_INGRESS,
     "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;ext=1\r\nefg\r\n"
     "0\r\nX-Trailer: t\r\n\r\n",
     0},
    {BP_DIR_EGRESS, "HEAD /c HTTP/1.1\r\n\r\n", 0},
    {BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0},
    {BP_DIR_EGRESS, "DELETE /d HTTP/1.1\r\n\r\n", 0},
    {BP_DIR_INGRESS, "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 0},
    {BP_DIR_EGRESS, "GET /e HTTP/1.1\r\nIf-None-Match: \"x\"\r\n\r\n", 0},
    {BP_DIR_INGRESS, "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", 0},
    {BP_DIR_EGRESS, "PATCH /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
     0},
    {BP_DIR_INGRESS, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
};

static const struct expect keepalive_exp[] = {
    {"GET", "/a?q=1", "/a", "q=1", "h1", 200, "", "hello"},
    {"POST", "/b", "/b", "", "h2", 201, "xyz", "abcdefg"},
    {"HEAD", "/c", "/c", "", "", 200, "", ""},
    {"DELETE", "/d", "/d", "", "", 204, "", ""},
    {"GET", "/e", "/e", "", "", 304, "", ""},
    {"PATCH", "/f", "/f", "", "", 200, "hi", ""},
};

static void test_keepalive_all_splits(void **state)
{
	run_all_splits(keepalive_segs, 12, keepalive_exp, 6, HTTP_ROLE_CLIENT, false);
}

/* The same bytes with the directions swapped: the traced process is the server. */
static void test_keepalive_server_role(void **state)
{
	struct seg swapped[12];
	size_t i;

	for (i = 0; i < 12; i++) {
		swapped[i] = keepalive_segs[i];
		swapped[i].dir =
		    keepalive_segs[i].dir == BP_DIR_EGRESS ? BP_DIR_INGRESS : BP_DIR_EGRESS;
	}
	run_all_splits(swapped, 12, keepalive_exp, 6, HTTP_ROLE_SERVER, false);
}

static void test_pipelined_all_splits(void **state)
{
	static const struct seg segs[] = {
	    {BP_DIR_EGRESS,
	     "GET /1 HTTP/1.1\r\nHost: p\r\n\r\nPOST /2 HTTP/1.1\r\nHost: p\r\nContent-Length: "
	     "2\r\n"
	     "\r\nzzHEAD /3 HTTP/1.1\r\nHost: p\r\n\r\nGET /4 HTTP/1.1\r\nHost: p\r\n\r\n",
	     0},
	    {BP_DIR_INGRESS,
	     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 202 Accepted\r\n"
	     "Transfer-Encoding: chunked\r\n\r\n1\r\nB\r\n0\r\n\r\nHTTP/1.1 200 "
	     "OK\r\nContent-Length: 50"
	     "\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nD",
	     0},
	};
	static const struct expect exp[] = {
	    {"GET", "/1", "/1", "", "p", 200, "", "A"},
	    {"POST", "/2", "/2", "", "p", 202, "zz", "B"},
	    {"HEAD", "/3", "/3", "", "p", 200, "", ""},
	    {"GET", "/4", "/4", "", "p", 404, "", "D"},
	};

	run_all_splits(segs, 2, exp, 4, HTTP_ROLE_CLIENT, false);
}

/* Responses interleaved with later requests: request 2 is sent before response 1 arrives. */
static void test_pipelined_interleaved(void **state)
{
	static const struct seg segs[] = {
	    {BP_DIR_INGRESS, "GET /1 HTTP/1.1\r\n\r\n", 0},
	    {BP_DIR_INGRESS, "GET /2 HTTP/1.1\r\n\r\n", 0},
	    {BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1", 0},
	    {BP_DIR_INGRESS, "GET /3 HTTP/1.1\r\n\r\n", 0},
	    {BP_DIR_EGRESS, "HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\n2", 0},
	    {BP_DIR_EGRESS, "HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n3", 0},
	};
	static const struct expect exp[] = {
	    {"GET", "/1", "/1", "", "", 200, "", "1"},
	    {"GET", "/2", "/2", "", "", 500, "", "2"},
	    {"GET", "/3", "/3", "", "", 201, "", "3"},
	};

	run_all_splits(segs, 6, exp, 3, HTTP_ROLE_SERVER, false);
}

static void test_expect_100_continue(void **state)
{
	static const struct seg segs[] = {
	    {BP_DIR_EGRESS,
	     "PUT /upload HTTP/1.1\r\nHost: u\r\nExpect: 100-continue\r\nContent-Length: 6\r\n\r\n",
	     0},
	    {BP_DIR_INGRESS, "HTTP/1.1 100 Continue\r\n\r\n", 0},
	    {BP_DIR_EGRESS, "abcdef", 0},
	    {BP_DIR_INGRESS, "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone", 0},
	    {BP_DIR_EGRESS, "GET /next HTTP/1.1\r\n\r\n", 0},
	    {BP_DIR_INGRESS,
	     "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
	};
	static const struct expect exp[] = {
	    {"PUT", "/upload", "/upload", "", "u", 201, "abcdef", "done"},
	    {"GET", "/next", "/next", "", "", 200, "", ""},
	};

	run_all_splits(segs, 6, exp, 2, HTTP_ROLE_CLIENT, false);
}

/* A response with neither Content-Length nor chunking ends with the connection. */
static void test_eof_delimited_all_splits(void **state)
{
	static const struct seg segs[] = {
	    {BP_DIR_EGRESS, "GET /a HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", 0},
	    {BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0},
	    {BP_DIR_EGRESS, "GET /stream HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
	    {BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nline1\nline2\n", 0},
	};
	static const struct expect exp[] = {
	    {"GET", "/a", "/a", "", "", 200, "", "ok"},
	    {"GET", "/stream", "/stream", "", "", 200, "", "line1\nline2\n"},
	};

	run_all_splits(segs, 4, exp, 2, HTTP_ROLE_CLIENT, true);
}

static void test_eof_delimited_needs_close(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(3, 3);

	feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.0\r\n\r\n", 10);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.0 200 OK\r\n\r\nbody", 20);
	feed_str(t, &conn, BP_DIR_INGRESS, " more", 30);
	assert_int_equal(r.n, 0);
	http_tracker_close(t, &conn, 99);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ex[0].resp.body, "body more");
	/* The last byte was in the chunk at 30, not at the close. */
	assert_int_equal(r.ex[0].resp.last_ts_ns, 30);
	assert_int_equal(r.ex[0].duration_ns, 20);
	assert_int_equal(tracker_stats(t).incomplete, 0);
	/* Closing again (or an unknown conn) is harmless. */
	http_tracker_close(t, &conn, 100);
	assert_int_equal(r.n, 1);
	http_tracker_free(t);
	rec_free(&r);
}

/* Attached mid-exchange: the first bytes are a response. It counts as unmatched, and fixes the
 * role: ingress response, so the process is the client. */
static void test_role_from_first_response(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(4, 4);
	struct conn_ref conn2 = test_conn(4, 5);

	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 1);
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /n HTTP/1.1\r\n\r\n", 2);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 3);
	/* Egress response first: the process is the server. */
	feed_str(t, &conn2, BP_DIR_EGRESS, "HTTP/1.1 500 Error\r\nContent-Length: 0\r\n\r\n", 4);
	feed_str(t, &conn2, BP_DIR_INGRESS, "GET /m HTTP/1.1\r\n\r\n", 5);
	feed_str(t, &conn2, BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 6);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ex[0].role, HTTP_ROLE_CLIENT);
	assert_string_equal(r.ex[0].path, "/n");
	assert_int_equal(r.ex[0].status, 202);
	assert_int_equal(r.ex[1].role, HTTP_ROLE_SERVER);
	assert_string_equal(r.ex[1].path, "/m");
	assert_int_equal(r.ex[1].status, 200);
	assert_int_equal(tracker_stats(t).unmatched, 2);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
}

static void test_upgrade_101(void **state)
{
	static const uint8_t frames[] = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o', 0x00, 0xff, 0x88};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(5, 5);

	feed_str(t, &conn, BP_DIR_EGRESS,
		 "GET /ws HTTP/1.1\r\nHost: w\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		 1);
	feed_str(
	    t, &conn, BP_DIR_INGRESS,
	    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	    2);
	feed_bytes(t, &conn, BP_DIR_INGRESS, frames, sizeof(frames), 3, 0);
	feed_bytes(t, &conn, BP_DIR_EGRESS, frames, sizeof(frames), 4, 0);
	http_tracker_close(t, &conn, 5);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].status, 101);
	assert_string_equal(r.ex[0].path, "/ws");
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	assert_int_equal(tracker_stats(t).incomplete, 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* A refused upgrade (the server answers 200): the connection goes on speaking HTTP/1.1. */
static void test_upgrade_refused(void **state)
{
	static const struct seg segs[] = {
	    {BP_DIR_EGRESS,
	     "GET /u HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nGET /v "
	     "HTTP/1.1\r\n\r\n",
	     0},
	    {BP_DIR_INGRESS,
	     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nuHTTP/1.1 200 OK\r\nContent-Length: "
	     "1\r\n\r\nv",
	     0},
	};
	static const struct expect exp[] = {
	    {"GET", "/u", "/u", "", "", 200, "", "u"},
	    {"GET", "/v", "/v", "", "", 200, "", "v"},
	};

	run_all_splits(segs, 2, exp, 2, HTTP_ROLE_CLIENT, false);
}

static void test_connect_tunnel(void **state)
{
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(6, 6);

	feed_str(t, &conn, BP_DIR_EGRESS,
		 "CONNECT api.stripe.com:443 HTTP/1.1\r\nHost: api.stripe.com:443\r\n\r\n", 1);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 Connection established\r\n\r\n", 2);
	feed_bytes(t, &conn, BP_DIR_EGRESS, tls, sizeof(tls), 3, 0);
	feed_bytes(t, &conn, BP_DIR_INGRESS, tls, sizeof(tls), 4, 0);
	http_tracker_close(t, &conn, 5);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ex[0].method, "CONNECT");
	assert_string_equal(r.ex[0].target, "api.stripe.com:443");
	assert_string_equal(r.ex[0].path, "api.stripe.com:443");
	assert_int_equal(r.ex[0].status, 200);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
}

static void test_target_forms(void **state)
{
	static const struct {
		const char *target, *path, *query;
	} cases[] = {
	    {"/", "/", ""},
	    {"/a/b", "/a/b", ""},
	    {"/a?", "/a", ""},
	    {"/a?b=c", "/a", "b=c"},
	    {"/a#x?y", "/a", ""},
	    {"/a?b#c", "/a", "b"},
	    {"http://example.com/p/q?r=1", "/p/q", "r=1"},
	    {"http://example.com", "/", ""},
	    {"http://example.com?z", "/", "z"},
	    {"*", "*", ""},
	};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(7, 7);
	char buf[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\n\r\n",
			 cases[i].target[0] == '*' ? "OPTIONS" : "GET", cases[i].target);
		feed_str(t, &conn, BP_DIR_EGRESS, buf, 1);
		feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			 2);
		assert_int_equal(r.n, i + 1);
		assert_string_equal(r.ex[i].target, cases[i].target);
		assert_string_equal(r.ex[i].path, cases[i].path);
		assert_string_equal(r.ex[i].query, cases[i].query);
	}
	http_tracker_free(t);
	rec_free(&r);
}

static void header_cb(const struct http_exchange *ex, void *ctx)
{
	int *seen = ctx;

	assert_string_equal(http_message_header(&ex->req, "host"), "H");
	assert_string_equal(http_message_header(&ex->req, "X-CASE"), "v");
	assert_null(http_message_header(&ex->req, "missing"));
	assert_null(http_message_header(&ex->resp, "host"));
	assert_string_equal(http_message_header(&ex->resp, "content-length"), "0");
	assert_null(http_message_header(NULL, "x"));
	(*seen)++;
}

static void test_header_lookup(void **state)
{
	int seen = 0;
	struct http_tracker *t = http_tracker_new(NULL, header_cb, &seen);
	struct conn_ref conn = test_conn(8, 8);

	feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.1\r\nhOsT: H\r\nx-case: v\r\n\r\n", 1);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2);
	assert_int_equal(seen, 1);
	http_tracker_free(t);
}

/* The server answers before the upload is complete: delivered once the request completes. */
static void test_early_response(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(9, 9);

	feed_str(t, &conn, BP_DIR_INGRESS, "POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123",
		 10);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig",
		 20);
	assert_int_equal(r.n, 0);
	feed_str(t, &conn, BP_DIR_INGRESS, "456789", 30);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].status, 413);
	assert_string_equal(r.ex[0].req.body, "0123456789");
	assert_string_equal(r.ex[0].resp.body, "big");
	assert_int_equal(r.ex[0].req.last_ts_ns, 30);
	/* And the connection goes on. */
	feed_str(t, &conn, BP_DIR_INGRESS, "GET /x HTTP/1.1\r\n\r\n", 40);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 50);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.ex[1].path, "/x");
	assert_int_equal(tracker_stats(t).incomplete, 0);

	/* Cut off before the upload finishes: delivered truncated, counted incomplete. */
	feed_str(t, &conn, BP_DIR_INGRESS, "POST /up HTTP/1.1\r\nContent-Length: 10\r\n\r\n01", 60);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
		 70);
	http_tracker_close(t, &conn, 80);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ex[2].status, 413);
	assert_true(r.ex[2].truncated);
	assert_true(r.ex[2].req.body_truncated);
	assert_string_equal(r.ex[2].req.body, "01");
	assert_int_equal(tracker_stats(t).incomplete, 1);
	assert_int_equal(tracker_stats(t).truncated, 1);
	http_tracker_free(t);
	rec_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get_fields),
	    cmocka_unit_test(test_timings_across_chunks),
	    cmocka_unit_test(test_keepalive_all_splits),
	    cmocka_unit_test(test_keepalive_server_role),
	    cmocka_unit_test(test_pipelined_all_splits),
	    cmocka_unit_test(test_pipelined_interleaved),
	    cmocka_unit_test(test_expect_100_continue),
	    cmocka_unit_test(test_eof_delimited_all_splits),
	    cmocka_unit_test(test_eof_delimited_needs_close),
	    cmocka_unit_test(test_role_from_first_response),
	    cmocka_unit_test(test_upgrade_101),
	    cmocka_unit_test(test_upgrade_refused),
	    cmocka_unit_test(test_connect_tunnel),
	    cmocka_unit_test(test_target_forms),
	    cmocka_unit_test(test_header_lookup),
	    cmocka_unit_test(test_early_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
