// SPDX-License-Identifier: MIT
/*
 * `bizprobe rules test --rules FILE`: a rules file tried on recorded traffic. Each line of stdin
 * is one exchange as `bizprobe trace --json --bodies` prints it (bizprobe/trace_format.h); it is
 * turned back into a struct http_exchange and evaluated as `run` would, and every event it
 * produces is printed as one JSON line. Nothing is traced: no BPF, no privileges.
 *
 * Identity values are never printed, pseudonymized or not: an event says only whether it had a
 * user. The pseudonymizer has a random salt of this process, so identity sources still run.
 */
#include "rules_test.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "bizprobe/identity.h"
#include "bizprobe/json_view.h"
#include "bizprobe/rules.h"
#include "bizprobe/trace_format.h"
#include "cli.h"

/* The longest line `trace --json --bodies` writes: every recording it makes is readable. */
#define RULES_TEST_LINE_MAX	TRACE_JSON_LINE_MAX
#define RULES_TEST_LINE_INITIAL (64 * 1024)

struct rules_test {
	struct rules *rules;
	struct pseudonymizer *pseudonymizer;
	char *line; /* the current line; key names of header objects are cut out of it in place */
	size_t cap;
	jsmntok_t *tok; /* the line's structure, which json_view does not expose: members of an
			   object and true/false */
	unsigned n_tok_cap;
	unsigned long lineno;
	const struct http_exchange *ex; /* being evaluated, for the sink */
	uint64_t lines, exchanges, bad, without_detail, events, events_with_user;
	bool warned_no_detail;
};

/* One exchange rebuilt from a line; strings point into the line or into doc. */
struct recorded {
	struct http_exchange ex;
	struct json_doc *doc;
	char *target;
	uint64_t wall_ns;
	bool detail; /* headers and bodies were recorded */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bizprobe rules test --rules FILE [--namespace NAME] < trace.jsonl\n"
		"  reads `bizprobe trace --json --bodies` lines on stdin and prints one JSON line\n"
		"  per business event the rules produce: line, method, path, event, metric,\n"
		"  labels, value, user (whether the event had a user; never who), user_type\n");
}

/*
 * The line's tokens (jsmn, strict, as json_view reads it). Returns the token count or -1.
 */
static int tokenize(struct rules_test *t, size_t len)
{
	unsigned cap = t->n_tok_cap ? t->n_tok_cap : 256;
	jsmn_parser p;
	int r;

	jsmn_init(&p);
	for (;;) {
		if (cap > t->n_tok_cap) {
			jsmntok_t *grown = realloc(t->tok, cap * sizeof(*grown));

			if (!grown)
				return -1;
			t->tok = grown;
			t->n_tok_cap = cap;
		}
		/* Out of tokens: jsmn resumes where it stopped once given a larger array. */
		r = jsmn_parse(&p, t->line, len, t->tok, t->n_tok_cap);
		if (r != JSMN_ERROR_NOMEM)
			break;
		cap = t->n_tok_cap * 2;
	}
	return r < 1 ? -1 : (int)p.toknext;
}

static bool tok_is(const struct rules_test *t, const jsmntok_t *k, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(k->end - k->start) == n && !memcmp(t->line + k->start, s, n);
}

/* The value token of member key of the object at index obj, or -1. */
static int member(const struct rules_test *t, int n_tok, int obj, const char *key)
{
	int found = -1;

	for (int k = obj + 1; k + 1 < n_tok && t->tok[k].start < t->tok[obj].end; k++)
		if (t->tok[k].parent == obj && t->tok[k].type == JSMN_STRING &&
		    tok_is(t, &t->tok[k], key))
			found = k + 1; /* the last one, as json_get */
	return found;
}

