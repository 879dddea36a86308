/* SPDX-License-Identifier: MIT */
/*
 * The Sentry reporter (src/export/sentry_reporter.c): failed business flows, as Sentry events
 * with the guide's business context, sent to bizprobe's own DSN (--sentry-dsn, or SENTRY_DSN in
 * bizprobe's environment). Input: business events (bizprobe/business_event.h), read with the
 * exchange they came from. Output: envelopes over HTTPS (libcurl), from a thread of its own.
 *
 * What is reported:
 *   - a Stripe API call that failed for another reason than a card decline (5xx, 429, 401, 403),
 *     once its final attempt is known: a retry under the same Idempotency-Key (the SDKs' way)
 *     within the retry window replaces it, and a retry that succeeds cancels it;
 *   - a Stripe webhook delivery that was rejected (the app answered non-2xx, or its signature
 *     did not verify);
 *   - the app's 5xx on a route a rule names as business (BIZ_RULE_FAILURE, the rules' sentry:).
 *
 * Each report's tags and context: businessEvent, funnel, component, feature, endpoint (a
 * template), method, status, error code and type, currency, amount band, user type, the user's
 * pseudonym (as user.id), source and platform; a fingerprint of flow and cause. Never a raw id,
 * an e-mail, a key, card data or a body: every value is a bounded word, a template or a number.
 *
 * Off the capture path: the main loop only formats a fixed-size record and queues it (bounded);
 * a token bucket limits the rate; Sentry's 429, Retry-After and X-Sentry-Rate-Limits stop every
 * send until they expire (nothing is retried, early or late). Every report not sent is counted
 * in bizprobe_sentry_reports_dropped_total{reason}.
 */
#ifndef BIZPROBE_SENTRY_REPORTER_H
#define BIZPROBE_SENTRY_REPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bizprobe/business_event.h"
#include "bizprobe/http_exchange.h"
#include "bizprobe/identity.h"
#include "bizprobe/metrics.h"

/* A DSN: scheme://public_key[:secret]@host[:port]/[path/]project_id. */
struct sentry_dsn {
	char url[512]; /* the envelope endpoint: scheme://host[:port]/[path/]api/ID/envelope/ */
	char public_key[128];
	char host[256]; /* host[:port], for messages */
};
/* 0 or -EINVAL. The key is kept in out only; wipe it (explicit_bzero) when done. */
int sentry_dsn_parse(const char *dsn, struct sentry_dsn *out);

/* What a send answered. status 0: no answer (connection or timeout). */
struct sentry_http_response {
	long status;
	char retry_after[64];
	char rate_limits[512];
};
/* Sends one envelope; 0 when an answer (any status) came, a negative errno otherwise. */
typedef int (*sentry_transport_fn)(void *ctx, const char *url, const char *auth_header,
				   const char *body, size_t len, struct sentry_http_response *resp);

struct sentry_reporter_config {
	const char *dsn;
	struct metrics_registry *reg; /* bizprobe_sentry_reports_* are registered there */
	/* Stripe metadata keys that name a payment's user (NULL: fan_id, user_id, userId), and
	 * the pseudonymizer (NULL: reports carry no user). */
	const struct pseudonymizer *pseudonymizer;
	const char *const *user_keys;
	unsigned n_user_keys;
	unsigned queue_len;	  /* reports waiting to be sent; 0: 64 */
	double rate_per_s;	  /* reports sent per second on average; 0: 1 */
	unsigned burst;		  /* ... and at once; 0: 10 */
	unsigned retry_window_ms; /* a failed Stripe call's retry is awaited this long; 0: 10000 */
	long timeout_ms;	  /* one send; 0: 5000 */
	const char *environment;  /* NULL: $SENTRY_ENVIRONMENT, else "production" */
	const char *release;	  /* NULL: "bizprobe@" BIZPROBE_VERSION of the caller */
	const char *version;	  /* bizprobe's version, for the sdk field; NULL: "0" */
	/* Tests: a transport instead of libcurl, and a clock (wall milliseconds). */
	sentry_transport_fn transport;
	void *transport_ctx;
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
};

struct sentry_reporter;

