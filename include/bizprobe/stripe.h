/* SPDX-License-Identifier: MIT */
/*
 * Stripe semantics (src/semantics/): turns HTTP exchanges with api.stripe.com (outbound) and
 * Stripe webhook deliveries (inbound) into business events (bizprobe/business_event.h), each
 * business fact emitted once however many ways it is observed.
 */
#ifndef BIZPROBE_STRIPE_H
#define BIZPROBE_STRIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bizprobe/http_exchange.h"
#include "bizprobe/business_event.h"
#include "bizprobe/identity.h"

struct stripe_config {
	const char *const *extra_hosts; /* besides api.stripe.com, compared without port */
	unsigned n_extra_hosts;
	const char *webhook_secret;   /* whsec_...; NULL: signatures are not verified */
	unsigned webhook_tolerance_s; /* 0: 300, Stripe's default */
	/* An attempt seen only in requires_action / processing is counted with that status
	 * once it has not resolved for this long (see stripe_payments.c). 0: defaults. */
	unsigned action_timeout_s;     /* 0: 3600 */
	unsigned processing_timeout_s; /* 0: 3 days */
	unsigned max_tracked;	    /* ids remembered per kind (events, charges, ...); 0: 65536 */
	unsigned max_subscriptions; /* subscriptions whose MRR is tracked; 0: 262144 */
	/* Who a payment or subscription is about: the first of these metadata keys that is set
	 * (NULL: fan_id, user_id, userId), pseudonymized; subscriptions are pseudonymized too (the
	 * state stage keys them). NULL pseudonymizer: events carry neither. untracked_users:
	 * ENABLE_USER_TRACKING=false, users are not read, subscriptions still are. */
	const struct pseudonymizer *pseudonymizer;
	bool untracked_users;
	const char *const *user_keys;
	unsigned n_user_keys;
	/* Key of the digests that stand for Stripe ids in the stage's tables (STRIPE_ID_KEY_LEN
	 * bytes): a key that lasts across restarts lets a snapshot be restored; NULL: one drawn
	 * for the process. */
	const uint8_t *id_key;
};

#define STRIPE_ID_KEY_LEN 32

/* Not thread-safe: feed it from one thread (the main loop). */
struct stripe_semantics;

/* Events go to sink (copied; its ctx must outlive s). cfg may be NULL for defaults. Returns NULL
 * on invalid configuration or allocation failure (errno set). */
struct stripe_semantics *stripe_semantics_new(const struct biz_event_sink *sink,
					      const struct stripe_config *cfg);
void stripe_semantics_free(struct stripe_semantics *s);

/* Whether stripe_semantics_on_exchange reads the bodies of the exchange that head begins (its
 * request's head, as http_body_filter_cb sees it): Stripe API calls and webhook deliveries. */
bool stripe_semantics_wants_bodies(const struct stripe_semantics *s,
				   const struct http_exchange *head);

/* Feeds one exchange. wall_now is the wall-clock time (seconds since the epoch) used for
 * webhook timestamp tolerance and pending-attempt timeouts; ex->ts are CLOCK_MONOTONIC.
 * Exchanges that are neither Stripe API calls nor webhook deliveries are ignored. */
void stripe_semantics_on_exchange(struct stripe_semantics *s, const struct http_exchange *ex,
				  time_t wall_now);

/* Counts pending attempts whose timeout has passed; call periodically (on_exchange also does). */
void stripe_semantics_tick(struct stripe_semantics *s, time_t wall_now);

/* Counts every pending attempt now with its pending status (shutdown, tests). */
void stripe_semantics_flush(struct stripe_semantics *s);

/*
 * What the stage remembers (webhook evt_ ids and attempts counted, for dedupe; payment intents
 * pending; subscriptions and their MRR; refunds, disputes), as a malloc'd byte string for the
 * state store. Stripe ids appear in it only as digests under cfg.id_key, never as text.
 * restore adds a snapshot to a fresh stage made with the same id_key (restoring into one that
 * has seen traffic keeps what it has for the same ids) and emits the MRR and pending gauges
 * again. Returns 0, -ENOMEM; restore -EPROTO for a snapshot of another format (not restored).
 */
int stripe_semantics_snapshot(const struct stripe_semantics *s, void **data, size_t *len);
int stripe_semantics_restore(struct stripe_semantics *s, const void *data, size_t len);

/* Diagnostics (not exported as business metrics). */
struct stripe_stats {
	uint64_t api_exchanges;
	uint64_t webhook_exchanges;
	uint64_t truncated;	/* exchanges whose body was cut: counted, bodies not trusted */
	uint64_t parse_errors;	/* bodies that were not the JSON expected */
	uint64_t pending;	/* attempts currently awaiting a terminal status */
	uint64_t subscriptions; /* subscriptions currently contributing to MRR */
	/* Paying subscriptions evicted from a full table (max_subscriptions): their MRR left the
	 * gauge though they may still pay. */
	uint64_t subscriptions_evicted;
};
void stripe_semantics_get_stats(const struct stripe_semantics *s, struct stripe_stats *out);

/*
 * Helpers, visible for tests.
 */

/* Verifies a Stripe-Signature header ("t=...,v1=...,v1=...") over the raw body: some v1 must be
 * hex HMAC-SHA256(secret, "<t>.<body>") and |now - t| <= tolerance_s. Returns 0, -EINVAL
 * (malformed header), -EPERM (no signature matches), -ETIMEDOUT (timestamp out of tolerance). */
int webhook_verify_signature(const char *header, const uint8_t *body, size_t body_len,
			     const char *secret, time_t now, unsigned tolerance_s);

/* Writes the endpoint label for a request path: ids templated as {id}, query dropped,
 * anything unexpected folded to "other". */
void stripe_endpoint_template(const char *path, char *out, size_t size);

/* Minor units to major units for an ISO currency (case-insensitive): zero-decimal currencies
 * (JPY, KRW, ...) unchanged, three-decimal ones (KWD, ...) / 1000, others / 100. */
double stripe_amount_to_major(int64_t minor, const char *currency);

#endif
