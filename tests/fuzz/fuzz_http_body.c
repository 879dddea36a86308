// SPDX-License-Identifier: MIT
/*
 * Bodies through the HTTP stage: the response's framing and encoding are chosen by the input
 * (gzip, deflate or none; chunked, Content-Length or to the end of the connection) and its body
 * bytes are the input's, split into chunks where it says: chunk-size lines that overflow 64
 * bits, gzip bombs, corrupt streams, members after the end. The decoded body must stay within
 * its cap and the charge within the budget.
 */
#include <stdio.h>

#include "bizprobe/http_exchange.h"
#include "fuzz_util.h"

#define BODY_CAP 4096

static unsigned long delivered;

static void on_exchange(const struct http_exchange *ex, void *ctx)
{
	(void)ctx;
	if (ex->resp.body_len > BODY_CAP || ex->resp.body[ex->resp.body_len] != '\0')
		abort();
	delivered++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const codings[] = {"gzip", "deflate", "identity", "x-gzip"};
	static const char *const framings[] = {"Transfer-Encoding: chunked\r\n", NULL, ""};
	struct fuzz_in in = {data, size};
	struct http_tracker_config cfg = {.body_cap = BODY_CAP, .header_cap = 2048};
	struct http_tracker *t;
	struct capture_chunk ch = {0};
	struct http_tracker_stats st;
	uint8_t mode = fuzz_u8(&in);
	char head[256];
	const char *framing = framings[(mode >> 2) % 3];
	size_t body_len = in.n;

	cfg.memory_limit = http_tracker_min_memory(&cfg) + 4096;
	t = http_tracker_new(&cfg, on_exchange, NULL);
	if (!t)
		abort();
	ch.conn.pid = 1;
	ch.conn.id = 3;
	/* Request, then the response head. */
	ch.dir = BP_DIR_EGRESS;
	ch.data = (const uint8_t *)"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
	ch.len = (uint32_t)strlen((const char *)ch.data);
	http_tracker_feed(t, &ch);
	if (framing)
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\n%s\r\n",
			 codings[mode & 3], framing);
	else
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %zu\r\n\r\n",
			 codings[mode & 3], body_len > 8 ? body_len - (mode >> 7) : body_len);
	ch.dir = BP_DIR_INGRESS;
	ch.data = (const uint8_t *)head;
	ch.len = (uint32_t)strlen(head);
	http_tracker_feed(t, &ch);
	/* The body in pieces of 1..64 bytes, the split points from the body itself. */
	while (in.n) {
		size_t n = 1 + in.p[0] % 64;
		uint8_t *copy;

		if (n > in.n)
			n = in.n;
		copy = fuzz_dup(in.p, n);
		ch.data = copy;
		ch.len = (uint32_t)n;
		http_tracker_feed(t, &ch);
		free(copy);
		in.p += n;
		in.n -= n;
	}
	http_tracker_close(t, &ch.conn, 1);
	http_tracker_get_stats(t, &st);
	if (st.memory_peak_bytes > cfg.memory_limit || st.memory_bytes != 0)
		abort();
	http_tracker_free(t);
	return 0;
}
