// SPDX-License-Identifier: MIT
/*
 * Counters that survive restarts: a snapshot of the registry's counter and histogram series,
 * written with the next flush, and added back into a fresh registry at start, so that Prometheus
 * sees the counters continue instead of a reset.
 *
 * The stored values and the registry's are one sum: after a restart, value = stored + counted
 * since. Series whose family is not registered yet (rule families appear on their first event)
 * wait in st->unrestored; every snapshot includes them, so a save before their restore keeps
 * them.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "state_internal.h"

static char *json_strings(const char *const *v, unsigned n)
{
	struct json_object *a = json_object_new_array();
	char *out = NULL;

	if (!a)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		struct json_object *s = json_object_new_string(v[i] ? v[i] : "");

		if (!s || json_object_array_add(a, s)) {
			json_object_put(s);
			goto out;
		}
	}
	out = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
out:
	json_object_put(a);
	return out;
}

/* The strings of a JSON array; -EINVAL unless it is one of strings. */
static int parse_strings(const char *text, char ***out, unsigned *n)
{
	struct json_object *a = json_tokener_parse(text);
	size_t len;
	int e = 0;

	*out = NULL;
	*n = 0;
	if (!a || !json_object_is_type(a, json_type_array)) {
		json_object_put(a);
		return -EINVAL;
	}
	len = json_object_array_length(a);
	if (len > METRICS_MAX_LABELS) {
		json_object_put(a);
		return -EINVAL;
	}
	*out = calloc(len ? len : 1, sizeof(char *));
	if (!*out) {
		json_object_put(a);
		return -ENOMEM;
	}
	for (size_t i = 0; i < len && !e; i++) {
		struct json_object *s = json_object_array_get_idx(a, i);

		if (!json_object_is_type(s, json_type_string))
			e = -EINVAL;
		else if (!((*out)[i] = strdup(json_object_get_string(s))))
			e = -ENOMEM;
		*n = (unsigned)i + 1;
	}
	json_object_put(a);
	return e;
}