/* A boolean member: 1 true, 0 false or absent, -1 another type. */
static int member_bool(const struct rules_test *t, int n_tok, const char *key)
{
	int v = member(t, n_tok, 0, key);

	if (v < 0)
		return 0;
	if (t->tok[v].type == JSMN_PRIMITIVE && tok_is(t, &t->tok[v], "true"))
		return 1;
	if (t->tok[v].type == JSMN_PRIMITIVE && tok_is(t, &t->tok[v], "false"))
		return 0;
	return -1;
}

/* An optional string member; def when absent, NULL when of another type. */
static const char *opt_string(struct json_val root, const char *key, const char *def)
{
	struct json_val v = json_get(root, key);

	return json_present(v) ? json_string(v) : def;
}

/* An optional non-negative integer; 0 or -EINVAL. */
static int opt_u64(struct json_val root, const char *key, uint64_t *out)
{
	struct json_val v = json_get(root, key);
	int64_t n;

	if (!json_present(v))
		return 0;
	if (!json_int64(v, &n) || n < 0)
		return -EINVAL;
	*out = (uint64_t)n;
	return 0;
}

/* "2026-11-28T05:00:01.250000Z" as trace_format writes it (fraction optional). */
static int parse_ts(const char *s, uint64_t *wall_ns)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	uint64_t frac = 0, scale = 1000000000ull;
	time_t sec;

	if (!p)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
	}
	if (strcmp(p, "Z") != 0)
		return -EINVAL;
	sec = timegm(&tm);
	if (sec < 0)
		return -EINVAL;
	*wall_ns = (uint64_t)sec * 1000000000ull + frac;
	return 0;
}

/*
 * One message's headers and body. The header object's names are cut out of the line in place
 * (a NUL where each closing quote was); values come from json_view, decoded.
 */
static int read_message(struct rules_test *t, int n_tok, struct recorded *rec,
			struct http_message *m, const char *label, const char **why)
{
	static char msg[96];
	struct json_val root = json_doc_root(rec->doc);
	char key[32];
	struct json_val hv, body;
	int h, binary, cut;

	snprintf(key, sizeof(key), "%s_headers", label);
	h = member(t, n_tok, 0, key);
	hv = json_get(root, key);
	if (h >= 0) {
		if (t->tok[h].type != JSMN_OBJECT || !json_is_object(hv))
			goto bad_headers;
		for (int k = h + 1; k < n_tok && t->tok[k].start < t->tok[h].end; k++) {
			const char *name = t->line + t->tok[k].start, *value;

			if (t->tok[k].parent != h)
				continue;
			/* HTTP header names are tokens (RFC 9110 5.1): nothing to unescape. */
			if (memchr(name, '\\', (size_t)(t->tok[k].end - t->tok[k].start)))
				goto bad_headers;
			t->line[t->tok[k].end] = '\0';
			value = json_string(json_get(hv, name));
			if (!value)
				goto bad_headers;
			if (m->n_headers == HTTP_MAX_HEADERS) {
				m->headers_truncated = true;
				continue;
			}
			m->headers[m->n_headers].name = name;
			m->headers[m->n_headers++].value = value;
		}
	}

	snprintf(key, sizeof(key), "%s_body_binary", label);
	binary = member_bool(t, n_tok, key);
	snprintf(key, sizeof(key), "%s_body_truncated", label);
	cut = member_bool(t, n_tok, key);
	snprintf(key, sizeof(key), "%s_body", label);
	body = json_get(root, key);
	if (binary < 0 || cut < 0 || (json_present(body) && !json_string(body))) {
		snprintf(msg, sizeof(msg),
			 "%s_body, %s_body_binary or %s_body_truncated: wrong type", label, label,
			 label);
		*why = msg;
		return -EINVAL;
	}
	if (json_string(body)) {
		m->body = (const uint8_t *)json_string(body);
		m->body_len = strlen(json_string(body));
	}
	m->body_truncated = cut || binary;
	if (h >= 0 || json_present(body) || binary)
		rec->detail = true;
	return 0;

bad_headers:
	snprintf(msg, sizeof(msg), "%s: not an object of header names and string values", key);
	*why = msg;
	return -EINVAL;
}

