// SPDX-License-Identifier: MIT
/*
 * The status page's memory of business events: a ring of the last RECENT_EVENTS_MAX (name,
 * labels, time) and per-10-second counts of the last ten minutes, fed from the pipeline's thread
 * and read from the HTTP server's, under one mutex (a push is a few hundred bytes of copying).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/recent_events.h"

struct recent_events {
	pthread_mutex_t lock;
	struct recent_event ring[RECENT_EVENTS_MAX];
	uint64_t seen; /* ring[seen % RECENT_EVENTS_MAX] is the next slot */
	/* Bucket i holds the period starting at a multiple of RECENT_EVENTS_BUCKET_S whose index
	 * modulo RECENT_EVENTS_BUCKETS is i; its start tells whether it is current or stale. */
	struct recent_bucket buckets[RECENT_EVENTS_BUCKETS];
};

struct recent_events *recent_events_new(void)
{
	struct recent_events *re = calloc(1, sizeof(*re));

	if (!re)
		return NULL;
	for (unsigned i = 0; i < RECENT_EVENTS_BUCKETS; i++)
		re->buckets[i].start_s = INT64_MIN;
	pthread_mutex_init(&re->lock, NULL);
	return re;
}

void recent_events_free(struct recent_events *re)
{
	if (!re)
		return;
	pthread_mutex_destroy(&re->lock);
	free(re);
}

static int64_t bucket_start(int64_t t_s)
{
	int64_t q = t_s / RECENT_EVENTS_BUCKET_S;

	if (t_s < 0 && t_s % RECENT_EVENTS_BUCKET_S)
		q--;
	return q * RECENT_EVENTS_BUCKET_S;
}

static struct recent_bucket *bucket_at(struct recent_events *re, int64_t start)
{
	int64_t idx = (start / RECENT_EVENTS_BUCKET_S) % RECENT_EVENTS_BUCKETS;

	if (idx < 0)
		idx += RECENT_EVENTS_BUCKETS;
	return &re->buckets[idx];
}

/* A payment attempt's status is its first label (business_event.h). */
static void count(struct recent_events *re, const struct business_event *ev)
{
	int64_t start = bucket_start((int64_t)(ev->wall_ns / 1000000000ull));
	struct recent_bucket *b = bucket_at(re, start);

	if (b->start_s > start)
		return; /* older than the history reaches */
	if (b->start_s != start)
		*b = (struct recent_bucket){.start_s = start};
	b->events++;
	if (ev->kind == BIZ_PAYMENT_ATTEMPT && ev->n_labels) {
		if (ev->labels[0].value && !strcmp(ev->labels[0].value, "succeeded"))
			b->payments_succeeded++;
		else
			b->payments_failed++;
	}
}

void recent_events_on_event(struct recent_events *re, const struct business_event *ev)
{
	struct recent_event *e;
	unsigned n;

	if (!re || !ev || !ev->name)
		return;
	pthread_mutex_lock(&re->lock);
	e = &re->ring[re->seen % RECENT_EVENTS_MAX];
	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", ev->name);
	n = ev->n_labels < BIZ_EVENT_MAX_LABELS ? ev->n_labels : BIZ_EVENT_MAX_LABELS;
	for (unsigned i = 0; i < n; i++) {
		snprintf(e->label_names[e->n_labels], sizeof(e->label_names[0]), "%s",
			 ev->labels[i].name ? ev->labels[i].name : "");
		snprintf(e->label_values[e->n_labels], sizeof(e->label_values[0]), "%s",
			 ev->labels[i].value ? ev->labels[i].value : "");
		e->n_labels++;
	}
	e->wall_ns = ev->wall_ns;
	re->seen++;
	count(re, ev);
	pthread_mutex_unlock(&re->lock);
}

unsigned recent_events_snapshot(struct recent_events *re, struct recent_event *out, unsigned max,
				uint64_t *seen)
{
	unsigned n = 0;

	if (!re) {
		if (seen)
			*seen = 0;
		return 0;
	}
	pthread_mutex_lock(&re->lock);
	for (uint64_t i = re->seen; i > 0 && n < max && n < RECENT_EVENTS_MAX; i--)
		out[n++] = re->ring[(i - 1) % RECENT_EVENTS_MAX];
	if (seen)
		*seen = re->seen;
	pthread_mutex_unlock(&re->lock);
	return n;
}

void recent_events_history(struct recent_events *re, int64_t now_s,
			   struct recent_bucket out[RECENT_EVENTS_BUCKETS])
{
	int64_t last = bucket_start(now_s);

	if (re)
		pthread_mutex_lock(&re->lock);
	for (unsigned i = 0; i < RECENT_EVENTS_BUCKETS; i++) {
		int64_t start =
		    last - (int64_t)(RECENT_EVENTS_BUCKETS - 1 - i) * RECENT_EVENTS_BUCKET_S;
		struct recent_bucket *b = re ? bucket_at(re, start) : NULL;

		out[i] = b && b->start_s == start ? *b : (struct recent_bucket){.start_s = start};
	}
	if (re)
		pthread_mutex_unlock(&re->lock);
}
