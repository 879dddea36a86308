/* SPDX-License-Identifier: MIT */
/* Private to src/semantics/: the Stripe state shared by its files. */
#ifndef BIZPROBE_STRIPE_INTERNAL_H
#define BIZPROBE_STRIPE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "bizprobe/metrics.h"
#include "bizprobe/stripe.h"
#include "bizprobe/form.h"
#include "bizprobe/json_view.h"
#include "bizprobe/keyed_mac.h"

/*
 * Bounded map from string ids to fixed-size values, least recently used evicted first.
 */
struct stripe_lru;
typedef void (*stripe_lru_evict_cb)(void *value, void *ctx);

/* key: the 32-byte key of the id digests (STRIPE_ID_KEY_LEN); NULL: one drawn for the process,
 * so that nothing exported can be imported by another process. */
struct stripe_lru *stripe_lru_new(unsigned capacity, size_t value_size, stripe_lru_evict_cb cb,
				  void *ctx, const uint8_t *key);
/* Frees without calling the eviction callback. */
void stripe_lru_free(struct stripe_lru *l);
/* Value of key (marked most recently used) or NULL. */
void *stripe_lru_get(struct stripe_lru *l, const char *key);
/* Value of key, created zero-filled (evicting the oldest entry if full) when absent; *created
 * says which. NULL on allocation failure. */
void *stripe_lru_put(struct stripe_lru *l, const char *key, bool *created);
void stripe_lru_remove(struct stripe_lru *l, const char *key);
unsigned stripe_lru_size(const struct stripe_lru *l);
/* Calls fn on each entry, oldest first; fn returns true to remove the entry (after the call). */
void stripe_lru_sweep(struct stripe_lru *l, bool (*fn)(void *value, void *ctx), void *ctx);
/* The entries as (digest, value) records, oldest first, into out (export_size bytes); import
 * adds such records (entries already present keep their value; the table's capacity and
 * eviction apply). Values are copied as bytes: only for plain structs without pointers. */
size_t stripe_lru_export_size(const struct stripe_lru *l);
size_t stripe_lru_export(const struct stripe_lru *l, uint8_t *out);
int stripe_lru_import(struct stripe_lru *l, const uint8_t *in, size_t len);

/* Payment attempt statuses, the values of the status label. */
enum stripe_attempt_status {
	STRIPE_ATTEMPT_NONE = 0, /* not an attempt (created, awaiting payment method) */
	STRIPE_ATTEMPT_SUCCEEDED,
	STRIPE_ATTEMPT_FAILED,
	STRIPE_ATTEMPT_REQUIRES_ACTION,
	STRIPE_ATTEMPT_PROCESSING,
	STRIPE_ATTEMPT_CANCELED,
};

/* Where an observation came from; decides whether it may start a new attempt. */
enum stripe_source {
	STRIPE_SRC_API_WRITE, /* response to POST/DELETE */
	STRIPE_SRC_API_READ,  /* response to GET: state of the past, resolves only */
	STRIPE_SRC_WEBHOOK,
};

#define STRIPE_MAX_CURRENCIES 64

struct stripe_mrr_total {
	char currency[8];
	double sum; /* major units */
	int n;	    /* subscriptions contributing */
};

/* Attempts pending now in one status and currency (the payments_pending gauge). */
struct stripe_pending_total {
	uint8_t status; /* enum stripe_attempt_status */
	char currency[8];
	int64_t n;
};

struct stripe_semantics {
	struct biz_event_sink sink;
	char **hosts;
	unsigned n_hosts;
	char *webhook_secret;
	struct keyed_mac *webhook_mac; /* keyed with webhook_secret once (webhook.c) */
	unsigned tolerance_s;
	unsigned action_timeout_s;
	unsigned processing_timeout_s;
	time_t last_sweep;
	time_t now; /* wall_now of the exchange being handled */
	const struct pseudonymizer *pseudonymizer;
	bool untracked_users;
	char **user_keys;
	unsigned n_user_keys;

	struct stripe_lru *events;	  /* evt_ ids processed */
	struct stripe_lru *attempts_seen; /* attempt keys counted */
	struct stripe_lru *intents;	  /* pi_ ids: pending and final state */
	struct stripe_lru *subs;	  /* sub_ ids: MRR contribution, created/canceled flags */
	struct stripe_lru *refunds_seen;
	struct stripe_lru *disputes_seen;
	struct stripe_mrr_total mrr_totals[STRIPE_MAX_CURRENCIES];
	unsigned n_mrr_totals;
	struct stripe_pending_total pending_totals[2 * STRIPE_MAX_CURRENCIES];
	unsigned n_pending_totals;
	struct stripe_stats stats;
	/* The body being read (an API response or a webhook event), reused from one exchange to
	 * the next: one body at a time is ever parsed, and this way a parse allocates nothing. */
	struct json_doc *doc;
};