static void recorded_release(struct recorded *rec)
{
	json_doc_free(rec->doc);
	free(rec->target);
	memset(rec, 0, sizeof(*rec));
}

/* The line (len bytes at t->line) as an exchange; 0, or -EINVAL with the reason in *why. */
static int recorded_parse(struct rules_test *t, size_t len, struct recorded *rec, const char **why)
{
	struct http_exchange *ex = &rec->ex;
	struct json_val root;
	const char *role, *method, *comm, *ts;
	uint64_t pid = 0, dur_us = 0;
	int64_t status;
	int n_tok, tls, trunc;

	memset(rec, 0, sizeof(*rec));
	rec->doc = json_doc_parse((const uint8_t *)t->line, len);
	/* After json_doc_parse, which copied the text: read_message writes into the line. */
	n_tok = rec->doc ? tokenize(t, len) : -1;
	if (n_tok < 1) {
		*why = rec->doc ? "out of memory" : "not one JSON object";
		return -EINVAL;
	}
	root = json_doc_root(rec->doc);

	role = opt_string(root, "role", NULL);
	if (!role || (strcmp(role, "server") && strcmp(role, "client"))) {
		*why = "role: not \"server\" or \"client\"";
		return -EINVAL;
	}
	ex->role = strcmp(role, "server") ? HTTP_ROLE_CLIENT : HTTP_ROLE_SERVER;
	method = opt_string(root, "method", NULL);
	if (!method || !*method || strlen(method) >= sizeof(ex->method)) {
		*why = "method: not a string of 1 to 15 characters";
		return -EINVAL;
	}
	strcpy(ex->method, method);
	ex->path = opt_string(root, "path", NULL);
	if (!ex->path) {
		*why = "path: not a string";
		return -EINVAL;
	}
	if (!json_int64(json_get(root, "status"), &status) || status < 100 || status > 999) {
		*why = "status: not an integer from 100 to 999";
		return -EINVAL;
	}
	ex->status = (int)status;
	ex->host = opt_string(root, "host", "");
	ex->query = opt_string(root, "query", "");
	comm = opt_string(root, "comm", "");
	if (!ex->host || !ex->query || !comm) {
		*why = "host, query or comm: not a string";
		return -EINVAL;
	}
	snprintf(ex->conn.comm, sizeof(ex->conn.comm), "%s", comm);
	if (opt_u64(root, "pid", &pid) || pid > UINT32_MAX ||
	    opt_u64(root, "duration_us", &dur_us) ||
	    opt_u64(root, "req_bytes", &ex->req.wire_body_bytes) ||
	    opt_u64(root, "resp_bytes", &ex->resp.wire_body_bytes) || dur_us > UINT64_MAX / 1000) {
		*why = "pid, duration_us, req_bytes or resp_bytes: not a non-negative integer";
		return -EINVAL;
	}
	ex->conn.pid = (uint32_t)pid;
	ex->duration_ns = dur_us * 1000;
	tls = member_bool(t, n_tok, "tls");
	trunc = member_bool(t, n_tok, "truncated");
	if (tls < 0 || trunc < 0) {
		*why = "tls or truncated: not true or false";
		return -EINVAL;
	}
	ex->conn.tls = tls;
	ex->truncated = trunc;
	ts = opt_string(root, "ts", NULL);
	if (json_present(json_get(root, "ts"))) {
		if (!ts || parse_ts(ts, &rec->wall_ns)) {
			*why = "ts: not an RFC 3339 UTC time (2026-01-02T03:04:05.000000Z)";
			return -EINVAL;
		}
	} else {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		rec->wall_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	}

	if (read_message(t, n_tok, rec, &ex->req, "req", why) ||
	    read_message(t, n_tok, rec, &ex->resp, "resp", why))
		return -EINVAL;
	if (member_bool(t, n_tok, "detail_dropped") > 0)
		rec->detail = false;
	if (ex->req.headers_truncated || ex->resp.headers_truncated)
		ex->truncated = true;

	if (asprintf(&rec->target, "%s%s%s", ex->path, *ex->query ? "?" : "", ex->query) < 0) {
		rec->target = NULL;
		*why = "out of memory";
		return -EINVAL;
	}
	ex->target = rec->target;
	return 0;
}

