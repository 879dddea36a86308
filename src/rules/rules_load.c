// SPDX-License-Identifier: MIT
/*
 * The rules file's schema (docs/rules.md): top-level keys, identity sources, the JWT secret,
 * events with their conditions, labels, value, user and metric. Every problem is reported with
 * the position of the node it is about, and loading goes on after an error so that one run of
 * `bizprobe rules check` lists them all.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules_internal.h"

static const char *const rules_top_keys[] = {
    "version", "identity", "jwt_secret_file", "user_type", "user_keys", "events", NULL,
};
static const char *const rules_event_keys[] = {
    "name", "metric", "type", "buckets", "help", "when", "labels", "value", "user", "sentry", NULL,
};
static const char *const rules_when_keys[] = {"role", "method", "route", "host", "status", NULL};

/* Prometheus's own default buckets (client_golang DefBuckets), for a histogram without any. */
static const double rules_default_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					       0.5,   1,    2.5,   5,	 10};

#define RULES_N_DEFAULT_BUCKETS (sizeof(rules_default_buckets) / sizeof(rules_default_buckets[0]))

/* [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus metric names); labels: no ':' and no "__" prefix. */
static bool rules_metric_name_ok(const char *s, bool label)
{
	if (!*s || (label && s[0] == '_' && s[1] == '_'))
		return false;
	for (const char *p = s; *p; p++) {
		bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			     (!label && *p == ':');

		if (!alpha && (p == s || *p < '0' || *p > '9'))
			return false;
	}
	return true;
}

static bool rules_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool rules_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static unsigned rules_seq_len(const yaml_node_t *n)
{
	return (unsigned)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/*
 * The JWT secret: a file that only its owner can read, as for the salt (identity.h). Its bytes
 * are the HS256 key; one trailing newline (echo, editors) is not part of it.
 */
static int rules_load_secret(struct rules_loader *l, const yaml_node_t *n)
{
	char *name = NULL, path[4096];
	uint8_t buf[RULES_JWT_SECRET_MAX + 2];
	struct stat st;
	ssize_t got;
	int fd = -1, rc = -EINVAL;
	size_t len;

	if (rules_yaml_string(l, n, "jwt_secret_file", sizeof(path) - 256, &name))
		return -EINVAL;
	if (name[0] != '/' && l->base_dir)
		snprintf(path, sizeof(path), "%s/%s", l->base_dir, name);
	else
		snprintf(path, sizeof(path), "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rules_diag_at(l, n, false, "jwt_secret_file %s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rules_diag_at(l, n, false, "jwt_secret_file %s is not a regular file", path);
		goto cleanup;
	}
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		rules_diag_at(l, n, false,
			      "jwt_secret_file %s can be read by group or others (mode %04o): "
			      "run chmod 600 %s",
			      path, (unsigned)(st.st_mode & 07777), path);
		goto cleanup;
	}
	got = read(fd, buf, sizeof(buf));
	if (got < 0) {
		rules_diag_at(l, n, false, "jwt_secret_file %s: %s", path, strerror(errno));
		goto cleanup;
	}
	len = (size_t)got;
	if (len > RULES_JWT_SECRET_MAX) {
		rules_diag_at(l, n, false, "jwt_secret_file %s is longer than %d bytes", path,
			      RULES_JWT_SECRET_MAX);
		goto cleanup;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	if (!len) {
		rules_diag_at(l, n, false, "jwt_secret_file %s is empty", path);
		goto cleanup;
	}
	l->r->jwt_secret = malloc(len);
	if (!l->r->jwt_secret) {
		rules_diag_at(l, n, false, "out of memory");
		rc = -ENOMEM;
		goto cleanup;
	}
	memcpy(l->r->jwt_secret, buf, len);
	l->r->jwt_secret_len = len;
	rc = 0;
cleanup:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	free(name);
	return rc;
}

static int rules_load_identity(struct rules_loader *l, const yaml_node_t *n)
{
	struct rules *r = l->r;
	int rc = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		rules_diag_at(l, n, false,
			      "identity must be a list of sources such as - header: X-User-Id");
		return -EINVAL;
	}
	if (rules_seq_len(n) > RULES_MAX_IDENTITY) {
		rules_diag_at(l, n, false, "identity lists more than %d sources",
			      RULES_MAX_IDENTITY);
		return -EINVAL;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = rules_yaml_node(l, *it);
		struct rules_source *s = &r->identity[r->n_identity];

		if (rules_source_parse(l, e, "identity", RULES_KINDS_IDENTITY, NULL, s)) {
			rules_source_free(s);
			rc = -EINVAL;
			continue;
		}
		r->n_identity++;
	}
	return rc;
}

