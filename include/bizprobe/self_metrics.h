/* SPDX-License-Identifier: MIT */
/* bizprobe's own health as metrics: what the kernel could not send, what could not be parsed. */
#ifndef BIZPROBE_SELF_METRICS_H
#define BIZPROBE_SELF_METRICS_H

#include "bizprobe/capture_session.h"
#include "bizprobe/http_exchange.h"
#include "bizprobe/metrics.h"
#include "bizprobe/stripe.h"

struct self_metrics;

struct self_metrics *self_metrics_new(struct metrics_registry *reg);
void self_metrics_free(struct self_metrics *m);

/* Publishes cumulative statistics (counters advance by the difference since the last call). */
void self_metrics_update(struct self_metrics *m, const struct capture_stats *cs,
			 const struct http_tracker_stats *hs);

/* Publishes the Stripe semantics' losses (cumulative, like the above): whole bodies it could
 * not parse (bizprobe_stripe_parse_errors_total) and paying subscriptions it had to forget
 * (bizprobe_stripe_subscriptions_evicted_total). */
void self_metrics_update_stripe(struct self_metrics *m, const struct stripe_stats *ss);

/* Node mode (run --node). One target is one (namespace, workload) of --k8s-labels; its
 * label_values follow the label names given to self_metrics_node_register. */
struct self_target {
	const char *const *label_values;
	uint32_t processes; /* traced now */
	uint64_t exchanges; /* cumulative */
};

/* bizprobe_node_processes_dropped_total always; with n_target_labels (--k8s-labels) also
 * bizprobe_target_exchanges_total and bizprobe_target_traced_processes by target, at most
 * max_targets of them. 0 or a negative errno. */
int self_metrics_node_register(struct self_metrics *m, struct metrics_registry *reg,
			       const char *const *target_labels, unsigned n_target_labels,
			       size_t max_targets);
/* dropped: processes dropped so far; targets[i] is the same target at every call (a table that
 * only grows), n at most max_targets. */
void self_metrics_update_node(struct self_metrics *m, uint64_t dropped,
			      const struct self_target *targets, size_t n);

#endif