/* The shortest form that reads back as the same double. */
static void print_number(double v)
{
	char buf[32];

	if (!isfinite(v)) {
		fputs("null", stdout);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, stdout);
}

static void print_string_or_null(const char *s)
{
	if (s)
		trace_format_json_write(stdout, s, strlen(s));
	else
		fputs("null", stdout);
}

static void on_event(const struct business_event *ev, void *ctx)
{
	struct rules_test *t = ctx;

	t->events++;
	if (ev->user)
		t->events_with_user++;
	printf("{\"line\":%lu,\"method\":", t->lineno);
	print_string_or_null(t->ex->method);
	fputs(",\"path\":", stdout);
	print_string_or_null(t->ex->path);
	fputs(",\"event\":", stdout);
	print_string_or_null(ev->name);
	fputs(",\"metric\":", stdout);
	print_string_or_null(ev->metric ? ev->metric->name : NULL);
	fputs(",\"labels\":{", stdout);
	for (unsigned i = 0; i < ev->n_labels; i++) {
		if (i)
			fputc(',', stdout);
		print_string_or_null(ev->labels[i].name ? ev->labels[i].name : "");
		fputc(':', stdout);
		print_string_or_null(ev->labels[i].value ? ev->labels[i].value : "");
	}
	fputs("},\"value\":", stdout);
	if (ev->has_value)
		print_number(ev->value);
	else
		fputs("null", stdout);
	/* Whether, never who: not even the pseudonym leaves this process. */
	printf(",\"user\":%s,\"user_type\":", ev->user ? "true" : "false");
	print_string_or_null(ev->user_type);
	fputs("}\n", stdout);
}

static void bad_line(struct rules_test *t, const char *why)
{
	t->bad++;
	fprintf(stderr, "line %lu: %s\n", t->lineno, why);
}

static void test_line(struct rules_test *t, size_t len)
{
	const struct rules_env env = {
	    .pseudonymizer = t->pseudonymizer,
	    .sink = {.fn = on_event, .ctx = t},
	};
	struct recorded rec;
	const char *why = NULL;
	size_t i;

	if (len && memchr(t->line, '\0', len)) {
		t->lines++;
		bad_line(t, "a NUL byte");
		return;
	}
	for (i = 0; i < len && strchr(" \t\r", t->line[i]); i++)
		;
	if (i == len) /* a blank line separates nothing and records nothing */
		return;
	t->lines++;
	t->line[len] = '\0';
	if (recorded_parse(t, len, &rec, &why)) {
		bad_line(t, why);
		recorded_release(&rec);
		return;
	}
	if (!rec.detail) {
		t->without_detail++;
		if (!t->warned_no_detail)
			fprintf(stderr,
				"line %lu: no headers or bodies (recorded without --bodies, or "
				"\"detail_dropped\"): rules that read them see nothing; further "
				"such lines are only counted\n",
				t->lineno);
		t->warned_no_detail = true;
	}
	t->exchanges++;
	t->ex = &rec.ex;
	rules_eval(t->rules, &env, &rec.ex, rec.wall_ns);
	t->ex = NULL;
	fflush(stdout);
	recorded_release(&rec);
}

/* Reads stdin line by line into t->line (grown up to RULES_TEST_LINE_MAX); a longer line is
 * read to its end, reported and skipped. */
