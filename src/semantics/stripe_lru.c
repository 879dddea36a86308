// SPDX-License-Identifier: MIT
/*
 * Bounded id -> value map with least-recently-used eviction: every table of remembered Stripe
 * ids (events, charges, intents, subscriptions) must stay bounded whatever the traffic, and the
 * ids that matter (redeliveries, retries) are the recent ones.
 *
 * An id is kept only as its 128-bit digest (two SipHash-2-4 under a 32-byte key): the table can
 * then be written to the state store across restarts without storing a single Stripe id, and a
 * digest costs 16 bytes instead of a string. With a key that lasts (derived from the user salt),
 * an id seen before a restart finds its entry after it; two ids share a digest with odds of
 * 2^-128 per pair, which no traffic reaches.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/keyed_hash.h"
#include "stripe_internal.h"

struct lru_node {
	struct lru_node *hnext; /* hash chain */
	struct lru_node *prev;	/* recency list: head = oldest */
	struct lru_node *next;
	uint64_t digest[2];  /* digest[0] also picks the bucket */
	max_align_t value[]; /* value_size bytes, suitably aligned */
};

struct stripe_lru {
	struct lru_node **table;
	size_t n_buckets; /* power of two */
	struct lru_node *oldest;
	struct lru_node *newest;
	unsigned size;
	unsigned capacity;
	size_t value_size;
	stripe_lru_evict_cb evict;
	void *ctx;
	struct keyed_hash *kh[2];
};

/* Keys are ids from the traffic (evt_, pi_, ch_, sub_ ...), which a stranger can choose when
 * webhook signatures are not verified: keyed, so that nobody can pick ids that share a bucket. */
static void key_digest(const struct stripe_lru *l, const char *k, uint64_t d[2])
{
	d[0] = keyed_hash_str(l->kh[0], k);
	d[1] = keyed_hash_str(l->kh[1], k);
}

struct stripe_lru *stripe_lru_new(unsigned capacity, size_t value_size, stripe_lru_evict_cb cb,
				  void *ctx, const uint8_t *key)
{
	struct stripe_lru *l;
	size_t n = 16;

	if (!capacity)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	while (n < capacity && n < (1u << 24))
		n <<= 1;
	l->table = calloc(n, sizeof(*l->table));
	for (int i = 0; i < 2; i++)
		l->kh[i] = key ? keyed_hash_new_with_key(key + 16 * i) : keyed_hash_new();
	if (!l->table || !l->kh[0] || !l->kh[1]) {
		keyed_hash_free(l->kh[0]);
		keyed_hash_free(l->kh[1]);
		free(l->table);
		free(l);
		return NULL;
	}
	l->n_buckets = n;
	l->capacity = capacity;
	l->value_size = value_size;
	l->evict = cb;
	l->ctx = ctx;
	return l;
}

void stripe_lru_free(struct stripe_lru *l)
{
	struct lru_node *n, *next;

	if (!l)
		return;
	for (n = l->oldest; n; n = next) {
		next = n->next;
		free(n);
	}
	free(l->table);
	keyed_hash_free(l->kh[0]);
	keyed_hash_free(l->kh[1]);
	free(l);
}

static void list_unlink(struct stripe_lru *l, struct lru_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->oldest = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->newest = n->prev;
	n->prev = n->next = NULL;
}

static void list_append(struct stripe_lru *l, struct lru_node *n)
{
	n->prev = l->newest;
	n->next = NULL;
	if (l->newest)
		l->newest->next = n;
	else
		l->oldest = n;
	l->newest = n;
}

static struct lru_node *find(struct stripe_lru *l, const uint64_t d[2])
{
	for (struct lru_node *n = l->table[d[0] & (l->n_buckets - 1)]; n; n = n->hnext) {
		if (n->digest[0] == d[0] && n->digest[1] == d[1])
			return n;
	}
	return NULL;
}

static void node_drop(struct stripe_lru *l, struct lru_node *n)
{
	struct lru_node **pp = &l->table[n->digest[0] & (l->n_buckets - 1)];

	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	list_unlink(l, n);
	l->size--;
	free(n);
}

void *stripe_lru_get(struct stripe_lru *l, const char *key)
{
	uint64_t d[2];
	struct lru_node *n;

	key_digest(l, key, d);
	n = find(l, d);

	if (!n)
		return NULL;
	list_unlink(l, n);
	list_append(l, n);
	return n->value;
}

static void *put_digest(struct stripe_lru *l, const uint64_t d[2], bool *created)
{
	struct lru_node *n = find(l, d);

	if (created)
		*created = !n;
	if (n) {
		list_unlink(l, n);
		list_append(l, n);
		return n->value;
	}
	if (l->size >= l->capacity) {
		struct lru_node *old = l->oldest;

		/* The callback sees the entry before it is freed; it must not modify l. */
		if (l->evict)
			l->evict(old->value, l->ctx);
		node_drop(l, old);
	}
	n = calloc(1, sizeof(*n) + l->value_size);
	if (!n)
		return NULL;
	n->digest[0] = d[0];
	n->digest[1] = d[1];
	n->hnext = l->table[d[0] & (l->n_buckets - 1)];
	l->table[d[0] & (l->n_buckets - 1)] = n;
	list_append(l, n);
	l->size++;
	return n->value;
}

void *stripe_lru_put(struct stripe_lru *l, const char *key, bool *created)
{
	uint64_t d[2];

	key_digest(l, key, d);
	return put_digest(l, d, created);
}

void stripe_lru_remove(struct stripe_lru *l, const char *key)
{
	uint64_t d[2];
	struct lru_node *n;

	key_digest(l, key, d);
	n = find(l, d);

	if (n)
		node_drop(l, n);
}

unsigned stripe_lru_size(const struct stripe_lru *l)
{
	return l->size;
}

void stripe_lru_sweep(struct stripe_lru *l, bool (*fn)(void *value, void *ctx), void *ctx)
{
	struct lru_node *n, *next;

	for (n = l->oldest; n; n = next) {
		next = n->next;
		if (fn(n->value, ctx))
			node_drop(l, n);
	}
}

size_t stripe_lru_export_size(const struct stripe_lru *l)
{
	return (size_t)l->size * (sizeof(((struct lru_node *)0)->digest) + l->value_size);
}

size_t stripe_lru_export(const struct stripe_lru *l, uint8_t *out)
{
	const size_t dl = sizeof(((struct lru_node *)0)->digest);
	uint8_t *p = out;

	for (const struct lru_node *n = l->oldest; n; n = n->next) {
		memcpy(p, n->digest, dl);
		memcpy(p + dl, n->value, l->value_size);
		p += dl + l->value_size;
	}
	return (size_t)(p - out);
}

int stripe_lru_import(struct stripe_lru *l, const uint8_t *in, size_t len)
{
	const size_t dl = sizeof(((struct lru_node *)0)->digest), rec = dl + l->value_size;

	if (len % rec)
		return -EINVAL;
	/* Oldest first, as exported: the newest end up the most recent again. An entry the
	 * table already holds keeps its current value. */
	for (size_t off = 0; off < len; off += rec) {
		uint64_t d[2];
		bool created;
		void *v;

		memcpy(d, in + off, dl);
		v = put_digest(l, d, &created);
		if (!v)
			return -ENOMEM;
		if (created)
			memcpy(v, in + off + dl, l->value_size);
	}
	return 0;
}
