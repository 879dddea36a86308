// SPDX-License-Identifier: MIT
/*
 * HTTP stage under bad input: garbage, binary, huge headers, lost bytes, cut-off connections,
 * eviction, many interleaved connections. Each case also runs a well-formed connection alongside
 * and checks it is unaffected.
 */
#include <errno.h>

#include "http_test_util.h"

static const char *good_req =
    "POST /ok?a=b HTTP/1.1\r\nHost: good\r\nContent-Length: 5\r\n\r\nhello";
static const char *good_resp = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine";

static void feed_good(struct http_tracker *t, const struct conn_ref *conn, uint64_t ts)
{
	feed_str(t, conn, BP_DIR_EGRESS, good_req, ts);
	feed_str(t, conn, BP_DIR_INGRESS, good_resp, ts + 1);
}

static void check_good(const struct rec_ex *x, const struct conn_ref *conn)
{
	assert_int_equal(x->conn.pid, conn->pid);
	assert_int_equal(x->conn.id, conn->id);
	assert_string_equal(x->method, "POST");
	assert_string_equal(x->path, "/ok");
	assert_string_equal(x->query, "a=b");
	assert_string_equal(x->host, "good");
	assert_string_equal(x->req.body, "hello");
	assert_string_equal(x->resp.body, "fine");
	assert_int_equal(x->status, 200);
	assert_false(x->truncated);
}

static void test_garbage_counted_others_fine(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref bad = test_conn(1, 1), good = test_conn(1, 2);

	feed_str(t, &bad, BP_DIR_EGRESS, "this is not http at all\r\n\r\n", 1);
	feed_good(t, &good, 2);
	feed_str(t, &bad, BP_DIR_INGRESS, "neither is this", 3);
	feed_str(t, &bad, BP_DIR_EGRESS, "{\"json\":1}", 4);
	feed_good(t, &good, 5);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[0], &good);
	check_good(&r.ex[1], &good);
	/* One error: after it the bad conn waits for a real start line instead of re-failing. */
	assert_int_equal(tracker_stats(t).parse_errors, 1);

	/* It resyncs on a chunk that starts a request. */
	feed_good(t, &bad, 6);
	assert_int_equal(r.n, 3);
	check_good(&r.ex[2], &bad);
	assert_int_equal(r.ex[2].role, HTTP_ROLE_CLIENT);
	http_tracker_free(t);
	rec_free(&r);
}

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void test_binary_fuzz(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref good = test_conn(2, 1000);
	uint8_t buf[512];
	uint32_t seed = 12345;
	unsigned round, n_good = 0;
	size_t i;

	for (round = 0; round < 2000; round++) {
		struct conn_ref c = test_conn(2, round % 50);
		size_t len = lcg(&seed) % sizeof(buf) + 1;

		for (i = 0; i < len; i++)
			buf[i] = (uint8_t)lcg(&seed);
		/* Sometimes an HTTP-looking prefix, to reach deeper parser states. */
		if (round % 3 == 0)
			memcpy(buf, "GET / HTTP/1.1\r\n", len < 16 ? len : 16);
		if (round % 7 == 0)
			memcpy(buf, "HTTP/1.1 200 OK\r\n", len < 17 ? len : 17);
		feed_bytes(t, &c, (enum bp_dir)(lcg(&seed) & 1), buf, len, round,
			   lcg(&seed) % 5 == 0 ? lcg(&seed) % 1000 : 0);
		if (round % 100 == 0) {
			feed_good(t, &good, round);
			n_good++;
		}
		if (round % 97 == 0)
			http_tracker_close(t, &c, round);
	}
	http_tracker_forget_pid(t, 2);
	assert_int_equal(r.n, n_good);
	for (i = 0; i < r.n; i++)
		check_good(&r.ex[i], &good);
	assert_true(tracker_stats(t).parse_errors > 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* 1 MiB of one header: over HTTP_HEADER_LIMIT (80 KiB), a parse error; memory stays within
 * header_cap meanwhile: the stage's own count says so (and build/asan/ checks that the count is
 * of real allocations, freed). */
static void test_one_mib_header(void **state)
{
	size_t big = 1u << 20, off;
	char *hdr = malloc(big);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref bad = test_conn(3, 1), good = test_conn(3, 2);

	memset(hdr, 'x', big);
	feed_str(t, &bad, BP_DIR_EGRESS, "GET / HTTP/1.1\r\nX-Big: ", 1);
	for (off = 0; off < big; off += 16384) {
		feed_bytes(t, &bad, BP_DIR_EGRESS, hdr + off, 16384, 2, 0);
		if (off == 8 * 16384)
			feed_good(t, &good, 3);
	}
	feed_str(t, &bad, BP_DIR_EGRESS, "\r\n\r\n", 4);
	feed_str(t, &bad, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5);
	assert_int_equal(r.n, 1);
	check_good(&r.ex[0], &good);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	/* Two connections' state, the big header's 16 KiB cap and the good exchange's small
	 * buffers: far below the 1 MiB sent. */
	assert_true(tracker_stats(t).memory_peak_bytes < 64 * 1024);
	/* The same connection later carries a normal exchange. */
	feed_good(t, &bad, 6);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &bad);
	http_tracker_free(t);
	rec_free(&r);
	free(hdr);
}

