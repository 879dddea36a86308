/* SPDX-License-Identifier: MIT */
/*
 * The recent business events and a short per-bucket history of them (src/export/recent_events.c),
 * for the status page: a consumer of business events like the metrics and state stages, read by
 * the export stage from the HTTP server's thread. Bounded (a fixed ring, fixed buckets) and
 * mutex-protected.
 *
 * Redacted by construction: only an event's name, its labels (bounded words by their producer's
 * contract) and its time are kept; its user, subject and value never enter the ring.
 */
#ifndef BIZPROBE_RECENT_EVENTS_H
#define BIZPROBE_RECENT_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "bizprobe/business_event.h"

#define RECENT_EVENTS_MAX	50 /* ring entries: ~1 KiB each */
#define RECENT_EVENTS_NAME_MAX	64 /* bytes kept of an event or label name, NUL included */
#define RECENT_EVENTS_VALUE_MAX 48 /* bytes kept of a label value, NUL included */
#define RECENT_EVENTS_BUCKETS	60 /* history: 60 buckets of 10 s, the last ten minutes */
#define RECENT_EVENTS_BUCKET_S	10

struct recent_event {
	char name[RECENT_EVENTS_NAME_MAX];
	char label_names[BIZ_EVENT_MAX_LABELS][RECENT_EVENTS_NAME_MAX];
	char label_values[BIZ_EVENT_MAX_LABELS][RECENT_EVENTS_VALUE_MAX];
	unsigned n_labels;
	uint64_t wall_ns;
};

/* One history bucket: what happened in [start_s, start_s + RECENT_EVENTS_BUCKET_S). */
struct recent_bucket {
	int64_t start_s;
	uint32_t payments_succeeded;
	uint32_t payments_failed; /* every other terminal or timed-out status */
	uint32_t events;	  /* business events, payments included */
};

struct recent_events;

/* NULL on allocation failure. */
struct recent_events *recent_events_new(void);
void recent_events_free(struct recent_events *re);

/* A business event sink's consumer (re may be NULL: a no-op). Events without a name (MRR,
 * pending gauges, technical observations) are not business events and are left out. */
void recent_events_on_event(struct recent_events *re, const struct business_event *ev);

/* Copies up to max events, newest first, into out; returns how many. *seen (may be NULL) gets
 * how many were ever recorded. */
unsigned recent_events_snapshot(struct recent_events *re, struct recent_event *out, unsigned max,
				uint64_t *seen);

/* The RECENT_EVENTS_BUCKETS buckets ending with the one holding now_s, oldest first; buckets
 * nothing happened in are zero (with their start set). */
void recent_events_history(struct recent_events *re, int64_t now_s,
			   struct recent_bucket out[RECENT_EVENTS_BUCKETS]);

#endif
