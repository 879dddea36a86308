// SPDX-License-Identifier: MIT
/*
 * HTTP stage: bodies. gzip/deflate built here with zlib, chunked framing, the body cap, and a
 * gzip bomb that must stop at the cap.
 */
#include <zlib.h>

#include "http_test_util.h"

/* Compresses in with the given windowBits (31 gzip, 15 zlib, -15 raw deflate). */
static uint8_t *compress_buf(const uint8_t *in, size_t len, int wbits, size_t *out_len)
{
	z_stream z;
	uint8_t *out;
	size_t cap;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, wbits, 9, Z_DEFAULT_STRATEGY), Z_OK);
	cap = deflateBound(&z, len) + 64;
	out = malloc(cap);
	assert_non_null(out);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Large inputs streamed in pieces so the test itself stays small. */
static uint8_t *compress_zeros(size_t len, size_t *out_len)
{
	static const uint8_t zeros[65536];
	z_stream z;
	uint8_t *out;
	size_t cap = len / 500 + 4096;
	int rc;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
	out = malloc(cap);
	assert_non_null(out);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	while (len) {
		size_t k = len < sizeof(zeros) ? len : sizeof(zeros);

		z.next_in = (Bytef *)zeros;
		z.avail_in = (uInt)k;
		assert_int_equal(deflate(&z, Z_NO_FLUSH), Z_OK);
		assert_int_equal(z.avail_in, 0);
		len -= k;
	}
	rc = deflate(&z, Z_FINISH);
	assert_int_equal(rc, Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

static const char *text =
    "{\"id\":\"ch_123\",\"object\":\"charge\",\"amount\":1999,\"currency\":\"usd\",\"status\":"
    "\"succeeded\",\"description\":\"repeat repeat repeat repeat repeat repeat repeat\"}";

/* Builds "HTTP/1.1 200 ..." with the given coding around body; chunked splits it every 7 bytes. */
static uint8_t *build_response(const char *coding, const uint8_t *body, size_t len, bool chunked,
			       size_t *out_len)
{
	size_t cap = len * 3 + 256, n;
	uint8_t *out = malloc(cap);
	size_t off;

	assert_non_null(out);
	if (!chunked) {
		n = (size_t)snprintf(
		    (char *)out, cap,
		    "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %zu\r\n\r\n",
		    coding, len);
		memcpy(out + n, body, len);
		*out_len = n + len;
		return out;
	}
	n = (size_t)snprintf(
	    (char *)out, cap,
	    "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
	    coding);
	for (off = 0; off < len; off += 7) {
		size_t k = len - off < 7 ? len - off : 7;

		n += (size_t)snprintf((char *)out + n, cap - n, "%zx\r\n", k);
		memcpy(out + n, body + off, k);
		n += k;
		memcpy(out + n, "\r\n", 2);
		n += 2;
	}
	memcpy(out + n, "0\r\n\r\n", 5);
	*out_len = n + 5;
	return out;
}

/* Feeds GET + response (split at every offset of the response, then byte by byte) and checks
 * the decoded body. */
static void check_coded(const char *coding, int wbits, bool chunked)
{
	size_t zlen, rlen, split;
	uint8_t *z = compress_buf((const uint8_t *)text, strlen(text), wbits, &zlen);
	uint8_t *resp = build_response(coding, z, zlen, chunked, &rlen);
	struct conn_ref conn = test_conn(1, 2);

	for (split = 0; split <= rlen + 1; split++) {
		struct recorder r = {0};
		struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
		struct seg segs[2] = {
		    {BP_DIR_EGRESS, "GET /c HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n", 0},
		    {BP_DIR_INGRESS, (const char *)resp, rlen},
		};
		size_t req_len = seg_len(&segs[0]);

		if (split == rlen + 1)
			feed_bytewise(t, &conn, segs, 2);
		else
			feed_split(t, &conn, segs, 2, split ? req_len + split : 0);
		assert_int_equal(r.n, 1);
		assert_int_equal(r.ex[0].resp.body_len, strlen(text));
		assert_string_equal(r.ex[0].resp.body, text);
		assert_int_equal(r.ex[0].resp.wire_body_bytes, zlen);
		assert_false(r.ex[0].resp.body_truncated);
		assert_false(r.ex[0].truncated);
		assert_int_equal(tracker_stats(t).parse_errors, 0);
		http_tracker_free(t);
		rec_free(&r);
	}
	free(resp);
	free(z);
}

static void test_gzip_all_splits(void **state)
{
	check_coded("gzip", 31, false);
}

static void test_gzip_chunked_all_splits(void **state)
{
	check_coded("gzip", 31, true);
}

static void test_deflate_zlib_wrapped(void **state)
{
	check_coded("deflate", 15, false);
}

static void test_deflate_raw_fallback(void **state)
{
	check_coded("deflate", -15, false);
	check_coded("deflate", -15, true);
}

static void test_gzip_request_body(void **state)
{
	size_t zlen, n;
	uint8_t *z = compress_buf((const uint8_t *)text, strlen(text), 31, &zlen);
	char head[256];
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(1, 3);

	n = (size_t)snprintf(
	    head, sizeof(head),
	    "POST /in HTTP/1.1\r\nContent-Encoding: GZIP \r\nContent-Length: %zu\r\n\r\n", zlen);
	feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, 1, 0);
	feed_bytes(t, &conn, BP_DIR_INGRESS, z, zlen, 2, 0);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 204 No Content\r\n\r\n", 3);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.ex[0].req.body, text);
	assert_int_equal(r.ex[0].req.wire_body_bytes, zlen);
	assert_int_equal(r.ex[0].role, HTTP_ROLE_SERVER);
	http_tracker_free(t);
	rec_free(&r);
	free(z);
}

/* 50 MiB of zeros in about 50 KiB of gzip: the body stops at the cap, nothing more is kept. */
static void test_gzip_bomb(void **state)
{
	size_t zlen, n, off;
	uint8_t *z = compress_zeros(50u << 20, &zlen);
	char head[256];
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(1, 4);
	size_t i;

	feed_str(t, &conn, BP_DIR_EGRESS, "GET /bomb HTTP/1.1\r\n\r\n", 1);
	n = (size_t)snprintf(
	    head, sizeof(head),
	    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", zlen);
	feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, 2, 0);
	for (off = 0; off < zlen; off += 16384) {
		size_t k = zlen - off < 16384 ? zlen - off : 16384;

		feed_bytes(t, &conn, BP_DIR_INGRESS, z + off, k, 3, 0);
	}
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].resp.body_len, 64 * 1024);
	assert_true(r.ex[0].resp.body_truncated);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, zlen);
	assert_int_equal(r.ex[0].status, 200);
	for (i = 0; i < r.ex[0].resp.body_len; i++)
		assert_int_equal(r.ex[0].resp.body[i], 0);
	assert_int_equal(tracker_stats(t).truncated, 1);
	http_tracker_free(t);
	rec_free(&r);
	free(z);
}

