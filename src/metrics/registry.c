// SPDX-License-Identifier: MIT
/*
 * Metrics registry: families with fixed label names, series looked up by label values, a cap on
 * series per family (overflow folds into one "other" series) and one mutex for everything.
 *
 * Series are found by a linear scan over a hash of the label values: families are capped at a
 * few hundred series and a scrape walks them all anyway, so a hash table would buy little.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/metrics.h"

#define METRICS_MAX_COLLECTORS 16

struct metrics_series {
	uint64_t hash;
	char **label_values; /* n_labels strings */
	double value;	     /* counter, gauge; histogram sum */
	uint64_t count;	     /* histogram */
	uint64_t *buckets;   /* histogram, n_buckets, not cumulative */
};

struct metrics_family {
	struct metrics_registry *reg;
	struct metrics_family_info info;
	char *name;
	char *help;
	char **label_names;
	double *buckets;
	unsigned max_series;
	struct metrics_series *series;
	unsigned n_series;
	unsigned cap_series;
};

struct metrics_collector {
	metrics_collect_cb cb;
	void *ctx;
	void (*ctx_free)(void *ctx);
};

struct metrics_registry {
	pthread_mutex_t lock;
	struct metrics_family **families;
	unsigned n_families;
	unsigned cap_families;
	struct metrics_collector collectors[METRICS_MAX_COLLECTORS];
	unsigned n_collectors;
};

struct metrics_registry *metrics_registry_new(void)
{
	struct metrics_registry *reg = calloc(1, sizeof(*reg));

	if (!reg)
		return NULL;
	if (pthread_mutex_init(&reg->lock, NULL)) {
		free(reg);
		return NULL;
	}
	return reg;
}

static void series_clear(struct metrics_series *s, unsigned n_labels)
{
	if (s->label_values) {
		for (unsigned i = 0; i < n_labels; i++)
			free(s->label_values[i]);
	}
	free(s->label_values);
	free(s->buckets);
}

static void family_free(struct metrics_family *f)
{
	if (!f)
		return;
	for (unsigned i = 0; i < f->n_series; i++)
		series_clear(&f->series[i], f->info.n_labels);
	free(f->series);
	if (f->label_names) {
		for (unsigned i = 0; i < f->info.n_labels; i++)
			free(f->label_names[i]);
	}
	free(f->label_names);
	free(f->buckets);
	free(f->name);
	free(f->help);
	free(f);
}

void metrics_registry_free(struct metrics_registry *reg)
{
	if (!reg)
		return;
	for (unsigned i = 0; i < reg->n_families; i++)
		family_free(reg->families[i]);
	free(reg->families);
	for (unsigned i = 0; i < reg->n_collectors; i++) {
		if (reg->collectors[i].ctx_free)
			reg->collectors[i].ctx_free(reg->collectors[i].ctx);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels exclude ':' and the reserved "__" prefix. */
static bool valid_name(const char *s, bool is_label)
{
	if (!s || !*s)
		return false;
	if (is_label && s[0] == '_' && s[1] == '_')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (!is_label && c == ':');
		bool digit = c >= '0' && c <= '9';

		if (!alpha && !(digit && p != s))
			return false;
	}
	return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int validate_opts(const struct metrics_family_opts *o)
{
	if (!valid_name(o->name, false) || o->n_labels > METRICS_MAX_LABELS)
		return -EINVAL;
	if (o->n_labels && !o->label_names)
		return -EINVAL;
	/* The convention keeps rate() queries honest; only a name fixed by the guide's queries
	 * (direct_fan_platform_metrics_collection_duration_ms) may break it. */
	if (o->type == METRICS_COUNTER && !has_suffix(o->name, "_total") && !o->fixed_name)
		return -EINVAL;
	if (o->type != METRICS_COUNTER && o->type != METRICS_GAUGE && o->type != METRICS_HISTOGRAM)
		return -EINVAL;
	for (unsigned i = 0; i < o->n_labels; i++) {
		if (!valid_name(o->label_names[i], true))
			return -EINVAL;
		if (o->type == METRICS_HISTOGRAM && !strcmp(o->label_names[i], "le"))
			return -EINVAL;
		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(o->label_names[i], o->label_names[j]))
				return -EINVAL;
		}
	}
	if (o->type == METRICS_HISTOGRAM) {
		if (!o->n_buckets || o->n_buckets > METRICS_MAX_BUCKETS || !o->buckets)
			return -EINVAL;
		for (unsigned i = 0; i < o->n_buckets; i++) {
			if (!isfinite(o->buckets[i]))
				return -EINVAL;
			if (i && o->buckets[i] <= o->buckets[i - 1])
				return -EINVAL;
		}
	}
	if (o->max_series == 1 && o->n_labels)
		return -EINVAL; /* no room for anything but the overflow series */
	return 0;
}

