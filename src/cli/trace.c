// SPDX-License-Identifier: MIT
/* `bizprobe trace`: every completed exchange, live. */
#include <stdio.h>
#include <string.h>

#include "bizprobe/trace_format.h"
#include "cli.h"

#define TRACE_BODY_SHOW_BYTES 4096

struct trace_ctx {
	bool json;
	bool bodies;
};

static void print_exchange(const struct http_exchange *ex, uint64_t wall_ns, void *ctx)
{
	struct trace_ctx *t = ctx;
	char line[8192];
	int n = t->json ? trace_format_json(ex, wall_ns, line, sizeof(line))
			: trace_format_text(ex, wall_ns, line, sizeof(line));

	if (n < 0)
		return;
	fputs(line, stdout);
	fputc('\n', stdout);
	if (t->bodies && !t->json)
		trace_write_bodies(stdout, ex, TRACE_BODY_SHOW_BYTES);
	/* Line-buffer even into pipes: `trace` is a live view. */
	fflush(stdout);
}

static void print_stats(struct capture_session *cs, struct http_tracker *ht)
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
}

/* After the last poll (stop requested), say what was seen and what was lost. */
static void on_tick(struct capture_session *cs, struct http_tracker *ht, bool final, void *ctx)
{
	(void)ctx;
	if (final)
		print_stats(cs, ht);
}

int cmd_trace(int argc, char **argv)
{
	struct cli_opts o = {0};
	struct trace_ctx t;
	int rc = cli_parse("trace", argc, argv, &o);

	if (rc)
		return rc > 0 ? 0 : 2;
	t.json = o.json;
	t.bodies = o.bodies;
	rc = cli_pipeline_run(&o, print_exchange, on_tick, &t);
	return rc;
}
