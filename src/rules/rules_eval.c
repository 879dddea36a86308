// SPDX-License-Identifier: MIT
/*
 * Evaluation: one exchange in, one business event out per rule that matches, in the order the
 * rules file declares them. Everything an exchange may cost beyond the index lookup (bodies,
 * the JWT, the requester's pseudonym) is computed on first use and at most once.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules_internal.h"

/* The Host header without its port ("shop.example.com:8443"). */
static bool rules_host_match(const char *want, const char *host)
{
	size_t n = strcspn(host, ":"), wn;

	/* An IPv6 literal ("[::1]:8080") keeps its brackets; only a port after them goes. */
	if (host[0] == '[') {
		const char *close = strchr(host, ']');

		n = close ? (size_t)(close - host + 1) : strlen(host);
	}
	if (want[0] == '*' && want[1] == '.') {
		/* "*.example.com" matches a.example.com and a.b.example.com, not example.com. */
		wn = strlen(want + 1);
		return n > wn && !strncasecmp(host + n - wn, want + 1, wn);
	}
	wn = strlen(want);
	return n == wn && !strncasecmp(host, want, n);
}

static bool rules_status_match(const struct rules_event *ev, int status)
{
	if (!ev->n_status)
		return true;
	for (unsigned i = 0; i < ev->n_status; i++)
		if (status >= ev->status[i].lo && status <= ev->status[i].hi)
			return true;
	return false;
}

/* The conditions the route index does not check, but for the status. */
static bool rules_role_host_match(const struct rules_event *ev, const struct http_exchange *ex)
{
	return ex->role == ev->role &&
	       (!ev->host || rules_host_match(ev->host, ex->host ? ex->host : ""));
}

static bool rules_event_match(const struct rules_event *ev, const struct http_exchange *ex)
{
	return rules_status_match(ev, ex->status) && rules_role_host_match(ev, ex);
}

