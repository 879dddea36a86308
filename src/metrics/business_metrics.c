// SPDX-License-Identifier: MIT
/*
 * The metrics stage's view of business events: which families each kind of event moves. The
 * family names are the guide's (direct_fan_*), so its dashboards and alerts work unchanged;
 * business_events_total{event} counts every business event, Stripe's and the rules', without the
 * namespace, as the guide's "monitoring the monitoring" queries it.
 *
 * In node mode with --k8s-labels, the counters and histograms also carry the event's target
 * (namespace, workload), appended after their own labels; the per-family series cap bounds them
 * as it bounds the rest. The gauges stay as they are: each holds one total over every target.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/business_event.h"

static const double amount_buckets[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
static const double duration_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

/* Indexes into business_metrics.fam, one per family below. */
enum bm_family {
	BM_ATTEMPTS,
	BM_AMOUNTS,
	BM_FAILURES,
	BM_SUBS_CREATED,
	BM_SUBS_CANCELED,
	BM_MRR,
	BM_REFUNDS,
	BM_REFUND_AMOUNT,
	BM_DISPUTES,
	BM_WEBHOOKS,
	BM_API_REQUESTS,
	BM_API_DURATION,
	BM_TRUNCATED,
	BM_PENDING,
	BM_EVENTS,
	BM_SENTRY_ERRORS,
	BM_SENTRY_ITEMS,
	BM_SENTRY_REJECTED,
	BM_SENTRY_UNREADABLE,
	BM_N_FAMILIES,
};

struct family_def {
	const char *suffix;
	const char *help;
	enum metrics_type type;
	const char *labels[3];
	unsigned n_labels;
	const double *buckets;
	unsigned n_buckets;
	bool raw_name; /* not prefixed by the namespace */
};

#define BUCKETS(b) b, sizeof(b) / sizeof(b[0])

static const struct family_def family_defs[BM_N_FAMILIES] = {
    [BM_ATTEMPTS] = {"payment_attempts_total",
		     "Payment attempts by final status, each attempt counted once.",
		     METRICS_COUNTER,
		     {"status", "currency"},
		     2},
    [BM_AMOUNTS] = {"payment_amounts", "Succeeded payment amounts in major currency units.",
		    METRICS_HISTOGRAM, {"currency"}, 1, BUCKETS(amount_buckets)},
    [BM_FAILURES] = {"payment_failures_total",
		     "Failed payment attempts by Stripe error and decline code.",
		     METRICS_COUNTER,
		     {"code", "decline_code"},
		     2},
    [BM_SUBS_CREATED] = {"subscriptions_created_total", "Subscriptions created.",
			 METRICS_COUNTER},
    [BM_SUBS_CANCELED] = {"subscriptions_canceled_total", "Subscriptions canceled.",
			  METRICS_COUNTER},
    [BM_MRR] = {"subscription_revenue",
		"Monthly recurring revenue of active and past_due subscriptions seen, major units.",
		METRICS_GAUGE,
		{"currency"},
		1},
    [BM_REFUNDS] = {"refunds_total", "Succeeded refunds.", METRICS_COUNTER, {"currency"}, 1},
    [BM_REFUND_AMOUNT] = {"refund_amount_total", "Refunded amount in major currency units.",
			  METRICS_COUNTER, {"currency"}, 1},
    [BM_DISPUTES] = {"disputes_total", "Disputes opened.", METRICS_COUNTER},
    [BM_WEBHOOKS] = {"webhook_events_total",
		     "Stripe webhook deliveries the app accepted, by event type and outcome.",
		     METRICS_COUNTER,
		     {"type", "outcome"},
		     2},
    [BM_API_REQUESTS] = {"stripe_api_requests_total",
			 "Stripe API requests by endpoint, method and status code.",
			 METRICS_COUNTER,
			 {"endpoint", "method", "code"},
			 3},
    [BM_API_DURATION] = {"stripe_api_request_duration_seconds", "Stripe API request duration.",
			 METRICS_HISTOGRAM, {"endpoint"}, 1, BUCKETS(duration_buckets)},
    [BM_TRUNCATED] = {"bizprobe_stripe_truncated_exchanges_total",
		      "Stripe exchanges whose body was truncated and not interpreted.",
		      METRICS_COUNTER,
		      {"source"},
		      1,
		      NULL,
		      0,
		      true},
    [BM_PENDING] = {"payments_pending",
		    "Payment attempts waiting for their outcome now (3-D Secure, bank debits).",
		    METRICS_GAUGE,
		    {"status", "currency"},
		    2},
    [BM_EVENTS] = {"business_events_total",
		   "Business events seen (Stripe's and the rules'), by event name.",
		   METRICS_COUNTER,
		   {"event"},
		   1,
		   NULL,
		   0,
		   true},
    /* The traced app's own Sentry reports (BIZ_SENTRY_*): sentry_errors_total is the guide's
     * name, queried as it is. */
    [BM_SENTRY_ERRORS] = {"sentry_errors_total",
			  "Error events the traced app reported to Sentry and Sentry accepted, by "
			  "level.",
			  METRICS_COUNTER,
			  {"level"},
			  1,
			  NULL,
			  0,
			  true},
    [BM_SENTRY_ITEMS] = {"bizprobe_sentry_items_total",
			 "Envelope items other than error events the traced app sent to Sentry and "
			 "Sentry accepted, by item type.",
			 METRICS_COUNTER,
			 {"type"},
			 1,
			 NULL,
			 0,
			 true},
    [BM_SENTRY_REJECTED] = {"bizprobe_sentry_rejected_total",
			    "Envelope items of the traced app that Sentry refused (429 rate "
			    "limited, other non-2xx), by item type and reason.",
			    METRICS_COUNTER,
			    {"type", "reason"},
			    2,
			    NULL,
			    0,
			    true},
    [BM_SENTRY_UNREADABLE] = {"bizprobe_sentry_unreadable_envelopes_total",
			      "Envelopes to Sentry that could not be read to their end (cut, "
			      "malformed, undecoded encoding): their remaining items are not counted.",
			      METRICS_COUNTER,
			      {"reason"},
			      1,
			      NULL,
			      0,
			      true},
};