/* Starts the sending thread. NULL with a message in err on a bad DSN or out of memory. Create it
 * after blocking the stop signals (cli_block_stop_signals): the thread blocks them as well. */
struct sentry_reporter *sentry_reporter_new(const struct sentry_reporter_config *cfg, char *err,
					    size_t err_len);
/* Queues the Stripe failures still awaiting a retry, sends what the queue holds for up to
 * timeout_ms (what is left is dropped and counted: "shutdown"), stops the thread. NULL is fine. */
void sentry_reporter_free(struct sentry_reporter *r, unsigned timeout_ms);

/* The exchange whose events follow (until _end): the reporter reads it for what an event does
 * not carry (the cause of a failure, the request's currency, amount and user). */
void sentry_reporter_begin(struct sentry_reporter *r, const struct http_exchange *ex);
void sentry_reporter_end(struct sentry_reporter *r);
/* A business event sink (biz_event_sink_fn); ctx is the reporter (NULL: nothing). */
void sentry_reporter_on_event(const struct business_event *ev, void *ctx);
/* Queues the Stripe failures whose retry window passed. Call periodically (the tick). */
void sentry_reporter_tick(struct sentry_reporter *r);
/* Waits until the queue is empty and no send is in flight, up to timeout_ms (tests). 0 or
 * -ETIMEDOUT. */
int sentry_reporter_flush(struct sentry_reporter *r, unsigned timeout_ms);

struct sentry_reporter_stats {
	uint64_t queued, sent, dropped;
	uint64_t pending; /* Stripe failures awaiting their retry window */
};
void sentry_reporter_get_stats(struct sentry_reporter *r, struct sentry_reporter_stats *out);

/*
 * Formatting, visible for tests.
 */

/* One report: bounded words, templates and numbers only. */
struct sentry_report {
	char flow[24];		  /* stripe_api, stripe_webhook, business_route */
	char business_event[129]; /* payment_processing, the rule's name, ... */
	char component[65];
	char feature[65];
	char funnel[65];
	char endpoint[129]; /* a template */
	char method[8];
	int status;
	char error_code[49];   /* Stripe's error code, a webhook's cause; "" */
	char error_type[33];   /* Stripe's error type; "" */
	char webhook_type[64]; /* a known Stripe event type or "other"; "" */
	char currency[8];      /* ISO code upper case, "other" or "" */
	char amount_band[16];  /* "10-50", ... or "" */
	char user_type[65];
	char user[PSEUDONYM_LEN]; /* a pseudonym or "" */
	char source[16];	  /* api, webhook, server */
	char platform[16];	  /* the traced process's runtime: node, python, ..., other */
	unsigned attempts;	  /* Stripe: attempts of the call seen */
	uint64_t wall_ns;
};

/* The event's JSON (malloc'd, NUL-terminated) into *out. event_id: 32 hex digits. 0 or
 * -ENOMEM. */
int sentry_report_event_json(const struct sentry_report *rep, const char *event_id,
			     const char *release, const char *environment, const char *version,
			     char **out);
/* An envelope of one event item around json (malloc'd) into *out, *len. */
int sentry_envelope_build(const char *event_id, const char *json, uint64_t sent_at_ms,
			  const char *version, char **out, size_t *len);
/* When sends may resume after a response, in wall ms (0: not limited). The X-Sentry-Rate-Limits
 * entries that cover errors (categories empty, error or default) count; else Retry-After (delay
 * seconds or an HTTP date); a 429 without either: 60 s. Capped at a day. */
uint64_t sentry_rate_limited_until(const struct sentry_http_response *resp, uint64_t now_ms);
/* "0-1", "1-10", "10-50", "50-100", "100-500", "500-1000", "1000+" (major units). */
const char *sentry_amount_band(double major);
/* A path with its id-like segments as {id}: words of letters, '_' and '-' (up to 32) and
 * versions (v1, v2) stay, anything else becomes {id}; the query is dropped. */
void sentry_path_template(const char *path, char *out, size_t size);
/* The runtime of a traced process's comm: node, python, ruby, java, php, dotnet, go or
 * other. */
const char *sentry_platform_of_comm(const char *comm);

#endif
