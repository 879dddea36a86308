// SPDX-License-Identifier: MIT
/*
 * The Sentry reporter (bizprobe/sentry_reporter.h). Two halves:
 *
 *   the main loop's: events (with the exchange they came from) become fixed-size reports, a
 *   failed Stripe call waits in a small table for its retries, and a report is queued only if
 *   the token bucket, Sentry's own rate limit and the queue's room allow; nothing here blocks
 *   or allocates per report;
 *
 *   the sending thread's: JSON with json-c, an envelope, one POST with libcurl, and Sentry's
 *   answer read for its rate limits.
 *
 * Shared between them, under the mutex: the queue, the time sends may resume, the counters.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "bizprobe/form.h"
#include "bizprobe/json_view.h"
#include "bizprobe/sentry_reporter.h"
#include "bizprobe/stripe.h"

/* Failed Stripe calls awaiting a retry at once; one entry is a report (about 1 KiB). When full,
 * the oldest is reported at once, as if its window had passed. */
#define PENDING_SLOTS 128
/* A Retry-After of Stripe's longer than this is not waited for: the SDKs give up too (stripe-node
 * waits at most 60 s). */
#define STRIPE_RETRY_AFTER_MAX_MS 60000ull
#define DAY_MS			  86400000ull
/* A 429 that says nothing of when to come back: Sentry's SDKs wait 60 s. */
#define DEFAULT_RETRY_MS 60000ull

enum drop_reason {
	DROP_RATE_LIMIT,	  /* the local token bucket */
	DROP_SENTRY_RATE_LIMITED, /* Sentry answered 429 or limits errors: until it allows */
	DROP_QUEUE_FULL,
	DROP_REJECTED,	  /* Sentry answered another 4xx */
	DROP_SEND_FAILED, /* no answer, or a 5xx */
	DROP_SHUTDOWN,	  /* still queued when bizprobe stopped */
	DROP_ERROR,	  /* out of memory formatting it */
	DROP__COUNT,
};

static const char *const drop_names[DROP__COUNT] = {
    [DROP_RATE_LIMIT] = "rate_limit",
    [DROP_SENTRY_RATE_LIMITED] = "sentry_rate_limited",
    [DROP_QUEUE_FULL] = "queue_full",
    [DROP_REJECTED] = "rejected",
    [DROP_SEND_FAILED] = "send_failed",
    [DROP_SHUTDOWN] = "shutdown",
    [DROP_ERROR] = "error",
};

struct pending {
	bool used;
	uint64_t key;
	uint64_t deadline_ms;
	uint64_t seq; /* insertion order, for eviction */
	struct sentry_report rep;
};

struct sentry_reporter {
	struct sentry_dsn dsn;
	char auth[256];
	char *release, *environment, *version;
	long timeout_ms;
	sentry_transport_fn transport;
	void *transport_ctx;
	uint64_t (*clock_ms)(void *ctx);
	void *clock_ctx;
	const struct pseudonymizer *pseudonymizer;
	char **user_keys;
	unsigned n_user_keys;
	CURL *curl;

	/* Main loop only. */
	const struct http_exchange *cur;
	struct pending pending[PENDING_SLOTS];
	uint64_t pending_seq;
	unsigned retry_window_ms;
	double tokens, rate_per_s, burst;
	uint64_t tokens_at_ms;

	/* Shared, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	struct sentry_report *queue;
	unsigned queue_cap, q_head, q_len;
	bool busy, stopping, thread_started;
	uint64_t blocked_until_ms;
	uint64_t shutdown_deadline_ms;
	struct sentry_reporter_stats stats;
	pthread_t thread;

	struct metrics_family *sent_total, *dropped_total;
};

static uint64_t wall_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t now_ms(const struct sentry_reporter *r)
{
	return r->clock_ms(r->clock_ctx);
}

/* Bounded copy; s may be NULL. */
static void copy(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s ? s : "");
}

/*
 * DSN.
 */
int sentry_dsn_parse(const char *dsn, struct sentry_dsn *out)
{
	const char *p, *auth, *at = NULL, *colon, *host, *path, *slash;
	size_t scheme_len, klen, hlen;
	int n;

	memset(out, 0, sizeof(*out));
	if (!dsn)
		return -EINVAL;
	if (!strncasecmp(dsn, "https://", 8))
		scheme_len = 5;
	else if (!strncasecmp(dsn, "http://", 7))
		scheme_len = 4;
	else
		return -EINVAL;
	auth = dsn + scheme_len + 3;
	p = auth;
	while (*p && *p != '/' && *p != '?' && *p != '#')
		p++;
	for (const char *q = auth; q < p; q++)
		if (*q == '@')
			at = q;
	if (!at || at == auth || *p != '/')
		return -EINVAL;
	colon = memchr(auth, ':', (size_t)(at - auth));
	klen = (size_t)((colon ? colon : at) - auth);
	host = at + 1;
	hlen = (size_t)(p - host);
	if (!klen || klen >= sizeof(out->public_key) || !hlen || hlen >= sizeof(out->host))
		goto bad;
	for (size_t i = 0; i < klen; i++)
		if (!isalnum((unsigned char)auth[i]))
			goto bad;
	for (size_t i = 0; i < hlen; i++)
		if (!isalnum((unsigned char)host[i]) && !strchr(".-:[]_", host[i]))
			goto bad;
	/* The project id is the last segment; anything before it is the path Sentry lives at. */
	path = p;
	slash = strrchr(path, '/');
	if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1) ||
	    strlen(slash + 1) > 20)
		goto bad;
	memcpy(out->public_key, auth, klen);
	memcpy(out->host, host, hlen);
	n = snprintf(out->url, sizeof(out->url), "%.*s://%s%.*s/api/%s/envelope/", (int)scheme_len,
		     dsn, out->host, (int)(slash - path), path, slash + 1);
	if (n < 0 || (size_t)n >= sizeof(out->url))
		goto bad;
	for (size_t i = 0; i < scheme_len; i++)
		out->url[i] = (char)tolower((unsigned char)out->url[i]);
	return 0;
