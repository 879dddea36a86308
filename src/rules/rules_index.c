// SPDX-License-Identifier: MIT
/*
 * The route index: what keeps an exchange that no rule matches down to a few comparisons
 * however many rules there are (the budget: 50 rules under 1 us).
 *
 * Rules are bucketed by method (plus one bucket for rules of any method), then by the number of
 * segments of their route, then grouped by where their {param}s are (a bit mask). Within a
 * group every rule's literal segments hash to one value, kept sorted: a path costs one hash and
 * one binary search per group of its method and length, and only rules whose hash matches are
 * compared segment by segment. Real route tables have few shapes, so few groups.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_internal.h"

static struct rules_index_bucket *rules_index_bucket(struct rules_index *ix, const char *method)
{
	struct rules_index_bucket *b;

	for (unsigned i = 0; i < ix->n; i++)
		if (!strcmp(ix->b[i].method, method))
			return &ix->b[i];
	b = realloc(ix->b, (ix->n + 1) * sizeof(*b));
	if (!b)
		return NULL;
	ix->b = b;
	b = &ix->b[ix->n++];
	memset(b, 0, sizeof(*b));
	snprintf(b->method, sizeof(b->method), "%s", method);
	return b;
}

static int rules_index_add(struct rules_index_bucket *b, const struct rules_event *ev, unsigned id)
{
	const struct rules_route *rt = &ev->route;
	struct rules_index_group *g = NULL, *groups;
	struct rules_index_entry *ent;
	unsigned *ap, k;

	if (rt->any) {
		ap = realloc(b->anypath, (b->n_anypath + 1) * sizeof(*ap));
		if (!ap)
			return -ENOMEM;
		b->anypath = ap;
		b->anypath[b->n_anypath++] = id;
		return 0;
	}
	for (k = 0; k < b->n_groups[rt->n_seg]; k++)
		if (b->groups[rt->n_seg][k].mask == rt->param_mask)
			g = &b->groups[rt->n_seg][k];
	if (!g) {
		groups = realloc(b->groups[rt->n_seg], (k + 1) * sizeof(*groups));
		if (!groups)
			return -ENOMEM;
		b->groups[rt->n_seg] = groups;
		g = &groups[k];
		memset(g, 0, sizeof(*g));
		g->mask = rt->param_mask;
		b->n_groups[rt->n_seg]++;
	}
	ent = realloc(g->ent, (g->n + 1) * sizeof(*ent));
	if (!ent)
		return -ENOMEM;
	g->ent = ent;
	/* Insertion keeps the entries sorted by hash, and by rule among equal hashes. */
	for (k = g->n; k > 0 && ent[k - 1].hash > rt->hash; k--)
		ent[k] = ent[k - 1];
	ent[k].hash = rt->hash;
	ent[k].ev = id;
	g->n++;
	return 0;
}

int rules_index_build(struct rules *r)
{
	for (unsigned id = 0; id < r->n_events; id++) {
		const struct rules_event *ev = &r->events[id];
		unsigned n = ev->n_methods ? ev->n_methods : 1;

		for (unsigned m = 0; m < n; m++) {
			struct rules_index_bucket *b =
			    rules_index_bucket(&r->index, ev->n_methods ? ev->methods[m] : "");

			if (!b || rules_index_add(b, ev, id))
				return -ENOMEM;
		}
	}
	return 0;
}

void rules_index_free(struct rules_index *ix)
{
	for (unsigned i = 0; i < ix->n; i++) {
		struct rules_index_bucket *b = &ix->b[i];

		for (unsigned s = 0; s <= RULES_MAX_SEGMENTS; s++) {
			for (unsigned g = 0; g < b->n_groups[s]; g++)
				free(b->groups[s][g].ent);
			free(b->groups[s]);
		}
		free(b->anypath);
	}
	free(ix->b);
	memset(ix, 0, sizeof(*ix));
}

static unsigned rules_index_scan(const struct rules *r, const struct rules_index_bucket *b,
				 const struct rules_path *p, unsigned *out, unsigned n)
{
	for (unsigned i = 0; i < b->n_anypath; i++)
		out[n++] = b->anypath[i];
	if (!p->routable)
		return n;
	for (unsigned g = 0; g < b->n_groups[p->n]; g++) {
		const struct rules_index_group *grp = &b->groups[p->n][g];
		uint64_t h = rules_path_hash(p, grp->mask);
		unsigned lo = 0, hi = grp->n;

		while (lo < hi) {
			unsigned mid = lo + (hi - lo) / 2;

			if (grp->ent[mid].hash < h)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < grp->n && grp->ent[lo].hash == h; lo++)
			if (rules_route_match(&r->events[grp->ent[lo].ev].route, p))
				out[n++] = grp->ent[lo].ev;
	}
	return n;
}

unsigned rules_index_lookup(const struct rules *r, const char *method, const struct rules_path *p,
			    unsigned *out)
{
	unsigned n = 0;

	/* An event is in one method bucket per method it lists, and a request has one method,
	 * so no event is found twice. */
	for (unsigned i = 0; i < r->index.n; i++) {
		const struct rules_index_bucket *b = &r->index.b[i];

		if (!b->method[0] || !strcmp(b->method, method))
			n = rules_index_scan(r, b, p, out, n);
	}
	return n;
}
