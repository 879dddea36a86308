/* SPDX-License-Identifier: MIT */
/* Helpers of the state stage's tests (test_state*.c): a scratch store directory, pseudonyms,
 * events built field by field, gauges read back from a registry. */
#ifndef BIZPROBE_TEST_STATE_UTIL_H
#define BIZPROBE_TEST_STATE_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/business_event.h"
#include "bizprobe/metrics.h"
#include "bizprobe/state.h"

/* 2026-12-01T12:00:00Z, a Tuesday of ISO week 2026-W49. */
#define NOW  1796126400LL
#define HOUR 3600LL
#define DAY  86400LL

static inline char *st_dir(void)
{
	char *d = strdup("/tmp/bizprobe-state-test-XXXXXX");

	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static inline void st_rmdir(char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

/* The store in dir/store (created by state_open), with a small batch unless told. */
static inline struct state *st_open_in(const char *dir, unsigned batch, unsigned retention)
{
	struct state_config cfg = {.dir = dir, .batch_events = batch, .retention_days = retention};
	struct state *st = NULL;
	char err[256] = "";
	int e = state_open(&cfg, &st, err, sizeof(err));

	if (e)
		fprintf(stderr, "state_open: %d %s\n", e, err);
	assert_int_equal(e, 0);
	assert_non_null(st);
	return st;
}

/* A pseudonym for user number i: 64 hex digits, distinct per i. */
static inline const char *U(unsigned i)
{
	static char buf[4096][65];
	char *p = buf[i % 4096];

	snprintf(p, 65, "%016llx%016llx%016llx%016llx", 0xa11ce000ull + i,
		 (unsigned long long)i * 0x9e3779b97f4a7c15ull, 0x5eed5eed5eed5eedull ^ i,
		 (unsigned long long)i);
	return p;
}

/* A subscription's pseudonym. */
static inline const char *S(unsigned i)
{
	return U(100000 + i);
}

struct st_ev {
	enum biz_event_kind kind;
	const char *name, *user, *user_type, *subject;
	int64_t ts;
	bool has_value;
	double value;
};

/* Sends an event with labels given as name, value pairs ending with NULL. */
static inline void st_send(struct state *st, struct st_ev e, ...)
{
	struct business_event ev = {
	    .kind = e.kind,
	    .name = e.name,
	    .user = e.user,
	    .user_type = e.user_type,
	    .subject = e.subject,
	    .has_value = e.has_value,
	    .value = e.value,
	    .wall_ns = (uint64_t)e.ts * 1000000000ull + 123456789ull,
	};
	va_list ap;
	const char *n;

	va_start(ap, e);
	while ((n = va_arg(ap, const char *)) && ev.n_labels < BIZ_EVENT_MAX_LABELS) {
		ev.labels[ev.n_labels].name = n;
		ev.labels[ev.n_labels].value = va_arg(ap, const char *);
		ev.n_labels++;
	}
	va_end(ap);
	state_on_event(st, &ev);
}

static inline void ev_seen(struct state *st, const char *user, const char *type, int64_t ts)
{
	st_send(st, (struct st_ev){BIZ_RULE_EVENT, "content_view", user, type, NULL, ts, false, 0},
		"content_type", "video", NULL);
}

static inline void ev_register(struct state *st, const char *user, const char *type, int64_t ts)
{
	/* the rules' registration: the type in a label, as fan-platform.yaml writes it */
	st_send(st, (struct st_ev){BIZ_RULE_EVENT, "registration", user, NULL, NULL, ts, false, 0},
		"user_type", type, "method", "email", "source", "", NULL);
}

static inline void ev_pay(struct state *st, const char *user, const char *status,
			  const char *currency, double amount, int64_t ts)
{
	bool ok = !strcmp(status, "succeeded");

	st_send(st,
		(struct st_ev){BIZ_PAYMENT_ATTEMPT, "payment", user, NULL, NULL, ts, ok,
			       ok ? amount : 0},
		"status", status, "currency", currency, "code", ok ? "" : "card_declined",
		"decline_code", ok ? "" : "generic_decline", NULL);
}

static inline void ev_late(struct state *st, const char *user, const char *currency, double amount,
			   int64_t ts)
{
	st_send(st,
		(struct st_ev){BIZ_PAYMENT_LATE_SUCCESS, NULL, user, NULL, NULL, ts, true, amount},
		"currency", currency, NULL);
}

static inline void ev_sub(struct state *st, bool created, const char *user, const char *subject,
			  const char *currency, double monthly, int64_t ts)
{
	st_send(st,
		(struct st_ev){created ? BIZ_SUBSCRIPTION_CREATED : BIZ_SUBSCRIPTION_CANCELED,
			       created ? "subscription_created" : "subscription_canceled", user,
			       NULL, subject, ts, created && monthly > 0, monthly},
		"currency", currency, NULL);
}

static inline void ev_expose(struct state *st, const char *user, const char *experiment,
			     const char *variant, int64_t ts)
{
	st_send(
	    st,
	    (struct st_ev){BIZ_RULE_EVENT, "experiment_exposure", user, "fan", NULL, ts, false, 0},
	    "experiment", experiment, "variant", variant, NULL);
}

/* A series' value; -1 when absent. */
static inline double st_metric(struct metrics_registry *reg, const char *name, ...)
{
	struct metrics_family *f = metrics_registry_find(reg, name);
	const char *labels[METRICS_MAX_LABELS];
	unsigned n = 0;
	const char *l;
	va_list ap;
	double v;

	assert_non_null(f);
	va_start(ap, name);
	while ((l = va_arg(ap, const char *)) && n < METRICS_MAX_LABELS)
		labels[n++] = l;
	va_end(ap);
	if (metrics_get(f, labels, &v))
		return -1;
	return v;
}

#define ACTIVE(reg, period, type) st_metric(reg, "direct_fan_active_users", period, type, NULL)

#endif
