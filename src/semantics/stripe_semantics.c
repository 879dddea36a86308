// SPDX-License-Identifier: MIT
/*
 * Stripe semantics: metric families, outbound API exchanges, object dispatch, refunds and
 * disputes. Payments live in stripe_payments.c, subscriptions in stripe_subscriptions.c,
 * webhooks in webhook.c.
 *
 * Labels never carry ids, e-mails, keys or card data: only status words, ISO currencies,
 * Stripe error codes (charset- and length-checked), event types from a fixed list, templated
 * endpoints and HTTP methods/codes, each family capped by max_label_values.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stripe_internal.h"

#define STRIPE_DEFAULT_HOST "api.stripe.com"

static const double amount_buckets[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
static const double duration_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct family_def {
	const char *suffix;
	const char *help;
	enum metrics_type type;
	const char *labels[3];
	unsigned n_labels;
	const double *buckets;
	unsigned n_buckets;
	size_t off;
	bool raw_name; /* not prefixed by the namespace */
};

#define OFF(field) offsetof(struct stripe_semantics, field)

static const struct family_def family_defs[] = {
    {"payment_attempts_total",
     "Payment attempts by final status, each attempt counted once.",
     METRICS_COUNTER,
     {"status", "currency"},
     2,
     NULL,
     0,
     OFF(attempts),
     false},
    {"payment_amounts",
     "Succeeded payment amounts in major currency units.",
     METRICS_HISTOGRAM,
     {"currency"},
     1,
     amount_buckets,
     sizeof(amount_buckets) / sizeof(double),
     OFF(amounts),
     false},
    {"payment_failures_total",
     "Failed payment attempts by Stripe error and decline code.",
     METRICS_COUNTER,
     {"code", "decline_code"},
     2,
     NULL,
     0,
     OFF(failures),
     false},
    {"subscriptions_created_total",
     "Subscriptions created.",
     METRICS_COUNTER,
     {0},
     0,
     NULL,
     0,
     OFF(subs_created),
     false},
    {"subscriptions_canceled_total",
     "Subscriptions canceled.",
     METRICS_COUNTER,
     {0},
     0,
     NULL,
     0,
     OFF(subs_canceled),
     false},
    {"subscription_revenue",
     "Monthly recurring revenue of active and past_due subscriptions seen, major units.",
     METRICS_GAUGE,
     {"currency"},
     1,
     NULL,
     0,
     OFF(mrr),
     false},
    {"refunds_total",
     "Succeeded refunds.",
     METRICS_COUNTER,
     {"currency"},
     1,
     NULL,
     0,
     OFF(refunds),
     false},
    {"refund_amount_total",
     "Refunded amount in major currency units.",
     METRICS_COUNTER,
     {"currency"},
     1,
     NULL,
     0,
     OFF(refund_amount),
     false},
    {"disputes_total", "Disputes opened.", METRICS_COUNTER, {0}, 0, NULL, 0, OFF(disputes), false},
    {"webhook_events_total",
     "Stripe webhook deliveries the app accepted, by event type and outcome.",
     METRICS_COUNTER,
     {"type", "outcome"},
     2,
     NULL,
     0,
     OFF(webhooks),
     false},
    {"stripe_api_requests_total",
     "Stripe API requests by endpoint, method and status code.",
     METRICS_COUNTER,
     {"endpoint", "method", "code"},
     3,
     NULL,
     0,
     OFF(api_requests),
     false},
    {"stripe_api_request_duration_seconds",
     "Stripe API request duration.",
     METRICS_HISTOGRAM,
     {"endpoint"},
     1,
     duration_buckets,
     sizeof(duration_buckets) / sizeof(double),
     OFF(api_duration),
     false},
    {"bizprobe_stripe_truncated_exchanges_total",
     "Stripe exchanges whose body was truncated and not interpreted.",
     METRICS_COUNTER,
     {"source"},
     1,
     NULL,
     0,
     OFF(truncated),
     true},
};

