// SPDX-License-Identifier: MIT
/*
 * HTTP stage: the body filter (http_tracker_config.body_filter). Bodies nobody reads are counted,
 * not kept; the filter is asked once per exchange, only for bodies worth asking about, and sees
 * the request's head and nothing more.
 */
#include <zlib.h>

#include "http_test_util.h"

/* Wants the bodies of exchanges whose path starts with /want; records what it was shown. */
struct filter_log {
	unsigned calls;
	char paths[8][64];
	char hosts[8][64];
	char methods[8][16];
	enum http_role roles[8];
	int statuses[8];
	unsigned resp_headers[8];
	size_t req_body_lens[8];
	bool answer_all; /* with always: every call answers this */
	bool always;
};

static bool filter(const struct http_exchange *head, void *ctx)
{
	struct filter_log *f = ctx;
	unsigned i = f->calls++;

	if (i < 8) {
		snprintf(f->paths[i], sizeof(f->paths[i]), "%s", head->path);
		snprintf(f->hosts[i], sizeof(f->hosts[i]), "%s", head->host);
		snprintf(f->methods[i], sizeof(f->methods[i]), "%s", head->method);
		f->roles[i] = head->role;
		f->statuses[i] = head->status;
		f->resp_headers[i] = head->resp.n_headers;
		f->req_body_lens[i] = head->req.body_len;
		assert_non_null(head->req.body);
		assert_non_null(head->resp.body);
	}
	if (f->always)
		return f->answer_all;
	return !strncmp(head->path, "/want", 5);
}

static struct http_tracker *new_tracker(struct recorder *r, struct filter_log *f)
{
	struct http_tracker_config cfg = {.body_filter = filter, .body_filter_ctx = f};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, r);

	assert_non_null(t);
	return t;
}

/* "<head>Content-Length: n\r\n\r\n" + n bytes of 'x'. */
static char *with_body(const char *head, size_t n)
{
	size_t hl = strlen(head);
	char *s = malloc(hl + 64 + n);

	assert_non_null(s);
	hl = (size_t)sprintf(s, "%sContent-Length: %zu\r\n\r\n", head, n);
	memset(s + hl, 'x', n);
	s[hl + n] = '\0';
	return s;
}

static void test_unwanted_counted_wanted_kept(void **state)
{
	struct recorder r = {0};
	struct filter_log f = {0};
	struct http_tracker *t = new_tracker(&r, &f);
	struct conn_ref conn = test_conn(7, 3);
	char *req1 = with_body("POST /skip?x=1 HTTP/1.1\r\nHost: shop.example\r\n", 5000);
	char *resp1 = with_body("HTTP/1.1 200 OK\r\n", 6000);
	char *resp2 = with_body("HTTP/1.1 200 OK\r\n", 7000);

	/* Pipelined: both requests before either response. */
	feed_str(t, &conn, BP_DIR_INGRESS, req1, 1);
	feed_str(t, &conn, BP_DIR_INGRESS, "GET /want/it HTTP/1.1\r\nHost: shop.example\r\n\r\n",
		 2);
	feed_str(t, &conn, BP_DIR_EGRESS, resp1, 3);
	feed_str(t, &conn, BP_DIR_EGRESS, resp2, 4);

	assert_int_equal(r.n, 2);
	/* Asked once per exchange: at the first request's body, at the second's response body. */
	assert_int_equal(f.calls, 2);
	assert_string_equal(f.paths[0], "/skip");
	assert_string_equal(f.methods[0], "POST");
	assert_string_equal(f.hosts[0], "shop.example");
	assert_int_equal(f.roles[0], HTTP_ROLE_SERVER);
	assert_string_equal(f.paths[1], "/want/it");
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(f.statuses[i], 0);
		assert_int_equal(f.resp_headers[i], 0);
		assert_int_equal(f.req_body_lens[i], 0);
	}

	assert_true(r.ex[0].req.body_skipped);
	assert_int_equal(r.ex[0].req.body_len, 0);
	assert_int_equal(r.ex[0].req.wire_body_bytes, 5000);
	assert_true(r.ex[0].resp.body_skipped);
	assert_int_equal(r.ex[0].resp.body_len, 0);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, 6000);
	assert_false(r.ex[0].truncated);
	assert_int_equal(r.ex[0].status, 200);

	assert_false(r.ex[1].resp.body_skipped);
	assert_int_equal(r.ex[1].resp.body_len, 7000);
	assert_int_equal(r.ex[1].resp.body[6999], 'x');
	assert_false(r.ex[1].truncated);

	assert_int_equal(tracker_stats(t).bodies_skipped, 2);
	assert_int_equal(tracker_stats(t).parse_errors, 0);
	http_tracker_free(t);
	rec_free(&r);
	free(req1);
	free(resp1);
	free(resp2);
}

/* Short bodies with a length are kept without asking; a no at the request covers the response,
 * however short. */