static struct metrics_family *family_find_locked(struct metrics_registry *reg, const char *name)
{
	for (unsigned i = 0; i < reg->n_families; i++) {
		if (!strcmp(reg->families[i]->name, name))
			return reg->families[i];
	}
	return NULL;
}

struct metrics_family *metrics_registry_find(struct metrics_registry *reg, const char *name)
{
	struct metrics_family *f;

	pthread_mutex_lock(&reg->lock);
	f = family_find_locked(reg, name);
	pthread_mutex_unlock(&reg->lock);
	return f;
}

bool metrics_family_matches(const struct metrics_family *f, const struct metrics_family_opts *o)
{
	/* Name, type and labels are immutable once registered: no lock needed. */
	if (!f || !o || strcmp(f->name, o->name) || f->info.type != o->type ||
	    f->info.n_labels != o->n_labels)
		return false;
	for (unsigned i = 0; i < o->n_labels; i++) {
		if (strcmp(f->label_names[i], o->label_names[i]))
			return false;
	}
	if (o->type != METRICS_HISTOGRAM)
		return true;
	if (f->info.n_buckets != o->n_buckets)
		return false;
	for (unsigned i = 0; i < o->n_buckets; i++) {
		if (f->buckets[i] != o->buckets[i])
			return false;
	}
	return true;
}

static int series_create_locked(struct metrics_family *f, const char *const *values, uint64_t hash,
				struct metrics_series **out);
static uint64_t values_hash(const char *const *values, unsigned n);

int metrics_family_register(struct metrics_registry *reg, const struct metrics_family_opts *opts,
			    struct metrics_family **out)
{
	struct metrics_family *f = NULL;
	int err;

	if (!reg || !opts)
		return -EINVAL;
	err = validate_opts(opts);
	if (err)
		return err;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->reg = reg;
	f->name = strdup(opts->name);
	f->help = strdup(opts->help ? opts->help : "");
	if (!f->name || !f->help)
		goto nomem;
	if (opts->n_labels) {
		f->label_names = calloc(opts->n_labels, sizeof(char *));
		if (!f->label_names)
			goto nomem;
		for (unsigned i = 0; i < opts->n_labels; i++) {
			f->label_names[i] = strdup(opts->label_names[i]);
			if (!f->label_names[i])
				goto nomem;
		}
	}
	if (opts->type == METRICS_HISTOGRAM) {
		f->buckets = malloc(opts->n_buckets * sizeof(double));
		if (!f->buckets)
			goto nomem;
		memcpy(f->buckets, opts->buckets, opts->n_buckets * sizeof(double));
	}
	f->max_series = opts->max_series ? opts->max_series : METRICS_DEFAULT_MAX_SERIES;
	f->info.name = f->name;
	f->info.help = f->help;
	f->info.type = opts->type;
	f->info.label_names = (const char *const *)f->label_names;
	f->info.n_labels = opts->n_labels;
	f->info.buckets = f->buckets;
	f->info.n_buckets = opts->type == METRICS_HISTOGRAM ? opts->n_buckets : 0;

	/* An unlabelled family has exactly one series; exporting it as 0 from the start lets
	 * rate() see the first increment. */
	if (!opts->n_labels) {
		struct metrics_series *s;

		err = series_create_locked(f, NULL, values_hash(NULL, 0), &s);
		if (err)
			goto fail;
	}

	pthread_mutex_lock(&reg->lock);
	if (family_find_locked(reg, f->name)) {
		pthread_mutex_unlock(&reg->lock);
		err = -EEXIST;
		goto fail;
	}
	if (reg->n_families == reg->cap_families) {
		unsigned cap = reg->cap_families ? reg->cap_families * 2 : 16;
		struct metrics_family **nf = realloc(reg->families, cap * sizeof(*nf));

		if (!nf) {
			pthread_mutex_unlock(&reg->lock);
			goto nomem;
		}
		reg->families = nf;
		reg->cap_families = cap;
	}
	reg->families[reg->n_families++] = f;
	pthread_mutex_unlock(&reg->lock);
	if (out)
		*out = f;
	return 0;

nomem:
	err = -ENOMEM;
fail:
	family_free(f);
	return err;
}

/* FNV-1a over the values, each terminated by its NUL so that ("ab","c") != ("a","bc"). */
static uint64_t values_hash(const char *const *values, unsigned n)
{
	uint64_t h = 1469598103934665603ULL;

	for (unsigned i = 0; i < n; i++) {
		const char *p = values[i] ? values[i] : "";

		do {
			h ^= (unsigned char)*p;
			h *= 1099511628211ULL;
		} while (*p++);
	}
	return h;
}