bad:
	explicit_bzero(out, sizeof(*out));
	return -EINVAL;
}

/*
 * Formatting.
 */
const char *sentry_amount_band(double major)
{
	static const struct {
		double below;
		const char *band;
	} bands[] = {{1, "0-1"},      {10, "1-10"},	{50, "10-50"},
		     {100, "50-100"}, {500, "100-500"}, {1000, "500-1000"}};

	if (!isfinite(major) || major < 0)
		return "";
	for (size_t i = 0; i < sizeof(bands) / sizeof(bands[0]); i++)
		if (major < bands[i].below)
			return bands[i].band;
	return "1000+";
}

static bool word_segment(const char *s, size_t n)
{
	if (!n || n > 32)
		return false;
	if ((s[0] == 'v' || s[0] == 'V') && n <= 3 && n >= 2 &&
	    strspn(s + 1, "0123456789") >= n - 1)
		return true;
	for (size_t i = 0; i < n; i++)
		if (!isalpha((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

void sentry_path_template(const char *path, char *out, size_t size)
{
	size_t off = 0, n = path ? strcspn(path, "?#") : 0;
	const char *p = path, *end = path + n;

	if (!size)
		return;
	out[0] = '\0';
	if (!path || path[0] != '/') {
		snprintf(out, size, "other");
		return;
	}
	while (p < end) {
		const char *seg = ++p;
		size_t len;

		while (p < end && *p != '/')
			p++;
		len = (size_t)(p - seg);
		if (off + len + 6 >= size) {
			snprintf(out, size, "other");
			return;
		}
		if (!len && p == end && off) {
			out[off++] = '/'; /* a trailing slash, as sent */
			break;
		}
		out[off++] = '/';
		if (word_segment(seg, len)) {
			memcpy(out + off, seg, len);
			off += len;
		} else if (len) {
			memcpy(out + off, "{id}", 4);
			off += 4;
		}
	}
	if (!off)
		out[off++] = '/';
	out[off] = '\0';
}

const char *sentry_platform_of_comm(const char *comm)
{
	static const struct {
		const char *prefix, *platform;
	} known[] = {{"node", "node"},	  {"nodejs", "node"},	{"bun", "node"},
		     {"deno", "node"},	  {"python", "python"}, {"gunicorn", "python"},
		     {"uwsgi", "python"}, {"ruby", "ruby"},	{"puma", "ruby"},
		     {"java", "java"},	  {"php", "php"},	{"dotnet", "dotnet"}};

	if (!comm)
		return "other";
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strncmp(comm, known[i].prefix, strlen(known[i].prefix)))
			return known[i].platform;
	return "other";
}

static void put_str(struct json_object *o, const char *key, const char *v)
{
	if (v && *v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void message_of(const struct sentry_report *rep, char *out, size_t size)
{
	if (!strcmp(rep->flow, "stripe_api"))
		snprintf(out, size, "Stripe API %s %s failed: %d %s (%u attempt%s)", rep->method,
			 rep->endpoint, rep->status, rep->error_code[0] ? rep->error_code : "error",
			 rep->attempts, rep->attempts == 1 ? "" : "s");
	else if (!strcmp(rep->flow, "stripe_webhook"))
		snprintf(out, size, "Stripe webhook %s rejected at %s: %s",
			 rep->webhook_type[0] ? rep->webhook_type : "other", rep->endpoint,
			 rep->error_code);
	else
		snprintf(out, size, "Business flow %s failed: %s %s answered %d",
			 rep->business_event, rep->method, rep->endpoint, rep->status);
}

int sentry_report_event_json(const struct sentry_report *rep, const char *event_id,
			     const char *release, const char *environment, const char *version,
			     char **out)
{
	struct json_object *ev = json_object_new_object(), *tags, *biz, *ctx, *fp, *sdk, *msg,
			   *user;
	char status[16], message[512], ts[32];
	const char *text;
	int rc = -ENOMEM;

	*out = NULL;
	if (!ev)
		return -ENOMEM;
	snprintf(status, sizeof(status), "%d", rep->status);
	message_of(rep, message, sizeof(message));
	snprintf(ts, sizeof(ts), "%.3f", (double)(rep->wall_ns / 1000000ull) / 1000.0);
	json_object_object_add(ev, "event_id", json_object_new_string(event_id));
	json_object_object_add(ev, "timestamp", json_object_new_double_s(atof(ts), ts));
	json_object_object_add(ev, "platform", json_object_new_string("other"));
	json_object_object_add(ev, "level", json_object_new_string("error"));
	json_object_object_add(ev, "logger", json_object_new_string("bizprobe"));
	put_str(ev, "release", release);
	put_str(ev, "environment", environment);
	msg = json_object_new_object();
	json_object_object_add(msg, "formatted", json_object_new_string(message));
	json_object_object_add(ev, "message", msg);

	/* Tags are what Sentry searches and alerts on; the same facts, typed, in the context. */
	tags = json_object_new_object();
	biz = json_object_new_object();
	{
		const char *const kv[][2] = {
		    {"businessEvent", rep->business_event},
		    {"funnel", rep->funnel},
		    {"component", rep->component},
		    {"feature", rep->feature},
		    {"endpoint", rep->endpoint},
		    {"method", rep->method},
		    {"errorCode", rep->error_code},
		    {"errorType", rep->error_type},
		    {"webhookType", rep->webhook_type},
		    {"currency", rep->currency},
		    {"amountBand", rep->amount_band},
		    {"userType", rep->user_type},
		    {"source", rep->source},
		    {"platform", rep->platform},
		    {"flow", rep->flow},
		};

		for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
			put_str(tags, kv[i][0], kv[i][1]);
			put_str(biz, kv[i][0], kv[i][1]);
		}
	}
	json_object_object_add(tags, "status", json_object_new_string(status));
	json_object_object_add(biz, "status", json_object_new_int(rep->status));
	if (rep->attempts)
		json_object_object_add(biz, "attempts", json_object_new_int((int)rep->attempts));
	json_object_object_add(ev, "tags", tags);
	ctx = json_object_new_object();
	json_object_object_add(ctx, "business", biz);
	json_object_object_add(ev, "contexts", ctx);
	if (rep->user[0]) {
		user = json_object_new_object();
		json_object_object_add(user, "id", json_object_new_string(rep->user));
		json_object_object_add(ev, "user", user);
	}

	/* Grouped by flow and cause: one issue per failing call, webhook or route and why. */
	fp = json_object_new_array();
	json_object_array_add(fp, json_object_new_string("bizprobe"));
	json_object_array_add(fp, json_object_new_string(rep->flow));
	if (!strcmp(rep->flow, "stripe_webhook")) {
		json_object_array_add(fp, json_object_new_string(rep->webhook_type));
		json_object_array_add(fp, json_object_new_string(rep->error_code));
	} else if (!strcmp(rep->flow, "stripe_api")) {
		json_object_array_add(fp, json_object_new_string(rep->endpoint));
		json_object_array_add(fp, json_object_new_string(status));
		json_object_array_add(fp, json_object_new_string(rep->error_code));
	} else {
		json_object_array_add(fp, json_object_new_string(rep->business_event));
		json_object_array_add(fp, json_object_new_string(status));
	}
	json_object_object_add(ev, "fingerprint", fp);
	sdk = json_object_new_object();
	json_object_object_add(sdk, "name", json_object_new_string("bizprobe"));
	json_object_object_add(sdk, "version", json_object_new_string(version ? version : "0"));
	json_object_object_add(ev, "sdk", sdk);

	text = json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text) {
		*out = strdup(text);
		rc = *out ? 0 : -ENOMEM;
	}
	json_object_put(ev);
	return rc;
}

int sentry_envelope_build(const char *event_id, const char *json, uint64_t sent_at_ms,
			  const char *version, char **out, size_t *len)
{
	char sent_at[64];
	time_t secs = (time_t)(sent_at_ms / 1000);
	struct tm tm;
	int n;

	gmtime_r(&secs, &tm);
	n = (int)strftime(sent_at, sizeof(sent_at), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(sent_at + n, sizeof(sent_at) - (size_t)n, ".%03uZ", (unsigned)(sent_at_ms % 1000));
	/* No dsn in the header: the key goes in X-Sentry-Auth alone. */
	n = asprintf(out,
		     "{\"event_id\":\"%s\",\"sent_at\":\"%s\",\"sdk\":{\"name\":\"bizprobe\","
		     "\"version\":\"%s\"}}\n"
		     "{\"type\":\"event\",\"length\":%zu,\"content_type\":\"application/json\"}\n"
		     "%s\n",
		     event_id, sent_at, version ? version : "0", strlen(json), json);
	if (n < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	*len = (size_t)n;
	return 0;
}

/* Whether an X-Sentry-Rate-Limits categories list covers error events. */
static bool covers_errors(const char *cats, size_t n)
{
	const char *p = cats, *end = cats + n;

	if (!n)
		return true;
	while (p < end) {
		const char *q = memchr(p, ';', (size_t)(end - p));
		size_t len = q ? (size_t)(q - p) : (size_t)(end - p);

		if ((len == 5 && !strncmp(p, "error", 5)) ||
		    (len == 7 && !strncmp(p, "default", 7)))
			return true;
		p += len + 1;
	}
	return false;
}

uint64_t sentry_rate_limited_until(const struct sentry_http_response *resp, uint64_t now_ms)
{
	uint64_t until = 0, best = 0;
	bool any = false;

	if (resp->rate_limits[0]) {
		const char *p = resp->rate_limits;

		/* "60:transaction;error:key, 2700:default:organization:quota" */
		while (*p) {
			size_t len = strcspn(p, ",");
			const char *c1 = memchr(p, ':', len);
			char *end;
			unsigned long long secs;

			while (*p == ' ')
				p++, len--;
			errno = 0;
			secs = strtoull(p, &end, 10);
			if (c1 && !errno && end > p && end == c1) {
				const char *cats = c1 + 1;
				const char *c2 = memchr(cats, ':', len - (size_t)(cats - p));
				size_t clen = c2 ? (size_t)(c2 - cats) : len - (size_t)(cats - p);

				any = true;
				if (covers_errors(cats, clen) && secs * 1000ull > best)
					best = secs * 1000ull;
			}
			p += len;
			if (*p == ',')
				p++;
		}
		if (any)
			until = best ? now_ms + (best < DAY_MS ? best : DAY_MS) : 0;
	}
	if (!any && resp->status == 429) {
		const char *ra = resp->retry_after;
		char *end;
		unsigned long long secs;

		until = now_ms + DEFAULT_RETRY_MS;
		if (ra[0]) {
			errno = 0;
			secs = strtoull(ra, &end, 10);
			if (!errno && end > ra && !*end) {
				until =
				    now_ms + (secs * 1000ull < DAY_MS ? secs * 1000ull : DAY_MS);
			} else {
				time_t t = curl_getdate(ra, NULL);

				if (t > 0 && (uint64_t)t * 1000ull > now_ms)
					until = (uint64_t)t * 1000ull - now_ms < DAY_MS
						    ? (uint64_t)t * 1000ull
						    : now_ms + DAY_MS;
			}
		}
	}
	return until;
}

/*
 * The sending thread.
 */
struct curl_hdrs {
	struct sentry_http_response *resp;
};

static size_t on_header(char *buf, size_t size, size_t n, void *ctx)
{
	struct curl_hdrs *h = ctx;
	size_t len = size * n;
	char *dst = NULL;
	size_t cap = 0, k;

	if (len > 12 && !strncasecmp(buf, "Retry-After:", 12)) {
		dst = h->resp->retry_after;
		cap = sizeof(h->resp->retry_after);
		k = 12;
	} else if (len > 21 && !strncasecmp(buf, "X-Sentry-Rate-Limits:", 21)) {
		dst = h->resp->rate_limits;
		cap = sizeof(h->resp->rate_limits);
		k = 21;
	}
	if (dst) {
		while (k < len && (buf[k] == ' ' || buf[k] == '\t'))
			k++;
		snprintf(dst, cap, "%.*s", (int)(len - k), buf + k);
		dst[strcspn(dst, "\r\n")] = '\0';
	}
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ctx)
{
	(void)buf;
	(void)ctx;
	return size * n;
}

struct curl_send_ctx {
	CURL *curl;
	long timeout_ms;
};

static int curl_send(void *ctx, const char *url, const char *auth, const char *body, size_t len,
		     struct sentry_http_response *resp)
{
	struct curl_send_ctx *c = ctx;
	struct curl_hdrs h = {resp};
	struct curl_slist *hdrs = NULL, *tmp;
	CURLcode rc;
	int err = 0;

	curl_easy_reset(c->curl);
	tmp = curl_slist_append(hdrs, "Content-Type: application/x-sentry-envelope");
	hdrs = tmp ? curl_slist_append(tmp, auth) : NULL;
	if (!hdrs) {
		curl_slist_free_all(tmp);
		return -ENOMEM;
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
	/* A thread of a process with signal handlers: no SIGALRM for DNS timeouts. */
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	/* Only what a DSN may name; no redirects (the auth header would follow them). */
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "bizprobe");
	rc = curl_easy_perform(c->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	else
		err = -EIO;
	curl_slist_free_all(hdrs);
	return err;
}

static void count_drop(struct sentry_reporter *r, enum drop_reason why)
{
	const char *label[] = {drop_names[why]};

	r->stats.dropped++;
	metrics_inc(r->dropped_total, label);
}

static void random_id(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		/* Not expected on Linux >= 3.17; an id need only be unlikely to repeat. */
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out;

		memcpy(b, &t, 8);
		memcpy(b + 8, &t, 8);
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* a v4 UUID, as the SDKs' ids are */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[32] = '\0';
}

/* Sends one report (lock not held). Returns the drop reason, or -1 when it was sent. */
static int send_one(struct sentry_reporter *r, const struct sentry_report *rep)
{
	struct sentry_http_response resp;
	char id[33], *json = NULL, *env = NULL;
	uint64_t until;
	size_t len;
	int rc, out;

	random_id(id);
	if (sentry_report_event_json(rep, id, r->release, r->environment, r->version, &json) ||
	    sentry_envelope_build(id, json, now_ms(r), r->version, &env, &len)) {
		free(json);
		return DROP_ERROR;
	}
	memset(&resp, 0, sizeof(resp));
	rc = r->transport(r->transport_ctx, r->dsn.url, r->auth, env, len, &resp);
	free(json);
	free(env);
	if (rc || !resp.status)
		return DROP_SEND_FAILED;
	until = sentry_rate_limited_until(&resp, now_ms(r));
	if (until) {
		pthread_mutex_lock(&r->lock);
		if (until > r->blocked_until_ms)
			r->blocked_until_ms = until;
		pthread_mutex_unlock(&r->lock);
	}
	if (resp.status >= 200 && resp.status <= 299)
		out = -1;
	else if (resp.status == 429)
		out = DROP_SENTRY_RATE_LIMITED;
	else if (resp.status >= 400 && resp.status <= 499)
		out = DROP_REJECTED;
	else
		out = DROP_SEND_FAILED;
	return out;
}

static void *sender(void *arg)
{
	struct sentry_reporter *r = arg;
	struct sentry_report rep;
	sigset_t all;

	/* Signals are the main loop's (cli_block_stop_signals): never this thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		int why;

		while (!r->q_len && !r->stopping)
			pthread_cond_wait(&r->wake, &r->lock);
		if (!r->q_len)
			break;
		rep = r->queue[r->q_head];
		r->q_head = (r->q_head + 1) % r->queue_cap;
		r->q_len--;
		if (r->stopping && now_ms(r) >= r->shutdown_deadline_ms) {
			count_drop(r, DROP_SHUTDOWN);
			continue;
		}
		/* Sentry said stop after this one was queued: it is not sent, nor kept. */
		if (now_ms(r) < r->blocked_until_ms) {
			count_drop(r, DROP_SENTRY_RATE_LIMITED);
			continue;
		}
		r->busy = true;
		pthread_mutex_unlock(&r->lock);
		why = send_one(r, &rep);
		pthread_mutex_lock(&r->lock);
		r->busy = false;
		if (why < 0) {
			r->stats.sent++;
			metrics_inc(r->sent_total, NULL);
		} else {
			count_drop(r, (enum drop_reason)why);
		}
		if (!r->q_len)
			pthread_cond_broadcast(&r->idle);
	}
	pthread_cond_broadcast(&r->idle);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * The main loop's half.
 */
static void enqueue(struct sentry_reporter *r, const struct sentry_report *rep)
{
	uint64_t now = now_ms(r);

	/* The token bucket: rate_per_s on average, burst at once. */
	r->tokens += (double)(now - r->tokens_at_ms) / 1000.0 * r->rate_per_s;
	if (now < r->tokens_at_ms || r->tokens > r->burst)
		r->tokens = r->burst;
	r->tokens_at_ms = now;
	pthread_mutex_lock(&r->lock);
	if (now < r->blocked_until_ms) {
		count_drop(r, DROP_SENTRY_RATE_LIMITED);
	} else if (r->tokens < 1) {
		count_drop(r, DROP_RATE_LIMIT);
	} else if (r->q_len == r->queue_cap) {
		count_drop(r, DROP_QUEUE_FULL);
	} else {
		r->tokens -= 1;
		r->queue[(r->q_head + r->q_len) % r->queue_cap] = *rep;
		r->q_len++;
		r->stats.queued++;
		pthread_cond_signal(&r->wake);
	}
	pthread_mutex_unlock(&r->lock);
}

static void report_base(struct sentry_reporter *r, struct sentry_report *rep, const char *flow,
			const char *source, uint64_t wall_ns)
{
	memset(rep, 0, sizeof(*rep));
	copy(rep->flow, sizeof(rep->flow), flow);
	copy(rep->source, sizeof(rep->source), source);
	copy(rep->platform, sizeof(rep->platform),
	     sentry_platform_of_comm(r->cur ? r->cur->conn.comm : NULL));
	rep->wall_ns = wall_ns ? wall_ns : now_ms(r) * 1000000ull;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* Which call an attempt belongs to: the SDK's Idempotency-Key (the same for every retry), else
 * the method and exact path (a GET's retries repeat them). Only this hash is kept. */
static uint64_t call_key(const struct http_exchange *ex)
{
	const char *idem = http_message_header(&ex->req, "Idempotency-Key");
	uint64_t h = fnv1a(0xcbf29ce484222325ull, &ex->conn.pid, sizeof(ex->conn.pid));

	if (idem && *idem)
		return fnv1a(h, idem, strlen(idem));
	h = fnv1a(h, ex->method, strlen(ex->method));
	return fnv1a(h, ex->target ? ex->target : "", ex->target ? strlen(ex->target) : 0);
}

static struct pending *pending_find(struct sentry_reporter *r, uint64_t key)
{
	for (unsigned i = 0; i < PENDING_SLOTS; i++)
		if (r->pending[i].used && r->pending[i].key == key)
			return &r->pending[i];
	return NULL;
}

static struct pending *pending_slot(struct sentry_reporter *r)
{
	struct pending *oldest = NULL;

	for (unsigned i = 0; i < PENDING_SLOTS; i++) {
		if (!r->pending[i].used)
			return &r->pending[i];
		if (!oldest || r->pending[i].seq < oldest->seq)
			oldest = &r->pending[i];
	}
	/* Full: the oldest is reported now, as if its window had passed. */
	enqueue(r, &oldest->rep);
	oldest->used = false;
	return oldest;
}

/* [a-z0-9_]{1,48}, else "other"; NULL or "" stays "". */
static void code_word(const char *code, char *out, size_t size)
{
	size_t n = code ? strlen(code) : 0;

	if (!n)
		out[0] = '\0';
	else if (n > 48 || strspn(code, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
		snprintf(out, size, "other");
	else
		snprintf(out, size, "%s", code);
}

static const char *stripe_business_event(const char *endpoint)
{
	static const struct {
		const char *prefix, *event;
	} known[] = {
	    {"/v1/payment_intents", "payment_processing"},
	    {"/v1/charges", "payment_processing"},
	    {"/v1/setup_intents", "payment_method_setup"},
	    {"/v1/payment_methods", "payment_method_setup"},
	    {"/v1/subscriptions", "subscription_management"},
	    {"/v1/subscription_items", "subscription_management"},
	    {"/v1/invoices", "invoicing"},
	    {"/v1/checkout/sessions", "checkout"},
	    {"/v1/refunds", "refund_processing"},
	    {"/v1/customers", "customer_management"},
	    {"/v1/prices", "catalog"},
	    {"/v1/products", "catalog"},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strncmp(endpoint, known[i].prefix, strlen(known[i].prefix)))
			return known[i].event;
	return "stripe_api_call";
}

/* What the request and response tell of a failed Stripe call: cause, currency, amount, user. */
static void stripe_details(struct sentry_reporter *r, const struct http_exchange *ex,
			   struct sentry_report *rep)
{
	char cur[8], amount[32], raw[1024], key[96];
	const char *body = (const char *)ex->req.body;
	size_t len = ex->req.body_truncated ? 0 : ex->req.body_len;
	struct json_doc *d;

	if (!ex->resp.body_truncated && (d = json_doc_parse(ex->resp.body, ex->resp.body_len))) {
		struct json_val err = json_get(json_doc_root(d), "error");
		const char *code = json_string(json_get(err, "code"));

		code_word(code ? code : json_string(json_get(err, "type")), rep->error_code,
			  sizeof(rep->error_code));
		code_word(json_string(json_get(err, "type")), rep->error_type,
			  sizeof(rep->error_type));
		json_doc_free(d);
	}
	if (!rep->error_code[0])
		copy(rep->error_code, sizeof(rep->error_code),
		     ex->status == 429 ? "rate_limit" : "http_error");
	if (!body || !len)
		return;
	if (form_urlencoded_get(body, len, "currency", cur, sizeof(cur)) == 3 &&
	    isalpha((unsigned char)cur[0]) && isalpha((unsigned char)cur[1]) &&
	    isalpha((unsigned char)cur[2])) {
		for (int i = 0; i < 3; i++)
			rep->currency[i] = (char)toupper((unsigned char)cur[i]);
		rep->currency[3] = '\0';
		if (form_urlencoded_get(body, len, "amount", amount, sizeof(amount)) > 0 &&
		    strspn(amount, "0123456789") == strlen(amount) && strlen(amount) <= 15)
			copy(rep->amount_band, sizeof(rep->amount_band),
			     sentry_amount_band(
				 stripe_amount_to_major(strtoll(amount, NULL, 10), cur)));
	}
	/* The payer, pseudonymized the moment it is read. */
	for (unsigned i = 0; r->pseudonymizer && i < r->n_user_keys; i++) {
		int n;

		snprintf(key, sizeof(key), "metadata[%s]", r->user_keys[i]);
		n = form_urlencoded_get(body, len, key, raw, sizeof(raw));
		if (n > 0) {
			pseudonymize(r->pseudonymizer, raw, (size_t)n, rep->user);
			explicit_bzero(raw, sizeof(raw));
			break;
		}
	}
	explicit_bzero(raw, sizeof(raw));
}

static bool stripe_reportable(int status)
{
	/* Not a decline (402: the card's answer, the payments metrics' business) nor an invalid
	 * request of the app's own; an outage, a rate limit, or a key that stopped working. */
	return (status >= 500 && status <= 599) || status == 429 || status == 401 || status == 403;
}

/* labels: endpoint, method, code (business_event.h). */
static void stripe_api_event(struct sentry_reporter *r, const struct business_event *ev)
{
	const struct http_exchange *ex = r->cur;
	uint64_t key, now = now_ms(r), wait;
	struct pending *p;
	unsigned attempts;
	const char *ra;

	if (!ex || ex->role != HTTP_ROLE_CLIENT)
		return;
	key = call_key(ex);
	p = pending_find(r, key);
	if (!stripe_reportable(ex->status)) {
		/* A retry that succeeded (or was declined): the call did not fail as reported. */
		if (p)
			p->used = false;
		return;
	}
	if (!p) {
		p = pending_slot(r);
		memset(p, 0, sizeof(*p));
		p->used = true;
		p->key = key;
	}
	p->seq = ++r->pending_seq;
	attempts = p->rep.attempts;
	/* The latest attempt's details replace the earlier ones'; the count goes on. */
	report_base(r, &p->rep, "stripe_api", "api", ev->wall_ns);
	p->rep.attempts = attempts + 1;
	copy(p->rep.endpoint, sizeof(p->rep.endpoint), biz_event_label(ev, "endpoint"));
	copy(p->rep.method, sizeof(p->rep.method), biz_event_label(ev, "method"));
	copy(p->rep.business_event, sizeof(p->rep.business_event),
	     stripe_business_event(p->rep.endpoint));
	copy(p->rep.component, sizeof(p->rep.component), "stripe_api");
	copy(p->rep.feature, sizeof(p->rep.feature), "stripe_integration");
	p->rep.status = ex->status;
	stripe_details(r, ex, &p->rep);
	wait = r->retry_window_ms;
	ra = http_message_header(&ex->resp, "Retry-After");
	if (ra && strspn(ra, "0123456789") == strlen(ra) && *ra && strlen(ra) < 6) {
		uint64_t ms = strtoull(ra, NULL, 10) * 1000ull;

		if (ms <= STRIPE_RETRY_AFTER_MAX_MS && ms + r->retry_window_ms > wait)
			wait = ms + r->retry_window_ms;
	}
	p->deadline_ms = now + wait;
}

/* labels: type, outcome. */
static void webhook_event(struct sentry_reporter *r, const struct business_event *ev)
{
	const struct http_exchange *ex = r->cur;
	struct sentry_report rep;
	const char *outcome = biz_event_label(ev, "outcome");

	if (!ex || !outcome || strcmp(outcome, "rejected"))
		return;
	report_base(r, &rep, "stripe_webhook", "webhook", ev->wall_ns);
	copy(rep.business_event, sizeof(rep.business_event), "webhook_processing");
	copy(rep.component, sizeof(rep.component), "stripe_webhook");
	copy(rep.feature, sizeof(rep.feature), "stripe_integration");
	copy(rep.webhook_type, sizeof(rep.webhook_type), biz_event_label(ev, "type"));
	sentry_path_template(ex->path, rep.endpoint, sizeof(rep.endpoint));
	copy(rep.method, sizeof(rep.method), "POST");
	rep.status = ex->status;
	/* The app refused it, or it answered 2xx to one whose signature did not verify (or that
	 * was not an event at all). */
	copy(rep.error_code, sizeof(rep.error_code),
	     ex->status >= 200 && ex->status <= 299 ? "bad_signature" : "app_refused");
	enqueue(r, &rep);
}

/* labels: event, component, feature, funnel, endpoint, method, status. */
static void rule_failure_event(struct sentry_reporter *r, const struct business_event *ev)
{
	struct sentry_report rep;
	const char *status = biz_event_label(ev, "status");

	report_base(r, &rep, "business_route", "server", ev->wall_ns);
	copy(rep.business_event, sizeof(rep.business_event), biz_event_label(ev, "event"));
	copy(rep.component, sizeof(rep.component), biz_event_label(ev, "component"));
	copy(rep.feature, sizeof(rep.feature), biz_event_label(ev, "feature"));
	copy(rep.funnel, sizeof(rep.funnel), biz_event_label(ev, "funnel"));
	copy(rep.endpoint, sizeof(rep.endpoint), biz_event_label(ev, "endpoint"));
	if (!rep.endpoint[0] && r->cur)
		sentry_path_template(r->cur->path, rep.endpoint, sizeof(rep.endpoint));
	copy(rep.method, sizeof(rep.method), biz_event_label(ev, "method"));
	rep.status = status ? atoi(status) : 0;
	copy(rep.error_code, sizeof(rep.error_code), "http_5xx");
	copy(rep.user_type, sizeof(rep.user_type), ev->user_type);
	if (ev->user && strlen(ev->user) == PSEUDONYM_LEN - 1)
		copy(rep.user, sizeof(rep.user), ev->user);
	enqueue(r, &rep);
}

void sentry_reporter_on_event(const struct business_event *ev, void *ctx)
{
	struct sentry_reporter *r = ctx;

	if (!r || !ev)
		return;
	switch (ev->kind) {
	case BIZ_STRIPE_API_REQUEST:
		stripe_api_event(r, ev);
		break;
	case BIZ_WEBHOOK_DELIVERY:
		webhook_event(r, ev);
		break;
	case BIZ_RULE_FAILURE:
		rule_failure_event(r, ev);
		break;
	default:
		break;
	}
}

void sentry_reporter_begin(struct sentry_reporter *r, const struct http_exchange *ex)
{
	if (r)
		r->cur = ex;
}

void sentry_reporter_end(struct sentry_reporter *r)
{
	if (r)
		r->cur = NULL;
}

static void expire(struct sentry_reporter *r, bool all)
{
	uint64_t now = now_ms(r);

	/* Oldest first, so that reports leave in the order the calls failed. */
	for (;;) {
		struct pending *oldest = NULL;

		for (unsigned i = 0; i < PENDING_SLOTS; i++) {
			struct pending *p = &r->pending[i];

			if (p->used && (all || now >= p->deadline_ms) &&
			    (!oldest || p->seq < oldest->seq))
				oldest = p;
		}
		if (!oldest)
			return;
		enqueue(r, &oldest->rep);
		oldest->used = false;
	}
}

void sentry_reporter_tick(struct sentry_reporter *r)
{
	if (r)
		expire(r, false);
}

int sentry_reporter_flush(struct sentry_reporter *r, unsigned timeout_ms)
{
	struct timespec dl;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000l;
	if (dl.tv_nsec >= 1000000000l) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000l;
	}
	pthread_mutex_lock(&r->lock);
	while ((r->q_len || r->busy) && rc == 0)
		rc = pthread_cond_timedwait(&r->idle, &r->lock, &dl);
	pthread_mutex_unlock(&r->lock);
	return rc ? -ETIMEDOUT : 0;
}

void sentry_reporter_get_stats(struct sentry_reporter *r, struct sentry_reporter_stats *out)
{
	pthread_mutex_lock(&r->lock);
	*out = r->stats;
	pthread_mutex_unlock(&r->lock);
	out->pending = 0;
	for (unsigned i = 0; i < PENDING_SLOTS; i++)
		out->pending += r->pending[i].used;
}

static int register_families(struct sentry_reporter *r, struct metrics_registry *reg)
{
	static const char *const reason[] = {"reason"};
	struct metrics_family_opts sent = {
	    .name = "bizprobe_sentry_reports_sent_total",
	    .help = "Failed business flows reported to Sentry (bizprobe's own DSN) and accepted.",
	    .type = METRICS_COUNTER,
	};
	struct metrics_family_opts dropped = {
	    .name = "bizprobe_sentry_reports_dropped_total",
	    .help = "Reports of failed business flows not sent to Sentry, by reason: rate_limit "
		    "(bizprobe's own), sentry_rate_limited (Sentry's 429 or rate limits), "
		    "queue_full, rejected, send_failed, shutdown, error.",
	    .type = METRICS_COUNTER,
	    .label_names = reason,
	    .n_labels = 1,
	};
	int err;

	if (!reg)
		return -EINVAL;
	err = metrics_family_register(reg, &sent, &r->sent_total);
	if (!err)
		err = metrics_family_register(reg, &dropped, &r->dropped_total);
	if (err)
		return err;
	metrics_add(r->sent_total, NULL, 0);
	for (int i = 0; i < DROP__COUNT; i++)
		metrics_add(r->dropped_total, &drop_names[i], 0);
	return 0;
}

static const char *const default_user_keys[] = {"fan_id", "user_id", "userId"};

struct sentry_reporter *sentry_reporter_new(const struct sentry_reporter_config *cfg, char *err,
					    size_t err_len)
{
	struct sentry_reporter *r;
	const char *env;
	unsigned n_keys;
	const char *const *keys;

	if (!cfg || !cfg->dsn) {
		snprintf(err, err_len, "no Sentry DSN");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	pthread_cond_init(&r->idle, NULL);
	if (sentry_dsn_parse(cfg->dsn, &r->dsn)) {
		/* Never the DSN itself in the message: it holds the key. */
		snprintf(err, err_len,
			 "the Sentry DSN is not one (expected https://KEY@HOST/PROJECT_ID)");
		goto fail;
	}
	snprintf(r->auth, sizeof(r->auth),
		 "X-Sentry-Auth: Sentry sentry_version=7, sentry_key=%s, sentry_client=bizprobe/%s",
		 r->dsn.public_key, cfg->version ? cfg->version : "0");
	env = cfg->environment ? cfg->environment : getenv("SENTRY_ENVIRONMENT");
	r->environment = strdup(env && *env ? env : "production");
	r->version = strdup(cfg->version ? cfg->version : "0");
	if (cfg->release)
		r->release = strdup(cfg->release);
	else if (asprintf(&r->release, "bizprobe@%s", r->version ? r->version : "0") < 0)
		r->release = NULL;
	keys = cfg->user_keys ? cfg->user_keys : default_user_keys;
	n_keys = cfg->user_keys ? cfg->n_user_keys : 3;
	r->user_keys = calloc(n_keys + 1, sizeof(char *));
	r->queue_cap = cfg->queue_len ? cfg->queue_len : 64;
	r->queue = calloc(r->queue_cap, sizeof(*r->queue));
	if (!r->environment || !r->version || !r->release || !r->user_keys || !r->queue)
		goto oom;
	for (unsigned i = 0; i < n_keys; i++) {
		r->user_keys[i] = strdup(keys[i] ? keys[i] : "");
		if (!r->user_keys[i])
			goto oom;
		r->n_user_keys++;
	}
	r->pseudonymizer = cfg->pseudonymizer;
	r->rate_per_s = cfg->rate_per_s > 0 ? cfg->rate_per_s : 1;
	r->burst = cfg->burst ? cfg->burst : 10;
	r->retry_window_ms = cfg->retry_window_ms ? cfg->retry_window_ms : 10000;
	r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
	r->clock_ms = cfg->clock_ms ? cfg->clock_ms : wall_ms;
	r->clock_ctx = cfg->clock_ctx;
	r->tokens = r->burst;
	r->tokens_at_ms = now_ms(r);
	if (register_families(r, cfg->reg)) {
		snprintf(err, err_len, "cannot register the bizprobe_sentry_reports_* metrics");
		goto fail;
	}
	if (cfg->transport) {
		r->transport = cfg->transport;
		r->transport_ctx = cfg->transport_ctx;
	} else {
		struct curl_send_ctx *c = calloc(1, sizeof(*c));

		/* libcurl 7.88 (Debian 12): global init before any thread uses it. */
		if (!c || curl_global_init(CURL_GLOBAL_DEFAULT) || !(c->curl = curl_easy_init())) {
			free(c);
			goto oom;
		}
		c->timeout_ms = r->timeout_ms;
		r->curl = c->curl;
		r->transport = curl_send;
		r->transport_ctx = c;
	}
	if (pthread_create(&r->thread, NULL, sender, r)) {
		snprintf(err, err_len, "cannot start the Sentry reporter's thread");
		goto fail;
	}
	r->thread_started = true;
	return r;
oom:
	snprintf(err, err_len, "out of memory");
fail:
	sentry_reporter_free(r, 0);
	return NULL;
}

void sentry_reporter_free(struct sentry_reporter *r, unsigned timeout_ms)
{
	if (!r)
		return;
	if (r->thread_started) {
		expire(r, true);
		pthread_mutex_lock(&r->lock);
		r->stopping = true;
		r->shutdown_deadline_ms = now_ms(r) + timeout_ms;
		pthread_cond_signal(&r->wake);
		pthread_mutex_unlock(&r->lock);
		pthread_join(r->thread, NULL);
	}
	if (r->curl) {
		curl_easy_cleanup(r->curl);
		free(r->transport_ctx);
		curl_global_cleanup();
	}
	for (unsigned i = 0; i < r->n_user_keys; i++)
		free(r->user_keys[i]);
	free(r->user_keys);
	free(r->queue);
	free(r->release);
	free(r->environment);
	free(r->version);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->idle);
	pthread_mutex_destroy(&r->lock);
	explicit_bzero(r, sizeof(*r));
	free(r);
}