static int rules_load_user_keys(struct rules_loader *l, const yaml_node_t *n)
{
	struct rules *r = l->r;

	if (n->type != YAML_SEQUENCE_NODE || rules_seq_len(n) > RULES_MAX_USER_KEYS) {
		rules_diag_at(l, n, false, "user_keys must be a list of at most %d metadata keys",
			      RULES_MAX_USER_KEYS);
		return -EINVAL;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++)
		if (rules_yaml_string(l, rules_yaml_node(l, *it), "a user_keys entry",
				      RULES_MAX_NAME, &r->user_keys[r->n_user_keys++]))
			return -EINVAL;
	return 0;
}

/* A status condition: 201, "2xx", or a list of those. */
static int rules_load_status_one(struct rules_loader *l, const yaml_node_t *n,
				 struct rules_event *ev)
{
	const char *s = rules_yaml_scalar(n);
	struct rules_status_range *rg = &ev->status[ev->n_status];
	char *end;
	long v;

	if (!s || rules_yaml_is_null(n))
		goto bad;
	if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] | 0x20) == 'x' &&
	    (s[2] | 0x20) == 'x') {
		rg->lo = (s[0] - '0') * 100;
		rg->hi = rg->lo + 99;
		ev->n_status++;
		return 0;
	}
	v = strtol(s, &end, 10);
	if (!*s || *end || v < 100 || v > 599)
		goto bad;
	rg->lo = rg->hi = (int)v;
	ev->n_status++;
	return 0;
bad:
	rules_diag_at(l, n, false, "status must be a code (201), a class (2xx) or a list of those");
	return -EINVAL;
}

static int rules_load_status(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev)
{
	int rc = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return rules_load_status_one(l, n, ev);
	if (!rules_seq_len(n) || rules_seq_len(n) > RULES_MAX_STATUS) {
		rules_diag_at(l, n, false, "status lists 1 to %d codes or classes",
			      RULES_MAX_STATUS);
		return -EINVAL;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++)
		if (rules_load_status_one(l, rules_yaml_node(l, *it), ev))
			rc = -EINVAL;
	return rc;
}

static int rules_load_method_one(struct rules_loader *l, const yaml_node_t *n,
				 struct rules_event *ev)
{
	char *m;

	if (rules_yaml_string(l, n, "method", 15, &m))
		return -EINVAL;
	for (char *p = m; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) {
			rules_diag_at(l, n, false, "method '%s' is not an HTTP method", m);
			free(m);
			return -EINVAL;
		}
		if (*p >= 'a')
			*p = (char)(*p - 'a' + 'A');
	}
	if (!*m) {
		rules_diag_at(l, n, false, "method must be a word such as POST");
		free(m);
		return -EINVAL;
	}
	for (unsigned i = 0; i < ev->n_methods; i++) {
		if (!strcmp(ev->methods[i], m)) {
			rules_diag_at(l, n, false, "method %s is listed twice", m);
			free(m);
			return -EINVAL;
		}
	}
	ev->methods[ev->n_methods++] = m;
	return 0;
}

static int rules_load_method(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev)
{
	int rc = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return rules_load_method_one(l, n, ev);
	if (!rules_seq_len(n) || rules_seq_len(n) > RULES_MAX_METHODS) {
		rules_diag_at(l, n, false, "method lists 1 to %d methods", RULES_MAX_METHODS);
		return -EINVAL;
	}
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++)
		if (rules_load_method_one(l, rules_yaml_node(l, *it), ev))
			rc = -EINVAL;
	return rc;
}

static int rules_load_host(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev)
{
	const char *h;

	if (rules_yaml_string(l, n, "host", 253, &ev->host))
		return -EINVAL;
	h = ev->host[0] == '*' && ev->host[1] == '.' ? ev->host + 2 : ev->host;
	if (!*h || strpbrk(h, "*/ :") || !rules_printable(h)) {
		rules_diag_at(l, n, false,
			      "host must be a name (api.example.com) or a leading wildcard "
			      "(*.example.com)");
		return -EINVAL;
	}
	return 0;
}