static bool series_matches(const struct metrics_series *s, const char *const *values, unsigned n,
			   uint64_t hash)
{
	if (s->hash != hash)
		return false;
	for (unsigned i = 0; i < n; i++) {
		if (strcmp(s->label_values[i], values[i] ? values[i] : ""))
			return false;
	}
	return true;
}

static struct metrics_series *series_find_locked(struct metrics_family *f,
						 const char *const *values, uint64_t hash)
{
	for (unsigned i = 0; i < f->n_series; i++) {
		if (series_matches(&f->series[i], values, f->info.n_labels, hash))
			return &f->series[i];
	}
	return NULL;
}

static int series_create_locked(struct metrics_family *f, const char *const *values, uint64_t hash,
				struct metrics_series **out)
{
	struct metrics_series s = {.hash = hash};
	unsigned n = f->info.n_labels;

	if (f->n_series == f->cap_series) {
		unsigned cap = f->cap_series ? f->cap_series * 2 : 4;
		struct metrics_series *ns;

		if (cap > f->max_series)
			cap = f->max_series;
		ns = realloc(f->series, cap * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		f->series = ns;
		f->cap_series = cap;
	}
	if (n) {
		s.label_values = calloc(n, sizeof(char *));
		if (!s.label_values)
			goto nomem;
		for (unsigned i = 0; i < n; i++) {
			s.label_values[i] = strdup(values[i] ? values[i] : "");
			if (!s.label_values[i])
				goto nomem;
		}
	}
	if (f->info.type == METRICS_HISTOGRAM) {
		s.buckets = calloc(f->info.n_buckets, sizeof(uint64_t));
		if (!s.buckets)
			goto nomem;
	}
	f->series[f->n_series] = s;
	*out = &f->series[f->n_series++];
	return 0;
nomem:
	series_clear(&s, n);
	return -ENOMEM;
}

/* Finds or creates the series; past the cap, the shared overflow series. */
static int series_get_locked(struct metrics_family *f, const char *const *values,
			     struct metrics_series **out)
{
	static const char *const overflow[METRICS_MAX_LABELS] = {
	    METRICS_OVERFLOW_VALUE, METRICS_OVERFLOW_VALUE, METRICS_OVERFLOW_VALUE,
	    METRICS_OVERFLOW_VALUE, METRICS_OVERFLOW_VALUE, METRICS_OVERFLOW_VALUE,
	    METRICS_OVERFLOW_VALUE, METRICS_OVERFLOW_VALUE,
	};
	unsigned n = f->info.n_labels;
	uint64_t hash = values_hash(values, n);

	*out = series_find_locked(f, values, hash);
	if (*out)
		return 0;
	if (f->n_series + 1 >= f->max_series) {
		/* Keep the last slot for the overflow series. */
		values = overflow;
		hash = values_hash(values, n);
		*out = series_find_locked(f, values, hash);
		if (*out)
			return 0;
		if (f->n_series >= f->max_series)
			return -ENOSPC; /* unreachable while max_series >= 2 */
	}
	return series_create_locked(f, values, hash, out);
}

static int update(struct metrics_family *f, const char *const *values, double v, int op)
{
	struct metrics_series *s;
	int err;

	if (!f || (f->info.n_labels && !values) || isnan(v))
		return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	err = series_get_locked(f, values, &s);
	if (err)
		goto out;
	switch (op) {
	case 0: /* add */
		s->value += v;
		break;
	case 1: /* set */
		s->value = v;
		break;
	case 2: /* observe */
		s->count++;
		s->value += v;
		for (unsigned i = 0; i < f->info.n_buckets; i++) {
			if (v <= f->buckets[i]) {
				s->buckets[i]++;
				break;
			}
		}
		break;
	}
out:
	pthread_mutex_unlock(&f->reg->lock);
	return err;
}

int metrics_add(struct metrics_family *f, const char *const *label_values, double v)
{
	if (!f || f->info.type == METRICS_HISTOGRAM)
		return -EINVAL;
	if (f->info.type == METRICS_COUNTER && !(v >= 0))
		return -EINVAL; /* counters only go up */
	return update(f, label_values, v, 0);
}

int metrics_inc(struct metrics_family *f, const char *const *label_values)
{
	return metrics_add(f, label_values, 1.0);
}

int metrics_set(struct metrics_family *f, const char *const *label_values, double v)
{
	if (!f || f->info.type != METRICS_GAUGE)
		return -EINVAL;
	return update(f, label_values, v, 1);
}

int metrics_observe(struct metrics_family *f, const char *const *label_values, double v)
{
	if (!f || f->info.type != METRICS_HISTOGRAM)
		return -EINVAL;
	return update(f, label_values, v, 2);
}

int metrics_histogram_restore(struct metrics_family *f, const char *const *label_values,
			      const uint64_t *buckets, uint64_t count, double sum)
{
	struct metrics_series *s;
	uint64_t in_buckets = 0;
	int err;

	if (!f || f->info.type != METRICS_HISTOGRAM || (f->info.n_labels && !label_values) ||
	    !buckets || isnan(sum))
		return -EINVAL;
	for (unsigned i = 0; i < f->info.n_buckets; i++) {
		if (buckets[i] > UINT64_MAX - in_buckets)
			return -EINVAL;
		in_buckets += buckets[i];
	}
	if (in_buckets > count)
		return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	err = series_get_locked(f, label_values, &s);
	if (!err) {
		s->count += count;
		s->value += sum;
		for (unsigned i = 0; i < f->info.n_buckets; i++)
			s->buckets[i] += buckets[i];
	}
	pthread_mutex_unlock(&f->reg->lock);
	return err;
}

/* Validates the arguments, takes the registry lock and finds the series of label_values. On 0 the
 * lock is held and the caller releases it; on -EINVAL or -ENOENT it is not held. */
static int series_find_and_lock(struct metrics_family *f, const char *const *label_values,
				struct metrics_series **out)
{
	unsigned n = f ? f->info.n_labels : 0;

