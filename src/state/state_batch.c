// SPDX-License-Identifier: MIT
/*
 * The staged batch: state_on_event turns an event into a fixed-size record (pseudonyms as
 * bytes, label values interned in the batch's arena) under a lock held for a copy, never for
 * the database. Two batches alternate: the flush writes one while events fill the other.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state_internal.h"

/* Label bytes one record may need on average; the arena holds cap of them. Values are bounded
 * words, interned, so a batch rarely uses more than a few hundred bytes of it. */
#define ARENA_PER_REC 48
#define INTERN_SLOTS  256

struct state_intern {
	uint32_t off[INTERN_SLOTS];
};

int state_batch_init(struct state_batch *b, unsigned cap)
{
	memset(b, 0, sizeof(*b));
	b->recs = calloc(cap, sizeof(*b->recs));
	b->arena_cap = (size_t)cap * ARENA_PER_REC + sizeof(struct state_intern) + 1;
	b->arena = malloc(b->arena_cap);
	if (!b->recs || !b->arena) {
		state_batch_free(b);
		return -ENOMEM;
	}
	b->cap = cap;
	state_batch_reset(b);
	return 0;
}

/* The intern cache lives at the arena's start, then byte 0 of the strings ("none"). */
static struct state_intern *intern_of(struct state_batch *b)
{
	return (struct state_intern *)b->arena;
}

void state_batch_reset(struct state_batch *b)
{
	b->n = 0;
	if (b->arena) {
		memset(intern_of(b), 0, sizeof(struct state_intern));
		b->arena[sizeof(struct state_intern)] = '\0';
		b->arena_used = sizeof(struct state_intern) + 1;
	}
	for (unsigned i = 0; i < b->n_blobs; i++) {
		free(b->blobs[i].key);
		free(b->blobs[i].data);
	}
	b->n_blobs = 0;
	state_counter_set_clear(&b->counters);
	b->has_counters = false;
}

void state_batch_free(struct state_batch *b)
{
	state_batch_reset(b);
	free(b->recs);
	free(b->arena);
	free(b->blobs);
	memset(b, 0, sizeof(*b));
}

const char *state_batch_str(const struct state_batch *b, uint32_t off)
{
	return off ? b->arena + off : NULL;
}