/* 1 MiB of spaces before a header's value: the parser skips them without reporting a byte, yet
 * they are still header bytes: over HTTP_HEADER_LIMIT, a parse error, as for a value that long. */
static void test_one_mib_of_padding(void **state)
{
	size_t big = 1u << 20, off;
	char *pad = malloc(16384);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref bad = test_conn(3, 1), good = test_conn(3, 2);

	memset(pad, ' ', 16384);
	feed_str(t, &bad, BP_DIR_EGRESS, "GET / HTTP/1.1\r\nX-Pad:", 1);
	for (off = 0; off < big; off += 16384)
		feed_bytes(t, &bad, BP_DIR_EGRESS, pad, 16384, 2, 0);
	feed_good(t, &good, 3);
	feed_str(t, &bad, BP_DIR_EGRESS, "v\r\n\r\n", 4);
	feed_str(t, &bad, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 5);
	assert_int_equal(r.n, 1);
	check_good(&r.ex[0], &good);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	feed_good(t, &bad, 6);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &bad);
	http_tracker_free(t);
	rec_free(&r);
	free(pad);
}

/* Two pipelined requests with 70 and 12 KiB of headers, fed in 16 KiB chunks: the chunk that ends
 * the first request's headers also begins the second's. Each message's headers count on their
 * own: both are under HTTP_HEADER_LIMIT, no error. */
static void test_big_headers_then_pipelined(void **state)
{
	size_t big = 70 * 1024, second = 12 * 1024, n = 0, off;
	char *stream = malloc(big + second + 256);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(4, 2);

	n += (size_t)sprintf(stream + n, "GET /a HTTP/1.1\r\nX-Big: ");
	memset(stream + n, 'x', big);
	n += big;
	n += (size_t)sprintf(stream + n, "\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\nX-Two: ");
	memset(stream + n, 'y', second);
	n += second;
	n += (size_t)sprintf(stream + n, "\r\n");
	for (off = 0; off < n; off += 16384)
		feed_bytes(t, &conn, BP_DIR_EGRESS, stream + off, n - off < 16384 ? n - off : 16384, 1,
			   0);
	feed_str(t, &conn, BP_DIR_EGRESS, "X-More: 1\r\n\r\n", 2);
	feed_str(t, &conn, BP_DIR_INGRESS,
		 "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
		 "HTTP/1.1 204 No Content\r\n\r\n",
		 3);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.ex[0].path, "/a");
	assert_int_equal(r.ex[0].status, 200);
	assert_string_equal(r.ex[1].path, "/b");
	assert_int_equal(r.ex[1].status, 204);
	http_tracker_free(t);
	rec_free(&r);
	free(stream);
}

/* 40 KiB of header: within HTTP_HEADER_LIMIT, over our 16 KiB cap. The big header is dropped,
 * headers around it are kept. */
