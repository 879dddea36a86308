/* SPDX-License-Identifier: MIT */
/*
 * User rules (src/rules/): a YAML file (libyaml) that says which of the app's own exchanges are
 * business events (a registration, a content view, a funnel step, an experiment exposure), which
 * bounded labels and value each carries, and who the user behind it is. Input: HTTP exchanges.
 * Output: business events (bizprobe/business_event.h), kind BIZ_RULE_EVENT.
 *
 * The file format is documented in docs/rules.md; its keys are a contract with users.
 */
#ifndef BIZPROBE_RULES_H
#define BIZPROBE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bizprobe/business_event.h"
#include "bizprobe/http_exchange.h"
#include "bizprobe/identity.h"

/* One problem found while loading: "FILE:LINE:COL: message" when printed. Lines and columns
 * count from 1 (0: not known). Warnings do not make the load fail. */
struct rules_diag {
	const char *file;
	unsigned line;
	unsigned col;
	bool warning;
	const char *message;
};
typedef void (*rules_diag_fn)(const struct rules_diag *d, void *ctx);

struct rules_load_config {
	const char *namespace; /* prefix of rule metrics; NULL: "direct_fan" */
};

struct rules;

/* Loads and checks a rules file; every error and warning goes to diag (may be NULL). Returns
 * NULL when there was any error (or out of memory, reported through diag as well). */
struct rules *rules_load_file(const char *path, const struct rules_load_config *cfg,
			      rules_diag_fn diag, void *ctx);
/* The same for text already in memory; name is what diagnostics call the file. */
struct rules *rules_load_buffer(const char *name, const char *text, size_t len,
				const struct rules_load_config *cfg, rules_diag_fn diag,
				void *ctx);
void rules_free(struct rules *r);
unsigned rules_count(const struct rules *r); /* events declared */
/* The metric the i-th event declares (NULL: none, or i out of range). Valid as long as r. */
const struct biz_metric_spec *rules_metric(const struct rules *r, unsigned i);
/* The file's user_keys: metadata keys that name the user of a Stripe object (NULL, *n = 0 when
 * the file has none: the caller's defaults apply). Valid as long as r. */
const char *const *rules_user_keys(const struct rules *r, unsigned *n);

/* What the evaluation may use besides the rules themselves. */
struct rules_env {
	/* NULL, or tracking off (ENABLE_USER_TRACKING=false): no identity source is read at all. */
	const struct pseudonymizer *pseudonymizer;
	struct biz_event_sink sink;
};

struct rules_stats {
	uint64_t exchanges;	  /* exchanges evaluated */
	uint64_t matched;	  /* exchanges at least one rule matched */
	uint64_t events;	  /* events emitted */
	uint64_t bodies_parsed;	  /* JSON bodies parsed because a matching rule read a field */
	uint64_t body_errors;	  /* a rule needed a JSON or form field of a body that was not
				     JSON / was truncated: the event still counts, the field is absent */
	uint64_t identity_errors; /* an identity source was present but unusable (bad JWT, ...) */
	uint64_t opted_out;	  /* events whose user was not tracked because of Sec-GPC / DNT */
};

/* Evaluates every rule against one exchange and emits an event for each rule that matches.
 * wall_ns is the exchange's end. Rules keep mutable state (first-N label values), so one
 * struct rules is fed from one thread. */
void rules_eval(struct rules *r, const struct rules_env *env, const struct http_exchange *ex,
		uint64_t wall_ns);
void rules_get_stats(const struct rules *r, struct rules_stats *out);
/* Whether rules_eval may read the bodies of the exchange that head begins (its request's head,
 * as http_body_filter_cb sees it): some rule whose role, method, route and host match it reads
 * a JSON or form field, for a label, its value or its user, or the user type does. The status
 * is not known yet, so it is not looked at. */
bool rules_wants_bodies(struct rules *r, const struct http_exchange *head);

#endif
