// SPDX-License-Identifier: MIT
/*
 * The HTTP stage's memory budget (http_tracker_config.memory_limit): what is charged, that the
 * charge never exceeds the limit whatever the traffic, that reclaiming takes the least recently
 * fed connections first (idle buffers before connections, connections before refusing), and
 * that every exchange it costs is counted under its cause. Also the causes that are not the
 * budget's: max_conns, max_pipelined, parse errors, and malloc failures (forced through
 * -Wl,--wrap=calloc, see the Makefile).
 */
#include <errno.h>
#include <zlib.h>

#include "http_test_util.h"

/* calloc as the tracker sees it: the real one, or, once pass_calloc more calls went through,
 * NULL for the next fail_calloc calls. */
void *__real_calloc(size_t n, size_t size);
static int pass_calloc, fail_calloc;

void *__wrap_calloc(size_t n, size_t size)
{
	if (fail_calloc > 0 && pass_calloc-- <= 0) {
		fail_calloc--;
		return NULL;
	}
	return __real_calloc(n, size);
}

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
	assert_int_equal(x->conn.id, conn->id);
	assert_string_equal(x->path, "/ok");
	assert_string_equal(x->req.body, "hello");
	assert_string_equal(x->resp.body, "fine");
	assert_int_equal(x->status, 200);
	assert_false(x->truncated);
}

/* Small caps, so that a budget of a few exchanges is a few KiB. */
static struct http_tracker_config small_cfg(size_t limit)
{
	struct http_tracker_config cfg = {.body_cap = 1024, .header_cap = 1024};

	cfg.memory_limit = limit ? limit : http_tracker_min_memory(&cfg);
	return cfg;
}

/* Everything charged is uncharged: with no connection left the stage holds 0 bytes. */
static void test_accounting_returns_to_zero(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	uint8_t plain[3000], gz[4096];
	uLongf gz_len = sizeof(gz);
	char head[128];
	unsigned k;

	memset(plain, 'z', sizeof(plain));
	assert_int_equal(compress2(gz, &gz_len, plain, sizeof(plain), 9), Z_OK);
	assert_int_equal(tracker_stats(t).memory_bytes, 0);
	for (k = 0; k < 20; k++) {
		struct conn_ref c = test_conn(1, k);

		feed_good(t, &c, k);
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %lu\r\n\r\n",
			 (unsigned long)gz_len);
		feed_str(t, &c, BP_DIR_EGRESS, "GET /z HTTP/1.1\r\n\r\n", k);
		feed_str(t, &c, BP_DIR_INGRESS, head, k);
		feed_bytes(t, &c, BP_DIR_INGRESS, gz, gz_len, k, 0);
	}
	assert_int_equal(r.n, 40);
	assert_int_equal(r.ex[1].resp.body_len, sizeof(plain));
	/* 20 connections' state at least: each is more than 2 KiB. */
	assert_true(tracker_stats(t).memory_bytes > 20 * 2048);
	assert_int_equal(tracker_stats(t).connections, 20);
	for (k = 0; k < 10; k++) {
		struct conn_ref c = test_conn(1, k);

		http_tracker_close(t, &c, 100);
	}
	http_tracker_forget_pid(t, 1);
	assert_int_equal(tracker_stats(t).connections, 0);
	assert_int_equal(tracker_stats(t).memory_bytes, 0);
	assert_int_equal(tracker_stats(t).memory_limit_bytes, 64u << 20);
	http_tracker_free(t);
	rec_free(&r);
}

/*
 * Slow connections, each holding a partial request, far more than the budget holds, and a
 * well-behaved connection fed between them: the charge never passes the limit, the slow ones
 * are evicted oldest first and counted, the good one loses nothing.
 */
static void test_slow_connections_evicted_oldest_first(void **state)
{
	struct http_tracker_config cfg = small_cfg(0);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
	struct conn_ref good = test_conn(2, 100000);
	struct http_tracker_stats st;
	unsigned k, n_good = 0;

	assert_non_null(t);
	for (k = 0; k < 2000; k++) {
		struct conn_ref c = test_conn(2, k);

		feed_str(t, &c, BP_DIR_INGRESS, "GET /slow HTTP/1.1\r\nHost: x\r\nX-A: ", k);
		st = tracker_stats(t);
		assert_true(st.memory_bytes <= cfg.memory_limit);
		if (k % 10 == 0) {
			feed_good(t, &good, k);
			n_good++;
		}
	}
	st = tracker_stats(t);
	assert_int_equal(r.n, n_good);
	for (k = 0; k < r.n; k++)
		check_good(&r.ex[k], &good);
	assert_true(st.memory_peak_bytes <= cfg.memory_limit);
	assert_true(st.evicted_memory > 1500);
	/* Every slow connection evicted had its one request in flight. */
	assert_int_equal(st.dropped[HTTP_DROP_MEMORY], st.evicted_memory);
	assert_int_equal(st.connections + st.evicted_memory, 2000 + 1);
	assert_int_equal(st.parse_errors, 0);
	assert_int_equal(st.evicted, 0);
	/* Oldest first: the survivors are the most recent slow connections. */
	{
		struct conn_ref last = test_conn(2, 1999), first = test_conn(2, 0);

		feed_str(t, &last, BP_DIR_INGRESS, "1\r\n\r\n", 3000);
		feed_str(t, &last, BP_DIR_EGRESS, good_resp, 3001);
		assert_int_equal(r.n, n_good + 1);
		assert_string_equal(r.ex[r.n - 1].path, "/slow");
		/* The first one's request is gone: its response matches nothing. */
		feed_str(t, &first, BP_DIR_EGRESS, good_resp, 3002);
		assert_int_equal(r.n, n_good + 1);
		assert_int_equal(tracker_stats(t).unmatched, 1);
	}
	http_tracker_free(t);
	rec_free(&r);
}