/* A number written as text: "12", "-0.5", "1e3", with nothing after it; finite. */
static bool rules_parse_number(const char *s, size_t len, double *out)
{
	char *end;
	double v;

	/* strtod would also take "nan", "inf", hex and leading spaces. */
	if (!len || strpbrk(s, "xXnN") || isspace((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtod(s, &end);
	if ((size_t)(end - s) != len || errno == ERANGE || !isfinite(v))
		return false;
	*out = v;
	return true;
}

/* The exchange's own numbers, exactly: not through their text form. */
static bool rules_exchange_number(const struct http_exchange *ex, enum rules_src_kind k,
				  double *out)
{
	switch (k) {
	case RULES_SRC_REQUEST_BYTES:
		*out = (double)ex->req.wire_body_bytes;
		return true;
	case RULES_SRC_RESPONSE_BYTES:
		*out = (double)ex->resp.wire_body_bytes;
		return true;
	case RULES_SRC_DURATION:
		*out = (double)ex->duration_ns / 1e9;
		return true;
	case RULES_SRC_STATUS:
		*out = ex->status;
		return true;
	default:
		return false;
	}
}

static void rules_sort(unsigned *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		unsigned x = v[i], k = i;

		for (; k > 0 && v[k - 1] > x; k--)
			v[k] = v[k - 1];
		v[k] = x;
	}
}

static void rules_emit(struct rules_ctx *c, struct rules_event *ev)
{
	struct business_event be;
	char user[PSEUDONYM_LEN];
	char buf[RULES_MAX_READ];
	enum rules_read_status st;
	size_t len;

	memset(&be, 0, sizeof(be));
	be.kind = BIZ_RULE_EVENT;
	be.name = ev->name;
	be.metric = ev->metric;
	be.wall_ns = c->wall_ns;
	c->ev = ev;
	for (unsigned i = 0; i < ev->n_labels; i++) {
		struct rules_label *lb = &ev->labels[i];

		st = rules_source_read(c, &lb->src, buf, sizeof(buf), &len);
		be.labels[i].name = lb->name;
		if (st == RULES_READ_TOO_LONG)
			be.labels[i].value = RULES_OTHER;
		else
			be.labels[i].value = rules_label_bound(lb, buf, len, st == RULES_READ_OK);
	}
	be.n_labels = ev->n_labels;
	if (ev->has_value && rules_exchange_number(c->ex, ev->value.kind, &be.value)) {
		be.has_value = true;
	} else if (ev->has_value) {
		st = rules_source_read(c, &ev->value, buf, sizeof(buf), &len);
		if (st == RULES_READ_OK && rules_parse_number(buf, len, &be.value))
			be.has_value = true;
		else if (st != RULES_READ_BODY_ERROR)
			/* Absent or not a number: the event counts, its observation is lost, and
			 * the loss is counted (a body error already was). */
			c->r->stats.body_errors++;
	}
	be.user = rules_identity_user(c, ev, user);
	be.user_type = rules_identity_user_type(c);
	biz_emit(&c->env->sink, &be);
	c->r->stats.events++;
	explicit_bzero(buf, sizeof(buf));
}

/* An event with a sentry key whose route the exchange took (role, method, route, host), answered
 * 5xx: whatever its own status condition, a failed business flow. */
static bool rules_failure_match(const struct rules_event *ev, const struct http_exchange *ex)
{
	return ev->has_sentry && ex->status >= 500 && ex->status <= 599 &&
	       rules_role_host_match(ev, ex);
}

static const char *rules_method_word(const char *m)
{
	static const char *const known[] = {"GET",  "POST",    "PUT",	"PATCH",
					    "DELETE", "HEAD", "OPTIONS"};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(m, known[i]))
			return known[i];
	return RULES_OTHER;
}

static void rules_emit_failure(struct rules_ctx *c, struct rules_event *ev)
{
	struct business_event be;
	char user[PSEUDONYM_LEN], status[4];

	memset(&be, 0, sizeof(be));
	be.kind = BIZ_RULE_FAILURE;
	be.wall_ns = c->wall_ns;
	c->ev = ev;
	snprintf(status, sizeof(status), "%03d", c->ex->status);
	be.labels[0] = (struct biz_label){"event", ev->name};
	be.labels[1] = (struct biz_label){"component", ev->sentry_component ?: ""};
	be.labels[2] = (struct biz_label){"feature", ev->sentry_feature ?: ""};
	be.labels[3] = (struct biz_label){"funnel", ev->sentry_funnel ?: ""};
	be.labels[4] = (struct biz_label){"endpoint", ev->route.any ? "" : ev->route.text};
	be.labels[5] = (struct biz_label){"method", rules_method_word(c->ex->method)};
	be.labels[6] = (struct biz_label){"status", status};
	be.n_labels = 7;
	be.user = rules_identity_user(c, ev, user);
	be.user_type = rules_identity_user_type(c);
	biz_emit(&c->env->sink, &be);
}

void rules_eval(struct rules *r, const struct rules_env *env, const struct http_exchange *ex,
		uint64_t wall_ns)
{
	struct rules_ctx c;
	unsigned n, kept = 0, failed = 0;

	if (!r || !env || !ex)
		return;
	r->stats.exchanges++;
	memset(&c, 0, sizeof(c));
	rules_path_split(ex->path, &c.path);
	n = rules_index_lookup(r, ex->method, &c.path, r->matches);
	for (unsigned i = 0; i < n; i++) {
		if (rules_failure_match(&r->events[r->matches[i]], ex))
			r->failures[failed++] = r->matches[i];
		if (rules_event_match(&r->events[r->matches[i]], ex))
			r->matches[kept++] = r->matches[i];
	}
	if (!kept && !failed)
		return;
	/* Declaration order: few matches per exchange, so insertion sort. */
	rules_sort(r->matches, kept);
	rules_sort(r->failures, failed);
	if (kept)
		r->stats.matched++;
	c.r = r;
	c.env = env;
	c.ex = ex;
	c.wall_ns = wall_ns;
	c.opted_out = -1;
	for (unsigned i = 0; i < kept; i++)
		rules_emit(&c, &r->events[r->matches[i]]);
	/* After the events: a failure's reads (its user) reuse what they parsed. */
	for (unsigned i = 0; i < failed; i++)
		rules_emit_failure(&c, &r->events[r->failures[i]]);
	rules_ctx_release(&c);
}

static bool rules_source_reads_body(const struct rules_source *s)
{
	return s->kind == RULES_SRC_REQUEST_JSON || s->kind == RULES_SRC_RESPONSE_JSON ||
	       s->kind == RULES_SRC_REQUEST_FORM;
}

/* Whether emitting ev, or its failure event, may read a body: a label, the value, its own user
 * or the user type. The requester's identity sources are headers, cookies and JWT claims only
 * (RULES_KINDS_IDENTITY), never a body. */
static bool rules_event_reads_bodies(const struct rules *r, const struct rules_event *ev)
{
	for (unsigned i = 0; i < ev->n_labels; i++)
		if (rules_source_reads_body(&ev->labels[i].src))
			return true;
	if (ev->has_value && rules_source_reads_body(&ev->value))
		return true;
	if (ev->has_user && rules_source_reads_body(&ev->user))
		return true;
	return r->has_user_type && rules_source_reads_body(&r->user_type.src);
}

bool rules_wants_bodies(struct rules *r, const struct http_exchange *head)
{
	struct rules_path path;
	unsigned n;

	if (!r || !head)
		return false;
	rules_path_split(head->path, &path);
	n = rules_index_lookup(r, head->method, &path, r->matches);
	for (unsigned i = 0; i < n; i++) {
		const struct rules_event *ev = &r->events[r->matches[i]];

		if (rules_role_host_match(ev, head) && rules_event_reads_bodies(r, ev))
			return true;
	}
	return false;
}

void rules_get_stats(const struct rules *r, struct rules_stats *out)
{
	if (!r) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = r->stats;
}

unsigned rules_count(const struct rules *r)
{
	return r ? r->n_events : 0;
}

const struct biz_metric_spec *rules_metric(const struct rules *r, unsigned i)
{
	return r && i < r->n_events ? r->events[i].metric : NULL;
}

static void rules_event_free(struct rules_event *ev)
{
	free(ev->name);
	for (unsigned i = 0; i < ev->n_methods; i++)
		free(ev->methods[i]);
	rules_route_free(&ev->route);
	free(ev->host);
	for (unsigned i = 0; i < ev->n_labels; i++)
		rules_label_free(&ev->labels[i]);
	rules_source_free(&ev->value);
	rules_source_free(&ev->user);
	free(ev->metric_name);
	free(ev->help);
	free(ev->buckets);
	free(ev->sentry_component);
	free(ev->sentry_feature);
	free(ev->sentry_funnel);
}

void rules_free(struct rules *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < r->n_events; i++)
		rules_event_free(&r->events[i]);
	free(r->events);
	for (unsigned i = 0; i < r->n_identity; i++)
		rules_source_free(&r->identity[i]);
	if (r->jwt_secret) {
		explicit_bzero(r->jwt_secret, r->jwt_secret_len);
		free(r->jwt_secret);
	}
	if (r->has_user_type)
		rules_label_free(&r->user_type);
	for (unsigned i = 0; i < r->n_user_keys; i++)
		free(r->user_keys[i]);
	rules_index_free(&r->index);
	free(r->matches);
	free(r->failures);
	rules_json_free(r->req_json);
	rules_json_free(r->resp_json);
	free(r->file);
	free(r);
}

const char *const *rules_user_keys(const struct rules *r, unsigned *n)
{
	*n = r ? r->n_user_keys : 0;
	return r && r->n_user_keys ? (const char *const *)r->user_keys : NULL;
}