static void test_header_over_cap(void **state)
{
	size_t big = 40 * 1024;
	char *req = malloc(big + 256);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(4, 1);
	size_t n;

	n = (size_t)sprintf(req, "GET /h HTTP/1.1\r\nX-Before: 1\r\nX-Big: ");
	memset(req + n, 'y', big);
	n += big;
	n += (size_t)sprintf(req + n, "\r\nHost: after\r\n\r\n");
	feed_bytes(t, &conn, BP_DIR_EGRESS, req, n, 1, 0);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2);
	assert_int_equal(r.n, 1);
	assert_true(r.ex[0].req.headers_truncated);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].req.n_headers, 2);
	assert_string_equal(rec_header(&r.ex[0].req, "X-Before"), "1");
	assert_null(rec_header(&r.ex[0].req, "X-Big"));
	assert_string_equal(r.ex[0].host, "after");
	assert_int_equal(r.ex[0].status, 200);
	assert_int_equal(tracker_stats(t).truncated, 1);
	http_tracker_free(t);
	rec_free(&r);
	free(req);
}

static void test_too_many_headers(void **state)
{
	char req[8192];
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(4, 2);
	size_t n;
	int i;

	n = (size_t)sprintf(req, "GET / HTTP/1.1\r\n");
	for (i = 0; i < HTTP_MAX_HEADERS + 10; i++)
		n += (size_t)sprintf(req + n, "H%d: v%d\r\n", i, i);
	n += (size_t)sprintf(req + n, "\r\n");
	feed_bytes(t, &conn, BP_DIR_EGRESS, req, n, 1, 0);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 2);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].req.n_headers, HTTP_MAX_HEADERS);
	assert_true(r.ex[0].req.headers_truncated);
	assert_string_equal(r.ex[0].req.names[HTTP_MAX_HEADERS - 1], "H63");
	assert_string_equal(r.ex[0].req.values[HTTP_MAX_HEADERS - 1], "v63");
	http_tracker_free(t);
	rec_free(&r);
}

/* Lost bytes inside a Content-Length body: counted, not stored, exchange kept and truncated, the
 * connection stays in step. */
static void test_gap_in_content_length_body(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(5, 1);
	char part[100];

	memset(part, 'b', sizeof(part));
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /g HTTP/1.1\r\n\r\n", 1);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 2);
	feed_bytes(t, &conn, BP_DIR_INGRESS, part, 100, 3, 800);
	assert_int_equal(r.n, 0);
	feed_bytes(t, &conn, BP_DIR_INGRESS, part, 100, 4, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].status, 200);
	assert_int_equal(r.ex[0].resp.body_len, 100);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, 1000);
	assert_true(r.ex[0].resp.body_truncated);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.last_ts_ns, 4);
	feed_good(t, &conn, 10);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &conn);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	assert_int_equal(tracker_stats(t).truncated, 1);

	/* The gap ends exactly at the end of the body: complete, truncated, still in step. */
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /g2 HTTP/1.1\r\n\r\n", 20);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 201 Created\r\nContent-Length: 50\r\n\r\n",
		 21);
	feed_bytes(t, &conn, BP_DIR_INGRESS, part, 10, 22, 40);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ex[2].status, 201);
	assert_int_equal(r.ex[2].resp.wire_body_bytes, 50);
	assert_int_equal(r.ex[2].resp.body_len, 10);
	assert_int_equal(r.ex[2].resp.last_ts_ns, 22);
	feed_good(t, &conn, 30);
	assert_int_equal(r.n, 4);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* A gap past the end of the body: the message completes truncated, then the stream is lost
 * (parse error) until a new start line. */
static void test_gap_past_body(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(5, 2);

	feed_str(t, &conn, BP_DIR_EGRESS, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 1);
	feed_bytes(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 40,
		   2, 100);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ex[0].path, "/1");
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, 10);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	/* The rest of the lost response's bytes: skipped. */
	feed_str(t, &conn, BP_DIR_INGRESS, "tail of a lost body", 3);
	feed_good(t, &conn, 4);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &conn);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	http_tracker_free(t);
	rec_free(&r);
}