static int rules_load_when(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev)
{
	yaml_node_t *v;
	const char *s, *why;
	int rc = 0, e;

	ev->role = HTTP_ROLE_SERVER;
	ev->route.any = true;
	if (!n)
		return 0;
	if (n->type != YAML_MAPPING_NODE) {
		rules_diag_at(l, n, false,
			      "when must be a mapping such as {method: POST, route: /x}");
		return -EINVAL;
	}
	if (rules_yaml_check_keys(l, n, "when", rules_when_keys))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, n, "role", NULL))) {
		s = rules_yaml_scalar(v);
		if (s && !strcmp(s, "server")) {
			ev->role = HTTP_ROLE_SERVER;
		} else if (s && !strcmp(s, "client")) {
			ev->role = HTTP_ROLE_CLIENT;
		} else {
			rules_diag_at(l, v, false, "role must be server or client");
			rc = -EINVAL;
		}
	}
	if ((v = rules_yaml_get(l, n, "method", NULL)) && rules_load_method(l, v, ev))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, n, "route", NULL))) {
		s = rules_yaml_scalar(v);
		if (!s || rules_yaml_is_null(v) || strlen(s) != v->data.scalar.length) {
			rules_diag_at(l, v, false,
				      "route must be a path template such as /users/{id}");
			rc = -EINVAL;
		} else if ((e = rules_route_parse(s, &ev->route, &why))) {
			ev->route.any = true;
			if (e == -ENOMEM)
				rules_diag_at(l, v, false, "out of memory");
			else
				rules_diag_at(l, v, false, "bad route template '%s': %s", s, why);
			rc = -EINVAL;
		}
	}
	if ((v = rules_yaml_get(l, n, "host", NULL)) && rules_load_host(l, v, ev))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, n, "status", NULL)) && rules_load_status(l, v, ev))
		rc = -EINVAL;
	return rc;
}

/* A path source names a {param} of its event's route. */
static int rules_check_path_param(struct rules_loader *l, struct rules_source *s,
				  const struct rules_event *ev, const char *what)
{
	int i;

	if (s->kind != RULES_SRC_PATH)
		return 0;
	i = ev->route.any ? -1 : rules_route_param(&ev->route, s->arg);
	if (i < 0) {
		rules_diag_pos(l, s->line, s->col, false, "%s: the route has no {%s}", what,
			       s->arg);
		return -EINVAL;
	}
	s->param = (unsigned)i;
	return 0;
}

static void rules_warn_mail(struct rules_loader *l, const struct rules_source *s, const char *what)
{
	if (rules_source_mail_like(s))
		rules_diag_pos(l, s->line, s->col, true,
			       "%s reads %s '%s', which looks like an e-mail address: e-mail "
			       "addresses must not leave the app",
			       what, rules_source_name(s->kind), s->arg);
}