/* Exactly cap bytes, inflated or not, is not truncated; one more is. */
static void test_body_cap_edges(void **state)
{
	struct http_tracker_config cfg = {.body_cap = 100};
	uint8_t plain[101];
	size_t zlen, n, len;
	struct conn_ref conn = test_conn(2, 1);
	char head[256];

	memset(plain, 'p', sizeof(plain));
	for (len = 99; len <= 101; len++) {
		int gz;

		for (gz = 0; gz < 2; gz++) {
			struct recorder r = {0};
			struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
			uint8_t *z = gz ? compress_buf(plain, len, 31, &zlen) : NULL;
			const uint8_t *wire = gz ? z : plain;
			size_t wlen = gz ? zlen : len;

			feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.1\r\n\r\n", 1);
			n = (size_t)snprintf(head, sizeof(head),
					     "HTTP/1.1 200 OK\r\n%sContent-Length: %zu\r\n\r\n",
					     gz ? "Content-Encoding: gzip\r\n" : "", wlen);
			feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, 2, 0);
			feed_bytes(t, &conn, BP_DIR_INGRESS, wire, wlen, 3, 0);
			assert_int_equal(r.n, 1);
			assert_int_equal(r.ex[0].resp.body_len, len > 100 ? 100 : len);
			assert_int_equal(r.ex[0].resp.body_truncated, len > 100);
			assert_int_equal(r.ex[0].truncated, len > 100);
			assert_int_equal(r.ex[0].resp.wire_body_bytes, wlen);
			assert_memory_equal(r.ex[0].resp.body, plain, r.ex[0].resp.body_len);
			http_tracker_free(t);
			rec_free(&r);
			free(z);
		}
	}
}

/* Past the cap the metadata stays exact and the connection stays in step. */
static void test_large_identity_body(void **state)
{
	size_t big = 300000, i;
	uint8_t *body = malloc(big);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(2, 2);
	char head[128];
	size_t n;

	for (i = 0; i < big; i++)
		body[i] = (uint8_t)('a' + i % 26);
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /big HTTP/1.1\r\n\r\n", 1);
	n = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
			     big);
	feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, 2, 0);
	for (i = 0; i < big; i += 16384)
		feed_bytes(t, &conn, BP_DIR_INGRESS, body + i, big - i < 16384 ? big - i : 16384,
			   3 + i, 0);
	feed_str(t, &conn, BP_DIR_EGRESS, "GET /small HTTP/1.1\r\n\r\n", 400000);
	feed_str(t, &conn, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		 400001);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.ex[0].resp.body_len, 65536);
	assert_memory_equal(r.ex[0].resp.body, body, 65536);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, big);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.last_ts_ns, 3 + 294912);
	assert_string_equal(r.ex[1].resp.body, "ok");
	assert_false(r.ex[1].truncated);
	http_tracker_free(t);
	rec_free(&r);
	free(body);
}