/* Holes of 4 GiB, as a lossy capture of a big download reports them: counted exactly, the
 * parser stays in step, and each costs the same as a small one (they once ran the parser over
 * every placeholder byte: a minute for the close-delimited case under the sanitizers). */
static void test_huge_gaps_in_bodies(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(5, 6);
	const uint64_t hole = UINT32_MAX, length = 3 * hole + 2;
	char head[128];

	/* A body with a length: three holes and its last two bytes complete it. */
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\n",
		 (unsigned long long)length);
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /iso HTTP/1.1\r\n\r\n", 1);
	feed_str(t, &conn, BP_DIR_INGRESS, head, 2);
	for (int i = 0; i < 3; i++)
		feed_bytes(t, &conn, BP_DIR_INGRESS, "", 0, 3 + i, (uint32_t)hole);
	assert_int_equal(r.n, 0);
	feed_str(t, &conn, BP_DIR_INGRESS, "ok", 9);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ex[0].path, "/iso");
	assert_int_equal(r.ex[0].resp.wire_body_bytes, length);
	assert_int_equal(r.ex[0].resp.body_len, 0);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.last_ts_ns, 9);
	feed_good(t, &conn, 10);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &conn);

	/* A hole that ends exactly at the end of such a body completes it. */
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\n\r\nab",
		 (unsigned long long)hole + 2);
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /exact HTTP/1.1\r\n\r\n", 20);
	feed_bytes(t, &conn, BP_DIR_INGRESS, head, strlen(head), 21, (uint32_t)hole);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ex[2].resp.wire_body_bytes, hole + 2);
	assert_int_equal(r.ex[2].resp.body_len, 2);
	feed_good(t, &conn, 22);
	assert_int_equal(r.n, 4);
	check_good(&r.ex[3], &conn);
	assert_int_equal(tracker_stats(t).parse_errors, 0);

	/* A body delimited by the end of the connection takes any number of holes. */
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /eof HTTP/1.1\r\n\r\n", 30);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\n\r\nab", 31);
	for (int i = 0; i < 3; i++)
		feed_bytes(t, &conn, BP_DIR_INGRESS, "cd", 2, 32 + i, (uint32_t)hole);
	http_tracker_close(t, &conn, 40);
	assert_int_equal(r.n, 5);
	assert_string_equal(r.ex[4].path, "/eof");
	assert_int_equal(r.ex[4].resp.wire_body_bytes, 2 + 3 * (2 + hole));
	assert_string_equal(r.ex[4].resp.body, "abcd");
	assert_int_equal(r.ex[4].resp.last_ts_ns, 34);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* A gap in the headers or in chunked framing cannot be stepped over. */
static void test_gap_in_headers_and_chunked(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(5, 3);

	feed_bytes(t, &conn, BP_DIR_EGRESS, "GET /lost HTTP/1.1\r\nHo", 22, 1, 30);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	feed_str(t, &conn, BP_DIR_EGRESS, "st: x\r\n\r\n", 2); /* continuation: skipped */
	feed_good(t, &conn, 3);
	assert_int_equal(r.n, 1);
	check_good(&r.ex[0], &conn);

	feed_str(t, &conn, BP_DIR_EGRESS, "GET /c HTTP/1.1\r\n\r\n", 4);
	feed_bytes(t, &conn, BP_DIR_INGRESS,
		   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 52, 5, 10);
	assert_int_equal(tracker_stats(t).parse_errors, 2);
	assert_int_equal(r.n, 1);
	feed_good(t, &conn, 6);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &conn);
	http_tracker_free(t);
	rec_free(&r);
}