static int rules_load_labels(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev,
			     bool histogram)
{
	struct rules *r = l->r;
	yaml_node_pair_t *p;
	int rc = 0;

	if (n->type != YAML_MAPPING_NODE) {
		rules_diag_at(l, n, false,
			      "labels must be a mapping of names to sources, such as "
			      "{plan: {request_json: plan, values: [free, pro]}}");
		return -EINVAL;
	}
	for (p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *k = rules_yaml_node(l, p->key), *v = rules_yaml_node(l, p->value);
		const char *name = rules_yaml_scalar(k);
		struct rules_label *lb;
		char what[RULES_MAX_NAME + 16];

		if (ev->n_labels == BIZ_EVENT_MAX_LABELS) {
			rules_diag_at(l, k, false, "an event has at most %d labels",
				      BIZ_EVENT_MAX_LABELS);
			return -EINVAL;
		}
		if (!name || strlen(name) > RULES_MAX_NAME || !rules_metric_name_ok(name, true)) {
			rules_diag_at(l, k, false,
				      "label name '%s' must match [a-zA-Z_][a-zA-Z0-9_]* (not "
				      "starting with __)",
				      name ? name : "");
			rc = -EINVAL;
			continue;
		}
		if (histogram && !strcmp(name, "le")) {
			rules_diag_at(l, k, false, "a histogram cannot have a label called le");
			rc = -EINVAL;
			continue;
		}
		for (unsigned i = 0; i < ev->n_labels; i++) {
			if (!strcmp(ev->labels[i].name, name)) {
				rules_diag_at(l, k, false, "duplicate label '%s'", name);
				rc = -EINVAL;
				goto next;
			}
		}
		snprintf(what, sizeof(what), "label '%s'", name);
		lb = &ev->labels[ev->n_labels++];
		if (rules_label_parse(l, v, what, RULES_KINDS_ALL, lb)) {
			rc = -EINVAL;
		} else {
			for (unsigned i = 0; i < r->n_identity; i++) {
				if (rules_source_same(&lb->src, &r->identity[i])) {
					rules_diag_pos(
					    l, lb->src.line, lb->src.col, false,
					    "%s reads the identity source %s %s: a user id must "
					    "not "
					    "be a label (the user is pseudonymized on its own)",
					    what, rules_source_name(lb->src.kind), lb->src.arg);
					rc = -EINVAL;
					break;
				}
			}
			if (rules_check_path_param(l, &lb->src, ev, what))
				rc = -EINVAL;
			rules_warn_mail(l, &lb->src, what);
		}
		lb->name = strdup(name);
		if (!lb->name) {
			rules_diag_at(l, k, false, "out of memory");
			return -ENOMEM;
		}
	next:;
	}
	return rc;
}

static int rules_load_buckets(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev)
{
	unsigned count;

	if (n->type != YAML_SEQUENCE_NODE || !rules_seq_len(n)) {
		rules_diag_at(l, n, false, "buckets must be an ascending list of numbers");
		return -EINVAL;
	}
	count = rules_seq_len(n);
	if (count > METRICS_MAX_BUCKETS) {
		rules_diag_at(l, n, false, "buckets lists %u bounds, at most %d are allowed", count,
			      METRICS_MAX_BUCKETS);
		return -EINVAL;
	}
	ev->buckets = calloc(count, sizeof(double));
	if (!ev->buckets) {
		rules_diag_at(l, n, false, "out of memory");
		return -ENOMEM;
	}
	for (unsigned i = 0; i < count; i++) {
		yaml_node_t *e = rules_yaml_node(l, n->data.sequence.items.start[i]);

		if (rules_yaml_double(e, &ev->buckets[i]) ||
		    (i && ev->buckets[i] <= ev->buckets[i - 1])) {
			rules_diag_at(l, e, false, "buckets must be an ascending list of numbers");
			return -EINVAL;
		}
	}
	ev->own_spec.buckets = ev->buckets;
	ev->own_spec.n_buckets = count;
	return 0;
}

/* The metric of an event: its name with the namespace, type, buckets, help, label names. */
static int rules_load_metric(struct rules_loader *l, const yaml_node_t *ev_node,
			     struct rules_event *ev, const char *ns)
{
	yaml_node_t *metric, *type, *buckets, *help, *buckets_key;
	struct biz_metric_spec *spec = &ev->own_spec;
	const char *t;
	char *m = NULL;
	int rc = 0;
	size_t n;