/* Members of a JSON object by type: NULL / false / absent when missing or of another type. */
const char *stripe_json_str(struct json_val o, const char *key);
bool stripe_json_int(struct json_val o, const char *key, int64_t *out);
struct json_val stripe_json_obj(struct json_val o, const char *key);
struct json_val stripe_json_array(struct json_val o, const char *key);
/* The id of a field that is either an id string or an expanded object with "id". */
const char *stripe_json_ref(struct json_val o, const char *key);

/* Emits one event of the semantics' own kinds (labels in the order business_event.h gives for
 * kind); user is a pseudonym or NULL. */
void stripe_emit(struct stripe_semantics *s, enum biz_event_kind kind, const char *name,
		 const char *const *values, unsigned n_values, bool has_value, double value,
		 const char *user);
/* The same with the object it is about (subject: a pseudonym, or NULL). */
void stripe_emit_about(struct stripe_semantics *s, enum biz_event_kind kind, const char *name,
		       const char *const *values, unsigned n_values, bool has_value, double value,
		       const char *user, const char *subject);
/* The pseudonym of the user a Stripe object's metadata names (the first configured key that is
 * a non-empty string) into out; false when none (or tracking is off). */
bool stripe_object_user(const struct stripe_semantics *s, struct json_val obj,
			char out[PSEUDONYM_LEN]);

/* Upper-case ISO code in out[4], or "other" when cur is not three ASCII letters. */
void stripe_currency_label(const char *cur, char *out, size_t size);
/* [a-z0-9_]{1,48} copied, else "other"; NULL or "" gives dflt. */
void stripe_code_label(const char *code, const char *dflt, char *out, size_t size);
/* The event type itself if it is a known Stripe type, else "other". */
const char *stripe_event_type_label(const char *type);
/* Minor units per major unit: 1 (zero-decimal), 1000 (three-decimal) or 100. */
double stripe_currency_divisor(const char *currency);

/* Payments (stripe_payments.c). */
void stripe_payment_intent_seen(struct stripe_semantics *s, struct json_val pi,
				enum stripe_source src);
/* A 402 response: error object with code, decline_code, charge, payment_intent. */
void stripe_payment_error_seen(struct stripe_semantics *s, struct json_val err,
			       const char *idempotency_key, const char *req_currency);
size_t stripe_intent_size(void);
void stripe_payments_expire(struct stripe_semantics *s, bool all);
void stripe_intent_evicted(void *value, void *ctx);
void stripe_payments_restored(struct stripe_semantics *s);

/* Subscriptions (stripe_subscriptions.c). */
void stripe_subscription_seen(struct stripe_semantics *s, struct json_val sub,
			      enum stripe_source src, bool created, bool deleted);
struct stripe_mrr_total *stripe_mrr_total(struct stripe_semantics *s, const char *cur);
size_t stripe_subscription_size(void);
double stripe_subscription_mrr_minor(struct json_val sub, bool *ok);
void stripe_subscription_evicted(void *value, void *ctx);
void stripe_subscriptions_restored(struct stripe_semantics *s);

/* Refunds and disputes (stripe_semantics.c). */
void stripe_refund_seen(struct stripe_semantics *s, struct json_val refund);
void stripe_dispute_seen(struct stripe_semantics *s, struct json_val dispute);

/* Webhooks (webhook.c). */
void webhook_handle(struct stripe_semantics *s, const struct http_exchange *ex);
/* HMAC-SHA256 keyed with a webhook secret, set up once; free it with keyed_mac_free. NULL when
 * OpenSSL fails. */
struct keyed_mac *webhook_mac_new(const char *secret);
/* webhook_verify_signature with a key set up by webhook_mac_new (NULL: -EINVAL). */
int webhook_verify_with(struct keyed_mac *mac, const char *header, const uint8_t *body,
			size_t body_len, time_t now, unsigned tolerance_s);
/* Dispatches a Stripe object (data.object of an event, or an API response body). */
void stripe_object_dispatch(struct stripe_semantics *s, struct json_val obj, const char *event_type,
			    enum stripe_source src);

/* Case-insensitive header lookup of this stage (src/http owns http_message_header; using our
 * own keeps the semantics stage testable and linkable alone). */
const char *stripe_header(const struct http_message *m, const char *name);

#endif