static int register_families(struct stripe_semantics *s, unsigned max_series)
{
	for (size_t i = 0; i < sizeof(family_defs) / sizeof(family_defs[0]); i++) {
		const struct family_def *d = &family_defs[i];
		char name[256];
		struct metrics_family_opts o = {
		    .name = name,
		    .help = d->help,
		    .type = d->type,
		    .label_names = d->labels,
		    .n_labels = d->n_labels,
		    .buckets = d->buckets,
		    .n_buckets = d->n_buckets,
		    .max_series = max_series,
		};
		int err;

		if (d->raw_name)
			snprintf(name, sizeof(name), "%s", d->suffix);
		else if (snprintf(name, sizeof(name), "%s_%s", s->ns, d->suffix) >=
			 (int)sizeof(name))
			return -EINVAL;
		err = metrics_family_register(s->reg, &o,
					      (struct metrics_family **)((char *)s + d->off));
		if (err)
			return err;
	}
	return 0;
}

struct stripe_semantics *stripe_semantics_new(struct metrics_registry *reg,
					      const struct stripe_config *cfg)
{
	static const struct stripe_config defaults = {0};
	struct stripe_semantics *s;
	unsigned tracked, max_subs;
	int err = -ENOMEM;

	if (!reg) {
		errno = EINVAL;
		return NULL;
	}
	if (!cfg)
		cfg = &defaults;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->reg = reg;
	s->ns = strdup(cfg->namespace ? cfg->namespace : "direct_fan");
	s->hosts = calloc(cfg->n_extra_hosts + 1, sizeof(char *));
	if (!s->ns || !s->hosts)
		goto fail;
	s->hosts[s->n_hosts++] = strdup(STRIPE_DEFAULT_HOST);
	for (unsigned i = 0; i < cfg->n_extra_hosts; i++)
		s->hosts[s->n_hosts++] = strdup(cfg->extra_hosts[i] ? cfg->extra_hosts[i] : "");
	for (unsigned i = 0; i < s->n_hosts; i++) {
		if (!s->hosts[i])
			goto fail;
	}
	if (cfg->webhook_secret && *cfg->webhook_secret) {
		s->webhook_secret = strdup(cfg->webhook_secret);
		if (!s->webhook_secret)
			goto fail;
	}
	s->tolerance_s = cfg->webhook_tolerance_s ? cfg->webhook_tolerance_s : 300;
	s->action_timeout_s = cfg->action_timeout_s ? cfg->action_timeout_s : 3600;
	s->processing_timeout_s = cfg->processing_timeout_s ? cfg->processing_timeout_s : 3 * 86400;
	tracked = cfg->max_tracked ? cfg->max_tracked : 65536;
	max_subs = cfg->max_subscriptions ? cfg->max_subscriptions : 262144;

	s->events = stripe_lru_new(tracked, 1, NULL, NULL);
	s->attempts_seen = stripe_lru_new(tracked, 1, NULL, NULL);
	s->intents = stripe_lru_new(tracked, stripe_intent_size(), stripe_intent_evicted, s);
	s->subs =
	    stripe_lru_new(max_subs, stripe_subscription_size(), stripe_subscription_evicted, s);
	s->refunds_seen = stripe_lru_new(tracked, 1, NULL, NULL);
	s->disputes_seen = stripe_lru_new(tracked, 1, NULL, NULL);
	if (!s->events || !s->attempts_seen || !s->intents || !s->subs || !s->refunds_seen ||
	    !s->disputes_seen)
		goto fail;
	err = register_families(s, cfg->max_label_values);
	if (err)
		goto fail;
	return s;
fail:
	stripe_semantics_free(s);
	errno = -err;
	return NULL;
}

void stripe_semantics_free(struct stripe_semantics *s)
{
	if (!s)
		return;
	/* The families belong to the registry; only our tables go. */
	stripe_lru_free(s->events);
	stripe_lru_free(s->attempts_seen);
	stripe_lru_free(s->intents);
	stripe_lru_free(s->subs);
	stripe_lru_free(s->refunds_seen);
	stripe_lru_free(s->disputes_seen);
	if (s->hosts) {
		for (unsigned i = 0; i < s->n_hosts; i++)
			free(s->hosts[i]);
	}
	free(s->hosts);
	free(s->webhook_secret);
	free(s->ns);
	free(s);
}

