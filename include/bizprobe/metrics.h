/* SPDX-License-Identifier: MIT */
/*
 * Output of the semantics stage (src/semantics/) and input of the export stage (src/export/):
 * a registry of counters, gauges and histograms with fixed label names and a bounded number of
 * series per family. Every operation takes the registry's mutex, because the HTTP endpoint
 * renders from libmicrohttpd's thread while the main loop updates.
 */
#ifndef BIZPROBE_METRICS_H
#define BIZPROBE_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum metrics_type {
	METRICS_COUNTER = 0,
	METRICS_GAUGE = 1,
	METRICS_HISTOGRAM = 2,
};

/* Series per family when metrics_family_opts.max_series is 0. */
#define METRICS_DEFAULT_MAX_SERIES 256
/* Label names per family. */
#define METRICS_MAX_LABELS 8
/* Buckets per histogram, +Inf excluded. */
#define METRICS_MAX_BUCKETS 32
/* Label value every label of a family takes once the family is full. */
#define METRICS_OVERFLOW_VALUE "other"

struct metrics_registry;
struct metrics_family;

struct metrics_family_opts {
	const char *name; /* counters must end in _total */
	const char *help;
	enum metrics_type type;
	const char *const *label_names; /* n_labels entries */
	unsigned n_labels;
	const double *buckets; /* histograms: strictly ascending upper bounds, +Inf implied */
	unsigned n_buckets;
	/* Distinct label-value sets kept, the overflow series included: once max_series - 1 sets
	 * exist, new sets are all folded into one series whose every label is "other". */
	unsigned max_series;
	/* A counter whose name is a contract (the guide queries it as it is) need not end in
	 * _total. */
	bool fixed_name;
};

/* Returns NULL on allocation failure. */
struct metrics_registry *metrics_registry_new(void);
void metrics_registry_free(struct metrics_registry *reg);

/* Registers a family; the registry owns it. Families render in registration order. Returns 0,
 * -EINVAL for an invalid name, label or bucket list, -EEXIST for a duplicate name, -ENOMEM. */
int metrics_family_register(struct metrics_registry *reg, const struct metrics_family_opts *opts,
			    struct metrics_family **out);
/* NULL when no family has that name. */
struct metrics_family *metrics_registry_find(struct metrics_registry *reg, const char *name);
/* The family has this name, type, label names and buckets (help and max_series aside). */
bool metrics_family_matches(const struct metrics_family *f, const struct metrics_family_opts *o);

/* label_values has one entry per label name (NULL is read as ""). Values are copied.
 * Returns 0, -EINVAL (negative counter increment, wrong type, NaN), -ENOMEM. */
int metrics_add(struct metrics_family *f, const char *const *label_values, double v);
int metrics_inc(struct metrics_family *f, const char *const *label_values);
int metrics_set(struct metrics_family *f, const char *const *label_values, double v); /* gauges */
int metrics_observe(struct metrics_family *f, const char *const *label_values, double v);
/* Adds a histogram series' stored state back (counters surviving a restart, src/state/):
 * buckets has n_buckets per-bucket (not cumulative) counts, as metrics_series_info gives them;
 * count includes the +Inf bucket's observations, so it is at least their sum. The series is
 * created if needed. Returns 0, -EINVAL (wrong type, count below the buckets' sum, NaN sum),
 * -ENOMEM. */
int metrics_histogram_restore(struct metrics_family *f, const char *const *label_values,
			      const uint64_t *buckets, uint64_t count, double sum);
/* Drops one series (gauges whose subject disappeared). -ENOENT when absent. */
int metrics_remove(struct metrics_family *f, const char *const *label_values);

/* Reads a series back (tests, the JSON summary). Returns -ENOENT when the series does not exist.
 * For histograms *v is the sum; metrics_get_histogram also returns the count. */
int metrics_get(struct metrics_family *f, const char *const *label_values, double *v);
int metrics_get_histogram(struct metrics_family *f, const char *const *label_values,
			  uint64_t *count, double *sum);
/* Series currently held by a family. */
unsigned metrics_family_series(struct metrics_family *f);

/* Run (in registration order, without the registry lock held) before every render, e.g. to
 * publish capture statistics or process_* values. ctx_free (may be NULL) is called on ctx by
 * metrics_registry_free, and on failure to register. */
typedef void (*metrics_collect_cb)(struct metrics_registry *reg, void *ctx);
int metrics_registry_add_collector(struct metrics_registry *reg, metrics_collect_cb cb, void *ctx,
				   void (*ctx_free)(void *ctx));
void metrics_registry_run_collectors(struct metrics_registry *reg);

/* Read-only walk over every family and series with the lock held (for exporters). */
struct metrics_family_info {
	const char *name;
	const char *help;
	enum metrics_type type;
	const char *const *label_names;
	unsigned n_labels;
	const double *buckets;
	unsigned n_buckets;
};

struct metrics_series_info {
	const char *const *label_values;
	double value;		       /* counters and gauges */
	const uint64_t *bucket_counts; /* histograms: per bucket, not cumulative, n_buckets */
	uint64_t count;		       /* histograms */
	double sum;		       /* histograms */
};

struct metrics_visitor {
	int (*family)(const struct metrics_family_info *fam, void *ctx);
	int (*series)(const struct metrics_family_info *fam, const struct metrics_series_info *s,
		      void *ctx);
};

/* Stops at and returns the first non-zero callback result. */
int metrics_registry_visit(struct metrics_registry *reg, const struct metrics_visitor *v,
			   void *ctx);

/* process_* metrics read from /proc/self at every render. */
int metrics_process_register(struct metrics_registry *reg);
/* bizprobe_build_info{version} 1 */
int metrics_build_info_register(struct metrics_registry *reg, const char *version);

/*
 * Prometheus text exposition format 0.0.4 (src/export/prometheus.c).
 */
#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Runs the collectors, then renders the whole registry into a malloc'd NUL-terminated buffer
 * the caller frees. Returns 0, -ENOMEM or -EIO. */
int prom_render(struct metrics_registry *reg, char **out, size_t *len);

/* Formatters, visible so that they are tested against golden strings. */
void prom_write_escaped(FILE *f, const char *s, int escape_quote); /* \\ \n (and \" if asked) */
/* Shortest decimal that reads back as v; "+Inf", "-Inf", "NaN". Returns buf. */
const char *prom_format_double(char *buf, size_t size, double v);
void prom_write_family_header(FILE *f, const struct metrics_family_info *fam);
void prom_write_series(FILE *f, const struct metrics_family_info *fam,
		       const struct metrics_series_info *s);

#endif