/* Rule metrics by the address of their spec, checked against the family's name on every hit: a
 * reload frees the old specs, and a new one may land at the same address. */
#define RULE_CACHE_SLOTS 256

struct rule_family_slot {
	const struct biz_metric_spec *spec;
	struct metrics_family *family;
};

/* At most two target labels: namespace, workload. */
#define MAX_TARGET_LABELS 2

struct business_metrics {
	struct metrics_registry *reg;
	struct metrics_family *fam[BM_N_FAMILIES];
	struct rule_family_slot cache[RULE_CACHE_SLOTS];
	unsigned max_series;
	uint64_t rejected;
	const char *target_labels[MAX_TARGET_LABELS]; /* "namespace", "workload", in that order */
	unsigned n_target_labels;
};

static const char *const sentry_levels[] = {"fatal", "error", "warning", "info", "debug"};

/* Whether family i carries the target labels: the counters and histograms. */
static bool targeted(const struct business_metrics *bm, unsigned i)
{
	return bm->n_target_labels && family_defs[i].type != METRICS_GAUGE;
}

/* names[0..n) then the target label names into out (n + MAX_TARGET_LABELS); the count, or -1
 * when it does not fit or a name is taken already (a rule's own "namespace" label). */
static int names_with_target(const struct business_metrics *bm, const char *const *names,
			     unsigned n, const char **out)
{
	if (n + bm->n_target_labels > METRICS_MAX_LABELS)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		out[i] = names[i];
		for (unsigned k = 0; k < bm->n_target_labels; k++)
			if (!strcmp(names[i], bm->target_labels[k]))
				return -1;
	}
	for (unsigned k = 0; k < bm->n_target_labels; k++)
		out[n + k] = bm->target_labels[k];
	return (int)(n + bm->n_target_labels);
}

