// SPDX-License-Identifier: MIT
/*
 * Sentry envelopes (https://develop.sentry.dev/sdk/data-model/envelopes/) and the legacy store
 * body, read as hostile input: every length is checked against the bytes there are, header
 * lines are capped, and a payload is parsed only for an event's level. Nothing read here
 * outlives the call but bounded labels (constants).
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "bizprobe/json_view.h"
#include "bizprobe/sentry.h"

/* Item types Sentry's ingest (Relay) knows; anything else is "other", so the type label stays
 * bounded whatever a body says. */
static const char *const item_types[] = {
    "event",	    "transaction",   "attachment",    "session",
    "sessions",	    "client_report", "user_report",   "feedback",
    "profile",	    "profile_chunk", "replay_event",  "replay_recording",
    "replay_video", "check_in",	     "span",	      "log",
    "otel_log",	    "statsd",	     "metric_meta",   "security",
    "raw_security", "nel",	     "unreal_report", "form_data",
    "trace_metric",
};

const char *sentry_item_type_label(const char *type)
{
	if (!type)
		return "other";
	for (size_t i = 0; i < sizeof(item_types) / sizeof(item_types[0]); i++) {
		if (!strcmp(type, item_types[i]))
			return item_types[i];
	}
	return "other";
}

const char *sentry_level_label(const char *level)
{
	/* Relay's Level::from_str: its aliases count as the level they mean. */
	static const struct {
		const char *in, *out;
	} levels[] = {
	    {"fatal", "fatal"},	 {"critical", "fatal"}, {"error", "error"}, {"warning", "warning"},
	    {"warn", "warning"}, {"info", "info"},	{"log", "info"},    {"debug", "debug"},
	};

	if (!level)
		return "error"; /* an event without a level is an error to Sentry */
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (!strcmp(level, levels[i].in))
			return levels[i].out;
	}
	return "other";
}

/* An event's level: its top-level "level" (a string). */
static const char *doc_level(const struct json_doc *d)
{
	struct json_val lv = json_get(json_doc_root(d), "level");

	if (!json_present(lv))
		return sentry_level_label(NULL);
	return json_string(lv) ? sentry_level_label(json_string(lv)) : "other";
}

/* An event payload's level. A payload that is not a JSON object is still an event Sentry was
 * sent: "other". */
static const char *event_level(const uint8_t *p, size_t len)
{
	struct json_doc *d = json_doc_parse(p, len);
	const char *out;

	if (!d)
		return "other";
	out = doc_level(d);
	json_doc_free(d);
	return out;
}

/* A header line: a JSON object, at most SENTRY_MAX_HEADER_LINE bytes. */
static struct json_doc *header_line(const uint8_t *p, size_t len)
{
	if (!len || len > SENTRY_MAX_HEADER_LINE)
		return NULL;
	return json_doc_parse(p, len);
}

/* Bytes up to the next '\n' from p (not included), or to end; *nl says whether one was found. */
static size_t line_len(const uint8_t *p, const uint8_t *end, bool *nl)
{
	const uint8_t *q = memchr(p, '\n', (size_t)(end - p));

	*nl = q != NULL;
	return q ? (size_t)(q - p) : (size_t)(end - p);
}

static bool blank(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return false;
	}
	return true;
}

