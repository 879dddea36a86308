// SPDX-License-Identifier: MIT
/* `bizprobe run --rules FILE`: the loaded rules, their reload on SIGHUP or when the file changes
 * (a Kubernetes ConfigMap update), and their health as bizprobe_rules_* metrics. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "run_rules.h"

/* Statistics of the rules, cumulative across reloads (each load starts its own at 0). */
static const struct rules_counter {
	const char *name;
	const char *help;
	size_t off;
} counters[] = {
    {"bizprobe_rules_exchanges_matched_total", "Exchanges at least one rule matched.",
     offsetof(struct rules_stats, matched)},
    {"bizprobe_rules_bodies_parsed_total",
     "Bodies parsed because a matching rule read a field of them.",
     offsetof(struct rules_stats, bodies_parsed)},
    {"bizprobe_rules_body_errors_total",
     "Fields a rule needed from a body that was not JSON or form data, or was truncated.",
     offsetof(struct rules_stats, body_errors)},
    {"bizprobe_rules_identity_errors_total",
     "Identity sources present but unusable (a malformed or badly signed JWT, ...).",
     offsetof(struct rules_stats, identity_errors)},
    {"bizprobe_rules_opted_out_total",
     "Rule events whose user was not tracked: the request sent Sec-GPC: 1 or DNT: 1.",
     offsetof(struct rules_stats, opted_out)},
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))

/* How often the file is looked at. The kubelet refreshes a mounted ConfigMap within about a
 * minute of the edit, so a few seconds more cost nothing; a stat() per interval costs less. */
#define WATCH_INTERVAL_NS (2 * 1000000000LL)

/* What identifies one version of the file: stat() follows the symlinks, so a ConfigMap update
 * (the kubelet writes a new ..<timestamp> directory and renames a new ..data symlink over the
 * old one; FILE is ..data/FILE through a symlink) shows as another inode, and an edit in place
 * as another size or mtime. */
struct file_version {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	bool valid; /* stat() succeeded */
};

struct run_rules {
	char *path;
	char *namespace_;
	struct rules *rules;
	struct rules_stats retired; /* of the rules replaced by reloads */
	uint64_t published[N_COUNTERS];
	struct metrics_family *counter[N_COUNTERS];
	struct metrics_family *reloads;	    /* {outcome} */
	struct metrics_family *loaded;	    /* events declared by the rules in force */
	struct business_metrics *bm;	    /* where the rules' families are declared */
	struct file_version loaded_version; /* of the last load tried, good or bad */
	struct file_version pending;	    /* a change seen once, not yet settled */
	int64_t next_watch_ns;
};

static struct file_version version_of(const char *path)
{
	struct file_version v = {0};
	struct stat st;

	if (stat(path, &st))
		return v;
	v.dev = st.st_dev;
	v.ino = st.st_ino;
	v.size = st.st_size;
	v.mtime = st.st_mtim;
	v.ctime = st.st_ctim;
	v.valid = true;
	return v;
}

