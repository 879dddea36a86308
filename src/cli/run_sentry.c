// SPDX-License-Identifier: MIT
/* `bizprobe run`'s Sentry parts: options and environment turned into the Sentry semantics and,
 * with a DSN, the reporter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/sentry.h"
#include "bizprobe/sentry_reporter.h"
#include "run_sentry.h"

/* What shutdown waits for the reporter's queue. */
#define SHUTDOWN_MS 2000

struct run_sentry {
	struct sentry_semantics *semantics;
	struct sentry_reporter *reporter; /* NULL without a DSN */
};

struct run_sentry *run_sentry_new(const struct cli_opts *o, struct metrics_registry *reg,
				  const struct pseudonymizer *pseudonymizer,
				  const char *const *user_keys, unsigned n_user_keys,
				  struct biz_event_sink sink)
{
	struct sentry_config scfg = {
	    .extra_hosts = o->sentry_hosts,
	    .n_extra_hosts = (unsigned)o->n_sentry_hosts,
	};
	/* The option first; SENTRY_DSN in bizprobe's own environment otherwise (preferred: argv
	 * is visible to every user through ps). */
	const char *dsn = o->sentry_dsn ? o->sentry_dsn : getenv("SENTRY_DSN");
	struct run_sentry *rs = calloc(1, sizeof(*rs));
	char err[256];

	if (!rs)
		return NULL;
	rs->semantics = sentry_semantics_new(&sink, &scfg);
	if (!rs->semantics) {
		fprintf(stderr,
			"bizprobe run: bad --sentry-host (a host[:port]) or out of memory\n");
		goto fail;
	}
	if (dsn && *dsn) {
		struct sentry_reporter_config rcfg = {
		    .dsn = dsn,
		    .reg = reg,
		    .pseudonymizer = pseudonymizer,
		    .user_keys = user_keys,
		    .n_user_keys = n_user_keys,
		    .version = BIZPROBE_VERSION,
		};
		struct sentry_dsn d;

		rs->reporter = sentry_reporter_new(&rcfg, err, sizeof(err));
		if (!rs->reporter) {
			fprintf(stderr, "bizprobe run: %s\n", err);
			goto fail;
		}
		/* The host only: the DSN holds the project's key. */
		if (!sentry_dsn_parse(dsn, &d))
			fprintf(stderr,
				"bizprobe run: failed business flows are reported to Sentry "
				"at %s\n",
				d.host);
		explicit_bzero(&d, sizeof(d));
	}
	return rs;
fail:
	run_sentry_free(rs);
	return NULL;
}

void run_sentry_free(struct run_sentry *rs)
{
	if (!rs)
		return;
	sentry_reporter_free(rs->reporter, SHUTDOWN_MS);
	sentry_semantics_free(rs->semantics);
	free(rs);
}

bool run_sentry_wants_bodies(struct run_sentry *rs, const struct http_exchange *head)
{
	return rs && sentry_semantics_wants_bodies(rs->semantics, head);
}

void run_sentry_begin(struct run_sentry *rs, const struct http_exchange *ex)
{
	if (!rs)
		return;
	sentry_semantics_on_exchange(rs->semantics, ex);
	sentry_reporter_begin(rs->reporter, ex);
}

void run_sentry_end(struct run_sentry *rs)
{
	if (rs)
		sentry_reporter_end(rs->reporter);
}

void run_sentry_on_event(const struct business_event *ev, struct run_sentry *rs)
{
	if (rs)
		sentry_reporter_on_event(ev, rs->reporter);
}

void run_sentry_tick(struct run_sentry *rs)
{
	if (rs)
		sentry_reporter_tick(rs->reporter);
}