	if (!f || (n && !label_values))
		return -EINVAL;
	pthread_mutex_lock(&f->reg->lock);
	*out = series_find_locked(f, label_values, values_hash(label_values, n));
	if (!*out) {
		pthread_mutex_unlock(&f->reg->lock);
		return -ENOENT;
	}
	return 0;
}

int metrics_remove(struct metrics_family *f, const char *const *label_values)
{
	struct metrics_series *s;
	size_t idx;
	int err;

	err = series_find_and_lock(f, label_values, &s);
	if (err)
		return err;
	idx = (size_t)(s - f->series);
	series_clear(s, f->info.n_labels);
	memmove(s, s + 1, (f->n_series - idx - 1) * sizeof(*s));
	f->n_series--;
	pthread_mutex_unlock(&f->reg->lock);
	return 0;
}

int metrics_get_histogram(struct metrics_family *f, const char *const *label_values,
			  uint64_t *count, double *sum)
{
	struct metrics_series *s;
	int err;

	err = series_find_and_lock(f, label_values, &s);
	if (err)
		return err;
	if (count)
		*count = s->count;
	if (sum)
		*sum = s->value;
	pthread_mutex_unlock(&f->reg->lock);
	return 0;
}

int metrics_get(struct metrics_family *f, const char *const *label_values, double *v)
{
	return metrics_get_histogram(f, label_values, NULL, v);
}

unsigned metrics_family_series(struct metrics_family *f)
{
	unsigned n;

	pthread_mutex_lock(&f->reg->lock);
	n = f->n_series;
	pthread_mutex_unlock(&f->reg->lock);
	return n;
}

int metrics_registry_add_collector(struct metrics_registry *reg, metrics_collect_cb cb, void *ctx,
				   void (*ctx_free)(void *ctx))
{
	int err = 0;

	if (!reg || !cb) {
		err = -EINVAL;
		goto out;
	}
	pthread_mutex_lock(&reg->lock);
	if (reg->n_collectors == METRICS_MAX_COLLECTORS)
		err = -ENOSPC;
	else
		reg->collectors[reg->n_collectors++] =
		    (struct metrics_collector){cb, ctx, ctx_free};
	pthread_mutex_unlock(&reg->lock);
out:
	if (err && ctx_free)
		ctx_free(ctx);
	return err;
}

void metrics_registry_run_collectors(struct metrics_registry *reg)
{
	struct metrics_collector copy[METRICS_MAX_COLLECTORS];
	unsigned n;

	/* Collectors update the registry, which takes the lock; run them on a copy, unlocked. */
	pthread_mutex_lock(&reg->lock);
	n = reg->n_collectors;
	memcpy(copy, reg->collectors, n * sizeof(copy[0]));
	pthread_mutex_unlock(&reg->lock);
	for (unsigned i = 0; i < n; i++)
		copy[i].cb(reg, copy[i].ctx);
}

int metrics_registry_visit(struct metrics_registry *reg, const struct metrics_visitor *v, void *ctx)
{
	int ret = 0;

	pthread_mutex_lock(&reg->lock);
	for (unsigned i = 0; i < reg->n_families && !ret; i++) {
		struct metrics_family *f = reg->families[i];

		if (v->family)
			ret = v->family(&f->info, ctx);
		for (unsigned j = 0; j < f->n_series && !ret && v->series; j++) {
			struct metrics_series *s = &f->series[j];
			struct metrics_series_info si = {
			    .label_values = (const char *const *)s->label_values,
			    .value = s->value,
			    .bucket_counts = s->buckets,
			    .count = s->count,
			    .sum = s->value,
			};

			ret = v->series(&f->info, &si, ctx);
		}
	}
	pthread_mutex_unlock(&reg->lock);
	return ret;
}
