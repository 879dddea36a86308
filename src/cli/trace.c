// SPDX-License-Identifier: MIT
/* `bizprobe trace`: every completed exchange, live. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/trace_format.h"
#include "cli.h"

#define TRACE_BODY_SHOW_BYTES 4096
/* The HTTP stage's default body cap (http_tracker_new): a recording keeps what the capture
 * kept, so that `rules test` can read the same JSON fields the live rules would. */
#define TRACE_RECORD_BODY_DEFAULT (64 * 1024)
#define TRACE_LINE_INITIAL	  8192

struct trace_ctx {
	bool json;
	bool bodies;
	struct trace_opts fmt; /* --raw-paths; --json --bodies: body bytes kept per message */
	char *line;	 /* grown on need up to TRACE_JSON_LINE_MAX, kept for the next exchange */
	size_t cap;
	uint64_t detail_dropped;
	uint64_t unprinted;
};

static int grow_line(struct trace_ctx *t, size_t need)
{
	size_t cap = t->cap ? t->cap : TRACE_LINE_INITIAL;
	char *p;

	while (cap < need)
		cap *= 2;
	if (cap > TRACE_JSON_LINE_MAX)
		cap = TRACE_JSON_LINE_MAX;
	if (cap < need)
		return -ENOSPC;
	if (cap == t->cap)
		return 0;
	p = realloc(t->line, cap);
	if (!p)
		return -ENOMEM;
	t->line = p;
	t->cap = cap;
	return 0;
}

static int format_detail(struct trace_ctx *t, const struct http_exchange *ex, uint64_t wall_ns)
{
	size_t need = 0;
	int n = trace_format(TRACE_JSON_DETAIL, ex, wall_ns, &t->fmt, t->line, t->cap, &need);

	if (n != -ENOSPC || grow_line(t, need))
		return n;
	return trace_format(TRACE_JSON_DETAIL, ex, wall_ns, &t->fmt, t->line, t->cap, NULL);
}

enum trace_line { TRACE_LINE_TEXT, TRACE_LINE_JSON, TRACE_LINE_DROPPED };

/* The lines without bodies: short, but a path may be long (up to the header cap), so the
 * buffer doubles until it fits. */
static int format_plain(struct trace_ctx *t, const struct http_exchange *ex, uint64_t wall_ns,
			enum trace_line kind)
{
	for (;;) {
		int n = trace_format(kind == TRACE_LINE_TEXT	? TRACE_TEXT
				     : kind == TRACE_LINE_JSON ? TRACE_JSON
							       : TRACE_JSON_DROPPED,
				     ex, wall_ns, &t->fmt, t->line, t->cap, NULL);

		if (n != -ENOSPC || t->cap >= TRACE_JSON_LINE_MAX || grow_line(t, t->cap * 2))
			return n;
	}
}

static void print_exchange(const struct http_exchange *ex, uint64_t wall_ns, void *ctx)
{
	struct trace_ctx *t = ctx;
	int n = -ENOMEM;

	if (!t->line && grow_line(t, TRACE_LINE_INITIAL)) {
		t->unprinted++;
		return;
	}
	if (t->json && t->bodies) {
		n = format_detail(t, ex, wall_ns);
		if (n < 0) {
			t->detail_dropped++;
			n = format_plain(t, ex, wall_ns, TRACE_LINE_DROPPED);
		}
	} else {
		n = format_plain(t, ex, wall_ns, t->json ? TRACE_LINE_JSON : TRACE_LINE_TEXT);
	}
	if (n < 0) {
		t->unprinted++;
		return;
	}
	fwrite(t->line, 1, (size_t)n, stdout);
	fputc('\n', stdout);
	if (t->bodies && !t->json)
		trace_write_bodies(stdout, ex, TRACE_BODY_SHOW_BYTES);
	/* Line-buffer even into pipes: `trace` is a live view. */
	fflush(stdout);
}

static void print_stats(struct capture_session *cs, struct http_tracker *ht,
			const struct trace_ctx *t)
{
	struct capture_stats c;
	struct http_tracker_stats h;

	capture_session_get_stats(cs, &c);
	http_tracker_get_stats(ht, &h);
	fprintf(stderr,
		"bizprobe: exchanges %llu (client %llu, server %llu), parse errors %llu, "
		"truncated %llu, incomplete %llu; kernel: records %llu, ring full %llu, "
		"copy truncated %llu, conn map full %llu\n",
		(unsigned long long)h.exchanges, (unsigned long long)h.exchanges_client,
		(unsigned long long)h.exchanges_server, (unsigned long long)h.parse_errors,
		(unsigned long long)h.truncated, (unsigned long long)h.incomplete,
		(unsigned long long)c.records, (unsigned long long)c.kernel[BP_STAT_RINGBUF_FULL],
		(unsigned long long)c.kernel[BP_STAT_TRUNCATED],
		(unsigned long long)c.kernel[BP_STAT_CONN_MAP_FULL]);
	if (t->detail_dropped)
		fprintf(stderr,
			"bizprobe: %llu exchanges printed without headers and bodies "
			"(\"detail_dropped\": line over %u bytes, or out of memory)\n",
			(unsigned long long)t->detail_dropped, TRACE_JSON_LINE_MAX);
	if (t->unprinted)
		fprintf(stderr, "bizprobe: %llu exchanges not printed (out of memory)\n",
			(unsigned long long)t->unprinted);
}

/* After the last poll (stop requested), say what was seen and what was lost. */
static void on_tick(struct capture_session *cs, struct http_tracker *ht, bool final, void *ctx)
{
	if (final)
		print_stats(cs, ht, ctx);
}

int cmd_trace(int argc, char **argv)
{
	struct cli_opts o = {0};
	struct trace_ctx t = {0};
	int rc = cli_parse("trace", argc, argv, &o);

	if (rc)
		return rc > 0 ? 0 : 2;
	t.json = o.json;
	t.bodies = o.bodies;
	t.fmt.max_body = o.http.body_cap ? o.http.body_cap : TRACE_RECORD_BODY_DEFAULT;
	t.fmt.raw_paths = o.raw_paths;
	rc = cli_pipeline_run(&o, print_exchange, on_tick, &t);
	free(t.line);
	return rc;
}
