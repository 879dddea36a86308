/* SPDX-License-Identifier: MIT */
/* `bizprobe run`'s Sentry parts (src/cli/run_sentry.c): the app's own Sentry reports counted
 * (bizprobe/sentry.h), and failed business flows reported when bizprobe has a DSN
 * (bizprobe/sentry_reporter.h). Every function accepts NULL. */
#ifndef BIZPROBE_RUN_SENTRY_H
#define BIZPROBE_RUN_SENTRY_H

#include "bizprobe/business_event.h"
#include "bizprobe/http_exchange.h"
#include "bizprobe/identity.h"
#include "bizprobe/metrics.h"
#include "cli.h"

struct run_sentry;

/* sink: where the semantics' events go (run's fan-out, which calls run_sentry_on_event back).
 * pseudonymizer NULL: reports carry no user. user_keys: the Stripe metadata keys of payers
 * (NULL: the defaults). NULL on a bad DSN or --sentry-host (the reason printed). */
struct run_sentry *run_sentry_new(const struct cli_opts *o, struct metrics_registry *reg,
				  const struct pseudonymizer *pseudonymizer,
				  const char *const *user_keys, unsigned n_user_keys,
				  struct biz_event_sink sink);
/* Sends what is queued for up to 2 s, then stops. */
void run_sentry_free(struct run_sentry *rs);
/* Around the rest of the semantics of one exchange: counts it if it is the app's Sentry report,
 * and lets the reporter read it while its events go by. */
/* Whether the Sentry side reads the bodies of the exchange that head begins: the app's own
 * Sentry traffic (sentry_semantics_wants_bodies). The reporter reads only exchanges whose
 * bodies Stripe or the rules asked for. */
bool run_sentry_wants_bodies(struct run_sentry *rs, const struct http_exchange *head);
void run_sentry_begin(struct run_sentry *rs, const struct http_exchange *ex);
void run_sentry_end(struct run_sentry *rs);
void run_sentry_on_event(const struct business_event *ev, struct run_sentry *rs);
void run_sentry_tick(struct run_sentry *rs);

#endif