/* Offset of s in the arena (0 for NULL or ""); UINT32_MAX when the arena is full. */
static uint32_t intern(struct state_batch *b, const char *s)
{
	struct state_intern *in = intern_of(b);
	uint32_t h = 2166136261u, slot, off;
	size_t n;

	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	slot = h % INTERN_SLOTS;
	off = in->off[slot];
	if (off && !strcmp(b->arena + off, s))
		return off;
	n = strlen(s) + 1;
	if (b->arena_used + n > b->arena_cap)
		return UINT32_MAX;
	off = (uint32_t)b->arena_used;
	memcpy(b->arena + off, s, n);
	b->arena_used += n;
	in->off[slot] = off;
	return off;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool state_pseudo_parse(const char *hex, uint8_t out[STATE_PSEUDO_BYTES])
{
	if (!hex)
		return false;
	for (unsigned i = 0; i < STATE_PSEUDO_BYTES; i++) {
		int hi = hexval(hex[2 * i]), lo;

		if (hi < 0)
			return false;
		lo = hexval(hex[2 * i + 1]);
		if (lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * STATE_PSEUDO_BYTES] == '\0';
}

int64_t state_pseudo_key(const uint8_t pseudo[STATE_PSEUDO_BYTES])
{
	uint64_t k = 0;

	for (unsigned i = 0; i < 8; i++)
		k = k << 8 | pseudo[i];
	return (int64_t)k;
}

static const char *const status_names[STATUS_N] = {
    [STATUS_OTHER] = METRICS_OVERFLOW_VALUE,
    [STATUS_SUCCEEDED] = "succeeded",
    [STATUS_FAILED] = "failed",
    [STATUS_REQUIRES_ACTION] = "requires_action",
    [STATUS_PROCESSING] = "processing",
    [STATUS_CANCELED] = "canceled",
};

int state_status_code(const char *status)
{
	for (int i = 1; status && i < STATUS_N; i++) {
		if (!strcmp(status, status_names[i]))
			return i;
	}
	return STATUS_OTHER;
}

const char *state_status_name(int code)
{
	return code > 0 && code < STATUS_N ? status_names[code] : status_names[STATUS_OTHER];
}

/* A bounded word as stored: NULL/"" is none, an overlong one "other". */
static const char *label_value(const char *v)
{
	if (!v || !*v)
		return NULL;
	return strlen(v) > STATE_MAX_LABEL ? METRICS_OVERFLOW_VALUE : v;
}

/* ISO 4217 codes as the Stripe stage writes them (upper case), anything else "other". */
static const char *currency_value(const char *c)
{
	if (c && strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
	    c[2] >= 'A' && c[2] <= 'Z')
		return c;
	return METRICS_OVERFLOW_VALUE;
}

static bool to_micro(double v, int64_t *out)
{
	if (!isfinite(v) || fabs(v) > 9e12)
		return false;
	*out = llround(v * 1e6);
	return true;
}

void state_on_event(struct state *st, const struct business_event *ev)
{
	struct state_rec r = {0};
	const char *type, *currency = NULL, *a = NULL, *b = NULL;
	bool invalid = false;
	struct state_batch *bt;

	if (!st || !ev)
		return;
	r.ts = ev->wall_ns ? (int64_t)(ev->wall_ns / 1000000000ull) : (int64_t)time(NULL);
	if (ev->user) {
		r.has_user = state_pseudo_parse(ev->user, r.user);
		invalid |= !r.has_user;
	}
	type = label_value(ev->user_type);

	switch (ev->kind) {
	case BIZ_PAYMENT_ATTEMPT:
		r.op = OP_PAYMENT;
		a = state_status_name(state_status_code(biz_event_label(ev, "status")));
		currency = currency_value(biz_event_label(ev, "currency"));
		if (!strcmp(a, "succeeded") && ev->has_value)
			r.has_amount = to_micro(ev->value, &r.amount);
		break;
	case BIZ_PAYMENT_LATE_SUCCESS:
		r.op = OP_LATE_SUCCESS;
		currency = currency_value(biz_event_label(ev, "currency"));
		if (ev->has_value)
			r.has_amount = to_micro(ev->value, &r.amount);
		break;
	case BIZ_SUBSCRIPTION_CREATED:
	case BIZ_SUBSCRIPTION_CANCELED:
		r.op = ev->kind == BIZ_SUBSCRIPTION_CREATED ? OP_SUB_CREATED : OP_SUB_CANCELED;
		currency = currency_value(biz_event_label(ev, "currency"));
		if (ev->subject) {
			r.has_subject = state_pseudo_parse(ev->subject, r.subject);
			invalid |= !r.has_subject;
		}
		if (ev->kind == BIZ_SUBSCRIPTION_CREATED && ev->has_value)
			r.has_amount = to_micro(ev->value, &r.amount);
		break;
	case BIZ_RULE_EVENT:
		if (ev->name && !strcmp(ev->name, "registration")) {
			r.op = OP_REGISTRATION;
			if (!type)
				type = label_value(biz_event_label(ev, "user_type"));
			break;
		}
		if (ev->name && !strcmp(ev->name, "experiment_exposure")) {
			a = label_value(biz_event_label(ev, "experiment"));
			b = label_value(biz_event_label(ev, "variant"));
			if (a && b) {
				r.op = OP_EXPOSURE;
				break;
			}
		}
		r.op = OP_ACTIVITY;
		break;
	default:
		r.op = OP_ACTIVITY;
		break;
	}
	if ((r.op == OP_ACTIVITY || r.op == OP_EXPOSURE) && !r.has_user) {
		if (invalid) {
			pthread_mutex_lock(&st->batch_lock);
			st->stats.invalid_ids++;
			pthread_mutex_unlock(&st->batch_lock);
		}
		return; /* nothing to remember */
	}

	pthread_mutex_lock(&st->batch_lock);
	if (invalid)
		st->stats.invalid_ids++;
	bt = &st->batch[st->active];
	if (bt->n == bt->cap)
		goto drop;
	r.s_type = r.has_user ? intern(bt, type) : 0;
	r.s_currency = intern(bt, currency);
	r.s_a = intern(bt, a);
	r.s_b = intern(bt, b);
	if (r.s_type == UINT32_MAX || r.s_currency == UINT32_MAX || r.s_a == UINT32_MAX ||
	    r.s_b == UINT32_MAX)
		goto drop;
	bt->recs[bt->n++] = r;
	st->stats.events_staged++;
	pthread_mutex_unlock(&st->batch_lock);
	return;
drop:
	st->stats.events_dropped++;
	pthread_mutex_unlock(&st->batch_lock);
}

void state_event_sink(const struct business_event *ev, void *st)
{
	state_on_event(st, ev);
}

void state_counter_clear(struct state_counter *c)
{
	free(c->family);
	free(c->labels);
	free(c->names);
	if (c->label_values) {
		for (unsigned i = 0; i < c->n_labels; i++)
			free(c->label_values[i]);
	}
	free(c->label_values);
	free(c->bounds);
	free(c->buckets);
	memset(c, 0, sizeof(*c));
}

void state_counter_set_clear(struct state_counter_set *s)
{
	for (unsigned i = 0; i < s->n; i++)
		state_counter_clear(&s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int state_counter_set_push(struct state_counter_set *s, struct state_counter *c)
{
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 64;
		struct state_counter *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = *c;
	memset(c, 0, sizeof(*c));
	return 0;
}
