/* SPDX-License-Identifier: MIT */
/* `bizprobe run`'s state stage (src/cli/run_state.c): the store under --state-dir, fed with
 * the business events, flushed and published by a writer thread on the pipeline's ticks,
 * answering the admin summary. */
#ifndef BIZPROBE_RUN_STATE_H
#define BIZPROBE_RUN_STATE_H

#include <stdbool.h>

#include "bizprobe/business_event.h"
#include "bizprobe/identity.h"
#include "bizprobe/metrics.h"
#include "bizprobe/stripe.h"
#include "cli.h"

#define STATE_DEFAULT_DIR "/var/lib/bizprobe"
#define STATE_LOCK_FILE	  "lock"
#define STATE_FORGET_DIR  "forget" /* pseudonyms to erase, one empty file each */

struct run_state;

/* Where the store of this run lives: --state-dir as given, else a directory of its own under
 * /var/lib/bizprobe named after what is traced (the namespace and the --pid processes, with
 * their start times, or the --exe paths), so that runs against other apps never share
 * counters. */
int run_state_dir(const struct cli_opts *o, const char *ns, char *out, size_t size);

/* The key of the Stripe stage's id digests, derived from the user salt so that it lasts as
 * long as the pseudonyms do. */
void run_state_stripe_key(const struct pseudonymizer *p, uint8_t key[STRIPE_ID_KEY_LEN]);

/* Opens the store in dir (locked for this process), restores the counters of the families
 * registered so far and the Stripe stage's snapshot. NULL with a message on stderr; *fatal
 * says whether run must stop (an explicit --state-dir that cannot be used) or may go on
 * without state (the default directory, used by another run of the same targets). */
struct run_state *run_state_new(const char *dir, bool explicit_dir, const char *ns,
				const char *report_currency, struct metrics_registry *reg,
				struct stripe_semantics *stripe, bool *fatal);
/* Restores the Stripe stage's snapshot; its gauges' events must reach run_state_on_event. */
void run_state_restore_stripe(struct run_state *rs);
/* A consumer of business events, as the metrics stage is. NULL rs is a no-op. */
void run_state_on_event(struct run_state *rs, const struct business_event *ev);
/* Every pipeline tick: resumes counters of families registered since, and asks the writer
 * thread every second to write the batch, the counters and the Stripe snapshot and erase users
 * that `bizprobe state forget` queued, every few seconds to publish the KPIs, daily to prune.
 * final: everything now, and returns when it is written. */
void run_state_tick(struct run_state *rs, bool final);
/* The admin summary handler (struct metrics_server_config.admin); ctx is the run_state. */
unsigned run_state_admin(const char *range, char **json, void *ctx);
void run_state_free(struct run_state *rs);

/* Takes dir's lock file: the descriptor (held while open), -EBUSY when another process holds
 * it, or another negative errno. */
int run_state_lock(const char *dir);

#endif