static void test_corrupt_gzip(void **state)
{
	static const char bad[] = "\x1f\x8b\x08\x00garbage-that-is-not-deflate-data!!";
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(2, 3);
	char head[128];
	size_t n;

	feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.1\r\n\r\n", 1);
	n = (size_t)snprintf(
	    head, sizeof(head),
	    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n",
	    sizeof(bad) - 1);
	feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, 2, 0);
	feed_bytes(t, &conn, BP_DIR_INGRESS, bad, sizeof(bad) - 1, 3, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].status, 200);
	assert_true(r.ex[0].resp.body_truncated);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, sizeof(bad) - 1);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* An encoding we do not decode is passed through as sent. */
static void test_unknown_coding_kept(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(2, 4);

	feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.1\r\n\r\n", 1);
	feed_str(
	    t, &conn, BP_DIR_INGRESS,
	    "HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\n\x0b\x01\x80x", 2);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.ex[0].resp.body_len, 4);
	assert_memory_equal(r.ex[0].resp.body, "\x0b\x01\x80x", 4);
	assert_false(r.ex[0].truncated);
	http_tracker_free(t);
	rec_free(&r);
}

/* Content-Encoding is found in any case and only under its exact name: a longer or shorter name
 * that shares its letters leaves the body as sent. */
static void test_coding_header_names(void **state)
{
	static const struct {
		const char *name;
		bool decoded;
	} cases[] = {
	    {"content-encoding", true},	   {"CONTENT-ENCODING", true},
	    {"Content-Encodings", false},  {"Content-Encodin", false},
	    {"Content-Encoding-X", false}, {"X-Content-Encoding", false},
	};
	size_t zlen, n;
	uint8_t *z = compress_buf((const uint8_t *)text, strlen(text), 31, &zlen);
	char head[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct recorder r = {0};
		struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
		struct conn_ref conn = test_conn(3, i);

		feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.1\r\n\r\n", 1);
		/* The coding header last: nothing follows it in the header buffer. */
		n = (size_t)snprintf(head, sizeof(head),
				     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s: gzip\r\n\r\n",
				     zlen, cases[i].name);
		feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, 2, 0);
		feed_bytes(t, &conn, BP_DIR_INGRESS, z, zlen, 3, 0);
		assert_int_equal(r.n, 1);
		if (cases[i].decoded) {
			assert_int_equal(r.ex[0].resp.body_len, strlen(text));
			assert_memory_equal(r.ex[0].resp.body, text, strlen(text));
		} else {
			assert_int_equal(r.ex[0].resp.body_len, zlen);
			assert_memory_equal(r.ex[0].resp.body, z, zlen);
		}
		assert_false(r.ex[0].truncated);
		http_tracker_free(t);
		rec_free(&r);
	}
	free(z);
}

/* One connection's body buffer is reused from message to message: each body is exact whether it
 * is smaller than the last one, needs the buffer to grow, or passes the cap. */
static void test_body_buffer_reuse(void **state)
{
	static const size_t sizes[] = {10, 5000, 3, 20000, 0, 70000, 7, 4095, 4096, 4097};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref conn = test_conn(4, 1);
	uint8_t *body = malloc(70000);
	uint64_t ts = 1;
	char head[128];
	size_t i, n;

	assert_non_null(body);
	for (i = 0; i < 70000; i++)
		body[i] = (uint8_t)('A' + i % 23);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		feed_str(t, &conn, BP_DIR_EGRESS, "GET / HTTP/1.1\r\n\r\n", ts++);
		n = (size_t)snprintf(head, sizeof(head),
				     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", sizes[i]);
		feed_bytes(t, &conn, BP_DIR_INGRESS, head, n, ts++, 0);
		/* In pieces of 1000 bytes: one body_store call each. */
		for (size_t off = 0; off < sizes[i]; off += 1000)
			feed_bytes(t, &conn, BP_DIR_INGRESS, body + off,
				   sizes[i] - off < 1000 ? sizes[i] - off : 1000, ts++, 0);
	}
	assert_int_equal(r.n, sizeof(sizes) / sizeof(sizes[0]));
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t kept = sizes[i] > 65536 ? 65536 : sizes[i];

		assert_int_equal(r.ex[i].resp.body_len, kept);
		assert_memory_equal(r.ex[i].resp.body, body, kept);
		assert_int_equal(r.ex[i].resp.body_truncated, sizes[i] > 65536);
		assert_int_equal(r.ex[i].resp.wire_body_bytes, sizes[i]);
	}
	http_tracker_free(t);
	rec_free(&r);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gzip_all_splits),
	    cmocka_unit_test(test_gzip_chunked_all_splits),
	    cmocka_unit_test(test_deflate_zlib_wrapped),
	    cmocka_unit_test(test_deflate_raw_fallback),
	    cmocka_unit_test(test_gzip_request_body),
	    cmocka_unit_test(test_gzip_bomb),
	    cmocka_unit_test(test_body_cap_edges),
	    cmocka_unit_test(test_large_identity_body),
	    cmocka_unit_test(test_corrupt_gzip),
	    cmocka_unit_test(test_unknown_coding_kept),
	    cmocka_unit_test(test_coding_header_names),
	    cmocka_unit_test(test_body_buffer_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
