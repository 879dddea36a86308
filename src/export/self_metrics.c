// SPDX-License-Identifier: MIT
#include "bizprobe/self_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

/* One series of a counter family and the cumulative stat it publishes: the uint64_t at off in
 * struct capture_stats, or in struct http_tracker_stats for a family marked from_http. */
struct self_series {
	const char *label_value; /* NULL in an unlabelled family */
	size_t off;
};

#define CAPTURE_STAT(field) offsetof(struct capture_stats, field)
#define HTTP_STAT(field)    offsetof(struct http_tracker_stats, field)
#define SERIES(values)	    .series = values, .n_series = sizeof(values) / sizeof((values)[0])
#define UNLABELLED(off)	    .series = (const struct self_series[]){{NULL, off}}, .n_series = 1

/* Kernel-side losses by reason; each is a stat of struct capture_stats.kernel. */
static const struct self_series lost_reasons[] = {
    {"ringbuf_full", CAPTURE_STAT(kernel[BP_STAT_RINGBUF_FULL])},
    {"copy_truncated", CAPTURE_STAT(kernel[BP_STAT_TRUNCATED])},
    {"read_failed", CAPTURE_STAT(kernel[BP_STAT_READ_FAILED])},
    {"conn_map_full", CAPTURE_STAT(kernel[BP_STAT_CONN_MAP_FULL])},
    {"args_map_full", CAPTURE_STAT(kernel[BP_STAT_ARGS_MAP_FULL])},
};

/* The kernel's verdict on a connection's first bytes. */
static const struct self_series conn_protocols[] = {
    {"http", CAPTURE_STAT(kernel[BP_STAT_CONN_HTTP])},
    {"other", CAPTURE_STAT(kernel[BP_STAT_CONN_IGNORED])},
};

/* The traced process's side of the exchange. */
static const struct self_series exchange_roles[] = {
    {"client", HTTP_STAT(exchanges_client)},
    {"server", HTTP_STAT(exchanges_server)},
};

/* Families render in registration order, which is this table's order, before the gauges. */
static const struct self_counter {
	const char *name;
	const char *help;
	const char *label; /* NULL for an unlabelled family */
	bool from_http;	   /* stats in struct http_tracker_stats, else in struct capture_stats */
	const struct self_series *series;
	size_t n_series;
} counters[] = {
    {.name = "bizprobe_events_lost_total",
     .help = "Kernel events that could not be delivered whole, by reason.",
     .label = "reason",
     SERIES(lost_reasons)},
    {.name = "bizprobe_lost_bytes_total",
     .help = "Payload bytes of traced connections that did not reach userspace.",
     UNLABELLED(CAPTURE_STAT(lost_bytes))},
    {.name = "bizprobe_ringbuf_records_total",
     .help = "Records read from the BPF ring buffer.",
     UNLABELLED(CAPTURE_STAT(records))},
    {.name = "bizprobe_connections_sniffed_total",
     .help = "Connections classified in the kernel, by verdict.",
     .label = "protocol",
     SERIES(conn_protocols)},
    {.name = "bizprobe_exchanges_total",
     .help = "Complete HTTP exchanges seen, by the traced process's role.",
     .label = "role",
     .from_http = true,
     SERIES(exchange_roles)},
    {.name = "bizprobe_http_parse_errors_total",
     .help = "Streams abandoned because their bytes were not HTTP/1.x.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(parse_errors))},
    {.name = "bizprobe_http_truncated_exchanges_total",
     .help = "Exchanges delivered with a truncated or partly lost body.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(truncated))},
    {.name = "bizprobe_http_incomplete_messages_total",
     .help = "Messages cut off by a connection's end.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(incomplete))},
    {.name = "bizprobe_http_evicted_connections_total",
     .help = "Connections dropped because the connection table was full.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(evicted))},
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

struct self_metrics {
	struct metrics_family *counters[N_COUNTERS]; /* as counters[]; NULL if not registered */
	struct metrics_family *traced, *tls_files;
	struct capture_stats last_c;
	struct http_tracker_stats last_h;
};

static struct metrics_family *reg_family(struct metrics_registry *reg, const char *name,
					 const char *help, enum metrics_type type,
					 const char *label)
{
	const char *labels[] = {label};
	struct metrics_family_opts o = {
	    .name = name,
	    .help = help,
	    .type = type,
	    .label_names = labels,
	    .n_labels = label ? 1 : 0,
	    .max_series = 16,
	};
	struct metrics_family *f = NULL;

	if (metrics_family_register(reg, &o, &f))
		return NULL;
	return f;
}

static void add(struct metrics_family *f, const char *label_value, double v)
{
	const char *l[] = {label_value};

	metrics_add(f, label_value ? l : NULL, v);
}

struct self_metrics *self_metrics_new(struct metrics_registry *reg)
{
	struct self_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	/* Every series exists from the start: a zero is an answer, an absent series is not. */
	for (size_t i = 0; i < N_COUNTERS; i++) {
		const struct self_counter *d = &counters[i];

		m->counters[i] = reg_family(reg, d->name, d->help, METRICS_COUNTER, d->label);
		for (size_t j = 0; j < d->n_series; j++)
			add(m->counters[i], d->series[j].label_value, 0);
	}
	m->traced = reg_family(reg, "bizprobe_traced_processes", "Processes currently traced.",
			       METRICS_GAUGE, NULL);
	m->tls_files =
	    reg_family(reg, "bizprobe_tls_files_attached",
		       "Files (inodes) with OpenSSL uprobes attached.", METRICS_GAUGE, NULL);
	return m;
}

void self_metrics_free(struct self_metrics *m)
{
	free(m);
}

static uint64_t stat_at(const void *stats, size_t off)
{
	return *(const uint64_t *)((const char *)stats + off);
}

static void advance(struct metrics_family *f, const char *label_value, uint64_t now,
		    uint64_t before)
{
	if (f && now > before)
		add(f, label_value, (double)(now - before));
}

void self_metrics_update(struct self_metrics *m, const struct capture_stats *c,
			 const struct http_tracker_stats *h)
{
	for (size_t i = 0; i < N_COUNTERS; i++) {
		const struct self_counter *d = &counters[i];
		const void *now = c, *before = &m->last_c;

		if (d->from_http) {
			now = h;
			before = &m->last_h;
		}
		for (size_t j = 0; j < d->n_series; j++) {
			size_t off = d->series[j].off;

			advance(m->counters[i], d->series[j].label_value, stat_at(now, off),
				stat_at(before, off));
		}
	}
	if (m->traced)
		metrics_set(m->traced, NULL, c->traced_processes);
	if (m->tls_files)
		metrics_set(m->tls_files, NULL, c->tls_files);
	m->last_c = *c;
	m->last_h = *h;
}
