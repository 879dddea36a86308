// SPDX-License-Identifier: MIT
/*
 * Stripe semantics: outbound API exchanges, object dispatch, refunds and disputes. Payments live in
 * stripe_payments.c, subscriptions in stripe_subscriptions.c, webhooks in webhook.c.
 *
 * Event labels never carry ids, e-mails, keys or card data: only status words, ISO currencies,
 * Stripe error codes (charset- and length-checked), event types from a fixed list, templated
 * endpoints and HTTP methods/codes. Users are pseudonyms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stripe_internal.h"

#define STRIPE_DEFAULT_HOST "api.stripe.com"

static const char *const default_user_keys[] = {"fan_id", "user_id", "userId"};

struct stripe_semantics *stripe_semantics_new(const struct biz_event_sink *sink,
					      const struct stripe_config *cfg)
{
	static const struct stripe_config defaults = {0};
	const char *const *user_keys;
	struct stripe_semantics *s;
	unsigned tracked, max_subs;
	int err = -ENOMEM;

	if (!sink || !sink->fn) {
		errno = EINVAL;
		return NULL;
	}
	if (!cfg)
		cfg = &defaults;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->sink = *sink;
	s->pseudonymizer = cfg->pseudonymizer;
	s->untracked_users = cfg->untracked_users;
	user_keys = cfg->user_keys ? cfg->user_keys : default_user_keys;
	s->n_user_keys = cfg->user_keys ? cfg->n_user_keys
					: sizeof(default_user_keys) / sizeof(default_user_keys[0]);
	s->user_keys = calloc(s->n_user_keys + 1, sizeof(char *));
	s->hosts = calloc(cfg->n_extra_hosts + 1, sizeof(char *));
	if (!s->hosts || !s->user_keys)
		goto fail;
	for (unsigned i = 0; i < s->n_user_keys; i++) {
		s->user_keys[i] = strdup(user_keys[i] ? user_keys[i] : "");
		if (!s->user_keys[i])
			goto fail;
	}
	s->hosts[s->n_hosts++] = strdup(STRIPE_DEFAULT_HOST);
	for (unsigned i = 0; i < cfg->n_extra_hosts; i++)
		s->hosts[s->n_hosts++] = strdup(cfg->extra_hosts[i] ? cfg->extra_hosts[i] : "");
	for (unsigned i = 0; i < s->n_hosts; i++) {
		if (!s->hosts[i])
			goto fail;
	}
	if (cfg->webhook_secret && *cfg->webhook_secret) {
		s->webhook_secret = strdup(cfg->webhook_secret);
		s->webhook_mac = webhook_mac_new(cfg->webhook_secret);
		if (!s->webhook_secret || !s->webhook_mac)
			goto fail;
	}
	s->tolerance_s = cfg->webhook_tolerance_s ? cfg->webhook_tolerance_s : 300;
	s->action_timeout_s = cfg->action_timeout_s ? cfg->action_timeout_s : 3600;
	s->processing_timeout_s = cfg->processing_timeout_s ? cfg->processing_timeout_s : 3 * 86400;
	tracked = cfg->max_tracked ? cfg->max_tracked : 65536;
	max_subs = cfg->max_subscriptions ? cfg->max_subscriptions : 262144;

	s->events = stripe_lru_new(tracked, 1, NULL, NULL, cfg->id_key);
	s->attempts_seen = stripe_lru_new(tracked, 1, NULL, NULL, cfg->id_key);
	s->intents =
	    stripe_lru_new(tracked, stripe_intent_size(), stripe_intent_evicted, s, cfg->id_key);
	s->subs = stripe_lru_new(max_subs, stripe_subscription_size(), stripe_subscription_evicted,
				 s, cfg->id_key);
	s->refunds_seen = stripe_lru_new(tracked, 1, NULL, NULL, cfg->id_key);
	s->disputes_seen = stripe_lru_new(tracked, 1, NULL, NULL, cfg->id_key);
	s->doc = json_doc_new();
	if (!s->events || !s->attempts_seen || !s->intents || !s->subs || !s->refunds_seen ||
	    !s->disputes_seen || !s->doc)
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
	stripe_lru_free(s->events);
	stripe_lru_free(s->attempts_seen);
	stripe_lru_free(s->intents);
	stripe_lru_free(s->subs);
	stripe_lru_free(s->refunds_seen);
	stripe_lru_free(s->disputes_seen);
	json_doc_free(s->doc);
	if (s->hosts) {
		for (unsigned i = 0; i < s->n_hosts; i++)
			free(s->hosts[i]);
	}
	free(s->hosts);
	if (s->user_keys) {
		for (unsigned i = 0; i < s->n_user_keys; i++)
			free(s->user_keys[i]);
	}
	free(s->user_keys);
	free(s->webhook_secret);
	keyed_mac_free(s->webhook_mac);
	free(s);
}

void stripe_refund_seen(struct stripe_semantics *s, struct json_val refund)
{
	const char *id = stripe_json_str(refund, "id");
	const char *status = stripe_json_str(refund, "status");
	const char *currency = stripe_json_str(refund, "currency");
	char cur[8], user[PSEUDONYM_LEN];
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
	stripe_emit(s, BIZ_REFUND, "refund", labels, 1, true,
		    stripe_amount_to_major(amount, currency),
		    stripe_object_user(s, refund, user) ? user : NULL);
}

void stripe_dispute_seen(struct stripe_semantics *s, struct json_val dispute)
{
	const char *id = stripe_json_str(dispute, "id");
	bool created;

	if (!id || !stripe_lru_put(s->disputes_seen, id, &created) || !created)
		return;
	stripe_emit(s, BIZ_DISPUTE, "dispute", NULL, 0, false, 0, NULL);
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
	bool write = strcmp(method, "GET") != 0;
	struct json_val body;

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
	stripe_emit(s, BIZ_STRIPE_API_REQUEST, NULL, req_labels, 3, true,
		    (double)ex->duration_ns / 1e9, NULL);

	if (ex->resp.body_truncated) {
		const char *labels[] = {"api"};

		s->stats.truncated++;
		stripe_emit(s, BIZ_STRIPE_TRUNCATED, NULL, labels, 1, false, 0, NULL);
		return;
	}
	if (json_doc_load(s->doc, ex->resp.body, ex->resp.body_len)) {
		if (ex->resp.body_len)
			s->stats.parse_errors++;
		return;
	}
	body = json_doc_root(s->doc);
	if (ex->status == 402) {
		const char *idem = stripe_header(&ex->req, "Idempotency-Key");

		req_cur[0] = '\0';
		if (!ex->req.body_truncated && ex->req.body)
			form_urlencoded_get((const char *)ex->req.body, ex->req.body_len,
					    "currency", req_cur, sizeof(req_cur));
		stripe_payment_error_seen(s, stripe_json_obj(body, "error"), idem,
					  req_cur[0] ? req_cur : NULL);
	} else if (ex->status >= 200 && ex->status <= 299) {
		dispatch(s, body, NULL,
			 write ? STRIPE_SRC_API_WRITE : STRIPE_SRC_API_READ,
			 !strcmp(method, "POST") && is_create(endpoint), !strcmp(method, "DELETE"));
	}
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

enum stripe_exchange_kind { STRIPE_EX_OTHER, STRIPE_EX_API, STRIPE_EX_WEBHOOK };

/* From the request alone, so that the HTTP stage can ask before the bodies arrive. */
static enum stripe_exchange_kind exchange_kind(const struct stripe_semantics *s,
					       const struct http_exchange *ex)
{
	if (ex->role == HTTP_ROLE_CLIENT && host_matches(s, ex->host))
		return STRIPE_EX_API;
	if (ex->role == HTTP_ROLE_SERVER && !strcasecmp(ex->method, "POST") &&
	    stripe_header(&ex->req, "Stripe-Signature"))
		return STRIPE_EX_WEBHOOK;
	return STRIPE_EX_OTHER;
}

bool stripe_semantics_wants_bodies(const struct stripe_semantics *s,
				   const struct http_exchange *head)
{
	return s && head && exchange_kind(s, head) != STRIPE_EX_OTHER;
}

void stripe_semantics_on_exchange(struct stripe_semantics *s, const struct http_exchange *ex,
				  time_t wall_now)
{
	if (!s || !ex)
		return;
	s->now = wall_now;
	switch (exchange_kind(s, ex)) {
	case STRIPE_EX_API:
		api_handle(s, ex);
		break;
	case STRIPE_EX_WEBHOOK:
		webhook_handle(s, ex);
		break;
	case STRIPE_EX_OTHER:
		break;
	}
	stripe_semantics_tick(s, wall_now);
}

void stripe_semantics_get_stats(const struct stripe_semantics *s, struct stripe_stats *out)
{
	*out = s->stats;
}
