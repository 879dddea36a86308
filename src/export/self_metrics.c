// SPDX-License-Identifier: MIT
#include "bizprobe/self_metrics.h"

#include <errno.h>
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
    {"discarded", CAPTURE_STAT(kernel[BP_STAT_DISCARDED])},
    {"malformed_record", CAPTURE_STAT(malformed_records)},
};

/* Exchanges the HTTP stage dropped while under way, by why (enum http_drop_cause). */
static const struct self_series drop_causes[] = {
    {"memory", HTTP_STAT(dropped[HTTP_DROP_MEMORY])},
    {"conn_limit", HTTP_STAT(dropped[HTTP_DROP_CONN_LIMIT])},
    {"pipeline_full", HTTP_STAT(dropped[HTTP_DROP_PIPELINE])},
    {"parse_error", HTTP_STAT(dropped[HTTP_DROP_PARSE_ERROR])},
    {"out_of_memory", HTTP_STAT(dropped[HTTP_DROP_OUT_OF_MEMORY])},
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
    {.name = "bizprobe_processes_examined_total",
     .help = "Untraced processes whose /proc files were read to decide whether to trace them "
	     "(--exe, node mode): at their exec, and at the look once a second at the ones new "
	     "or changed since the last.",
     UNLABELLED(CAPTURE_STAT(processes_examined))},
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
    {.name = "bizprobe_http_bodies_skipped_total",
     .help = "Message bodies counted but not kept: no consumer (Stripe, Sentry, a rule reading "
	     "a body field) reads their exchange's bodies.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(bodies_skipped))},
    {.name = "bizprobe_http_incomplete_messages_total",
     .help = "Messages cut off by a connection's end.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(incomplete))},
    {.name = "bizprobe_http_evicted_connections_total",
     .help = "Connections dropped because the connection table was full.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(evicted))},
    {.name = "bizprobe_http_exchanges_dropped_total",
     .help = "Exchanges under way that the HTTP stage dropped, by cause.",
     .label = "cause",
     .from_http = true,
     SERIES(drop_causes)},
    {.name = "bizprobe_http_memory_evicted_connections_total",
     .help = "Connections evicted to keep the HTTP stage within --memory-limit.",
     .from_http = true,
     UNLABELLED(HTTP_STAT(evicted_memory))},
    {.name = "bizprobe_http_memory_refused_total",
     .help = "Allocations --memory-limit refused once nothing else could give way (the "
	     "message that needed one is truncated).",
     .from_http = true,
     UNLABELLED(HTTP_STAT(memory_refused))},
    {.name = "bizprobe_http_alloc_failures_total",
     .help = "Allocations of the HTTP stage that failed (out of memory).",
     .from_http = true,
     UNLABELLED(HTTP_STAT(alloc_failed))},
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

/* Gauges of the HTTP stage, published as they are. */
static const struct self_gauge {
	const char *name;
	const char *help;
	size_t off; /* in struct http_tracker_stats */
} http_gauges[] = {
    {"bizprobe_http_memory_bytes",
     "Bytes the HTTP stage holds for connections, message buffers and inflate state.",
     HTTP_STAT(memory_bytes)},
    {"bizprobe_http_memory_peak_bytes", "Most bytes the HTTP stage ever held at once.",
     HTTP_STAT(memory_peak_bytes)},
    {"bizprobe_http_memory_limit_bytes", "The HTTP stage's memory budget (--memory-limit).",
     HTTP_STAT(memory_limit_bytes)},
    {"bizprobe_http_connections", "Connections the HTTP stage tracks now.",
     HTTP_STAT(connections)},
};
#define N_HTTP_GAUGES (sizeof(http_gauges) / sizeof(http_gauges[0]))

struct self_metrics {
	struct metrics_family *counters[N_COUNTERS]; /* as counters[]; NULL if not registered */
	struct metrics_family *traced, *tls_files;
	struct metrics_family *http_gauges[N_HTTP_GAUGES];
	struct metrics_family *stripe_parse_errors, *subs_evicted;
	struct capture_stats last_c;
	struct http_tracker_stats last_h;
	struct stripe_stats last_s;
	/* Node mode's; NULL until self_metrics_node_register. */
	struct metrics_family *node_dropped, *target_exchanges, *target_processes;
	uint64_t last_dropped;
	uint64_t *last_target_exchanges; /* max_targets, by target index */
	size_t max_targets;
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
	for (size_t i = 0; i < N_HTTP_GAUGES; i++) {
		m->http_gauges[i] = reg_family(reg, http_gauges[i].name, http_gauges[i].help,
					       METRICS_GAUGE, NULL);
		if (m->http_gauges[i])
			metrics_set(m->http_gauges[i], NULL, 0);
	}
	/* Truncated Stripe bodies are business events already (bizprobe_stripe_truncated_
	 * exchanges_total); bodies that were whole but not the JSON expected are not. */
	m->stripe_parse_errors =
	    reg_family(reg, "bizprobe_stripe_parse_errors_total",
		       "Stripe API and webhook bodies that were whole but not the JSON expected: no "
		       "business event came of them.",
		       METRICS_COUNTER, NULL);
	add(m->stripe_parse_errors, NULL, 0);
	m->subs_evicted = reg_family(
	    reg, "bizprobe_stripe_subscriptions_evicted_total",
	    "Paying subscriptions forgotten because the subscription table was full: their MRR "
	    "left the revenue gauge.",
	    METRICS_COUNTER, NULL);
	add(m->subs_evicted, NULL, 0);
	return m;
}

void self_metrics_free(struct self_metrics *m)
{
	if (m)
		free(m->last_target_exchanges);
	free(m);
}

int self_metrics_node_register(struct self_metrics *m, struct metrics_registry *reg,
			       const char *const *target_labels, unsigned n_target_labels,
			       size_t max_targets)
{
	/* The overflow series and one spare: the caller bounds the targets, not the registry. */
	struct metrics_family_opts exchanges = {
	    .name = "bizprobe_target_exchanges_total",
	    .help = "Complete HTTP exchanges of the traced processes, by their pod's namespace "
		    "and workload (--k8s-labels).",
	    .type = METRICS_COUNTER,
	    .label_names = target_labels,
	    .n_labels = n_target_labels,
	    .max_series = (unsigned)max_targets + 2,
	};
	struct metrics_family_opts processes = exchanges;
	int err;

	m->node_dropped = reg_family(reg, "bizprobe_node_processes_dropped_total",
				     "Traced processes no longer traced because their pod stopped "
				     "matching the --select arguments (a label removed).",
				     METRICS_COUNTER, NULL);
	if (!m->node_dropped)
		return -ENOMEM;
	add(m->node_dropped, NULL, 0);
	if (!n_target_labels)
		return 0;
	processes.name = "bizprobe_target_traced_processes";
	processes.help = "Processes traced now, by their pod's namespace and workload "
			 "(--k8s-labels).";
	processes.type = METRICS_GAUGE;
	m->last_target_exchanges = calloc(max_targets, sizeof(*m->last_target_exchanges));
	if (!m->last_target_exchanges)
		return -ENOMEM;
	m->max_targets = max_targets;
	err = metrics_family_register(reg, &exchanges, &m->target_exchanges);
	return err ? err : metrics_family_register(reg, &processes, &m->target_processes);
}

void self_metrics_update_node(struct self_metrics *m, uint64_t dropped,
			      const struct self_target *targets, size_t n)
{
	if (!m)
		return;
	if (m->node_dropped && dropped > m->last_dropped)
		metrics_add(m->node_dropped, NULL, (double)(dropped - m->last_dropped));
	m->last_dropped = dropped;
	for (size_t i = 0; m->target_exchanges && i < n && i < m->max_targets; i++) {
		const struct self_target *t = &targets[i];

		/* A target's series exist from its first process on, at 0 when it has none. */
		metrics_add(m->target_exchanges, t->label_values,
			    (double)(t->exchanges - m->last_target_exchanges[i]));
		m->last_target_exchanges[i] = t->exchanges;
		metrics_set(m->target_processes, t->label_values, t->processes);
	}
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
	for (size_t i = 0; i < N_HTTP_GAUGES; i++)
		if (m->http_gauges[i])
			metrics_set(m->http_gauges[i], NULL, (double)stat_at(h, http_gauges[i].off));
	m->last_c = *c;
	m->last_h = *h;
}

void self_metrics_update_stripe(struct self_metrics *m, const struct stripe_stats *s)
{
	if (!m || !s)
		return;
	advance(m->stripe_parse_errors, NULL, s->parse_errors, m->last_s.parse_errors);
	advance(m->subs_evicted, NULL, s->subscriptions_evicted, m->last_s.subscriptions_evicted);
	m->last_s = *s;
}