void stripe_refund_seen(struct stripe_semantics *s, struct json_val refund)
{
	const char *id = stripe_json_str(refund, "id");
	const char *status = stripe_json_str(refund, "status");
	const char *currency = stripe_json_str(refund, "currency");
	char cur[8];
	const char *labels[] = {cur};
	int64_t amount;
	bool created;

	/* Pending refunds may still fail; they count when seen succeeded (refund.updated). */
	if (!id || !status || strcmp(status, "succeeded") ||
	    !stripe_json_int(refund, "amount", &amount) || amount < 0)
		return;
	if (!stripe_lru_put(s->refunds_seen, id, &created) || !created)
		return;
	stripe_currency_label(currency, cur, sizeof(cur));
	metrics_inc(s->refunds, labels);
	metrics_add(s->refund_amount, labels, stripe_amount_to_major(amount, currency));
}

void stripe_dispute_seen(struct stripe_semantics *s, struct json_val dispute)
{
	const char *id = stripe_json_str(dispute, "id");
	bool created;

	if (!id || !stripe_lru_put(s->disputes_seen, id, &created) || !created)
		return;
	metrics_inc(s->disputes, NULL);
}

/* A charge.refunded event carries the refunds in charge.refunds.data (when the account's API
 * version still embeds them; newer versions send refund.created instead). */
static void charge_refunds_seen(struct stripe_semantics *s, struct json_val charge)
{
	struct json_val data = stripe_json_array(stripe_json_obj(charge, "refunds"), "data");

	for (struct json_val r = json_first(data); json_present(r); r = json_next(data, r))
		stripe_refund_seen(s, r);
}

static void dispatch(struct stripe_semantics *s, struct json_val obj, const char *event_type,
		     enum stripe_source src, bool created, bool deleted)
{
	const char *kind = stripe_json_str(obj, "object");

	if (!kind)
		return;
	if (!strcmp(kind, "payment_intent")) {
		stripe_payment_intent_seen(s, obj, src);
	} else if (!strcmp(kind, "subscription")) {
		stripe_subscription_seen(s, obj, src, created, deleted);
	} else if (!strcmp(kind, "refund")) {
		if (src != STRIPE_SRC_API_READ)
			stripe_refund_seen(s, obj);
	} else if (!strcmp(kind, "charge")) {
		if (src != STRIPE_SRC_API_READ)
			charge_refunds_seen(s, obj);
	} else if (!strcmp(kind, "dispute")) {
		/* Only Stripe opens disputes; the app learns of them by this event. */
		if (event_type && !strcmp(event_type, "charge.dispute.created"))
			stripe_dispute_seen(s, obj);
	} else if (!strcmp(kind, "list") && src == STRIPE_SRC_API_READ) {
		struct json_val data = stripe_json_array(obj, "data");

		/* Listing subscriptions refreshes MRR state; lists are never events. */
		for (struct json_val o = json_first(data); json_present(o);
		     o = json_next(data, o)) {
			const char *k = stripe_json_str(o, "object");

			if (k && !strcmp(k, "subscription"))
				stripe_subscription_seen(s, o, src, false, false);
		}
	}
}

void stripe_object_dispatch(struct stripe_semantics *s, struct json_val obj, const char *event_type,
			    enum stripe_source src)
{
	bool created = event_type && !strcmp(event_type, "customer.subscription.created");
	bool deleted = event_type && !strcmp(event_type, "customer.subscription.deleted");

	dispatch(s, obj, event_type, src, created, deleted);
}

static bool host_matches(const struct stripe_semantics *s, const char *host)
{
	size_t len;

	if (!host || !*host)
		return false;
	len = strcspn(host, ":"); /* api.stripe.com:443 */
	for (unsigned i = 0; i < s->n_hosts; i++) {
		if (strlen(s->hosts[i]) == len && !strncasecmp(host, s->hosts[i], len))
			return true;
	}
	return false;
}