/* values[0..n) then the event's target's values into out (n + MAX_TARGET_LABELS). */
static const char *const *values_with_target(const struct business_metrics *bm,
					     const struct business_event *ev,
					     const char *const *values, unsigned n,
					     const char **out)
{
	const struct biz_target *t = ev->target;

	for (unsigned i = 0; i < n; i++)
		out[i] = values[i];
	for (unsigned k = 0; k < bm->n_target_labels; k++) {
		const char *v = NULL;

		if (t)
			v = !strcmp(bm->target_labels[k], "namespace") ? t->namespace_ : t->workload;
		out[n + k] = v && *v ? v : "unknown";
	}
	return out;
}

/* Family i moved for ev with its own label values: the target's appended where it has them. */
static const char *const *family_values(const struct business_metrics *bm, unsigned i,
					const struct business_event *ev,
					const char *const *values, const char **out)
{
	if (!targeted(bm, i))
		return values;
	return values_with_target(bm, ev, values, family_defs[i].n_labels, out);
}

static void bm_inc(struct business_metrics *bm, unsigned i, const struct business_event *ev,
		   const char *const *values)
{
	const char *buf[METRICS_MAX_LABELS];

	metrics_inc(bm->fam[i], family_values(bm, i, ev, values, buf));
}

static void bm_add(struct business_metrics *bm, unsigned i, const struct business_event *ev,
		   const char *const *values, double v)
{
	const char *buf[METRICS_MAX_LABELS];

	metrics_add(bm->fam[i], family_values(bm, i, ev, values, buf), v);
}

static void bm_observe(struct business_metrics *bm, unsigned i, const struct business_event *ev,
		       const char *const *values, double v)
{
	const char *buf[METRICS_MAX_LABELS];

	metrics_observe(bm->fam[i], family_values(bm, i, ev, values, buf), v);
}

static int register_families(struct business_metrics *bm, const char *ns)
{
	for (unsigned i = 0; i < BM_N_FAMILIES; i++) {
		const struct family_def *d = &family_defs[i];
		char name[256];
		const char *labels[METRICS_MAX_LABELS];
		int n_labels = targeted(bm, i) ? names_with_target(bm, d->labels, d->n_labels, labels)
					       : (int)d->n_labels;
		struct metrics_family_opts o = {
		    .name = name,
		    .help = d->help,
		    .type = d->type,
		    .label_names = targeted(bm, i) ? labels : d->labels,
		    .n_labels = (unsigned)n_labels,
		    .buckets = d->buckets,
		    .n_buckets = d->n_buckets,
		    .max_series = bm->max_series,
		};
		int err;

		if (n_labels < 0)
			return -EINVAL;
		if (d->raw_name)
			snprintf(name, sizeof(name), "%s", d->suffix);
		else if (snprintf(name, sizeof(name), "%s_%s", ns, d->suffix) >= (int)sizeof(name))
			return -EINVAL;
		err = metrics_family_register(bm->reg, &o, &bm->fam[i]);
		if (err)
			return err;
	}
	/* The levels an alert watches exist from the start at 0, so that rate() has a series.
	 * With target labels the targets are not known yet: each target's levels appear with its
	 * first Sentry item (sentry_item). */
	for (unsigned i = 0; i < sizeof(sentry_levels) / sizeof(sentry_levels[0]); i++)
		if (!targeted(bm, BM_SENTRY_ERRORS))
			metrics_add(bm->fam[BM_SENTRY_ERRORS], &sentry_levels[i], 0);
	return 0;
}

struct business_metrics *business_metrics_new(struct metrics_registry *reg,
					      const struct business_metrics_config *cfg)
{
	struct business_metrics *bm;
	int err;

	if (!reg) {
		errno = EINVAL;
		return NULL;
	}
	bm = calloc(1, sizeof(*bm));
	if (!bm)
		return NULL;
	bm->reg = reg;
	bm->max_series = cfg && cfg->max_label_values ? cfg->max_label_values : 0;
	if (cfg && cfg->label_namespace)
		bm->target_labels[bm->n_target_labels++] = "namespace";
	if (cfg && cfg->label_workload)
		bm->target_labels[bm->n_target_labels++] = "workload";
	err = register_families(bm, cfg && cfg->namespace ? cfg->namespace : "direct_fan");
	if (err) {
		free(bm);
		errno = -err;
		return NULL;
	}
	return bm;
}

