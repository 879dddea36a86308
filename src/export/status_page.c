// SPDX-License-Identifier: MIT
/*
 * The status page's logic, kept apart from libmicrohttpd so that it is tested directly: the
 * login (a form-posted token, compared in constant time, exchanged for a per-process session
 * cookie) and the JSON of GET /api/status, read from the registry (the very series /metrics
 * renders, so the page and Prometheus agree exactly), the admin summary and the recent events.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/form.h"
#include "bizprobe/status_page.h"

struct status_auth {
	unsigned char token_md[EVP_MAX_MD_SIZE];
	unsigned int token_md_len;
	char session[STATUS_SESSION_HEX_LEN + 1];
	/* The server has one thread today; the lock keeps this right if that changes. */
	pthread_mutex_t lock;
	time_t fail_minute;
	unsigned fails_this_minute;
	uint64_t counts[4];
};

struct status_auth *status_auth_new(const char *token)
{
	unsigned char raw[STATUS_SESSION_HEX_LEN / 2];
	struct status_auth *a;

	if (!token || !*token)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	if (!EVP_Digest(token, strlen(token), a->token_md, &a->token_md_len, EVP_sha256(), NULL) ||
	    RAND_bytes(raw, sizeof(raw)) != 1) {
		free(a);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(a->session + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void status_auth_free(struct status_auth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

static enum status_login_result counted(struct status_auth *a, enum status_login_result r)
{
	a->counts[r]++;
	return r;
}

enum status_login_result status_auth_login(struct status_auth *a, const char *body, size_t len,
					   time_t now)
{
	char token[STATUS_TOKEN_MAX + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	enum status_login_result r;
	int n;

	if (!a)
		return STATUS_LOGIN_REFUSED;
	pthread_mutex_lock(&a->lock);
	if (now / 60 != a->fail_minute) {
		a->fail_minute = now / 60;
		a->fails_this_minute = 0;
	}
	if (a->fails_this_minute >= STATUS_LOGIN_FAILURES_PER_MIN) {
		r = counted(a, STATUS_LOGIN_THROTTLED);
		goto out;
	}
	n = body && len <= STATUS_LOGIN_BODY_MAX
		? form_urlencoded_get(body, len, "token", token, sizeof(token))
		: -EINVAL;
	if (n <= 0) {
		r = counted(a, STATUS_LOGIN_MALFORMED);
		a->fails_this_minute++;
		goto out;
	}
	if (EVP_Digest(token, (size_t)n, md, &md_len, EVP_sha256(), NULL) &&
	    md_len == a->token_md_len && CRYPTO_memcmp(md, a->token_md, md_len) == 0) {
		r = counted(a, STATUS_LOGIN_OK);
	} else {
		r = counted(a, STATUS_LOGIN_REFUSED);
		a->fails_this_minute++;
	}
out:
	pthread_mutex_unlock(&a->lock);
	OPENSSL_cleanse(token, sizeof(token));
	return r;
}

bool status_auth_session_ok(const struct status_auth *a, const char *cookie_header)
{
	static const char name[] = STATUS_COOKIE_NAME;
	const char *p = cookie_header;
	bool ok = false;

	if (!a || !p || strnlen(p, STATUS_COOKIE_HEADER_MAX + 1) > STATUS_COOKIE_HEADER_MAX)
		return false;
	/* "a=1; bizprobe_session=<hex>; b=2": every cookie of that name is tried (a duplicate
	 * set by another app on the host must not hide ours). */
	while (*p) {
		size_t len;

		p += strspn(p, " \t;");
		len = strcspn(p, ";");
		if (len == sizeof(name) - 1 + 1 + STATUS_SESSION_HEX_LEN &&
		    !strncmp(p, name, sizeof(name) - 1) && p[sizeof(name) - 1] == '=' &&
		    CRYPTO_memcmp(p + sizeof(name), a->session, STATUS_SESSION_HEX_LEN) == 0)
			ok = true;
		p += len;
	}
	return ok;
}

int status_auth_set_cookie(const struct status_auth *a, bool secure, char *out, size_t size)
{
	int n = snprintf(out, size, "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
			 STATUS_COOKIE_NAME, a->session, STATUS_SESSION_MAX_AGE_S,
			 secure ? "; Secure" : "");

	return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

const char *status_auth_clear_cookie(bool secure)
{
	return secure ? STATUS_COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure"
		      : STATUS_COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";
}

void status_auth_counts(const struct status_auth *a, uint64_t out[4])
{
	pthread_mutex_lock((pthread_mutex_t *)&a->lock);
	memcpy(out, a->counts, sizeof(a->counts));
	pthread_mutex_unlock((pthread_mutex_t *)&a->lock);
}

char *status_login_page(const char *message)
{
	static const char marker[] = "<!--MESSAGE-->";
	const struct status_asset *page = status_asset_login();
	const char *at = memmem(page->data, page->len, marker, sizeof(marker) - 1);
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	f = open_memstream(&out, &size);
	if (!f)
		return NULL;
	if (!at || !message) {
		fwrite(page->data, 1, page->len, f);
	} else {
		fwrite(page->data, 1, (size_t)(at - page->data), f);
		/* message is one of the server's fixed sentences: nothing to escape. */
		fprintf(f, "<p class=\"error\" id=\"login-error\" role=\"alert\">%s</p>", message);
		fwrite(at + sizeof(marker) - 1, 1,
		       page->len - (size_t)(at - page->data) - (sizeof(marker) - 1), f);
	}
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- GET /api/status ---- */

/* Sums kept while walking the registry; NAN until the family is seen (then null -> number). */
enum pick_kind {
	PICK_SUM,	   /* every series added */
	PICK_BY_LABEL,	   /* into an object keyed by a label's value */
	PICK_WHERE,	   /* only series whose label equals a value */
	PICK_WHERE_BY,	   /* series whose label equals a value, keyed by another label */
	PICK_HIST_BY_LABEL /* histogram sums (and counts) keyed by a label */
};

struct pick {
	const char *name; /* after the namespace's "<ns>_" when ns_prefixed */
	bool ns_prefixed;
	enum pick_kind kind;
	const char *label;	 /* BY_LABEL, WHERE_BY, HIST_BY_LABEL: the key */
	const char *where_label; /* WHERE, WHERE_BY */
	const char *where_value;
	const char *section; /* the JSON object it lands in */
	const char *key;
};

static const struct pick picks[] = {
    {"payment_attempts_total", true, PICK_BY_LABEL, "status", NULL, NULL, "payments", "by_status"},
    {"payment_amounts", true, PICK_HIST_BY_LABEL, "currency", NULL, NULL, "revenue", NULL},
    {"subscription_revenue", true, PICK_BY_LABEL, "currency", NULL, NULL, "mrr", NULL},
    {"active_users", true, PICK_WHERE_BY, "period", "user_type", "total", "users", "active"},
    {"total_users", true, PICK_WHERE, NULL, "user_type", "total", "users", "total"},
    {"user_registrations_total", true, PICK_SUM, NULL, NULL, NULL, "users", "registrations"},
    {"conversion_rate", true, PICK_BY_LABEL, "period", NULL, NULL, "users", "conversion_rate"},
    {"subscriptions_created_total", true, PICK_SUM, NULL, NULL, NULL, "subscriptions", "created"},
    {"subscriptions_canceled_total", true, PICK_SUM, NULL, NULL, NULL, "subscriptions", "canceled"},
    {"bizprobe_events_lost_total", false, PICK_SUM, NULL, NULL, NULL, "health", "events_lost"},
    {"bizprobe_lost_bytes_total", false, PICK_SUM, NULL, NULL, NULL, "health", "lost_bytes"},
    {"bizprobe_http_parse_errors_total", false, PICK_SUM, NULL, NULL, NULL, "health",
     "http_parse_errors"},
    {"bizprobe_stripe_parse_errors_total", false, PICK_SUM, NULL, NULL, NULL, "health",
     "stripe_parse_errors"},
    {"bizprobe_http_exchanges_dropped_total", false, PICK_SUM, NULL, NULL, NULL, "health",
     "exchanges_dropped"},
    {"bizprobe_http_truncated_exchanges_total", false, PICK_SUM, NULL, NULL, NULL, "health",
     "exchanges_truncated"},
    {"bizprobe_exchanges_total", false, PICK_SUM, NULL, NULL, NULL, "health", "exchanges"},
    {"bizprobe_traced_processes", false, PICK_SUM, NULL, NULL, NULL, "health", "traced_processes"},
    {"bizprobe_tls_files_attached", false, PICK_SUM, NULL, NULL, NULL, "health",
     "tls_files_attached"},
};
#define N_PICKS (sizeof(picks) / sizeof(picks[0]))

struct walk {
	const char *ns;
	size_t ns_len;
	const struct pick *current; /* the pick of the family being walked, or NULL */
	json_object *root;
	bool oom;
};

static json_object *section(json_object *root, const char *name)
{
	json_object *o;

	if (json_object_object_get_ex(root, name, &o))
		return o;
	o = json_object_new_object();
	if (o && json_object_object_add(root, name, o)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static const char *label_value(const struct metrics_family_info *fam,
			       const struct metrics_series_info *s, const char *name)
{
	for (unsigned i = 0; i < fam->n_labels; i++) {
		if (!strcmp(fam->label_names[i], name))
			return s->label_values[i] ? s->label_values[i] : "";
	}
	return NULL;
}

/* obj[key] += v, creating it as 0 first (json-c keeps doubles exactly). */
static bool add_number(json_object *obj, const char *key, double v)
{
	json_object *cur;
	double have = 0;

	if (!obj)
		return false;
	if (json_object_object_get_ex(obj, key, &cur) && cur)
		have = json_object_get_double(cur);
	return json_object_object_add(obj, key, json_object_new_double(have + v)) == 0;
}

static const struct pick *pick_of(const struct walk *w, const char *name)
{
	for (size_t i = 0; i < N_PICKS; i++) {
		const struct pick *p = &picks[i];

		if (p->ns_prefixed ? !strncmp(name, w->ns, w->ns_len) && name[w->ns_len] == '_' &&
					 !strcmp(name + w->ns_len + 1, p->name)
				   : !strcmp(name, p->name))
			return p;
	}
	return NULL;
}

/* The family exists: its figure is a number (0, or an empty object) from now on. */
static int on_family(const struct metrics_family_info *fam, void *ctx)
{
	struct walk *w = ctx;
	const struct pick *p = pick_of(w, fam->name);
	json_object *sec, *o;

	w->current = p;
	if (!p)
		return 0;
	sec = section(w->root, p->section);
	if (!sec) {
		w->oom = true;
		return 0;
	}
	switch (p->kind) {
	case PICK_SUM:
	case PICK_WHERE:
		w->oom |= !add_number(sec, p->key, 0);
		break;
	case PICK_BY_LABEL:
	case PICK_WHERE_BY:
		if (p->key && !json_object_object_get_ex(sec, p->key, &o))
			w->oom |= !section(sec, p->key);
		break;
	case PICK_HIST_BY_LABEL:
		break;
	}
	return 0;
}

static int on_series(const struct metrics_family_info *fam, const struct metrics_series_info *s,
		     void *ctx)
{
	struct walk *w = ctx;
	const struct pick *p = w->current;
	json_object *sec;
	const char *key, *where;

	if (!p)
		return 0;
	sec = section(w->root, p->section);
	if (p->where_label) {
		where = label_value(fam, s, p->where_label);
		if (!where || strcmp(where, p->where_value))
			return 0;
	}
	switch (p->kind) {
	case PICK_SUM:
	case PICK_WHERE:
		w->oom |= !add_number(sec, p->key, s->value);
		break;
	case PICK_BY_LABEL:
	case PICK_WHERE_BY:
		key = label_value(fam, s, p->label);
		if (key)
			w->oom |= !add_number(p->key ? section(sec, p->key) : sec, key, s->value);
		break;
	case PICK_HIST_BY_LABEL:
		key = label_value(fam, s, p->label);
		if (key) {
			json_object *c = section(sec, key);

			w->oom |= !add_number(c, "amount", s->sum) ||
				  !add_number(c, "payments", (double)s->count);
		}
		break;
	}
	return 0;
}

/* Payments: totals and the success rate, from the attempts by status. */
static bool payments_totals(json_object *root)
{
	json_object *pay, *by;
	double total = 0, ok = 0;

	if (!json_object_object_get_ex(root, "payments", &pay) ||
	    !json_object_object_get_ex(pay, "by_status", &by))
		return true;
	json_object_object_foreach(by, status, v)
	{
		total += json_object_get_double(v);
		if (!strcmp(status, "succeeded"))
			ok = json_object_get_double(v);
	}
	return !json_object_object_add(pay, "total", json_object_new_double(total)) &&
	       !json_object_object_add(pay, "succeeded", json_object_new_double(ok)) &&
	       !json_object_object_add(pay, "failed", json_object_new_double(total - ok)) &&
	       !json_object_object_add(pay, "success_rate",
				       total > 0 ? json_object_new_double(ok / total * 100) : NULL);
}

static json_object *events_json(struct recent_events *re, uint64_t *seen)
{
	struct recent_event *evs = calloc(RECENT_EVENTS_MAX, sizeof(*evs));
	json_object *arr = json_object_new_array();
	unsigned n;

	if (!evs || !arr)
		goto fail;
	n = recent_events_snapshot(re, evs, RECENT_EVENTS_MAX, seen);
	for (unsigned i = 0; i < n; i++) {
		json_object *e = json_object_new_object(), *labels = json_object_new_object();

		if (!e || !labels || json_object_array_add(arr, e)) {
			json_object_put(e);
			json_object_put(labels);
			goto fail;
		}
		json_object_object_add(e, "name", json_object_new_string(evs[i].name));
		for (unsigned l = 0; l < evs[i].n_labels; l++) {
			if (evs[i].label_values[l][0])
				json_object_object_add(
				    labels, evs[i].label_names[l],
				    json_object_new_string(evs[i].label_values[l]));
		}
		json_object_object_add(e, "labels", labels);
		json_object_object_add(e, "time_ms",
				       json_object_new_int64((int64_t)(evs[i].wall_ns / 1000000)));
	}
	free(evs);
	return arr;
fail:
	free(evs);
	json_object_put(arr);
	return NULL;
}

static json_object *history_json(struct recent_events *re, time_t now)
{
	struct recent_bucket b[RECENT_EVENTS_BUCKETS];
	json_object *h = json_object_new_object();
	json_object *ok = json_object_new_array(), *failed = json_object_new_array(),
		    *events = json_object_new_array();

	recent_events_history(re, (int64_t)now, b);
	if (!h || !ok || !failed || !events) {
		json_object_put(h);
		json_object_put(ok);
		json_object_put(failed);
		json_object_put(events);
		return NULL;
	}
	for (unsigned i = 0; i < RECENT_EVENTS_BUCKETS; i++) {
		json_object_array_add(ok, json_object_new_int64(b[i].payments_succeeded));
		json_object_array_add(failed, json_object_new_int64(b[i].payments_failed));
		json_object_array_add(events, json_object_new_int64(b[i].events));
	}
	json_object_object_add(h, "bucket_s", json_object_new_int(RECENT_EVENTS_BUCKET_S));
	json_object_object_add(h, "start_ms", json_object_new_int64(b[0].start_s * 1000));
	json_object_object_add(h, "payments_succeeded", ok);
	json_object_object_add(h, "payments_failed", failed);
	json_object_object_add(h, "events", events);
	return h;
}

/* The admin summary as its handler answers GET /api/admin/metrics?range=30d, or null. */
static json_object *summary_json(const struct status_sources *src)
{
	char *body = NULL;
	json_object *o = NULL;
	unsigned status;

	if (!src->admin)
		return NULL;
	status = src->admin("30d", &body, src->admin_ctx);
	if (status == 200 && body)
		o = json_tokener_parse(body);
	/* The page shows the totals; the per-day and cohort tables stay the admin API's. */
	if (o && json_object_is_type(o, json_type_object)) {
		json_object_object_del(o, "daily");
		json_object_object_del(o, "cohorts");
	}
	free(body);
	return o;
}

int status_page_json(const struct status_sources *src, time_t now, char **out)
{
	struct walk w = {.ns = src->ns ? src->ns : "direct_fan"};
	struct metrics_visitor v = {on_family, on_series};
	json_object *root = json_object_new_object(), *health, *events, *history, *tp;
	uint64_t seen = 0;
	const char *text;
	int err = -ENOMEM;

	*out = NULL;
	if (!root)
		return -ENOMEM;
	w.ns_len = strlen(w.ns);
	w.root = root;
	/* Every section is there, a figure null until its family exists. */
	if (!section(root, "payments") || !section(root, "revenue") || !section(root, "mrr") ||
	    !section(root, "users") || !section(root, "subscriptions") ||
	    !(health = section(root, "health")))
		goto cleanup;
	metrics_registry_run_collectors(src->reg);
	metrics_registry_visit(src->reg, &v, &w);
	if (w.oom || !payments_totals(root))
		goto cleanup;
	/* Attached means at least one traced process; null when bizprobe has no such gauge. */
	if (json_object_object_get_ex(health, "traced_processes", &tp))
		json_object_object_add(health, "attached",
				       json_object_new_boolean(json_object_get_double(tp) > 0));
	events = events_json(src->recent, &seen);
	history = history_json(src->recent, now);
	if (!events || !history) {
		json_object_put(events);
		json_object_put(history);
		goto cleanup;
	}
	json_object_object_add(root, "events", events);
	json_object_object_add(root, "events_seen", json_object_new_int64((int64_t)seen));
	json_object_object_add(root, "history", history);
	json_object_object_add(root, "summary", summary_json(src));
	json_object_object_add(root, "namespace", json_object_new_string(w.ns));
	json_object_object_add(root, "time_ms", json_object_new_int64((int64_t)now * 1000));
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	if (!text)
		goto cleanup;
	*out = strdup(text);
	err = *out ? 0 : -ENOMEM;
cleanup:
	json_object_put(root);
	return err;
}
