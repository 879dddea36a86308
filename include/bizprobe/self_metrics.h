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

#endif