static bool version_eq(const struct file_version *a, const struct file_version *b)
{
	return a->valid == b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static uint64_t stat_at(const struct rules_stats *s, size_t off)
{
	return *(const uint64_t *)((const char *)s + off);
}

static int register_families(struct run_rules *rr, struct metrics_registry *reg)
{
	static const char *const outcome[] = {"outcome"};
	struct metrics_family_opts reloads = {
	    .name = "bizprobe_rules_reloads_total",
	    .help = "Rules file reloads (SIGHUP or a change of the file) by outcome; a failed one "
		    "keeps the rules in force.",
	    .type = METRICS_COUNTER,
	    .label_names = outcome,
	    .n_labels = 1,
	};
	struct metrics_family_opts loaded = {
	    .name = "bizprobe_rules_loaded_events",
	    .help = "Events the rules in force declare.",
	    .type = METRICS_GAUGE,
	};
	int err;

	for (size_t i = 0; i < N_COUNTERS; i++) {
		struct metrics_family_opts o = {
		    .name = counters[i].name, .help = counters[i].help, .type = METRICS_COUNTER};

		err = metrics_family_register(reg, &o, &rr->counter[i]);
		if (err)
			return err;
	}
	err = metrics_family_register(reg, &reloads, &rr->reloads);
	if (!err)
		err = metrics_family_register(reg, &loaded, &rr->loaded);
	if (err)
		return err;
	/* Both outcomes exist from the start, so an alert on failures has a series to watch. */
	metrics_add(rr->reloads, (const char *const[]){"ok"}, 0);
	metrics_add(rr->reloads, (const char *const[]){"failed"}, 0);
	metrics_set(rr->loaded, NULL, rules_count(rr->rules));
	return 0;
}

struct run_rules *run_rules_new(const char *path, const char *namespace_,
				struct metrics_registry *reg)
{
	struct run_rules *rr = calloc(1, sizeof(*rr));

	if (!rr)
		return NULL;
	rr->path = strdup(path);
	rr->namespace_ = strdup(namespace_);
	if (!rr->path || !rr->namespace_)
		goto fail;
	/* Taken before the read: a change racing the read shows as a change at the next look. */
	rr->loaded_version = version_of(path);
	rr->next_watch_ns = cli_clock_ns(CLOCK_MONOTONIC) + WATCH_INTERVAL_NS;
	rr->rules = cli_load_rules(path, namespace_);
	if (!rr->rules || register_families(rr, reg))
		goto fail;
	return rr;
fail:
	run_rules_free(rr);
	return NULL;
}

void run_rules_free(struct run_rules *rr)
{
	if (!rr)
		return;
	rules_free(rr->rules);
	free(rr->path);
	free(rr->namespace_);
	free(rr);
}

bool run_rules_wants_bodies(struct run_rules *rr, const struct http_exchange *head)
{
	return rr && rules_wants_bodies(rr->rules, head);
}

void run_rules_eval(struct run_rules *rr, const struct rules_env *env,
		    const struct http_exchange *ex, uint64_t wall_ns)
{
	rules_eval(rr->rules, env, ex, wall_ns);
}

void run_rules_reload(struct run_rules *rr)
{
	struct rules *next;
	struct rules_stats old;

	/* A bad version is tried once: the watch waits for the next change, not for a fix of this
	 * one by retrying (and counting) it every interval. */
	rr->loaded_version = version_of(rr->path);
	rr->pending.valid = false;
	next = cli_load_rules(rr->path, rr->namespace_);
	if (!next) {
		fprintf(stderr, "bizprobe run: %s: reload failed, the rules loaded before stay in "
				"force\n",
			rr->path);
		metrics_inc(rr->reloads, (const char *const[]){"failed"});
		return;
	}
	rules_get_stats(rr->rules, &old);
	for (size_t i = 0; i < sizeof(old) / sizeof(uint64_t); i++)
		((uint64_t *)&rr->retired)[i] += ((const uint64_t *)&old)[i];
	rules_free(rr->rules);
	rr->rules = next;
	metrics_inc(rr->reloads, (const char *const[]){"ok"});
	metrics_set(rr->loaded, NULL, rules_count(next));
	run_rules_declare(rr, rr->bm);
	fprintf(stderr, "bizprobe run: %s: reloaded, %u events\n", rr->path, rules_count(next));
}

void run_rules_watch(struct run_rules *rr)
{
	int64_t now = cli_clock_ns(CLOCK_MONOTONIC);
	struct file_version cur;

	if (now < rr->next_watch_ns)
		return;
	rr->next_watch_ns = now + WATCH_INTERVAL_NS;
	cur = version_of(rr->path);
	if (!cur.valid || version_eq(&cur, &rr->loaded_version)) {
		/* Gone (an rm before a copy) is no new version: the rules in force stay, and the
		 * file is loaded when it is back. */
		rr->pending.valid = false;
		return;
	}
	/* Acted on when seen the same at two looks in a row: an editor or `cat >` writing in
	 * place leaves a half-written file for a moment, and a SIGHUP sent right after the write
	 * has reloaded it by the second look (so one edit is one reload). */
	if (!version_eq(&cur, &rr->pending)) {
		rr->pending = cur;
		return;
	}
	fprintf(stderr, "bizprobe run: %s: changed on disk, reloading\n", rr->path);
	run_rules_reload(rr);
}

void run_rules_declare(struct run_rules *rr, struct business_metrics *bm)
{
	rr->bm = bm;
	if (!bm)
		return;
	/* A clash is the rule's own problem: its events are rejected and counted when they come. */
	for (unsigned i = 0; i < rules_count(rr->rules); i++)
		business_metrics_declare(bm, rules_metric(rr->rules, i));
}

void run_rules_publish(struct run_rules *rr)
{
	struct rules_stats now;

	rules_get_stats(rr->rules, &now);
	for (size_t i = 0; i < N_COUNTERS; i++) {
		uint64_t total = stat_at(&rr->retired, counters[i].off) + stat_at(&now, counters[i].off);

		if (total > rr->published[i])
			metrics_add(rr->counter[i], NULL, (double)(total - rr->published[i]));
		rr->published[i] = total;
	}
}

const char *const *run_rules_user_keys(const struct run_rules *rr, unsigned *n)
{
	return rules_user_keys(rr->rules, n);
}
