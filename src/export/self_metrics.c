// SPDX-License-Identifier: MIT
#include "bizprobe/self_metrics.h"

#include <stdlib.h>

/* Kernel-side losses by reason; each is a stat of struct capture_stats.kernel. */
static const struct {
	enum bp_stat stat;
	const char *reason;
} lost_reasons[] = {
	{BP_STAT_RINGBUF_FULL, "ringbuf_full"},   {BP_STAT_TRUNCATED, "copy_truncated"},
	{BP_STAT_READ_FAILED, "read_failed"},     {BP_STAT_CONN_MAP_FULL, "conn_map_full"},
	{BP_STAT_ARGS_MAP_FULL, "args_map_full"},
};
#define N_LOST (sizeof(lost_reasons) / sizeof(lost_reasons[0]))

struct self_metrics {
	struct metrics_family *lost, *lost_bytes, *records, *conns, *exchanges, *parse_errors,
		*truncated, *incomplete, *evicted, *traced, *tls_files;
	struct capture_stats last_c;
	struct http_tracker_stats last_h;
};

static struct metrics_family *reg_family(struct metrics_registry *reg, const char *name,
					 const char *help, enum metrics_type type,
					 const char *label)
{
	const char *labels[] = {label};
	struct metrics_family_opts o = {
		.name = name, .help = help, .type = type, .label_names = labels,
		.n_labels = label ? 1 : 0, .max_series = 16,
	};
	struct metrics_family *f = NULL;

	if (metrics_family_register(reg, &o, &f))
		return NULL;
	return f;
}

struct self_metrics *self_metrics_new(struct metrics_registry *reg)
{
	struct self_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->lost = reg_family(reg, "bizprobe_events_lost_total",
			     "Kernel events that could not be delivered whole, by reason.",
			     METRICS_COUNTER, "reason");
	m->lost_bytes = reg_family(reg, "bizprobe_lost_bytes_total",
				   "Payload bytes of traced connections that did not reach userspace.",
				   METRICS_COUNTER, NULL);
	m->records = reg_family(reg, "bizprobe_ringbuf_records_total",
				"Records read from the BPF ring buffer.", METRICS_COUNTER, NULL);
	m->conns = reg_family(reg, "bizprobe_connections_sniffed_total",
			      "Connections classified in the kernel, by verdict.", METRICS_COUNTER,
			      "protocol");
	m->exchanges = reg_family(reg, "bizprobe_exchanges_total",
				  "Complete HTTP exchanges seen, by the traced process's role.",
				  METRICS_COUNTER, "role");
	m->parse_errors = reg_family(reg, "bizprobe_http_parse_errors_total",
				     "Streams abandoned because their bytes were not HTTP/1.x.",
				     METRICS_COUNTER, NULL);
	m->truncated = reg_family(reg, "bizprobe_http_truncated_exchanges_total",
				  "Exchanges delivered with a truncated or partly lost body.",
				  METRICS_COUNTER, NULL);
	m->incomplete = reg_family(reg, "bizprobe_http_incomplete_messages_total",
				   "Messages cut off by a connection's end.", METRICS_COUNTER, NULL);
	m->evicted = reg_family(reg, "bizprobe_http_evicted_connections_total",
				"Connections dropped because the connection table was full.",
				METRICS_COUNTER, NULL);
	m->traced = reg_family(reg, "bizprobe_traced_processes",
			       "Processes currently traced.", METRICS_GAUGE, NULL);
	m->tls_files = reg_family(reg, "bizprobe_tls_files_attached",
				  "Files (inodes) with OpenSSL uprobes attached.", METRICS_GAUGE, NULL);
	/* Every series exists from the start: a zero is an answer, an absent series is not. */
	for (size_t i = 0; i < N_LOST; i++) {
		const char *l[] = {lost_reasons[i].reason};

		metrics_add(m->lost, l, 0);
	}
	metrics_add(m->exchanges, (const char *[]){"client"}, 0);
	metrics_add(m->exchanges, (const char *[]){"server"}, 0);
	metrics_add(m->conns, (const char *[]){"http"}, 0);
	metrics_add(m->conns, (const char *[]){"other"}, 0);
	metrics_add(m->lost_bytes, NULL, 0);
	metrics_add(m->records, NULL, 0);
	metrics_add(m->parse_errors, NULL, 0);
	metrics_add(m->truncated, NULL, 0);
	metrics_add(m->incomplete, NULL, 0);
	metrics_add(m->evicted, NULL, 0);
	return m;
}

void self_metrics_free(struct self_metrics *m)
{
	free(m);
}

static void advance(struct metrics_family *f, const char *label, uint64_t now, uint64_t before)
{
	const char *l[] = {label};

	if (f && now > before)
		metrics_add(f, label ? l : NULL, (double)(now - before));
}

void self_metrics_update(struct self_metrics *m, const struct capture_stats *c,
			 const struct http_tracker_stats *h)
{
	for (size_t i = 0; i < N_LOST; i++)
		advance(m->lost, lost_reasons[i].reason, c->kernel[lost_reasons[i].stat],
			m->last_c.kernel[lost_reasons[i].stat]);
	advance(m->lost_bytes, NULL, c->lost_bytes, m->last_c.lost_bytes);
	advance(m->records, NULL, c->records, m->last_c.records);
	advance(m->conns, "http", c->kernel[BP_STAT_CONN_HTTP], m->last_c.kernel[BP_STAT_CONN_HTTP]);
	advance(m->conns, "other", c->kernel[BP_STAT_CONN_IGNORED],
		m->last_c.kernel[BP_STAT_CONN_IGNORED]);
	advance(m->exchanges, "client", h->exchanges_client, m->last_h.exchanges_client);
	advance(m->exchanges, "server", h->exchanges_server, m->last_h.exchanges_server);
	advance(m->parse_errors, NULL, h->parse_errors, m->last_h.parse_errors);
	advance(m->truncated, NULL, h->truncated, m->last_h.truncated);
	advance(m->incomplete, NULL, h->incomplete, m->last_h.incomplete);
	advance(m->evicted, NULL, h->evicted, m->last_h.evicted);
	if (m->traced)
		metrics_set(m->traced, NULL, c->traced_processes);
	if (m->tls_files)
		metrics_set(m->tls_files, NULL, c->tls_files);
	m->last_c = *c;
	m->last_h = *h;
}