static void test_small_bodies_not_asked(void **state)
{
	struct recorder r = {0};
	struct filter_log f = {.always = true, .answer_all = false};
	struct http_tracker *t = new_tracker(&r, &f);
	struct conn_ref conn = test_conn(7, 4);
	char *small_req = with_body("POST /skip HTTP/1.1\r\n", HTTP_BODY_KEPT_UNASKED);
	char *big_req = with_body("POST /skip HTTP/1.1\r\n", HTTP_BODY_KEPT_UNASKED + 1);

	feed_str(t, &conn, BP_DIR_INGRESS, small_req, 1);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2);
	feed_str(t, &conn, BP_DIR_INGRESS, big_req, 3);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 4);

	assert_int_equal(r.n, 2);
	assert_int_equal(f.calls, 1);
	assert_false(r.ex[0].req.body_skipped);
	assert_int_equal(r.ex[0].req.body_len, HTTP_BODY_KEPT_UNASKED);
	assert_string_equal(r.ex[0].resp.body, "ok");
	assert_true(r.ex[1].req.body_skipped);
	assert_int_equal(r.ex[1].req.wire_body_bytes, HTTP_BODY_KEPT_UNASKED + 1);
	assert_true(r.ex[1].resp.body_skipped);
	assert_int_equal(r.ex[1].resp.body_len, 0);
	assert_int_equal(r.ex[1].resp.wire_body_bytes, 2);
	http_tracker_free(t);
	rec_free(&r);
	free(small_req);
	free(big_req);
}

static uint8_t *gzip_of(const char *in, size_t *out_len)
{
	z_stream z;
	size_t cap = strlen(in) + 128;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)strlen(in);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Compressed, chunked and close-delimited bodies are asked about whatever their size; a yes
 * keeps them exactly as without a filter. */
static void check_asked(bool answer)
{
	static const char page[] = "<html>a short page, compressed all the same</html>";
	struct recorder r = {0};
	struct filter_log f = {.always = true, .answer_all = answer};
	struct http_tracker *t = new_tracker(&r, &f);
	struct conn_ref conn = test_conn(8, 1);
	size_t zlen, n;
	uint8_t *z = gzip_of(page, &zlen);
	char head[128];

	n = (size_t)snprintf(
	    head, sizeof(head),
	    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %zu\r\n\r\n", zlen);
	feed_str(t, &conn, BP_DIR_INGRESS, "GET /a HTTP/1.1\r\n\r\n", 1);
	feed_bytes(t, &conn, BP_DIR_EGRESS, head, n, 2, 0);
	feed_bytes(t, &conn, BP_DIR_EGRESS, z, zlen, 3, 0);
	feed_str(t, &conn, BP_DIR_INGRESS, "GET /b HTTP/1.1\r\n\r\n", 4);
	feed_str(t, &conn, BP_DIR_EGRESS,
		 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 5);
	feed_str(t, &conn, BP_DIR_INGRESS, "GET /c HTTP/1.1\r\n\r\n", 6);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\n\r\nuntil the end", 7);
	http_tracker_close(t, &conn, 8);

	assert_int_equal(r.n, 3);
	assert_int_equal(f.calls, 3);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, zlen);
	assert_int_equal(r.ex[1].resp.wire_body_bytes, 3);
	assert_int_equal(r.ex[2].resp.wire_body_bytes, strlen("until the end"));
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(r.ex[i].resp.body_skipped, !answer);
		assert_false(r.ex[i].truncated);
	}
	if (answer) {
		assert_string_equal(r.ex[0].resp.body, page);
		assert_string_equal(r.ex[1].resp.body, "abc");
		assert_string_equal(r.ex[2].resp.body, "until the end");
	} else {
		for (unsigned i = 0; i < 3; i++)
			assert_int_equal(r.ex[i].resp.body_len, 0);
		assert_int_equal(tracker_stats(t).bodies_skipped, 3);
	}
	http_tracker_free(t);
	rec_free(&r);
	free(z);
}

static void test_compressed_chunked_and_close_asked_no(void **state)
{
	check_asked(false);
}

static void test_compressed_chunked_and_close_asked_yes(void **state)
{
	check_asked(true);
}

/* Bytes lost inside a skipped body: the exchange says so, the next one on the connection is
 * parsed as before. */
static void test_gap_in_skipped_body(void **state)
{
	struct recorder r = {0};
	struct filter_log f = {0};
	struct http_tracker *t = new_tracker(&r, &f);
	struct conn_ref conn = test_conn(9, 2);
	char *resp = with_body("HTTP/1.1 200 OK\r\n", 10000);
	size_t head_len = strlen(resp) - 10000;

	feed_str(t, &conn, BP_DIR_INGRESS, "GET /skip HTTP/1.1\r\n\r\n", 1);
	/* The call moved 7000 body bytes; 3000 of them did not reach userspace. */
	feed_bytes(t, &conn, BP_DIR_EGRESS, resp, head_len + 4000, 2, 3000);
	feed_bytes(t, &conn, BP_DIR_EGRESS, resp + head_len + 7000, 3000, 4, 0);
	feed_str(t, &conn, BP_DIR_INGRESS, "GET /want HTTP/1.1\r\n\r\n", 5);
	feed_str(t, &conn, BP_DIR_EGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkept", 6);

	assert_int_equal(r.n, 2);
	assert_true(r.ex[0].resp.body_skipped);
	assert_true(r.ex[0].resp.body_truncated);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, 10000);
	assert_string_equal(r.ex[1].resp.body, "kept");
	assert_false(r.ex[1].resp.body_skipped);
	http_tracker_free(t);
	rec_free(&r);
	free(resp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unwanted_counted_wanted_kept),
	    cmocka_unit_test(test_small_bodies_not_asked),
	    cmocka_unit_test(test_compressed_chunked_and_close_asked_no),
	    cmocka_unit_test(test_compressed_chunked_and_close_asked_yes),
	    cmocka_unit_test(test_gap_in_skipped_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
