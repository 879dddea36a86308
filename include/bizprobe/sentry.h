/* SPDX-License-Identifier: MIT */
/*
 * Sentry semantics (src/semantics/sentry*.c): the traced app's own Sentry SDK traffic, counted
 * without touching the app. Input: every HTTP exchange. Output: business events of kinds
 * BIZ_SENTRY_ITEM and BIZ_SENTRY_UNREADABLE (bizprobe/business_event.h), which the metrics stage
 * turns into sentry_errors_total{level} (the guide's name), bizprobe_sentry_items_total{type},
 * bizprobe_sentry_rejected_total{type,reason} and bizprobe_sentry_unreadable_envelopes_total.
 *
 * An exchange is Sentry traffic when the traced process sent it (client role), it is a POST to
 * Sentry's ingest (/api/{project}/envelope/, or the legacy /api/{project}/store/, under any path
 * prefix a self-hosted Sentry mounts it at), and its Host is *.sentry.io, one of the configured
 * hosts, or the host of the SENTRY_DSN / NEXT_PUBLIC_SENTRY_DSN in the sending process's own
 * environment (/proc/PID/environ, read once per process; only the host is kept).
 *
 * Auth (X-Sentry-Auth, or sentry_key in the query string) and the DSN's key are never read into
 * anything kept, printed or exported; nothing of a payload leaves but its item type and level.
 */
#ifndef BIZPROBE_SENTRY_H
#define BIZPROBE_SENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bizprobe/business_event.h"
#include "bizprobe/http_exchange.h"

/* Bounds: the body is hostile input. */
#define SENTRY_MAX_ITEMS       1000  /* items counted per envelope; more: the rest is malformed */
#define SENTRY_MAX_HEADER_LINE 16384 /* bytes of an envelope or item header line */
#define SENTRY_HOST_MAX	       256   /* a DSN host with its port, NUL included */

struct sentry_config {
	const char *const *extra_hosts; /* --sentry-host: besides *.sentry.io, port optional */
	unsigned n_extra_hosts;
	/* Where the traced processes' environments are read (NULL: "/proc"); tests point it at
	 * a directory of their own. */
	const char *proc_root;
	bool no_environ; /* do not read DSNs from the processes' environments */
};

struct sentry_stats {
	uint64_t exchanges;	 /* Sentry ingest exchanges seen */
	uint64_t items;		 /* items counted */
	uint64_t unreadable;	 /* envelopes not read to their end */
	uint64_t environ_reads;	 /* processes whose environment was read for a DSN */
	uint64_t environ_errors; /* environments that could not be read (permissions, exited) */
};

/* Not thread-safe: feed it from one thread (the main loop). */
struct sentry_semantics;

/* Events go to sink (copied; its ctx must outlive s). cfg may be NULL. NULL on allocation
 * failure or a bad host (errno set). */
struct sentry_semantics *sentry_semantics_new(const struct biz_event_sink *sink,
					      const struct sentry_config *cfg);
void sentry_semantics_free(struct sentry_semantics *s);
/* Whether sentry_semantics_on_exchange reads the bodies of the exchange that head begins (its
 * request's head, as http_body_filter_cb sees it): an SDK's POST to its Sentry ingest. Not const:
 * it may read the sending process's environment for its DSN, as on_exchange would. */
bool sentry_semantics_wants_bodies(struct sentry_semantics *s, const struct http_exchange *head);
/* Feeds one exchange; any exchange that is not Sentry traffic costs a few comparisons. */
void sentry_semantics_on_exchange(struct sentry_semantics *s, const struct http_exchange *ex);
void sentry_semantics_get_stats(const struct sentry_semantics *s, struct sentry_stats *out);

/*
 * Helpers, visible for tests.
 */

/* One item of an envelope, as counted: bounded labels only. */
struct sentry_item {
	const char *type;  /* sentry_item_type_label() */
	const char *level; /* events: sentry_level_label() of the payload's level; others: "" */
};

enum sentry_parse_status {
	SENTRY_PARSE_OK = 0,
	SENTRY_PARSE_TRUNCATED, /* the body ends inside an item (it was cut): the rest is lost */
	SENTRY_PARSE_MALFORMED, /* not an envelope from that point on */
};

typedef void (*sentry_item_fn)(const struct sentry_item *item, void *ctx);

/* Parses an envelope: a header line (a JSON object), then items, each a header line (a JSON
 * object with "type" and an optional "length") and a payload of exactly length bytes, or up to
 * the next newline without length. fn is called for each complete item, in order, until the
 * first problem. truncated: the body is a prefix of what was sent (a payload that runs to the
 * end of a truncated body is incomplete). */
enum sentry_parse_status sentry_envelope_parse(const uint8_t *body, size_t len, bool truncated,
					       sentry_item_fn fn, void *ctx);
/* The legacy store endpoint's body: one event, as JSON, or (old raven SDKs) base64 of zlib of
 * it. */
enum sentry_parse_status sentry_store_parse(const uint8_t *body, size_t len, bool truncated,
					    sentry_item_fn fn, void *ctx);

/* "fatal", "error", "warning", "info", "debug" (Relay's aliases "critical", "warn" and "log"
 * folded in), "error" when absent (Sentry's default), else "other". */
const char *sentry_level_label(const char *level);
/* The item type if it is one of Sentry's (event, transaction, attachment, session, ...), else
 * "other". */
const char *sentry_item_type_label(const char *type);
/* The path is Sentry's ingest: .../api/{digits}/envelope/ or .../store/ (trailing slash
 * optional). *legacy says which. */
bool sentry_ingest_path(const char *path, bool *legacy);
/* The host of a DSN (scheme://key[:secret]@host[:port]/[path/]project), with its port when it
 * has one, lowercased, into out. 0, or -EINVAL when dsn is not one. Nothing else of the DSN is
 * kept, not even on the stack once it returns. */
int sentry_dsn_host(const char *dsn, size_t len, char *out, size_t size);
/* Whether a Host header names want (host[:port]): names compare case-insensitively; ports must
 * agree when both have one. */
bool sentry_host_matches(const char *want, const char *host);
/* The hosts of SENTRY_DSN and NEXT_PUBLIC_SENTRY_DSN in an environ block (NUL-separated
 * NAME=value entries, as /proc/PID/environ has it), in that order, a host found twice once.
 * Returns how many were written (0 to 2); a variable that is not a DSN is skipped. */
unsigned sentry_environ_dsn_hosts(const char *block, size_t len, char out[2][SENTRY_HOST_MAX]);

#endif
