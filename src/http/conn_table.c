// SPDX-License-Identifier: MIT
/*
 * Connections of the HTTP stage: an open-addressing hash table (linear probing, backward-shift
 * deletion so there are no tombstones to accumulate) keyed by (pid, id, generation, tls), plus an
 * intrusive LRU list for eviction. The table holds pointers; the tracker owns the conns.
 */
#include <errno.h>
#include <stdlib.h>

#include "http_internal.h"

/* splitmix64's finalizer: fds and SSL* pointers are clustered, so their low bits alone would
 * pile up in a few buckets. Not keyed (unlike the tables of bizprobe/keyed_hash.h): the key is
 * (pid, fd or SSL*, generation), which the traced process's kernel and allocator choose; a remote
 * peer only decides how many there are, not which values. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t ref_hash(const struct conn_ref *r)
{
	uint64_t h = mix64(r->id ^ ((uint64_t)r->pid << 32));
	h = mix64(h ^ r->generation ^ (r->tls ? 0x9e3779b97f4a7c15ull : 0));
	return h;
}

static bool ref_equal(const struct conn_ref *a, const struct conn_ref *b)
{
	return a->pid == b->pid && a->id == b->id && a->generation == b->generation &&
	       a->tls == b->tls;
}

int http_conn_table_init(struct http_conn_table *tbl, unsigned max_conns)
{
	size_t n = 16;

	/* Load factor at most 1/2 keeps linear probing short. */
	while (n < (size_t)max_conns * 2)
		n <<= 1;
	tbl->slots = calloc(n, sizeof(*tbl->slots));
	if (!tbl->slots)
		return -ENOMEM;
	tbl->mask = n - 1;
	tbl->count = 0;
	tbl->lru_first = NULL;
	tbl->lru_last = NULL;
	return 0;
}

void http_conn_table_destroy(struct http_conn_table *tbl)
{
	free(tbl->slots);
	tbl->slots = NULL;
}

struct http_conn *http_conn_table_find(struct http_conn_table *tbl, const struct conn_ref *ref)
{
	size_t i = ref_hash(ref) & tbl->mask;

	for (; tbl->slots[i]; i = (i + 1) & tbl->mask) {
		if (ref_equal(&tbl->slots[i]->ref, ref))
			return tbl->slots[i];
	}
	return NULL;
}

static void lru_unlink(struct http_conn_table *tbl, struct http_conn *c)
{
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		tbl->lru_first = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		tbl->lru_last = c->lru_prev;
	c->lru_prev = NULL;
	c->lru_next = NULL;
}

static void lru_push_front(struct http_conn_table *tbl, struct http_conn *c)
{
	c->lru_prev = NULL;
	c->lru_next = tbl->lru_first;
	if (tbl->lru_first)
		tbl->lru_first->lru_prev = c;
	tbl->lru_first = c;
	if (!tbl->lru_last)
		tbl->lru_last = c;
}

/* The caller keeps count <= max_conns, so a free slot always exists. */
int http_conn_table_insert(struct http_conn_table *tbl, struct http_conn *c)
{
	size_t i = ref_hash(&c->ref) & tbl->mask;

	if (tbl->count + 1 > (tbl->mask + 1) / 2)
		return -ENOSPC;
	while (tbl->slots[i])
		i = (i + 1) & tbl->mask;
	tbl->slots[i] = c;
	tbl->count++;
	lru_push_front(tbl, c);
	return 0;
}

void http_conn_table_remove(struct http_conn_table *tbl, struct http_conn *c)
{
	size_t i = ref_hash(&c->ref) & tbl->mask;
	size_t j;

	while (tbl->slots[i] != c) {
		if (!tbl->slots[i])
			return;
		i = (i + 1) & tbl->mask;
	}
	lru_unlink(tbl, c);
	tbl->slots[i] = NULL;
	tbl->count--;

	/* Backward shift: move up every later entry of the run whose home slot is not in (i, j]. */
	for (j = (i + 1) & tbl->mask; tbl->slots[j]; j = (j + 1) & tbl->mask) {
		size_t home = ref_hash(&tbl->slots[j]->ref) & tbl->mask;
		bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);

		if (stays)
			continue;
		tbl->slots[i] = tbl->slots[j];
		tbl->slots[j] = NULL;
		i = j;
	}
}

void http_conn_table_touch(struct http_conn_table *tbl, struct http_conn *c)
{
	if (tbl->lru_first == c)
		return;
	lru_unlink(tbl, c);
	lru_push_front(tbl, c);
}