/* Idle connections give up their warm buffers first, which loses nothing: they keep working. */
static void test_idle_buffers_trimmed_first(void **state)
{
	struct http_tracker_config cfg = small_cfg(0);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
	struct http_tracker_stats st;
	char big[900];
	unsigned k;

	/* Each exchange leaves its connection about 7 KiB of warm buffers: 60 of them are more
	 * than the budget (about 150 KiB), so the oldest idle ones must give theirs up. */
	memset(big, 'b', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	for (k = 0; k < 60; k++) {
		struct conn_ref c = test_conn(3, k);
		char req[1200];

		snprintf(req, sizeof(req), "POST /b HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s",
			 strlen(big), big);
		feed_str(t, &c, BP_DIR_EGRESS, req, k);
		feed_str(t, &c, BP_DIR_INGRESS, good_resp, k);
		assert_true(tracker_stats(t).memory_bytes <= cfg.memory_limit);
	}
	st = tracker_stats(t);
	assert_int_equal(r.n, 60);
	for (k = 0; k < 60; k++)
		assert_false(r.ex[k].truncated);
	assert_true(st.memory_trimmed > 0);
	assert_int_equal(st.dropped[HTTP_DROP_MEMORY], 0);
	assert_int_equal(st.memory_refused, 0);
	/* A trimmed (or, with nothing left to trim, evicted) idle connection still carries the
	 * next exchange. */
	{
		struct conn_ref c0 = test_conn(3, 0);

		feed_good(t, &c0, 100);
		assert_int_equal(r.n, 61);
		check_good(&r.ex[60], &c0);
	}
	http_tracker_free(t);
	rec_free(&r);
}

/* A gzip bomb under a small budget: the body stops at the cap, zlib's state is charged, and all
 * of it is released with the connection. */
static void test_gzip_bomb_charged(void **state)
{
	struct http_tracker_config cfg = small_cfg(0);
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
	struct conn_ref c = test_conn(4, 1);
	size_t plain_len = 8u << 20;
	uint8_t *plain = calloc(1, plain_len);
	uLongf gz_len = compressBound(plain_len);
	uint8_t *gz = malloc(gz_len);
	char head[128];
	size_t off;

	assert_int_equal(compress2(gz, &gz_len, plain, plain_len, 9), Z_OK);
	snprintf(head, sizeof(head),
		 "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %lu\r\n\r\n",
		 (unsigned long)gz_len);
	feed_str(t, &c, BP_DIR_EGRESS, "GET /bomb HTTP/1.1\r\n\r\n", 1);
	feed_str(t, &c, BP_DIR_INGRESS, head, 2);
	for (off = 0; off < gz_len; off += 4096) {
		size_t n = gz_len - off < 4096 ? gz_len - off : 4096;

		feed_bytes(t, &c, BP_DIR_INGRESS, gz + off, n, 3, 0);
		assert_true(tracker_stats(t).memory_bytes <= cfg.memory_limit);
	}
	assert_int_equal(r.n, 1);
	assert_true(r.ex[0].truncated);
	assert_int_equal(r.ex[0].resp.body_len, 1024);
	assert_int_equal(r.ex[0].resp.wire_body_bytes, gz_len);
	/* zlib's state (> 32 KiB of window) was charged while the connection lived. */
	assert_true(tracker_stats(t).memory_peak_bytes > 32 * 1024);
	http_tracker_close(t, &c, 4);
	assert_int_equal(tracker_stats(t).memory_bytes, 0);
	http_tracker_free(t);
	rec_free(&r);
	free(plain);
	free(gz);
}

/* One connection alone needing more than the budget (deep pipelining of gzip requests, each
 * with its own inflate state): what does not fit is refused, those messages are truncated
 * (their bodies are not shown compressed as if decoded), and nothing is over the limit. */
static void test_refused_truncates(void **state)
{
	struct http_tracker_config cfg = {.body_cap = 8192, .header_cap = 1024};
	struct recorder r = {0};
	struct http_tracker *t;
	struct conn_ref c = test_conn(5, 1);
	uint8_t plain[4000], gz[4200];
	uLongf gz_len = sizeof(gz);
	char head[128];
	struct http_tracker_stats st;
	unsigned k;
	uint32_t seed = 7;

	cfg.memory_limit = http_tracker_min_memory(&cfg);
	t = http_tracker_new(&cfg, rec_cb, &r);
	/* Text that does not compress to nothing, inflated in two calls: zlib then needs its
	 * 32 KiB window besides its state, about 45 KiB a request; four fit. */
	for (k = 0; k < sizeof(plain); k++) {
		seed = seed * 1103515245u + 12345u;
		plain[k] = (uint8_t)('a' + (seed >> 16) % 16);
	}
	assert_int_equal(compress2(gz, &gz_len, plain, sizeof(plain), 9), Z_OK);
	snprintf(head, sizeof(head),
		 "POST /p HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: %lu\r\n\r\n",
		 (unsigned long)gz_len);
	/* Five requests, then their responses: three fit whole, the others' inflate state is
	 * refused; what is left is room for the responses. */
	for (k = 0; k < 5; k++) {
		feed_str(t, &c, BP_DIR_EGRESS, head, k);
		feed_bytes(t, &c, BP_DIR_EGRESS, gz, gz_len / 2, k, 0);
		feed_bytes(t, &c, BP_DIR_EGRESS, gz + gz_len / 2, gz_len - gz_len / 2, k, 0);
		assert_true(tracker_stats(t).memory_bytes <= cfg.memory_limit);
	}
	st = tracker_stats(t);
	/* At least one refusal per cut message (zlib's state, or its window, or both). */
	assert_true(st.memory_refused >= 2);
	for (k = 0; k < 5; k++)
		feed_str(t, &c, BP_DIR_INGRESS, good_resp, 20 + k);
	assert_int_equal(r.n, 5);
	for (k = 0; k < 5; k++) {
		assert_int_equal(r.ex[k].truncated, k >= 3);
		/* A cut body is a true prefix (zlib may have decoded some before it was refused),
		 * never the compressed bytes. */
		if (k < 3)
			assert_int_equal(r.ex[k].req.body_len, sizeof(plain));
		else
			assert_true(r.ex[k].req.body_len < sizeof(plain));
		assert_memory_equal(r.ex[k].req.body, plain, r.ex[k].req.body_len);
		assert_int_equal(r.ex[k].req.wire_body_bytes, gz_len);
	}
	st = tracker_stats(t);
	assert_int_equal(st.truncated, 2);
	assert_int_equal(st.dropped[HTTP_DROP_MEMORY], 0);
	/* Twelve more at once: a request whose buffer itself is refused is dropped, with those
	 * queued before it; every request is either an exchange or counted. */
	for (k = 0; k < 12; k++) {
		feed_str(t, &c, BP_DIR_EGRESS, head, 30 + k);
		feed_bytes(t, &c, BP_DIR_EGRESS, gz, gz_len, 30 + k, 0);
		assert_true(tracker_stats(t).memory_bytes <= cfg.memory_limit);
	}
	for (k = 0; k < 12; k++)
		feed_str(t, &c, BP_DIR_INGRESS, good_resp, 50 + k);
	st = tracker_stats(t);
	assert_true(st.dropped[HTTP_DROP_MEMORY] > 0);
	assert_int_equal(r.n - 5 + st.dropped[HTTP_DROP_MEMORY], 12);
	assert_int_equal(st.exchanges, r.n);
	assert_int_equal(st.parse_errors, 0);
	assert_true(st.memory_peak_bytes <= cfg.memory_limit);
	http_tracker_free(t);
	rec_free(&r);
}

/* Caps the budget cannot hold are refused up front, with a sentence saying so. */
static void test_config_check(void **state)
{
	struct http_tracker_config cfg = {.body_cap = 64u << 20, .memory_limit = 8u << 20};
	char err[512] = "";

	assert_int_equal(http_tracker_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "memory limit of 8388608 bytes cannot hold one exchange"));
	assert_non_null(strstr(err, "body cap of 67108864"));
	errno = 0;
	assert_null(http_tracker_new(&cfg, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	/* The default budget holds the default caps; the minimum is exact. */
	assert_int_equal(http_tracker_config_check(NULL, NULL, 0), 0);
	cfg.memory_limit = http_tracker_min_memory(&cfg);
	assert_int_equal(http_tracker_config_check(&cfg, NULL, 0), 0);
	cfg.memory_limit--;
	assert_int_equal(http_tracker_config_check(&cfg, NULL, 0), -EINVAL);
	/* A cap near SIZE_MAX does not wrap into a small need. */
	cfg.body_cap = SIZE_MAX - 10;
	cfg.memory_limit = SIZE_MAX - 1;
	assert_int_equal(http_tracker_config_check(&cfg, NULL, 0), -EINVAL);
}

/* The causes that are not the budget's, each forced once and counted once. */
static void test_drop_causes(void **state)
{
	struct http_tracker_config cfg = {.max_conns = 2, .max_pipelined = 2};
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(&cfg, rec_cb, &r);
	struct conn_ref a = test_conn(6, 1), b = test_conn(6, 2), c = test_conn(6, 3);
	struct http_tracker_stats st;

	/* Pipeline: three requests, room for two. */
	feed_str(t, &a, BP_DIR_EGRESS, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
		 1);
	st = tracker_stats(t);
	assert_int_equal(st.dropped[HTTP_DROP_PIPELINE], 1);
	/* Parse error with a request in flight on b: garbage where its response should be. */
	feed_str(t, &b, BP_DIR_EGRESS, "GET /b HTTP/1.1\r\n\r\n", 2);
	feed_str(t, &b, BP_DIR_INGRESS, "HTTP/1.1 ZZZ garbage\r\n\r\n", 3);
	st = tracker_stats(t);
	assert_int_equal(st.parse_errors, 1);
	assert_int_equal(st.dropped[HTTP_DROP_PARSE_ERROR], 1);
	/* Connection limit: a third conn evicts a (least recently fed), with its two requests. */
	feed_str(t, &b, BP_DIR_EGRESS, "GET /b2 HTTP/1.1\r\n\r\n", 4);
	feed_str(t, &c, BP_DIR_EGRESS, "GET /c HTTP/1.1\r\n\r\n", 5);
	st = tracker_stats(t);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(st.dropped[HTTP_DROP_CONN_LIMIT], 2);
	assert_int_equal(st.dropped[HTTP_DROP_MEMORY], 0);
	assert_int_equal(st.dropped[HTTP_DROP_OUT_OF_MEMORY], 0);
	assert_int_equal(r.n, 0);
	http_tracker_free(t);
	rec_free(&r);
}

/* malloc failing: http_tracker_feed says -ENOMEM, and the tracker counts it itself, so a
 * caller that ignores the return value loses nothing silently. */
static void test_out_of_memory_counted(void **state)
{
	struct recorder r = {0};
	struct http_tracker *t = http_tracker_new(NULL, rec_cb, &r);
	struct conn_ref a = test_conn(7, 1), b = test_conn(7, 2);
	struct capture_chunk ch = {.conn = a, .dir = BP_DIR_EGRESS};
	struct http_tracker_stats st;

	ch.data = (const uint8_t *)good_req;
	ch.len = (uint32_t)strlen(good_req);
	fail_calloc = 1;
	assert_int_equal(http_tracker_feed(t, &ch), -ENOMEM);
	st = tracker_stats(t);
	assert_int_equal(st.alloc_failed, 1);
	assert_int_equal(st.dropped[HTTP_DROP_OUT_OF_MEMORY], 1);
	assert_int_equal(st.memory_bytes, 0);
	/* The same bytes again, with memory: a fresh exchange. */
	feed_good(t, &a, 3);
	assert_int_equal(r.n, 1);
	check_good(&r.ex[0], &a);
	/* A request buffer that cannot be allocated: that request is dropped and counted. The
	 * connection's own four allocations (struct, queue, two stacks) succeed. */
	pass_calloc = 4;
	fail_calloc = 1;
	feed_str(t, &b, BP_DIR_EGRESS, "GET /x HTTP/1.1\r\n\r\n", 5);
	assert_int_equal(fail_calloc, 0);
	assert_int_equal(tracker_stats(t).connections, 2);
	st = tracker_stats(t);
	assert_int_equal(st.alloc_failed, 2);
	assert_int_equal(st.dropped[HTTP_DROP_OUT_OF_MEMORY], 2);
	assert_int_equal(st.parse_errors, 0);
	/* The connection recovers at its next request. */
	feed_good(t, &b, 6);
	assert_int_equal(r.n, 2);
	check_good(&r.ex[1], &b);
	http_tracker_free(t);
	rec_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accounting_returns_to_zero),
	    cmocka_unit_test(test_slow_connections_evicted_oldest_first),
	    cmocka_unit_test(test_idle_buffers_trimmed_first),
	    cmocka_unit_test(test_gzip_bomb_charged),
	    cmocka_unit_test(test_refused_truncates),
	    cmocka_unit_test(test_config_check),
	    cmocka_unit_test(test_drop_causes),
	    cmocka_unit_test(test_out_of_memory_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
