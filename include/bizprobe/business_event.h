/* SPDX-License-Identifier: MIT */
/*
 * Output of the semantics stage (Stripe semantics in src/semantics/, the rules engine in
 * src/rules/), input of the metrics stage (src/metrics/business_metrics.c) and later of the state
 * stage: one business fact, e.g. "a payment attempt succeeded, USD 12.00, by user u" or "a user
 * registered, user_type=fan, method=email".
 *
 * An event names what happened; which metric families it moves is the metrics stage's business
 * (business_metrics.c), except for events of a rule, which carry the metric their rule declares.
 * Label values are already bounded by their producer (fixed words, allow-lists, first-N), and the
 * user is a pseudonym (HMAC-SHA256 under the salt, hex), never a raw id.
 *
 * Everything an event points to is valid only during the sink's call.
 */
#ifndef BIZPROBE_BUSINESS_EVENT_H
#define BIZPROBE_BUSINESS_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "bizprobe/metrics.h"

/* What happened. Each kind documents its labels, in this order, and its value. */
enum biz_event_kind {
	/* A payment attempt reached its status. labels: status, currency, code, decline_code (the
	 * last two "" unless failed); value: amount in major units (succeeded only). */
	BIZ_PAYMENT_ATTEMPT = 1,
	/* labels: currency; subject: the subscription; value: its monthly amount in major units
	 * when it pays now (has_value false otherwise). */
	BIZ_SUBSCRIPTION_CREATED,
	BIZ_SUBSCRIPTION_CANCELED, /* labels: currency; subject: the subscription */
	/* The MRR of one currency changed. labels: currency; value: the new total. Not a business
	 * event of its own (not in business_events_total): it follows the ones above. */
	BIZ_MRR,
	/* A succeeded payment whose attempt was already counted with its pending status (its
	 * timeout passed): the money still arrived. labels: currency; value: amount. Not a
	 * business event of its own. */
	BIZ_PAYMENT_LATE_SUCCESS,
	BIZ_REFUND,  /* labels: currency; value: amount in major units */
	BIZ_DISPUTE, /* no labels */
	/* Technical observations, not in business_events_total: */
	BIZ_WEBHOOK_DELIVERY,	 /* labels: type, outcome */
	BIZ_STRIPE_API_REQUEST,	 /* labels: endpoint, method, code; value: duration in seconds */
	BIZ_STRIPE_TRUNCATED,	 /* labels: source ("api" or "webhook") */
	/* Payment attempts waiting for their outcome right now. labels: status (requires_action
	 * or processing), currency; value: how many. Follows every change. */
	BIZ_PAYMENTS_PENDING,
	/* An event of a user rule (src/rules/): name is the rule's event name and metric, when
	 * not NULL, the family its rule declared, whose labels the event's labels are. */
	BIZ_RULE_EVENT,
	/* The traced app's own Sentry SDK traffic (src/semantics/sentry.c), not business events:
	 * one envelope item the app sent to Sentry's ingest. labels: type (an item type from a
	 * fixed list, else "other"), level ("fatal", "error", "warning", "info", "debug" or
	 * "other" for event items, "" for others), outcome ("accepted": Sentry answered 2xx;
	 * "rejected"), reason ("" when accepted; "rate_limited" for a 429, "too_large" for a 413,
	 * "client_error" for other 4xx, "server_error" for 5xx, "other"). */
	BIZ_SENTRY_ITEM,
	/* An envelope, or its tail, that could not be read: items past that point are not
	 * counted. labels: reason ("truncated": the body was cut; "malformed": not an envelope;
	 * "encoding": a Content-Encoding bizprobe does not decode). */
	BIZ_SENTRY_UNREADABLE,
	/* The app answered 5xx on an exchange a rule with a `sentry:` key matches by role, method,
	 * route and host (whatever its status condition): a failed business flow, for the Sentry
	 * reporter (src/export/sentry_reporter.c); in no metric family. labels: event (the rule's
	 * name), component, feature, funnel (the rule's sentry key, "" when not given), endpoint
	 * (the rule's route template, "" for any path), method, status (three digits). user and
	 * user_type as the rule's events have them. */
	BIZ_RULE_FAILURE,
};