	metric = rules_yaml_get(l, ev_node, "metric", NULL);
	type = rules_yaml_get(l, ev_node, "type", NULL);
	buckets = rules_yaml_get(l, ev_node, "buckets", &buckets_key);
	help = rules_yaml_get(l, ev_node, "help", NULL);
	spec->type = METRICS_COUNTER;
	if (type) {
		t = rules_yaml_scalar(type);
		if (t && !strcmp(t, "histogram")) {
			spec->type = METRICS_HISTOGRAM;
		} else if (!t || strcmp(t, "counter")) {
			rules_diag_at(l, type, false, "type must be counter or histogram");
			rc = -EINVAL;
		}
	}
	if (spec->type == METRICS_HISTOGRAM && !ev->has_value) {
		rules_diag_at(l, type, false,
			      "a histogram needs value: the number each event observes");
		rc = -EINVAL;
	}
	if (buckets) {
		if (spec->type != METRICS_HISTOGRAM) {
			rules_diag_at(l, buckets_key, false, "buckets are for type: histogram");
			rc = -EINVAL;
		} else if (rules_load_buckets(l, buckets, ev)) {
			rc = -EINVAL;
		}
	} else if (spec->type == METRICS_HISTOGRAM) {
		spec->buckets = rules_default_buckets;
		spec->n_buckets = RULES_N_DEFAULT_BUCKETS;
	}
	if (help && rules_yaml_string(l, help, "help", 1024, &ev->help))
		rc = -EINVAL;
	if (!metric)
		return rc;
	ev->metric_line = (unsigned)metric->start_mark.line + 1;
	ev->metric_col = (unsigned)metric->start_mark.column + 1;
	if (rules_yaml_string(l, metric, "metric", RULES_MAX_NAME, &m))
		return -EINVAL;
	if (!rules_metric_name_ok(m, false)) {
		rules_diag_at(l, metric, false,
			      "metric name '%s' must match [a-zA-Z_:][a-zA-Z0-9_:]*", m);
		rc = -EINVAL;
		goto cleanup;
	}
	if (spec->type == METRICS_COUNTER && !rules_ends_with(m, "_total")) {
		rules_diag_at(l, metric, false, "counter metric '%s' must end in _total", m);
		rc = -EINVAL;
		goto cleanup;
	}
	n = strlen(ns);
	if (n && !strncmp(m, ns, n) && m[n] == '_')
		rules_diag_at(l, metric, true,
			      "metric '%s' already starts with the namespace: it becomes %s_%s", m,
			      ns, m);
	if (asprintf(&ev->metric_name, "%s%s%s", ns, n ? "_" : "", m) < 0) {
		ev->metric_name = NULL;
		rules_diag_at(l, metric, false, "out of memory");
		rc = -ENOMEM;
		goto cleanup;
	}
	if (!ev->help && asprintf(&ev->help, "Business event %s (a bizprobe rule)", ev->name) < 0) {
		ev->help = NULL;
		rc = -ENOMEM;
		goto cleanup;
	}
	spec->name = ev->metric_name;
	spec->help = ev->help;
	for (unsigned i = 0; i < ev->n_labels; i++)
		ev->label_names[i] = ev->labels[i].name;
	spec->label_names = ev->label_names;
	spec->n_labels = ev->n_labels;
	/* Every label is bounded, so the family's series are too: ask the registry for room for
	 * all of them (each label: its values, "other" and "" for absent), capped. */
	if (ev->n_labels) {
		unsigned long long series = 1;

		for (unsigned i = 0; i < ev->n_labels && series <= RULES_MAX_SERIES; i++) {
			const struct rules_label *lb = &ev->labels[i];

			series *= (lb->n_values ? lb->n_values : lb->max_values) + 2ULL;
		}
		spec->max_series =
		    series > RULES_MAX_SERIES ? RULES_MAX_SERIES : (unsigned)series + 1;
	}
	if (!rc)
		ev->metric = spec;
cleanup:
	free(m);
	return rc;
}

/* sentry: {component: payment_handler, feature: stripe_integration, funnel: signup}: words a
 * Sentry report of the route's failures carries as they are, so they are bounded like names. */
static const char *const rules_sentry_keys[] = {"component", "feature", "funnel", NULL};