static const char *method_label(const char *m)
{
	static const char *const known[] = {"GET", "POST", "DELETE", "PUT", "PATCH"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (!strcasecmp(m, known[i]))
			return known[i];
	}
	return "OTHER";
}

/* POST to a collection (/v1/subscriptions, not /v1/subscriptions/{id}) creates an object. */
static bool is_create(const char *endpoint)
{
	const char *last = strrchr(endpoint, '/');

	return last && last != endpoint && strncmp(endpoint, "/v1/", 4) == 0 &&
	       !strchr(endpoint + 4, '/');
}

static void api_handle(struct stripe_semantics *s, const struct http_exchange *ex)
{
	char endpoint[128], code[8], req_cur[8];
	const char *method = method_label(ex->method);
	const char *req_labels[] = {endpoint, method, code};
	const char *dur_labels[] = {endpoint};
	bool write = strcmp(method, "GET") != 0;
	struct json_doc *body;

	s->stats.api_exchanges++;
	stripe_endpoint_template(ex->path ? ex->path : ex->target, endpoint, sizeof(endpoint));
	/* Three digits written by hand: a snprintf per exchange showed in profiles. */
	if (ex->status >= 100 && ex->status <= 599) {
		code[0] = (char)('0' + ex->status / 100);
		code[1] = (char)('0' + ex->status / 10 % 10);
		code[2] = (char)('0' + ex->status % 10);
		code[3] = '\0';
	} else {
		memcpy(code, "other", sizeof("other"));
	}
	metrics_inc(s->api_requests, req_labels);
	metrics_observe(s->api_duration, dur_labels, (double)ex->duration_ns / 1e9);

	if (ex->resp.body_truncated) {
		const char *labels[] = {"api"};

		s->stats.truncated++;
		metrics_inc(s->truncated, labels);
		return;
	}
	body = json_doc_parse(ex->resp.body, ex->resp.body_len);
	if (!body) {
		if (ex->resp.body_len)
			s->stats.parse_errors++;
		return;
	}
	if (ex->status == 402) {
		const char *idem = stripe_header(&ex->req, "Idempotency-Key");

		req_cur[0] = '\0';
		if (!ex->req.body_truncated && ex->req.body)
			form_urlencoded_get((const char *)ex->req.body, ex->req.body_len, "currency",
					req_cur, sizeof(req_cur));
		stripe_payment_error_seen(s, stripe_json_obj(json_doc_root(body), "error"), idem,
					  req_cur[0] ? req_cur : NULL);
	} else if (ex->status >= 200 && ex->status <= 299) {
		dispatch(s, json_doc_root(body), NULL,
			 write ? STRIPE_SRC_API_WRITE : STRIPE_SRC_API_READ,
			 !strcmp(method, "POST") && is_create(endpoint), !strcmp(method, "DELETE"));
	}
	json_doc_free(body);
}

void stripe_semantics_tick(struct stripe_semantics *s, time_t wall_now)
{
	if (!s)
		return;
	s->now = wall_now;
	/* A full sweep per second at most: the intents table can hold many entries. */
	if (s->last_sweep && wall_now >= s->last_sweep && wall_now - s->last_sweep < 1)
		return;
	s->last_sweep = wall_now;
	stripe_payments_expire(s, false);
}

void stripe_semantics_flush(struct stripe_semantics *s)
{
	if (s)
		stripe_payments_expire(s, true);
}

void stripe_semantics_on_exchange(struct stripe_semantics *s, const struct http_exchange *ex,
				  time_t wall_now)
{
	if (!s || !ex)
		return;
	s->now = wall_now;
	if (ex->role == HTTP_ROLE_CLIENT && host_matches(s, ex->host))
		api_handle(s, ex);
	else if (ex->role == HTTP_ROLE_SERVER && !strcasecmp(ex->method, "POST") &&
		 stripe_header(&ex->req, "Stripe-Signature"))
		webhook_handle(s, ex);
	stripe_semantics_tick(s, wall_now);
}

void stripe_semantics_get_stats(const struct stripe_semantics *s, struct stripe_stats *out)
{
	*out = s->stats;
}