#define BIZ_EVENT_MAX_LABELS 8

/* A metric family a rule declares: registered by the metrics stage on first use (a reload that
 * adds a rule adds its family; one that drops a rule leaves the family's series as they were). */
struct biz_metric_spec {
	const char *name; /* full name, namespace included */
	const char *help;
	enum metrics_type type; /* METRICS_COUNTER (incremented by 1) or METRICS_HISTOGRAM
				   (observes the event's value) */
	const char *const *label_names; /* the rule's label names; its events' labels, in order */
	unsigned n_labels;
	const double *buckets;
	unsigned n_buckets;
	unsigned max_series; /* 0: the registry's default */
};

struct biz_label {
	const char *name;
	const char *value;
};

/* Where an event's exchange was seen, in node mode (bizprobe run --node, src/k8s/): the traced
 * process's pod's namespace and workload, each a bounded word ("unknown" when the kube API does
 * not know the pod, "none" for the workload of a pod no controller owns, "other" past the
 * table's bound). Owned by node mode and valid while the run lasts. */
struct biz_target {
	const char *namespace_;
	const char *workload;
};

struct business_event {
	enum biz_event_kind kind;
	/* business_events_total{event}: "payment_succeeded", "subscription_created", the rule's
	 * name, ...; NULL for the kinds that are not business events. */
	const char *name;
	const struct biz_metric_spec *metric; /* BIZ_RULE_EVENT only; may be NULL */
	struct biz_label labels[BIZ_EVENT_MAX_LABELS];
	unsigned n_labels;
	bool has_value;
	double value;
	/* Who it is about: a pseudonym (64 hex digits) or NULL (anonymous, opted out, tracking
	 * off); user_type is a bounded word (fan, creator, ...) or NULL. */
	const char *user;
	const char *user_type;
	/* The Stripe object it is about (a subscription), pseudonymized like users, or NULL. */
	const char *subject;
	uint64_t wall_ns; /* when it happened, nanoseconds since the epoch */
	/* The traced process it came from; NULL outside node mode and for events no exchange
	 * caused (a payment's timeout passing). Set by the sink's wrapper, not by producers. */
	const struct biz_target *target;
};

/* Where a producer delivers its events. The sink fans out to every consumer. */
typedef void (*biz_event_sink_fn)(const struct business_event *ev, void *ctx);

struct biz_event_sink {
	biz_event_sink_fn fn;
	void *ctx;
};

static inline void biz_emit(const struct biz_event_sink *sink, const struct business_event *ev)
{
	if (sink && sink->fn)
		sink->fn(ev, sink->ctx);
}

/* The value of the label called name, or NULL. */
const char *biz_event_label(const struct business_event *ev, const char *name);

/*
 * The metrics stage's consumer (src/metrics/business_metrics.c): registers the Stripe families
 * and business_events_total, and moves them for each event.
 */
struct business_metrics;

struct business_metrics_config {
	const char *namespace; /* prefix of the Stripe and rule families; NULL: "direct_fan" */
	unsigned max_label_values; /* series per labelled family; 0: 256 */
	/* Node mode's --k8s-labels: the event's target's namespace and/or workload appended, as
	 * labels "namespace" and "workload", to every counter and histogram family (Stripe's,
	 * business_events_total, the rules'). Not to the gauges that hold one total for all
	 * targets (subscription_revenue, payments_pending): a copy per target would double under
	 * sum(). An event without a target has "unknown". */
	bool label_namespace;
	bool label_workload;
};

/* NULL on a bad namespace or out of memory (errno set). reg must outlive it. */
struct business_metrics *business_metrics_new(struct metrics_registry *reg,
					      const struct business_metrics_config *cfg);
void business_metrics_free(struct business_metrics *bm);
void business_metrics_on_event(const struct business_event *ev, void *bm);
/* Events whose rule metric could not be registered (a name clash with another family). */
uint64_t business_metrics_rejected(const struct business_metrics *bm);
/* Registers the family a rule declares before its first event: a restart's stored counters
 * are restored into it at once. -EEXIST when a family of that name has another shape. */
int business_metrics_declare(struct business_metrics *bm, const struct biz_metric_spec *spec);

#endif
