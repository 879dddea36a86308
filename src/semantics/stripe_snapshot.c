// SPDX-License-Identifier: MIT
/*
 * The Stripe stage's memory as bytes, for the state store: what it must not forget across a
 * restart (a webhook redelivered after it must still count once, a subscription created before
 * it still pays MRR, a payment pending before it still resolves once).
 *
 * Format (host byte order: the store lives on the machine that wrote it): "BZSS", a version, the
 * number of tables, then per table its value size and byte length followed by its (digest,
 * value) records (stripe_lru_export). A snapshot whose version, table count or value sizes differ
 * from this build's is refused whole rather than misread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stripe_internal.h"

#define SNAPSHOT_MAGIC	 "BZSS"
#define SNAPSHOT_VERSION 1u

struct table_header {
	uint32_t value_size;
	uint32_t reserved;
	uint64_t bytes;
};

struct snapshot_header {
	char magic[4];
	uint32_t version;
	uint32_t n_tables;
	uint32_t reserved;
};

/* The tables in snapshot order. */
static unsigned tables(const struct stripe_semantics *s, struct stripe_lru *out[6], size_t sizes[6])
{
	struct stripe_lru *t[] = {s->events, s->attempts_seen, s->intents,
				  s->subs,   s->refunds_seen,  s->disputes_seen};
	size_t v[] = {1, 1, stripe_intent_size(), stripe_subscription_size(), 1, 1};

	memcpy(out, t, sizeof(t));
	memcpy(sizes, v, sizeof(v));
	return 6;
}

int stripe_semantics_snapshot(const struct stripe_semantics *s, void **data, size_t *len)
{
	struct stripe_lru *t[6];
	size_t sizes[6], total = sizeof(struct snapshot_header);
	unsigned n = tables(s, t, sizes);
	struct snapshot_header h = {.version = SNAPSHOT_VERSION, .n_tables = n};
	uint8_t *buf, *p;

	for (unsigned i = 0; i < n; i++)
		total += sizeof(struct table_header) + stripe_lru_export_size(t[i]);
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	memcpy(h.magic, SNAPSHOT_MAGIC, 4);
	memcpy(buf, &h, sizeof(h));
	p = buf + sizeof(h);
	for (unsigned i = 0; i < n; i++) {
		struct table_header th = {.value_size = (uint32_t)sizes[i]};

		th.bytes = stripe_lru_export(t[i], p + sizeof(th));
		memcpy(p, &th, sizeof(th));
		p += sizeof(th) + th.bytes;
	}
	*data = buf;
	*len = (size_t)(p - buf);
	return 0;
}

/* Checks the whole snapshot before anything is imported. */
static int validate(const uint8_t *in, size_t len, unsigned n, const size_t sizes[])
{
	struct snapshot_header h;
	size_t off = sizeof(h);

	if (len < sizeof(h))
		return -EPROTO;
	memcpy(&h, in, sizeof(h));
	if (memcmp(h.magic, SNAPSHOT_MAGIC, 4) || h.version != SNAPSHOT_VERSION || h.n_tables != n)
		return -EPROTO;
	for (unsigned i = 0; i < n; i++) {
		struct table_header th;

		if (len - off < sizeof(th))
			return -EPROTO;
		memcpy(&th, in + off, sizeof(th));
		off += sizeof(th);
		if (th.value_size != sizes[i] || th.bytes > len - off || th.bytes % (16 + sizes[i]))
			return -EPROTO;
		off += th.bytes;
	}
	return off == len ? 0 : -EPROTO;
}

int stripe_semantics_restore(struct stripe_semantics *s, const void *data, size_t len)
{
	const uint8_t *in = data;
	struct stripe_lru *t[6];
	size_t sizes[6], off = sizeof(struct snapshot_header);
	unsigned n = tables(s, t, sizes);
	int err = validate(in, len, n, sizes);

	for (unsigned i = 0; !err && i < n; i++) {
		struct table_header th;

		memcpy(&th, in + off, sizeof(th));
		off += sizeof(th);
		err = stripe_lru_import(t[i], in + off, th.bytes);
		off += th.bytes;
	}
	/* The gauges follow whatever was imported, a partial import (out of memory) included. */
	stripe_payments_restored(s);
	stripe_subscriptions_restored(s);
	return err;
}