static int read_lines(struct rules_test *t)
{
	size_t len = 0;
	bool too_long = false;
	int c;

	for (;;) {
		c = getc_unlocked(stdin);
		if (c == EOF || c == '\n') {
			if (c == EOF && !len && !too_long)
				break;
			t->lineno++;
			if (too_long) {
				t->lines++;
				char why[64];

				snprintf(why, sizeof(why), "longer than %u bytes, skipped",
					 RULES_TEST_LINE_MAX);
				bad_line(t, why);
			} else {
				test_line(t, len);
			}
			len = 0;
			too_long = false;
			if (c == EOF)
				break;
			continue;
		}
		if (too_long)
			continue;
		if (len + 1 >= t->cap) {
			size_t cap = t->cap ? t->cap * 2 : RULES_TEST_LINE_INITIAL;
			char *p;

			if (cap > RULES_TEST_LINE_MAX + 1)
				cap = RULES_TEST_LINE_MAX + 1;
			if (len + 1 >= cap) {
				too_long = true;
				continue;
			}
			p = realloc(t->line, cap);
			if (!p)
				return -ENOMEM;
			t->line = p;
			t->cap = cap;
		}
		t->line[len++] = (char)c;
	}
	return ferror(stdin) ? -EIO : 0;
}

static bool tracking_disabled(void)
{
	const char *v = getenv("ENABLE_USER_TRACKING");

	return v && (!strcasecmp(v, "false") || !strcmp(v, "0"));
}

int cmd_rules_test(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"rules", required_argument, NULL, 'r'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	const char *rules_file = NULL, *namespace_ = NULL;
	struct rules_test t = {0};
	struct rules_stats st;
	char err[256];
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			rules_file = optarg;
			break;
		case 'n':
			namespace_ = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || !rules_file) {
		if (optind < argc)
			fprintf(stderr, "bizprobe rules test: unexpected argument %s\n",
				argv[optind]);
		else
			fprintf(stderr, "bizprobe rules test: --rules FILE is required\n");
		usage(stderr);
		return 2;
	}

	/* Its diagnostics as `rules check` prints them, FILE:LINE:COL: message. */
	t.rules = cli_load_rules(rules_file, namespace_);
	if (!t.rules)
		return 2;
	if (tracking_disabled()) {
		fprintf(stderr, "bizprobe rules test: ENABLE_USER_TRACKING=false: no identity is "
				"read, no event has a user\n");
	} else {
		t.pseudonymizer = pseudonymizer_new(NULL, NULL, err, sizeof(err));
		if (!t.pseudonymizer) {
			fprintf(stderr, "bizprobe rules test: %s\n", err);
			rc = 2;
			goto cleanup;
		}
	}

	rc = read_lines(&t);
	if (rc) {
		fprintf(stderr, "bizprobe rules test: reading stdin: %s\n", strerror(-rc));
		rc = 1;
		goto cleanup;
	}
	rules_get_stats(t.rules, &st);
	if (t.events && !t.events_with_user && t.pseudonymizer)
		fprintf(
		    stderr,
		    "bizprobe rules test: no event had a user: a recording's identities are "
		    "redacted (Authorization, Cookie, JWTs, secret-named fields), so only sources "
		    "left in clear, such as an X-User-Id header, can yield one\n");
	fprintf(stderr,
		"bizprobe rules test: %llu exchanges read, %llu matched, %llu events; "
		"%llu bad lines, %llu without headers or bodies; body errors %llu, "
		"identity errors %llu, opted out %llu\n",
		(unsigned long long)t.exchanges, (unsigned long long)st.matched,
		(unsigned long long)st.events, (unsigned long long)t.bad,
		(unsigned long long)t.without_detail, (unsigned long long)st.body_errors,
		(unsigned long long)st.identity_errors, (unsigned long long)st.opted_out);
	rc = t.bad ? 1 : 0;

cleanup:
	pseudonymizer_free(t.pseudonymizer);
	rules_free(t.rules);
	free(t.line);
	free(t.tok);
	return rc;
}