/* Close mid-message: nothing is delivered and the exchange counts as incomplete. */
static void test_close_mid_message(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref a = test_conn(6, 1), b = test_conn(6, 2), c = test_conn(6, 3);
	struct conn_ref d = test_conn(6, 4);

	feed_str(t, &a, BP_DIR_EGRESS, "GET /a HTTP/1.1\r\nHost: ", 1); /* in the headers */
	feed_str(t, &b, BP_DIR_EGRESS, "GET /b HTTP/1.1\r\n\r\n", 2);	/* no response yet */
	feed_str(t, &c, BP_DIR_EGRESS, "GET /c HTTP/1.1\r\n\r\n", 3);
	feed_str(t, &c, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 4);
	feed_str(t, &d, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 5);
	http_tracker_close(t, &a, 10);
	assert_int_equal(tracker_stats(t).incomplete, 1);
	http_tracker_close(t, &b, 11);
	assert_int_equal(tracker_stats(t).incomplete, 2);
	http_tracker_close(t, &c, 12);
	assert_int_equal(tracker_stats(t).incomplete, 3);
	http_tracker_close(t, &d, 13); /* a response without a request, cut off */
	assert_int_equal(tracker_stats(t).incomplete, 4);
	assert_int_equal(r.n, 0);
	assert_int_equal(tracker_stats(t).exchanges, 0);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* Three connections fed one byte at a time, round robin. */
static void test_interleaved_connections(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conns[3] = {test_conn(7, 1), test_conn(7, 2), test_conn(8, 1)};
	const char *streams[2] = {good_req, good_resp};
	size_t s, i, k;

	/* Same pid+id but another generation, or TLS: distinct connections. */
	conns[1].id = 1;
	conns[1].generation = 2;
	conns[2].pid = 7;
	conns[2].id = 1;
	conns[2].tls = true;
	for (s = 0; s < 2; s++) {
		size_t len = strlen(streams[s]);

		for (i = 0; i < len; i++) {
			for (k = 0; k < 3; k++)
				feed_bytes(t, &conns[k], s ? BP_DIR_INGRESS : BP_DIR_EGRESS,
					   streams[s] + i, 1, i, 0);
		}
	}
	assert_int_equal(r.n, 3);
	for (k = 0; k < 3; k++) {
		check_good(&r.ex[k], &conns[k]);
		assert_int_equal(r.ex[k].conn.generation, conns[k].generation);
		assert_int_equal(r.ex[k].conn.tls, conns[k].tls);
	}
	http_tracker_free(t);
	rec_free(&r);
}

static void test_eviction_lru(void **state)
{
	struct http_tracker_config cfg = {.max_conns = 2};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
	struct conn_ref c1 = test_conn(9, 1), c2 = test_conn(9, 2), c3 = test_conn(9, 3);

	feed_str(t, &c1, BP_DIR_EGRESS, good_req, 1);
	feed_str(t, &c2, BP_DIR_EGRESS, good_req, 2);
	feed_str(t, &c1, BP_DIR_EGRESS, "", 3); /* empty: c1 becomes the most recent anyway */
	feed_bytes(t, &c1, BP_DIR_INGRESS, "H", 1, 3, 0);
	feed_str(t, &c3, BP_DIR_EGRESS, good_req, 4); /* evicts c2, the least recently used */
	assert_int_equal(tracker_stats(t).evicted, 1);
	assert_int_equal(tracker_stats(t).incomplete, 1);
	feed_str(t, &c1, BP_DIR_INGRESS, good_resp + 1, 5);
	feed_str(t, &c3, BP_DIR_INGRESS, good_resp, 6);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[0], &c1);
	check_good(&r.ex[1], &c3);
	/* c2 comes back as a new connection: its response has no request. */
	feed_str(t, &c2, BP_DIR_INGRESS, good_resp, 7);
	assert_int_equal(tracker_stats(t).unmatched, 1);
	assert_int_equal(tracker_stats(t).evicted, 2);
	http_tracker_free(t);
	rec_free(&r);
}

static void test_forget_pid(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref a = test_conn(10, 1), b = test_conn(10, 2), c = test_conn(11, 1);

	feed_str(t, &a, BP_DIR_EGRESS, "GET /eof HTTP/1.1\r\n\r\n", 1);
	feed_str(t, &a, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\n\r\nto the end", 2);
	feed_str(t, &b, BP_DIR_EGRESS, good_req, 3);
	feed_str(t, &c, BP_DIR_EGRESS, good_req, 4);
	http_tracker_forget_pid(t, 10);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ex[0].resp.body, "to the end");
	assert_int_equal(tracker_stats(t).incomplete, 1);
	feed_str(t, &c, BP_DIR_INGRESS, good_resp, 5);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &c);
	/* a and b are gone: their next bytes start fresh connections. */
	feed_str(t, &b, BP_DIR_INGRESS, good_resp, 6);
	assert_int_equal(tracker_stats(t).unmatched, 1);
	http_tracker_free(t);
	rec_free(&r);
}