static void free_strings(char **v, unsigned n)
{
	for (unsigned i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* ---------------------------------------------------------------- snapshot */
struct save_ctx {
	struct state *st;
	const char *const *prefixes;
	unsigned n_prefixes;
	struct state_counter_set set;
	int err;
};

static bool wanted(struct save_ctx *c, const struct metrics_family_info *f)
{
	if (f->type != METRICS_COUNTER && f->type != METRICS_HISTOGRAM)
		return false;
	if (state_owns_family(c->st, f->name))
		return false;
	if (!c->prefixes || !c->n_prefixes)
		return true;
	for (unsigned i = 0; i < c->n_prefixes; i++) {
		if (c->prefixes[i] && !strncmp(f->name, c->prefixes[i], strlen(c->prefixes[i])))
			return true;
	}
	return false;
}

static int save_series(const struct metrics_family_info *f, const struct metrics_series_info *s,
		       void *ctx)
{
	struct save_ctx *c = ctx;
	struct state_counter k = {0};

	if (!wanted(c, f))
		return 0;
	k.family = strdup(f->name);
	k.labels = json_strings(s->label_values, f->n_labels);
	k.names = json_strings(f->label_names, f->n_labels);
	k.type = f->type;
	k.n_labels = f->n_labels;
	k.label_values = calloc(f->n_labels ? f->n_labels : 1, sizeof(char *));
	if (!k.family || !k.labels || !k.names || !k.label_values)
		goto nomem;
	for (unsigned i = 0; i < f->n_labels; i++) {
		k.label_values[i] = strdup(s->label_values[i] ? s->label_values[i] : "");
		if (!k.label_values[i])
			goto nomem;
	}
	if (f->type == METRICS_HISTOGRAM) {
		k.value = s->sum;
		k.count = s->count;
		k.n_buckets = f->n_buckets;
		k.bounds = malloc(f->n_buckets * sizeof(double));
		k.buckets = malloc(f->n_buckets * sizeof(uint64_t));
		if (!k.bounds || !k.buckets)
			goto nomem;
		memcpy(k.bounds, f->buckets, f->n_buckets * sizeof(double));
		memcpy(k.buckets, s->bucket_counts, f->n_buckets * sizeof(uint64_t));
	} else {
		k.value = s->value;
	}
	if (state_counter_set_push(&c->set, &k))
		goto nomem;
	return 0;
nomem:
	state_counter_clear(&k);
	c->err = -ENOMEM;
	return -ENOMEM;
}

static bool same_series(const struct state_counter *a, const struct state_counter *b)
{
	return !strcmp(a->family, b->family) && !strcmp(a->labels, b->labels);
}

static int counter_copy(struct state_counter *dst, const struct state_counter *src)
{
	memset(dst, 0, sizeof(*dst));
	*dst = (struct state_counter){.type = src->type,
				      .n_labels = src->n_labels,
				      .value = src->value,
				      .count = src->count,
				      .n_buckets = src->n_buckets};
	dst->family = strdup(src->family);
	dst->labels = strdup(src->labels);
	dst->names = strdup(src->names);
	dst->label_values = calloc(src->n_labels ? src->n_labels : 1, sizeof(char *));
	if (!dst->family || !dst->labels || !dst->names || !dst->label_values)
		goto nomem;
	for (unsigned i = 0; i < src->n_labels; i++) {
		dst->label_values[i] = strdup(src->label_values[i]);
		if (!dst->label_values[i])
			goto nomem;
	}
	if (src->n_buckets) {
		dst->bounds = malloc(src->n_buckets * sizeof(double));
		dst->buckets = malloc(src->n_buckets * sizeof(uint64_t));
		if (!dst->bounds || !dst->buckets)
			goto nomem;
		memcpy(dst->bounds, src->bounds, src->n_buckets * sizeof(double));
		memcpy(dst->buckets, src->buckets, src->n_buckets * sizeof(uint64_t));
	}
	return 0;
nomem:
	state_counter_clear(dst);
	return -ENOMEM;
}

/* Adds the series still waiting for their family into the snapshot (w.lock held). */
static int merge_unrestored(struct state *st, struct state_counter_set *set)
{
	for (unsigned i = 0; i < st->unrestored.n; i++) {
		const struct state_counter *u = &st->unrestored.v[i];
		struct state_counter c;
		bool merged = false;

		for (unsigned j = 0; j < set->n && !merged; j++) {
			struct state_counter *v = &set->v[j];

			if (!same_series(v, u) || v->type != u->type ||
			    v->n_buckets != u->n_buckets)
				continue;
			v->value += u->value;
			v->count += u->count;
			for (unsigned b = 0; b < v->n_buckets; b++)
				v->buckets[b] += u->buckets[b];
			merged = true;
		}
		if (merged)
			continue;
		if (counter_copy(&c, u) || state_counter_set_push(set, &c)) {
			state_counter_clear(&c);
			return -ENOMEM;
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- restore */
static int load_stored(struct state *st)
{
	sqlite3_stmt *s = state_stmt(&st->w, SQL_COUNTERS_ALL);
	uint64_t rejected = 0;
	int rc, e = 0;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && !e) {
		struct state_counter c = {0};
		char **names = NULL;
		unsigned n_names = 0;

		c.family = strdup((const char *)sqlite3_column_text(s, 0));
		c.labels = strdup((const char *)sqlite3_column_text(s, 1));
		c.names = strdup((const char *)sqlite3_column_text(s, 2));
		c.type = sqlite3_column_int(s, 3);
		c.value = sqlite3_column_double(s, 4);
		c.count = (uint64_t)sqlite3_column_int64(s, 5);
		if (!c.family || !c.labels || !c.names) {
			e = -ENOMEM;
		} else if (parse_strings(c.labels, &c.label_values, &c.n_labels) ||
			   parse_strings(c.names, &names, &n_names) || n_names != c.n_labels) {
			rejected++;
			goto next;
		}
		if (!e && c.type == METRICS_HISTOGRAM) {
			size_t nb = (size_t)sqlite3_column_bytes(s, 6) / sizeof(double);

			if (!nb || nb > METRICS_MAX_BUCKETS ||
			    (size_t)sqlite3_column_bytes(s, 7) != nb * sizeof(uint64_t)) {
				rejected++;
				goto next;
			}
			c.n_buckets = (unsigned)nb;
			c.bounds = malloc(nb * sizeof(double));
			c.buckets = malloc(nb * sizeof(uint64_t));
			if (!c.bounds || !c.buckets) {
				e = -ENOMEM;
				goto next;
			}
			memcpy(c.bounds, sqlite3_column_blob(s, 6), nb * sizeof(double));
			memcpy(c.buckets, sqlite3_column_blob(s, 7), nb * sizeof(uint64_t));
		} else if (!e && c.type != METRICS_COUNTER) {
			rejected++;
			goto next;
		}
		if (!e)
			e = state_counter_set_push(&st->unrestored, &c);
	next:
		free_strings(names, n_names);
		state_counter_clear(&c);
	}
	sqlite3_reset(s);
	if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
		e = state_sqlite_err(rc);
	pthread_mutex_lock(&st->batch_lock);
	st->stats.counters_rejected += rejected;
	pthread_mutex_unlock(&st->batch_lock);
	return e;
}

/* 1: restored, 0: its family is not registered yet, -1: it no longer fits its family. */
static int restore_one(struct metrics_registry *reg, const struct state_counter *c)
{
	struct metrics_family *f = metrics_registry_find(reg, c->family);
	char **names = NULL;
	unsigned n_names = 0;
	struct metrics_family_opts o = {0};
	const char *const *values = (const char *const *)c->label_values;
	int ret = -1;

	if (!f)
		return 0;
	if (parse_strings(c->names, &names, &n_names))
		goto out;
	o.name = c->family;
	o.type = (enum metrics_type)c->type;
	o.label_names = (const char *const *)names;
	o.n_labels = n_names;
	o.buckets = c->bounds;
	o.n_buckets = c->n_buckets;
	if (!metrics_family_matches(f, &o))
		goto out;
	if (c->type == METRICS_HISTOGRAM)
		ret = metrics_histogram_restore(f, values, c->buckets, c->count, c->value) ? -1 : 1;
	else
		ret = metrics_add(f, values, c->value) ? -1 : 1;
out:
	free_strings(names, n_names);
	return ret;
}

/* Restores what waits and can be (w.lock held); returns how many still wait. */
static int restore_pending(struct state *st, struct metrics_registry *reg)
{
	unsigned kept = 0;
	int e = 0;

	if (!st->counters_loaded) {
		e = load_stored(st);
		if (e) {
			state_counter_set_clear(&st->unrestored);
			return e;
		}
		st->counters_loaded = true;
	}
	for (unsigned i = 0; i < st->unrestored.n; i++) {
		struct state_counter *c = &st->unrestored.v[i];
		int r = reg ? restore_one(reg, c) : 0;

		if (r == 0) {
			st->unrestored.v[kept++] = *c;
			continue;
		}
		if (r < 0) {
			pthread_mutex_lock(&st->batch_lock);
			st->stats.counters_rejected++;
			pthread_mutex_unlock(&st->batch_lock);
		}
		state_counter_clear(c);
	}
	st->unrestored.n = kept;
	return (int)kept;
}

int state_restore_counters(struct state *st, struct metrics_registry *reg)
{
	int r;

	if (!st || !reg)
		return -EINVAL;
	pthread_mutex_lock(&st->w.lock);
	r = restore_pending(st, reg);
	pthread_mutex_unlock(&st->w.lock);
	return r;
}

int state_save_counters(struct state *st, struct metrics_registry *reg, const char *const *prefixes,
			unsigned n_prefixes)
{
	struct save_ctx c = {.st = st, .prefixes = prefixes, .n_prefixes = n_prefixes};
	struct metrics_visitor v = {.series = save_series};
	struct state_batch *b;
	int e;

	if (!st || !reg)
		return -EINVAL;
	/* The stored values must be known before a snapshot replaces them. */
	pthread_mutex_lock(&st->w.lock);
	e = st->counters_loaded ? 0 : restore_pending(st, NULL);
	pthread_mutex_unlock(&st->w.lock);
	if (e < 0)
		return e;

	metrics_registry_visit(reg, &v, &c);
	if (c.err) {
		state_counter_set_clear(&c.set);
		return c.err;
	}
	pthread_mutex_lock(&st->w.lock);
	e = merge_unrestored(st, &c.set);
	pthread_mutex_unlock(&st->w.lock);
	if (e) {
		state_counter_set_clear(&c.set);
		return e;
	}
	pthread_mutex_lock(&st->batch_lock);
	b = &st->batch[st->active];
	state_counter_set_clear(&b->counters);
	b->counters = c.set;
	b->has_counters = true;
	pthread_mutex_unlock(&st->batch_lock);
	return 0;
}

int state_counters_write(struct state *st, const struct state_counter_set *set)
{
	int e = state_step_done(state_stmt(&st->w, SQL_COUNTERS_CLEAR));

	for (unsigned i = 0; i < set->n && !e; i++) {
		const struct state_counter *c = &set->v[i];
		sqlite3_stmt *s = state_stmt(&st->w, SQL_COUNTER_PUT);

		if (!s)
			return -EIO;
		sqlite3_bind_text(s, 1, c->family, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, c->labels, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, c->names, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 4, c->type);
		sqlite3_bind_double(s, 5, c->value);
		sqlite3_bind_int64(s, 6, (int64_t)c->count);
		if (c->n_buckets) {
			sqlite3_bind_blob(s, 7, c->bounds, (int)(c->n_buckets * sizeof(double)),
					  SQLITE_STATIC);
			sqlite3_bind_blob(s, 8, c->buckets, (int)(c->n_buckets * sizeof(uint64_t)),
					  SQLITE_STATIC);
		}
		e = state_step_done(s);
	}
	return e;
}
