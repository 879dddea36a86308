// SPDX-License-Identifier: MIT
/*
 * Bounded id -> value map with least-recently-used eviction: every table of remembered Stripe
 * ids (events, charges, intents, subscriptions) must stay bounded whatever the traffic, and the
 * ids that matter (redeliveries, retries) are the recent ones.
 */
#include <stdlib.h>
#include <string.h>

#include "bizprobe/keyed_hash.h"
#include "stripe_internal.h"

struct lru_node {
	struct lru_node *hnext; /* hash chain */
	struct lru_node *prev;	/* recency list: head = oldest */
	struct lru_node *next;
	uint64_t hash;
	char *key;
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
	struct keyed_hash *kh;
};

/* Keys are ids from the traffic (evt_, pi_, ch_, sub_ ...), which a stranger can choose when
 * webhook signatures are not verified: keyed, so that nobody can pick ids that share a bucket. */
static uint64_t key_hash(const struct stripe_lru *l, const char *k)
{
	return keyed_hash_str(l->kh, k);
}

struct stripe_lru *stripe_lru_new(unsigned capacity, size_t value_size, stripe_lru_evict_cb cb,
				  void *ctx)
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
	l->kh = keyed_hash_new();
	if (!l->table || !l->kh) {
		keyed_hash_free(l->kh);
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
		free(n->key);
		free(n);
	}
	free(l->table);
	keyed_hash_free(l->kh);
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

static struct lru_node *find(struct stripe_lru *l, const char *key, uint64_t h)
{
	for (struct lru_node *n = l->table[h & (l->n_buckets - 1)]; n; n = n->hnext) {
		if (n->hash == h && !strcmp(n->key, key))
			return n;
	}
	return NULL;
}

static void node_drop(struct stripe_lru *l, struct lru_node *n)
{
	struct lru_node **pp = &l->table[n->hash & (l->n_buckets - 1)];

	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	list_unlink(l, n);
	l->size--;
	free(n->key);
	free(n);
}

void *stripe_lru_get(struct stripe_lru *l, const char *key)
{
	struct lru_node *n = find(l, key, key_hash(l, key));

	if (!n)
		return NULL;
	list_unlink(l, n);
	list_append(l, n);
	return n->value;
}

void *stripe_lru_put(struct stripe_lru *l, const char *key, bool *created)
{
	uint64_t h = key_hash(l, key);
	struct lru_node *n = find(l, key, h);

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
			l->evict(old->key, old->value, l->ctx);
		node_drop(l, old);
	}
	n = calloc(1, sizeof(*n) + l->value_size);
	if (!n)
		return NULL;
	n->key = strdup(key);
	if (!n->key) {
		free(n);
		return NULL;
	}
	n->hash = h;
	n->hnext = l->table[h & (l->n_buckets - 1)];
	l->table[h & (l->n_buckets - 1)] = n;
	list_append(l, n);
	l->size++;
	return n->value;
}

void stripe_lru_remove(struct stripe_lru *l, const char *key)
{
	struct lru_node *n = find(l, key, key_hash(l, key));

	if (n)
		node_drop(l, n);
}

unsigned stripe_lru_size(const struct stripe_lru *l)
{
	return l->size;
}

void stripe_lru_sweep(struct stripe_lru *l, bool (*fn)(const char *key, void *value, void *ctx),
		      void *ctx)
{
	struct lru_node *n, *next;

	for (n = l->oldest; n; n = next) {
		next = n->next;
		if (fn(n->key, n->value, ctx))
			node_drop(l, n);
	}
}