static int rules_load_sentry_word(struct rules_loader *l, const yaml_node_t *n, const char *key,
				  char **out)
{
	yaml_node_t *v = rules_yaml_get(l, n, key, NULL);
	char what[32];

	if (!v)
		return 0;
	snprintf(what, sizeof(what), "sentry %s", key);
	if (rules_yaml_string(l, v, what, RULES_MAX_SENTRY_WORD, out))
		return -EINVAL;
	if (!**out || strspn(*out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_.-") != strlen(*out)) {
		rules_diag_at(l, v, false, "%s must be a word of letters, digits, _ . or -", what);
		return -EINVAL;
	}
	return 0;
}

static int rules_load_sentry(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev)
{
	int rc = 0;

	if (n->type != YAML_MAPPING_NODE) {
		rules_diag_at(l, n, false,
			      "sentry must be a mapping such as {component: payment_handler, "
			      "feature: stripe_integration, funnel: subscription_signup}");
		return -EINVAL;
	}
	if (rules_yaml_check_keys(l, n, "sentry", rules_sentry_keys))
		rc = -EINVAL;
	if (rules_load_sentry_word(l, n, "component", &ev->sentry_component))
		rc = -EINVAL;
	if (rules_load_sentry_word(l, n, "feature", &ev->sentry_feature))
		rc = -EINVAL;
	if (rules_load_sentry_word(l, n, "funnel", &ev->sentry_funnel))
		rc = -EINVAL;
	ev->has_sentry = true;
	return rc;
}

static int rules_load_event(struct rules_loader *l, const yaml_node_t *n, struct rules_event *ev,
			    const char *ns)
{
	yaml_node_t *v, *labels;
	int rc = 0;

	ev->line = (unsigned)n->start_mark.line + 1;
	ev->col = (unsigned)n->start_mark.column + 1;
	if (n->type != YAML_MAPPING_NODE) {
		rules_diag_at(l, n, false, "an event must be a mapping with name and when");
		return -EINVAL;
	}
	if (rules_yaml_check_keys(l, n, "event", rules_event_keys))
		rc = -EINVAL;
	v = rules_yaml_get(l, n, "name", NULL);
	if (!v) {
		rules_diag_at(l, n, false, "event has no name");
		rc = -EINVAL;
	} else if (rules_yaml_string(l, v, "name", RULES_MAX_NAME, &ev->name)) {
		rc = -EINVAL;
	} else if (!ev->name[0] || !rules_printable(ev->name)) {
		rules_diag_at(l, v, false, "name must be a non-empty printable word");
		rc = -EINVAL;
	} else {
		ev->line = (unsigned)v->start_mark.line + 1;
		ev->col = (unsigned)v->start_mark.column + 1;
	}
	if (rules_load_when(l, rules_yaml_get(l, n, "when", NULL), ev))
		rc = -EINVAL;
	labels = rules_yaml_get(l, n, "labels", NULL);
	if (labels) {
		const char *t = rules_yaml_scalar(rules_yaml_get(l, n, "type", NULL));

		if (rules_load_labels(l, labels, ev, t && !strcmp(t, "histogram")))
			rc = -EINVAL;
	}
	if ((v = rules_yaml_get(l, n, "value", NULL))) {
		if (rules_source_parse(l, v, "value", RULES_KINDS_ALL, NULL, &ev->value) ||
		    rules_check_path_param(l, &ev->value, ev, "value"))
			rc = -EINVAL;
		else
			rules_warn_mail(l, &ev->value, "value");
		ev->has_value = true;
	}
	if ((v = rules_yaml_get(l, n, "user", NULL))) {
		if (rules_source_parse(l, v, "user", RULES_KINDS_ALL, NULL, &ev->user) ||
		    rules_check_path_param(l, &ev->user, ev, "user"))
			rc = -EINVAL;
		ev->has_user = true;
		/* The event's user is an identity as much as the requester's. */
		for (unsigned i = 0; i < ev->n_labels && ev->user.kind != RULES_SRC_NONE; i++) {
			const struct rules_label *lb = &ev->labels[i];

			if (lb->src.kind != RULES_SRC_NONE &&
			    rules_source_same(&lb->src, &ev->user)) {
				rules_diag_pos(
				    l, lb->src.line, lb->src.col, false,
				    "label '%s' reads the event's user (%s %s): a user id "
				    "must not be a label",
				    lb->name, rules_source_name(lb->src.kind),
				    lb->src.arg ? lb->src.arg : "");
				rc = -EINVAL;
			}
		}
	}
	if (rules_load_metric(l, n, ev, ns))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, n, "sentry", NULL)) && rules_load_sentry(l, v, ev))
		rc = -EINVAL;
	return rc;
}

static bool rules_spec_same(const struct biz_metric_spec *a, const struct biz_metric_spec *b)
{
	if (a->type != b->type || a->n_labels != b->n_labels || a->n_buckets != b->n_buckets)
		return false;
	for (unsigned i = 0; i < a->n_labels; i++)
		if (strcmp(a->label_names[i], b->label_names[i]))
			return false;
	for (unsigned i = 0; i < a->n_buckets; i++)
		if (a->buckets[i] != b->buckets[i])
			return false;
	return true;
}