static void test_pipeline_overflow(void **state)
{
	struct http_tracker_config cfg = {.max_pipelined = 2};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
	struct conn_ref c = test_conn(12, 1);

	feed_str(t, &c, BP_DIR_EGRESS,
		 "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n", 1);
	assert_int_equal(tracker_stats(t).incomplete, 1);
	feed_str(
	    t, &c, BP_DIR_INGRESS,
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	    "\r\n3",
	    2);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.ex[0].path, "/2");
	assert_string_equal(r.ex[1].path, "/3");
	http_tracker_free(t);
	rec_free(&r);
}

/* Garbage in the middle of a healthy keep-alive connection; the role learned earlier stays. */
static void test_resync_keeps_role(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref c = test_conn(13, 1);

	feed_str(t, &c, BP_DIR_INGRESS, good_req, 1);
	feed_str(t, &c, BP_DIR_EGRESS, good_resp, 2);
	feed_str(t, &c, BP_DIR_INGRESS, "\x16\x03\x01\x02\x00garbage", 3);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	/* A response-looking chunk on the request side is not a resync point. */
	feed_str(t, &c, BP_DIR_INGRESS, good_resp, 4);
	/* A request split so the method arrives in two pieces still resyncs. */
	feed_str(t, &c, BP_DIR_INGRESS, "PO", 5);
	feed_str(t, &c, BP_DIR_INGRESS, good_req + 2, 6);
	feed_str(t, &c, BP_DIR_EGRESS, good_resp, 7);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &c);
	assert_int_equal(r.ex[1].role, HTTP_ROLE_SERVER);
	assert_int_equal(r.ex[1].req.first_ts_ns, 5);
	assert_int_equal(tracker_stats(t).parse_errors, 1);
	http_tracker_free(t);
	rec_free(&r);
}

static void test_bad_args(void **state)
{
	struct http_tracker *t = http_tracker_new(NULL, NULL, NULL);
	struct capture_chunk ch;
	struct http_tracker_stats st;

	memset(&ch, 0, sizeof(ch));
	ch.len = 3;
	assert_int_equal(http_tracker_feed(t, &ch), -EINVAL);
	assert_int_equal(http_tracker_feed(t, NULL), -EINVAL);
	ch.data = (const uint8_t *)"abc";
	ch.dir = 7;
	assert_int_equal(http_tracker_feed(t, &ch), -EINVAL);
	/* No callback: exchanges are still counted. */
	feed_good(t, &ch.conn, 1);
	http_tracker_get_stats(t, &st);
	assert_int_equal(st.exchanges, 1);
	http_tracker_close(t, NULL, 0);
	http_tracker_free(t);
	http_tracker_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_garbage_counted_others_fine),
	    cmocka_unit_test(test_binary_fuzz),
	    cmocka_unit_test(test_one_mib_header),
	    cmocka_unit_test(test_one_mib_of_padding),
	    cmocka_unit_test(test_big_headers_then_pipelined),
	    cmocka_unit_test(test_header_over_cap),
	    cmocka_unit_test(test_too_many_headers),
	    cmocka_unit_test(test_gap_in_content_length_body),
	    cmocka_unit_test(test_gap_past_body),
	    cmocka_unit_test(test_huge_gaps_in_bodies),
	    cmocka_unit_test(test_gap_in_headers_and_chunked),
	    cmocka_unit_test(test_close_mid_message),
	    cmocka_unit_test(test_interleaved_connections),
	    cmocka_unit_test(test_eviction_lru),
	    cmocka_unit_test(test_forget_pid),
	    cmocka_unit_test(test_pipeline_overflow),
	    cmocka_unit_test(test_resync_keeps_role),
	    cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