void business_metrics_free(struct business_metrics *bm)
{
	/* The families belong to the registry. */
	free(bm);
}

uint64_t business_metrics_rejected(const struct business_metrics *bm)
{
	return bm ? bm->rejected : 0;
}

const char *biz_event_label(const struct business_event *ev, const char *name)
{
	for (unsigned i = 0; i < ev->n_labels && i < BIZ_EVENT_MAX_LABELS; i++) {
		if (ev->labels[i].name && !strcmp(ev->labels[i].name, name))
			return ev->labels[i].value;
	}
	return NULL;
}

/* The i-th label's value; "" when the producer sent fewer. */
static const char *label_at(const struct business_event *ev, unsigned i)
{
	return i < ev->n_labels && ev->labels[i].value ? ev->labels[i].value : "";
}

/* Finds or registers the family a rule declares. NULL when a family of that name exists with
 * another shape (a rule may not take over a Stripe family or a differently labelled one). */
static struct metrics_family *rule_family(struct business_metrics *bm,
					  const struct biz_metric_spec *spec)
{
	struct rule_family_slot *slot =
	    &bm->cache[((uintptr_t)spec >> 4) % RULE_CACHE_SLOTS];
	const char *labels[METRICS_MAX_LABELS];
	int n_labels = spec->n_labels > METRICS_MAX_LABELS
			   ? -1
			   : names_with_target(bm, spec->label_names, spec->n_labels, labels);
	struct metrics_family_opts o = {
	    .name = spec->name,
	    .help = spec->help ? spec->help : "Business events of a rule.",
	    .type = spec->type,
	    .label_names = labels,
	    .n_labels = (unsigned)n_labels,
	    .buckets = spec->buckets,
	    .n_buckets = spec->n_buckets,
	    .max_series = spec->max_series ? spec->max_series : bm->max_series,
	};
	struct metrics_family *f;
	int err;

	if (n_labels < 0)
		return NULL; /* its labels and the target's do not fit together */
	if (slot->spec == spec && metrics_family_matches(slot->family, &o))
		return slot->family;
	err = metrics_family_register(bm->reg, &o, &f);
	if (err == -EEXIST) {
		/* Another rule (or a reload) declared it: reuse it if it has this rule's shape. */
		f = metrics_registry_find(bm->reg, spec->name);
		if (!metrics_family_matches(f, &o))
			f = NULL;
	} else if (err) {
		f = NULL;
	}
	slot->spec = f ? spec : NULL;
	slot->family = f;
	return f;
}

int business_metrics_declare(struct business_metrics *bm, const struct biz_metric_spec *spec)
{
	if (!bm || !spec)
		return -EINVAL;
	return rule_family(bm, spec) ? 0 : -EEXIST;
}

static void rule_event(struct business_metrics *bm, const struct business_event *ev)
{
	const struct biz_metric_spec *spec = ev->metric;
	const char *own[METRICS_MAX_LABELS], *values[METRICS_MAX_LABELS];
	struct metrics_family *f;

	if (!spec)
		return;
	f = rule_family(bm, spec);
	if (!f || spec->n_labels + bm->n_target_labels > METRICS_MAX_LABELS) {
		bm->rejected++;
		return;
	}
	for (unsigned i = 0; i < spec->n_labels; i++)
		own[i] = label_at(ev, i);
	values_with_target(bm, ev, own, spec->n_labels, values);
	if (spec->type == METRICS_HISTOGRAM) {
		if (ev->has_value)
			metrics_observe(f, values, ev->value);
	} else {
		metrics_inc(f, values);
	}
}

