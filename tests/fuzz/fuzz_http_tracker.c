// SPDX-License-Identifier: MIT
/*
 * The HTTP stage fed as an attacker and a lossy capture would: the input is a script of chunks
 * (either direction, eight connections of two processes, plain or TLS), gaps of lost bytes of
 * any size, closes and process exits, under a configuration the input picks (small caps, a
 * tight memory budget, few connections, shallow pipelining, a body filter that keeps the bodies
 * of half the paths). Checked besides the sanitizers:
 * every exchange delivered is well formed (NUL-terminated strings, bodies within their cap,
 * readable to their NUL, empty when skipped), the filter is shown a head without status,
 * response or bodies, and the memory charged never passes the budget.
 */
#include <stdio.h>

#include "bizprobe/http_exchange.h"
#include "fuzz_util.h"

struct check {
	struct http_tracker_config cfg;
	unsigned long exchanges;
};

static void check_msg(const struct http_message *m, const struct check *c)
{

	if (m->n_headers > HTTP_MAX_HEADERS || m->body_len > c->cfg.body_cap)
		abort();
	for (unsigned i = 0; i < m->n_headers; i++)
		fuzz_sink += strlen(m->headers[i].name) + strlen(m->headers[i].value);
	if (m->body[m->body_len] != '\0' || (m->body_skipped && m->body_len))
		abort();
	for (size_t i = 0; i < m->body_len; i++)
		fuzz_sink += m->body[i];
}

static void on_exchange(const struct http_exchange *ex, void *ctx)
{
	struct check *c = ctx;

	fuzz_sink += strlen(ex->target) + strlen(ex->path) + strlen(ex->query) + strlen(ex->host) +
	      strnlen(ex->method, sizeof(ex->method));
	if (ex->method[sizeof(ex->method) - 1] != '\0' || ex->status < 0 || ex->status > 999)
		abort();
	check_msg(&ex->req, c);
	check_msg(&ex->resp, c);
	c->exchanges++;
}

/* Keeps the bodies of exchanges whose path has an even length. */
static bool body_filter(const struct http_exchange *head, void *ctx)
{
	size_t n = strlen(head->path);

	fuzz_sink += strlen(head->target) + strlen(head->query) + strlen(head->host) + n;
	if (head->status || head->resp.n_headers || head->req.body_len || head->resp.body_len ||
	    head->req.n_headers > HTTP_MAX_HEADERS)
		abort();
	(void)ctx;
	return n % 2 == 0;
}

static void check_budget(const struct http_tracker *t, const struct check *c)
{
	struct http_tracker_stats st;

	http_tracker_get_stats(t, &st);
	if (st.memory_bytes > c->cfg.memory_limit || st.memory_peak_bytes > c->cfg.memory_limit) {
		fprintf(stderr, "over budget: %llu of %zu\n", (unsigned long long)st.memory_bytes,
			c->cfg.memory_limit);
		abort();
	}
	if (st.exchanges != c->exchanges)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct check c = {{0}};
	struct http_tracker *t;
	uint8_t mode = fuzz_u8(&in);

	if (mode & 1) {
		c.cfg.body_cap = 16 + fuzz_u16(&in) % 8192;
		c.cfg.header_cap = 32 + fuzz_u16(&in) % 4096;
		c.cfg.max_conns = 1 + (mode >> 5);
		c.cfg.max_pipelined = 1 + ((mode >> 1) & 3);
		c.cfg.memory_limit = http_tracker_min_memory(&c.cfg) + fuzz_u16(&in) * 8u;
	}
	if (mode & 8)
		c.cfg.body_filter = body_filter;
	t = http_tracker_new(&c.cfg, on_exchange, &c);
	if (!t)
		abort();
	if (!(mode & 1)) {
		/* The defaults, as the real configuration has them. */
		c.cfg.body_cap = 64 * 1024;
		c.cfg.memory_limit = 64u << 20;
	}
	while (in.n) {
		uint8_t op = fuzz_u8(&in);
		struct capture_chunk ch = {0};
		size_t len = 0;

		ch.conn.pid = 1 + ((op >> 3) & 1);
		ch.conn.id = (op >> 4) & 7;
		ch.conn.tls = ch.conn.id & 1;
		ch.conn.generation = 7;
		ch.dir = op & 1 ? BP_DIR_INGRESS : BP_DIR_EGRESS;
		ch.ts_ns = in.n;
		switch ((op >> 1) & 3) {
		case 0:
		case 1:
			ch.data = fuzz_bytes(&in, 16384, &len);
			ch.len = (uint32_t)len;
			break;
		case 2:
			/* A gap, maybe after data. Most stay under 1 MiB, near the lengths the
			 * inputs' bodies declare; bit 7 lets one of any size through. */
			ch.data = fuzz_bytes(&in, 256, &len);
			ch.len = (uint32_t)len;
			ch.lost = fuzz_u32(&in);
			if (ch.lost > (1u << 20) && !(op & 0x80))
				ch.lost &= 0xfffff;
			break;
		case 3:
			if (op & 0x80)
				http_tracker_forget_pid(t, ch.conn.pid);
			else
				http_tracker_close(t, &ch.conn, ch.ts_ns);
			check_budget(t, &c);
			continue;
		}
		{
			/* Exactly the chunk's bytes on the heap: a read past them is caught. */
			uint8_t *copy = fuzz_dup(ch.data, ch.len);

			ch.data = copy;
			http_tracker_feed(t, &ch);
			free(copy);
		}
		check_budget(t, &c);
	}
	http_tracker_forget_pid(t, 1);
	http_tracker_forget_pid(t, 2);
	check_budget(t, &c);
	http_tracker_free(t);
	return 0;
}