/* Event names are unique; events that share a metric declare it alike and share one spec. */
static int rules_check_events(struct rules_loader *l)
{
	struct rules *r = l->r;
	int rc = 0;

	for (unsigned i = 0; i < r->n_events; i++) {
		struct rules_event *ev = &r->events[i];

		for (unsigned k = 0; k < i && ev->name; k++) {
			if (r->events[k].name && !strcmp(r->events[k].name, ev->name)) {
				rules_diag_pos(l, ev->line, ev->col, false,
					       "duplicate event name '%s' (first at %u:%u)",
					       ev->name, r->events[k].line, r->events[k].col);
				rc = -EINVAL;
				break;
			}
		}
		if (!ev->metric)
			continue;
		for (unsigned k = 0; k < i; k++) {
			const struct rules_event *o = &r->events[k];

			if (!o->metric || strcmp(o->metric->name, ev->metric->name))
				continue;
			if (!rules_spec_same(o->metric, ev->metric)) {
				rules_diag_pos(l, ev->metric_line, ev->metric_col, false,
					       "metric %s is also declared by event '%s' (%u:%u) "
					       "with another type, labels or buckets",
					       ev->metric->name, o->name, o->metric_line,
					       o->metric_col);
				rc = -EINVAL;
			}
			ev->metric = o->metric;
			break;
		}
	}
	return rc;
}

static int rules_load_events(struct rules_loader *l, const yaml_node_t *n, const char *ns)
{
	struct rules *r = l->r;
	unsigned count;
	int rc = 0;

	if (n->type != YAML_SEQUENCE_NODE) {
		rules_diag_at(l, n, false, "events must be a list");
		return -EINVAL;
	}
	count = rules_seq_len(n);
	if (count > RULES_MAX_EVENTS) {
		rules_diag_at(l, n, false, "events lists %u events, at most %d are allowed", count,
			      RULES_MAX_EVENTS);
		return -EINVAL;
	}
	r->events = calloc(count ? count : 1, sizeof(*r->events));
	if (!r->events) {
		rules_diag_at(l, n, false, "out of memory");
		return -ENOMEM;
	}
	/* Counted before parsing, so that rules_free frees a half-loaded event too. */
	r->n_events = count;
	for (unsigned i = 0; i < count; i++)
		if (rules_load_event(l, rules_yaml_node(l, n->data.sequence.items.start[i]),
				     &r->events[i], ns))
			rc = -EINVAL;
	if (rules_check_events(l))
		rc = -EINVAL;
	return rc;
}

static int rules_load_user_type(struct rules_loader *l, const yaml_node_t *n)
{
	struct rules *r = l->r;

	r->has_user_type = true;
	/* Not path: user_type applies to every event, whatever its route. */
	if (rules_label_parse(l, n, "user_type", RULES_KINDS_ALL & ~RULES_KIND(RULES_SRC_PATH),
			      &r->user_type))
		return -EINVAL;
	rules_warn_mail(l, &r->user_type.src, "user_type");
	return 0;
}

int rules_load_top(struct rules_loader *l, const char *ns)
{
	yaml_node_t *root = yaml_document_get_root_node(&l->doc), *v;
	int rc = 0;

	if (root->type != YAML_MAPPING_NODE) {
		rules_diag_at(l, root, false,
			      "a rules file is a mapping with version: 1, identity and events");
		return -EINVAL;
	}
	if (rules_yaml_check_keys(l, root, "the rules file", rules_top_keys))
		rc = -EINVAL;
	v = rules_yaml_get(l, root, "version", NULL);
	if (!v) {
		rules_diag_at(l, root, false, "version is missing (write version: 1)");
		rc = -EINVAL;
	} else if (!rules_yaml_scalar(v) || strcmp(rules_yaml_scalar(v), "1")) {
		rules_diag_at(l, v, false, "version must be 1");
		rc = -EINVAL;
	}
	/* identity first: labels are checked against it. */
	if ((v = rules_yaml_get(l, root, "identity", NULL)) && rules_load_identity(l, v))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, root, "jwt_secret_file", NULL)) && rules_load_secret(l, v))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, root, "user_type", NULL)) && rules_load_user_type(l, v))
		rc = -EINVAL;
	if ((v = rules_yaml_get(l, root, "user_keys", NULL)) && rules_load_user_keys(l, v))
		rc = -EINVAL;
	v = rules_yaml_get(l, root, "events", NULL);
	if (!v)
		rules_diag_at(l, root, true, "no events: this file counts nothing");
	else if (rules_load_events(l, v, ns))
		rc = -EINVAL;
	return rc;
}

