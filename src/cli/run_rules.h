/* SPDX-License-Identifier: MIT */
/* The rules `bizprobe run` has in force (src/cli/run_rules.c). */
#ifndef BIZPROBE_RUN_RULES_H
#define BIZPROBE_RUN_RULES_H

#include <stdint.h>
#include <stdio.h>

#include "bizprobe/metrics.h"
#include "bizprobe/rules.h"
#include "cli.h"

struct run_rules;

/* Loads path (problems printed on stderr) and registers the bizprobe_rules_* families. NULL
 * when the file has errors: run refuses to start. */
struct run_rules *run_rules_new(const char *path, const char *namespace_,
				struct metrics_registry *reg);
void run_rules_free(struct run_rules *rr);
/* rules_wants_bodies of the rules loaded now; false without rules. */
bool run_rules_wants_bodies(struct run_rules *rr, const struct http_exchange *head);
void run_rules_eval(struct run_rules *rr, const struct rules_env *env,
		    const struct http_exchange *ex, uint64_t wall_ns);
/* Loads the file again; on an error the rules in force stay and the failure is counted. */
void run_rules_reload(struct run_rules *rr);
/* From the tick: every few seconds, whether the file (its symlinks resolved) is another version
 * than the one last loaded, and if so, once the change has settled, run_rules_reload. */
void run_rules_watch(struct run_rules *rr);
/* Registers the families the rules declare with bm, now and after every reload, so that they
 * exist (and resume their stored values) before their first event. */
void run_rules_declare(struct run_rules *rr, struct business_metrics *bm);
/* The user_keys of the rules loaded first (NULL when the file names none). */
const char *const *run_rules_user_keys(const struct run_rules *rr, unsigned *n);
/* Publishes the rules' statistics as counters (from the tick). */
void run_rules_publish(struct run_rules *rr);

#endif