static void payment_attempt(struct business_metrics *bm, const struct business_event *ev)
{
	const char *status = label_at(ev, 0);
	const char *attempt[] = {status, label_at(ev, 1)};

	bm_inc(bm, BM_ATTEMPTS, ev, attempt);
	if (!strcmp(status, "failed")) {
		const char *failure[] = {label_at(ev, 2), label_at(ev, 3)};

		bm_inc(bm, BM_FAILURES, ev, failure);
	} else if (!strcmp(status, "succeeded") && ev->has_value) {
		bm_observe(bm, BM_AMOUNTS, ev, attempt + 1, ev->value);
	}
}

/* labels: type, level, outcome, reason (business_event.h). */
static void sentry_item(struct business_metrics *bm, const struct business_event *ev)
{
	const char *type = label_at(ev, 0);

	/* A target's alert-watched levels exist at 0 from its first item on (register_families). */
	for (unsigned i = 0; targeted(bm, BM_SENTRY_ERRORS) &&
			     i < sizeof(sentry_levels) / sizeof(sentry_levels[0]);
	     i++)
		bm_add(bm, BM_SENTRY_ERRORS, ev, &sentry_levels[i], 0);
	if (strcmp(label_at(ev, 2), "accepted")) {
		const char *rejected[] = {type, label_at(ev, 3)};

		bm_inc(bm, BM_SENTRY_REJECTED, ev, rejected);
	} else if (!strcmp(type, "event")) {
		const char *level[] = {label_at(ev, 1)};

		bm_inc(bm, BM_SENTRY_ERRORS, ev, level);
	} else {
		bm_inc(bm, BM_SENTRY_ITEMS, ev, &type);
	}
}

void business_metrics_on_event(const struct business_event *ev, void *ctx)
{
	struct business_metrics *bm = ctx;
	const char *l0 = label_at(ev, 0);
	const char *first[] = {l0, label_at(ev, 1), label_at(ev, 2)};

	if (!bm || !ev)
		return;
	if (ev->name) {
		const char *name[] = {ev->name};

		bm_inc(bm, BM_EVENTS, ev, name);
	}
	switch (ev->kind) {
	case BIZ_PAYMENT_ATTEMPT:
		payment_attempt(bm, ev);
		break;
	case BIZ_PAYMENT_LATE_SUCCESS:
		if (ev->has_value)
			bm_observe(bm, BM_AMOUNTS, ev, first, ev->value);
		break;
	case BIZ_SUBSCRIPTION_CREATED:
		bm_inc(bm, BM_SUBS_CREATED, ev, NULL);
		break;
	case BIZ_SUBSCRIPTION_CANCELED:
		bm_inc(bm, BM_SUBS_CANCELED, ev, NULL);
		break;
	case BIZ_MRR:
		metrics_set(bm->fam[BM_MRR], first, ev->value);
		break;
	case BIZ_REFUND:
		bm_inc(bm, BM_REFUNDS, ev, first);
		bm_add(bm, BM_REFUND_AMOUNT, ev, first, ev->value);
		break;
	case BIZ_DISPUTE:
		bm_inc(bm, BM_DISPUTES, ev, NULL);
		break;
	case BIZ_WEBHOOK_DELIVERY:
		bm_inc(bm, BM_WEBHOOKS, ev, first);
		break;
	case BIZ_STRIPE_API_REQUEST:
		bm_inc(bm, BM_API_REQUESTS, ev, first);
		bm_observe(bm, BM_API_DURATION, ev, first, ev->value);
		break;
	case BIZ_STRIPE_TRUNCATED:
		bm_inc(bm, BM_TRUNCATED, ev, first);
		break;
	case BIZ_PAYMENTS_PENDING:
		metrics_set(bm->fam[BM_PENDING], first, ev->value);
		break;
	case BIZ_RULE_EVENT:
		rule_event(bm, ev);
		break;
	case BIZ_SENTRY_ITEM:
		sentry_item(bm, ev);
		break;
	case BIZ_SENTRY_UNREADABLE:
		bm_inc(bm, BM_SENTRY_UNREADABLE, ev, first);
		break;
	case BIZ_RULE_FAILURE:
		break; /* for the Sentry reporter only */
	}
}