static int rules_finish(struct rules *r)
{
	r->matches = calloc(r->n_events + 1, sizeof(*r->matches));
	r->failures = calloc(r->n_events + 1, sizeof(*r->failures));
	r->req_json = rules_json_new();
	r->resp_json = rules_json_new();
	if (!r->matches || !r->failures || !r->req_json || !r->resp_json)
		return -ENOMEM;
	return rules_index_build(r);
}

static struct rules *rules_load_text(const char *name, const char *base_dir, const char *text,
				     size_t len, const struct rules_load_config *cfg,
				     rules_diag_fn diag, void *ctx)
{
	const char *ns = cfg && cfg->namespace ? cfg->namespace : "direct_fan";
	struct rules_loader l;
	struct rules *r = NULL;
	bool have_doc = false;

	memset(&l, 0, sizeof(l));
	l.file = name ? name : "rules";
	l.base_dir = base_dir;
	l.diag = diag;
	l.ctx = ctx;
	if (*ns && !rules_metric_name_ok(ns, false)) {
		rules_diag_pos(&l, 0, 0, false,
			       "namespace '%s' must match [a-zA-Z_:][a-zA-Z0-9_:]*", ns);
		goto cleanup;
	}
	if (len > RULES_MAX_FILE_BYTES) {
		rules_diag_pos(&l, 0, 0, false, "the file is larger than %d bytes",
			       RULES_MAX_FILE_BYTES);
		goto cleanup;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->file = strdup(l.file))) {
		rules_diag_pos(&l, 0, 0, false, "out of memory");
		goto cleanup;
	}
	l.r = r;
	if (rules_load_document(&l, text, len))
		goto cleanup;
	have_doc = true;
	rules_load_top(&l, ns);
	if (!l.errors && rules_finish(r))
		rules_diag_pos(&l, 0, 0, false, "out of memory");
cleanup:
	if (have_doc)
		yaml_document_delete(&l.doc);
	rules_diag_flush(&l);
	if (l.errors || !r) {
		rules_free(r);
		return NULL;
	}
	return r;
}

struct rules *rules_load_buffer(const char *name, const char *text, size_t len,
				const struct rules_load_config *cfg, rules_diag_fn diag, void *ctx)
{
	return rules_load_text(name, NULL, text, len, cfg, diag, ctx);
}

struct rules *rules_load_file(const char *path, const struct rules_load_config *cfg,
			      rules_diag_fn diag, void *ctx)
{
	struct rules_loader l;
	struct rules *r = NULL;
	char *text = NULL, *dir = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t n = 0;
	int fd;

	memset(&l, 0, sizeof(l));
	l.file = path;
	l.diag = diag;
	l.ctx = ctx;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rules_diag_pos(&l, 0, 0, false, "cannot open: %s", strerror(errno));
		rules_diag_flush(&l);
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		rules_diag_pos(&l, 0, 0, false, "not a regular file");
		goto cleanup;
	}
	if (st.st_size > RULES_MAX_FILE_BYTES) {
		rules_diag_pos(&l, 0, 0, false, "the file is larger than %d bytes",
			       RULES_MAX_FILE_BYTES);
		goto cleanup;
	}
	/* One byte more than allowed: a file that grows while read is still caught. */
	text = malloc(RULES_MAX_FILE_BYTES + 1);
	if (!text) {
		rules_diag_pos(&l, 0, 0, false, "out of memory");
		goto cleanup;
	}
	while (got <= RULES_MAX_FILE_BYTES &&
	       (n = read(fd, text + got, RULES_MAX_FILE_BYTES + 1 - got)) > 0)
		got += (size_t)n;
	if (n < 0) {
		rules_diag_pos(&l, 0, 0, false, "cannot read: %s", strerror(errno));
		goto cleanup;
	}
	dir = strdup(path);
	if (!dir) {
		rules_diag_pos(&l, 0, 0, false, "out of memory");
		goto cleanup;
	}
	r = rules_load_text(path, dirname(dir), text, got, cfg, diag, ctx);
cleanup:
	rules_diag_flush(&l);
	free(dir);
	free(text);
	close(fd);
	return r;
}