enum sentry_parse_status sentry_envelope_parse(const uint8_t *body, size_t len, bool truncated,
					       sentry_item_fn fn, void *ctx)
{
	const uint8_t *p = body, *end = body + len;
	struct json_doc *h;
	unsigned items = 0;
	size_t n;
	bool nl;

	if (!body || !len)
		return truncated ? SENTRY_PARSE_TRUNCATED : SENTRY_PARSE_MALFORMED;
	n = line_len(p, end, &nl);
	if (!nl && truncated)
		return SENTRY_PARSE_TRUNCATED;
	/* The envelope header (event_id, sent_at, sdk, the DSN): checked, nothing of it kept. */
	h = header_line(p, n);
	if (!h)
		return SENTRY_PARSE_MALFORMED;
	json_doc_free(h);
	p += n + nl;
	while (p < end) {
		struct sentry_item item = {.level = ""};
		const uint8_t *payload;
		struct json_val root, lenv;
		int64_t plen = -1;
		const char *type;

		n = line_len(p, end, &nl);
		if (blank(p, n)) {
			/* Newlines between items, or the one after the last payload. */
			p += n + nl;
			continue;
		}
		if (!nl && truncated)
			return SENTRY_PARSE_TRUNCATED;
		if (items == SENTRY_MAX_ITEMS)
			return SENTRY_PARSE_MALFORMED;
		h = header_line(p, n);
		root = json_doc_root(h);
		type = json_string(json_get(root, "type"));
		lenv = json_get(root, "length");
		if (!h || !json_is_object(root) || !type ||
		    (json_present(lenv) && (!json_int64(lenv, &plen) || plen < 0))) {
			json_doc_free(h);
			return SENTRY_PARSE_MALFORMED;
		}
		item.type = sentry_item_type_label(type);
		json_doc_free(h);
		p += n + nl;
		payload = p;
		if (plen >= 0) {
			if ((uint64_t)plen > (uint64_t)(end - p))
				return truncated ? SENTRY_PARSE_TRUNCATED : SENTRY_PARSE_MALFORMED;
			n = (size_t)plen;
			nl = n < (size_t)(end - p) && p[n] == '\n';
		} else {
			/* An item header at the very end: an empty payload (Relay reads it so). */
			nl = false;
			n = p < end ? line_len(p, end, &nl) : 0;
			if (!nl && truncated)
				return SENTRY_PARSE_TRUNCATED;
		}
		if (!strcmp(item.type, "event"))
			item.level = event_level(payload, n);
		p += n + nl;
		items++;
		fn(&item, ctx);
	}
	/* Bytes were lost past the end: more items may have followed. */
	return truncated ? SENTRY_PARSE_TRUNCATED : SENTRY_PARSE_OK;
}

/* Old raven SDKs sent the store body as base64(zlib(json)); decoded into at most cap bytes. */
static uint8_t *store_decode(const uint8_t *body, size_t len, size_t cap, size_t *out_len)
{
	size_t b64_cap = len / 4 * 3 + 3;
	uint8_t *raw = malloc(b64_cap), *json = NULL;
	uLongf json_len = cap;
	int n;

	if (!raw || len % 4 || len > (size_t)INT32_MAX)
		goto fail;
	n = EVP_DecodeBlock(raw, body, (int)len);
	if (n < 0)
		goto fail;
	/* EVP_DecodeBlock counts the padding as bytes. */
	if (len >= 1 && body[len - 1] == '=')
		n--;
	if (len >= 2 && body[len - 2] == '=')
		n--;
	json = malloc(cap);
	if (!json || uncompress(json, &json_len, raw, (uLong)n) != Z_OK)
		goto fail;
	explicit_bzero(raw, b64_cap);
	free(raw);
	*out_len = json_len;
	return json;
fail:
	if (raw)
		explicit_bzero(raw, b64_cap);
	if (json)
		explicit_bzero(json, cap);
	free(raw);
	free(json);
	return NULL;
}

enum sentry_parse_status sentry_store_parse(const uint8_t *body, size_t len, bool truncated,
					    sentry_item_fn fn, void *ctx)
{
	struct sentry_item item = {.type = "event"};
	size_t i = 0, json_len = 0;
	struct json_doc *d;
	uint8_t *json;

	if (truncated)
		return SENTRY_PARSE_TRUNCATED;
	while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
		i++;
	if (i < len && body[i] == '{') {
		d = json_doc_parse(body, len);
	} else {
		/* Ten times the body, at most 1 MiB: Sentry's own limit on an event is 1 MiB. */
		json = store_decode(body + i, len - i,
				    len * 10 < (1u << 20) ? len * 10 + 64 : 1u << 20, &json_len);
		d = json ? json_doc_parse(json, json_len) : NULL;
		if (json) {
			explicit_bzero(json, json_len);
			free(json);
		}
	}
	if (!d)
		return SENTRY_PARSE_MALFORMED;
	item.level = doc_level(d);
	json_doc_free(d);
	fn(&item, ctx);
	return SENTRY_PARSE_OK;
}
