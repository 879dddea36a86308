// SPDX-License-Identifier: MIT
/*
 * Sentry semantics: envelopes recorded from the real @sentry/node 9.47.2 SDK (fixtures/sentry/:
 * a warning message, a session, a fatal exception with an attachment, a large error the SDK
 * gzipped), and envelopes written here (multi-item with lengths, newline-delimited, cut at every
 * byte, garbage); the gzip body through the HTTP stage, so that the decoding it does is the one
 * relied on; which exchanges are Sentry's (hosts, the DSN of a process's environment, paths);
 * and the metric families they end in.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bizprobe/business_event.h"
#include "bizprobe/metrics.h"
#include "bizprobe/sentry.h"
#include "http_test_util.h"

/* fixtures/sentry/<name>, found from $BIZPROBE_SRCDIR, this file's directory as compiled, or
 * the test binary's (build/tests/) ../../tests/unit. */
static uint8_t *fixture(const char *name, size_t *len)
{
	const char *env = getenv("BIZPROBE_SRCDIR");
	char dir[512], exe[512], path[1024];
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd;

	path[0] = '\0';
	if (env)
		snprintf(path, sizeof(path), "%s/tests/unit/fixtures/sentry/%s", env, name);
	if (!path[0] || access(path, R_OK)) {
		snprintf(dir, sizeof(dir), "%s", __FILE__);
		snprintf(path, sizeof(path), "%s/fixtures/sentry/%s", dirname(dir), name);
	}
	if (access(path, R_OK)) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		assert_true(n > 0);
		exe[n] = '\0';
		snprintf(path, sizeof(path), "%s/../../tests/unit/fixtures/sentry/%s", dirname(exe),
			 name);
	}
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static uint8_t *gunzip(const uint8_t *in, size_t len, size_t *out_len)
{
	size_t cap = 1 << 20;
	uint8_t *out = malloc(cap + 1);
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_non_null(out);
	assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	out[*out_len] = '\0';
	inflateEnd(&z);
	return out;
}

/* What a parse delivered, as "type/level" strings. */
struct items {
	unsigned n;
	char got[2048][48];
};

static void collect(const struct sentry_item *it, void *ctx)
{
	struct items *r = ctx;

	assert_true(r->n < 2048);
	snprintf(r->got[r->n++], sizeof(r->got[0]), "%s/%s", it->type, it->level);
}

static enum sentry_parse_status parse(const void *body, size_t len, bool truncated,
				      struct items *out)
{
	memset(out, 0, sizeof(*out));
	return sentry_envelope_parse(body, len, truncated, collect, out);
}

static enum sentry_parse_status parse_str(const char *body, struct items *out)
{
	return parse(body, strlen(body), false, out);
}

static void expect_items(const struct items *r, const char *const *want, unsigned n)
{
	assert_int_equal(r->n, n);
	for (unsigned i = 0; i < n; i++)
		assert_string_equal(r->got[i], want[i]);
}

static void test_recorded_node_envelopes(void **state)
{
	static struct items r;
	size_t len, glen;
	uint8_t *b, *g;

	(void)state;
	b = fixture("node9_warning.envelope", &len);
	assert_int_equal(parse(b, len, false, &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/warning"}, 1);
	free(b);

	b = fixture("node9_session.envelope", &len);
	assert_int_equal(parse(b, len, false, &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"session/"}, 1);
	free(b);

	/* An exception event, newline-delimited, then an attachment whose 18 bytes hold
	 * newlines: only its length says where it ends. */
	b = fixture("node9_fatal_attachment.envelope", &len);
	assert_int_equal(parse(b, len, false, &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/fatal", "attachment/"}, 2);
	free(b);

	/* The SDK gzips bodies over 32 KiB (@sentry/node-core transports/http.js). */
	b = fixture("node9_error_big.envelope.gz", &len);
	g = gunzip(b, len, &glen);
	assert_true(glen > 32 * 1024);
	assert_int_equal(parse(g, glen, false, &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/error"}, 1);
	free(g);
	free(b);
}

static void test_multi_item_with_lengths(void **state)
{
	static struct items r;
	/* Payloads with a length may hold newlines and NUL bytes; items without one end at the
	 * newline; blank lines between items are skipped; unknown types are "other". */
	static const char env[] =
	    "{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k@o1.ingest."
	    "sentry.io/42\"}\n"
	    "{\"type\":\"event\",\"length\":41,\"content_type\":\"application/json\"}\n"
	    "{\"message\":\"hello\\nworld\",\"level\":\"info\"}\n"
	    "{\"type\":\"attachment\",\"length\":7,\"filename\":\"a.bin\"}\n"
	    "a\nb\0c\n\n"
	    "{\"type\":\"client_report\"}\n"
	    "{\"timestamp\":1,\"discarded_events\":[]}\n"
	    "\n"
	    "{\"type\":\"transaction\",\"length\":2}\n"
	    "{}"
	    "{\"type\":\"event\",\"length\":0}\n"
	    "\n"
	    "{\"type\":\"weird_future_thing\"}\n"
	    "xyz\n"
	    "{\"type\":\"event\"}\n"
	    "{\"level\":\"warn\"}\n"
	    "{\"type\":\"event\"}\n"
	    "{\"level\":\"log\"}\n"
	    "{\"type\":\"event\"}\n"
	    "{\"level\":\"critical\"}\n"
	    "{\"type\":\"event\"}\n"
	    "{\"level\":42}\n"
	    "{\"type\":\"event\"}\n"
	    "{\"level\":\"SEVERE\"}\n"
	    "{\"type\":\"event\"}\n"
	    "{\"level\":\"debug\"}";
	static const char *const want[] = {
	    "event/info",  "attachment/", "client_report/", "transaction/",
	    "event/other", "other/",	  "event/warning",  "event/info",
	    "event/fatal", "event/other", "event/other",    "event/debug",
	};

	(void)state;
	assert_int_equal(parse(env, sizeof(env) - 1, false, &r), SENTRY_PARSE_OK);
	expect_items(&r, want, sizeof(want) / sizeof(want[0]));
	/* An empty event payload is not JSON: "other"; without a level an event is an error. */
	assert_int_equal(parse_str("{}\n{\"type\":\"event\"}\n{\"message\":\"m\"}\n", &r),
			 SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/error"}, 1);
	/* A header at the very end has an empty payload. */
	assert_int_equal(parse_str("{}\n{\"type\":\"session\"}", &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"session/"}, 1);
	/* An envelope with no items. */
	assert_int_equal(parse_str("{}\n", &r), SENTRY_PARSE_OK);
	assert_int_equal(r.n, 0);
}

/* Every prefix of a recorded envelope, as the capture would cut it: complete items only, never
 * more than the whole has, and always TRUNCATED: past a cut, more items may have followed. */
static void test_truncated_at_every_byte(void **state)
{
	static struct items r;
	size_t len, event_end;
	uint8_t *b = fixture("node9_fatal_attachment.envelope", &len);
	const uint8_t *att;

	(void)state;
	att = memmem(b, len, "{\"type\":\"attachment\"", 20);
	assert_non_null(att);
	event_end = (size_t)(att - b); /* just after the event payload's newline */
	for (size_t cut = 0; cut <= len; cut++) {
		assert_int_equal(parse(b, cut, true, &r), SENTRY_PARSE_TRUNCATED);
		if (cut < event_end)
			/* The event's payload runs to its newline, not there yet. */
			assert_int_equal(r.n, 0);
		else if (cut < len)
			expect_items(&r, (const char *const[]){"event/fatal"}, 1);
		else
			/* All 18 bytes of the attachment (the SDK writes no newline after it). */
			expect_items(&r, (const char *const[]){"event/fatal", "attachment/"}, 2);
	}
	/* Not marked truncated: a length past the end is malformed; a last line is whole. */
	assert_int_equal(parse(b, len - 5, false, &r), SENTRY_PARSE_MALFORMED);
	expect_items(&r, (const char *const[]){"event/fatal"}, 1);
	assert_int_equal(parse(b, event_end - 1, false, &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/fatal"}, 1);
	free(b);
}

static void test_garbage(void **state)
{
	static struct items r;
	static const struct {
		const char *body;
		size_t len; /* 0: strlen */
		unsigned items;
	} cases[] = {
	    {"", 0, 0},
	    {"\n", 0, 0},
	    {"not json\n{\"type\":\"event\"}\n{}\n", 0, 0},
	    {"[1,2]\n{\"type\":\"event\"}\n{}\n", 0, 0},
	    {"{}\n[\"type\",\"event\"]\n{}\n", 0, 0},
	    {"{}\n{\"type\":7}\n{}\n", 0, 0},
	    {"{}\n{\"length\":2}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\",\"length\":-1}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\",\"length\":2.5}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\",\"length\":99999999999999999999}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\",\"length\":9223372036854775807}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\",\"length\":4}\n{}\n", 0, 0},
	    {"{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"session\"\n{}\n", 0, 1},
	    {"{}\n{\"type\":\"event\"}\n{}\n\x01\x02\x03\n", 0, 1},
	    {"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10, 0}, /* gzip nobody inflated */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].body);

		assert_int_equal(parse(cases[i].body, len, false, &r), SENTRY_PARSE_MALFORMED);
		assert_int_equal(r.n, cases[i].items);
	}
}

static void test_bounds(void **state)
{
	static struct items r;
	static char big[SENTRY_MAX_HEADER_LINE + 64];
	size_t cap = (SENTRY_MAX_ITEMS + 2) * 24 + 8, len = 0;
	char *many = malloc(cap);

	(void)state;
	/* A header line past the cap is refused, not tokenized. */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	big[sizeof(big) - 3] = '}';
	big[sizeof(big) - 2] = '\n';
	assert_int_equal(parse(big, sizeof(big) - 1, false, &r), SENTRY_PARSE_MALFORMED);
	/* At most SENTRY_MAX_ITEMS items are counted. */
	assert_non_null(many);
	len += (size_t)snprintf(many + len, cap - len, "{}\n");
	for (unsigned i = 0; i < SENTRY_MAX_ITEMS + 1; i++)
		len += (size_t)snprintf(many + len, cap - len, "{\"type\":\"session\"}\n{}\n");
	assert_int_equal(parse(many, len, false, &r), SENTRY_PARSE_MALFORMED);
	assert_int_equal(r.n, SENTRY_MAX_ITEMS);
	free(many);
}

/* Bytes flipped at random in a recorded envelope: any outcome but a crash or an item too many. */
static void test_mutations(void **state)
{
	static struct items r;
	size_t len;
	uint8_t *b = fixture("node9_fatal_attachment.envelope", &len);
	uint8_t *m = malloc(len);
	uint32_t seed = 12345;

	(void)state;
	assert_non_null(m);
	for (int round = 0; round < 3000; round++) {
		memcpy(m, b, len);
		for (int k = 0; k < 1 + round % 8; k++) {
			seed = seed * 1103515245u + 12345u;
			m[(seed >> 8) % len] = (uint8_t)(seed >> 24);
		}
		seed = seed * 1103515245u + 12345u;
		parse(m, len - (seed >> 8) % 64, (seed & 1) != 0, &r);
		assert_true(r.n <= 64);
	}
	free(m);
	free(b);
}

static void test_store(void **state)
{
	static struct items r;
	static const char json[] = "{\"message\":\"legacy\",\"level\":\"warning\"}";
	uint8_t z[256], b64[512];
	uLongf zlen = sizeof(z);
	int n;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(
	    sentry_store_parse((const uint8_t *)json, strlen(json), false, collect, &r),
	    SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/warning"}, 1);
	/* raven's base64(zlib(json)). */
	assert_int_equal(compress(z, &zlen, (const uint8_t *)json, strlen(json)), Z_OK);
	n = EVP_EncodeBlock(b64, z, (int)zlen);
	memset(&r, 0, sizeof(r));
	assert_int_equal(sentry_store_parse(b64, (size_t)n, false, collect, &r), SENTRY_PARSE_OK);
	expect_items(&r, (const char *const[]){"event/warning"}, 1);
	memset(&r, 0, sizeof(r));
	assert_int_equal(sentry_store_parse(b64, (size_t)n - 4, false, collect, &r),
			 SENTRY_PARSE_MALFORMED);
	assert_int_equal(sentry_store_parse((const uint8_t *)"%%%%", 4, false, collect, &r),
			 SENTRY_PARSE_MALFORMED);
	assert_int_equal(sentry_store_parse((const uint8_t *)json, 10, true, collect, &r),
			 SENTRY_PARSE_TRUNCATED);
	assert_int_equal(r.n, 0);
}

static void test_labels_and_paths(void **state)
{
	bool legacy = true;

	(void)state;
	assert_string_equal(sentry_item_type_label("event"), "event");
	assert_string_equal(sentry_item_type_label("profile_chunk"), "profile_chunk");
	assert_string_equal(sentry_item_type_label("Event"), "other");
	assert_string_equal(sentry_item_type_label(NULL), "other");
	assert_string_equal(sentry_level_label(NULL), "error");
	assert_string_equal(sentry_level_label("warn"), "warning");
	assert_string_equal(sentry_level_label("ERROR"), "other");
	assert_true(sentry_ingest_path("/api/1/envelope/", &legacy) && !legacy);
	assert_true(sentry_ingest_path("/api/4507/envelope", &legacy) && !legacy);
	assert_true(sentry_ingest_path("/sentry/api/12/envelope/", &legacy) && !legacy);
	assert_true(sentry_ingest_path("/api/12/store/", &legacy) && legacy);
	assert_false(sentry_ingest_path("/api/x/envelope/", &legacy));
	assert_false(sentry_ingest_path("/api//envelope/", &legacy));
	assert_false(sentry_ingest_path("/api/1/envelope/x", &legacy));
	assert_false(sentry_ingest_path("/api/1/events/", &legacy));
	assert_false(sentry_ingest_path("/v1/charges", &legacy));
	assert_false(sentry_ingest_path(NULL, &legacy));
}

static void test_dsn_hosts(void **state)
{
	static const struct {
		const char *dsn;
		const char *host; /* NULL: not a DSN */
	} cases[] = {
	    {"https://abc123@o4501.ingest.sentry.io/4502", "o4501.ingest.sentry.io"},
	    {"https://abc123@O1.Ingest.US.Sentry.IO/7", "o1.ingest.us.sentry.io"},
	    {"http://publickey@127.0.0.1:9123/1", "127.0.0.1:9123"},
	    {"http://pub:secret@sentry.internal:9000/sentry/3", "sentry.internal:9000"},
	    {"https://k@[::1]:9000/1", "[::1]:9000"},
	    {"https://o1.ingest.sentry.io/1", NULL},
	    {"https://@host/1", NULL},
	    {"ftp://k@host/1", NULL},
	    {"https://k@ho st/1", NULL},
	    {"https://k@/1", NULL},
	    {"", NULL},
	};
	char out[SENTRY_HOST_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = sentry_dsn_host(cases[i].dsn, strlen(cases[i].dsn), out, sizeof(out));

		if (cases[i].host) {
			assert_int_equal(rc, 0);
			assert_string_equal(out, cases[i].host);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_string_equal(out, "");
		}
	}
	assert_true(sentry_host_matches("127.0.0.1:9123", "127.0.0.1:9123"));
	assert_false(sentry_host_matches("127.0.0.1:9123", "127.0.0.1:9124"));
	assert_true(sentry_host_matches("sentry.example.com", "Sentry.Example.com:443"));
	assert_true(sentry_host_matches("sentry.example.com:443", "sentry.example.com"));
	assert_false(sentry_host_matches("sentry.example.com", "sentry.example.com.evil"));
	assert_false(sentry_host_matches("sentry.example.com", ""));
}

static void test_environ_block(void **state)
{
	static const char block[] = "PATH=/usr/bin\0SENTRY_DSN_X=https://a@wrong.example/1\0"
				    "NEXT_PUBLIC_SENTRY_DSN=https://b@public.example/2\0"
				    "SENTRY_DSN=http://c@127.0.0.1:9000/3\0SECRET=s3cr3t";
	static const char dup[] = "SENTRY_DSN=https://a@same.example/1\0"
				  "NEXT_PUBLIC_SENTRY_DSN=https://b@same.example/2";
	static const char bad[] = "SENTRY_DSN=not a dsn\0SENTRY_DSN=";
	char hosts[2][SENTRY_HOST_MAX];

	(void)state;
	assert_int_equal(sentry_environ_dsn_hosts(block, sizeof(block) - 1, hosts), 2);
	assert_string_equal(hosts[0], "127.0.0.1:9000");
	assert_string_equal(hosts[1], "public.example");
	assert_int_equal(sentry_environ_dsn_hosts(dup, sizeof(dup) - 1, hosts), 1);
	assert_string_equal(hosts[0], "same.example");
	assert_int_equal(sentry_environ_dsn_hosts(bad, sizeof(bad) - 1, hosts), 0);
	assert_int_equal(sentry_environ_dsn_hosts("", 0, hosts), 0);
}

/*
 * The semantics end to end: exchanges in, metric families out.
 */
struct env {
	struct metrics_registry *reg;
	struct business_metrics *bm;
	struct sentry_semantics *s;
	char proc[256];
	unsigned events;
};

/* Every label an event carries is a bounded word: never the key, the DSN or a payload. */
static void sink(const struct business_event *ev, void *ctx)
{
	static const char *const words[] = {
	    "",		 "event",     "session",      "attachment", "client_report", "transaction",
	    "other",	 "fatal",     "error",	      "warning",    "info",	     "debug",
	    "accepted",	 "rejected",  "rate_limited", "too_large",  "client_error",  "server_error",
	    "truncated", "malformed", "encoding",
	};
	struct env *e = ctx;

	e->events++;
	for (unsigned i = 0; i < ev->n_labels; i++) {
		bool known = false;

		for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			known = known || !strcmp(ev->labels[i].value, words[k]);
		assert_true(known);
	}
	business_metrics_on_event(ev, e->bm);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A fake /proc entry: the stat line (start time in field 22) and the environment. */
static void fake_proc(struct env *e, uint32_t pid, unsigned long long start, const void *environ,
		      size_t len)
{
	char path[512], stat[256];
	int n;

	snprintf(path, sizeof(path), "%s/%u", e->proc, pid);
	mkdir(path, 0700);
	n = snprintf(stat, sizeof(stat),
		     "%u (no de) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 %llu 19 20\n", pid,
		     start);
	snprintf(path, sizeof(path), "%s/%u/stat", e->proc, pid);
	write_file(path, stat, (size_t)n);
	snprintf(path, sizeof(path), "%s/%u/environ", e->proc, pid);
	write_file(path, environ, len);
}

static int setup(void **state)
{
	static const char *const extra[] = {"sentry.corp.example"};
	struct env *e = calloc(1, sizeof(*e));
	struct sentry_config cfg = {.extra_hosts = extra, .n_extra_hosts = 1};
	struct biz_event_sink sk = {sink, e};

	snprintf(e->proc, sizeof(e->proc), "/tmp/bizprobe-sentry-proc-XXXXXX");
	assert_non_null(mkdtemp(e->proc));
	cfg.proc_root = e->proc;
	e->reg = metrics_registry_new();
	e->bm = business_metrics_new(e->reg, NULL);
	e->s = sentry_semantics_new(&sk, &cfg);
	*state = e;
	return e->s && e->bm ? 0 : -1;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[512];

	sentry_semantics_free(e->s);
	business_metrics_free(e->bm);
	metrics_registry_free(e->reg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->proc);
	assert_int_equal(system(cmd), 0);
	free(e);
	return 0;
}

static double value(struct env *e, const char *family, const char *const *labels)
{
	struct metrics_family *f = metrics_registry_find(e->reg, family);
	double v = 0;

	assert_non_null(f);
	if (metrics_get(f, labels, &v))
		return 0;
	return v;
}

#define V(e, fam, ...) value(e, fam, (const char *const[]){__VA_ARGS__})

static struct http_exchange exchange(uint32_t pid, const char *method, const char *path,
				     const char *host, int status, const void *body, size_t len)
{
	struct http_exchange ex;

	memset(&ex, 0, sizeof(ex));
	ex.conn = test_conn(pid, 7);
	ex.role = HTTP_ROLE_CLIENT;
	snprintf(ex.method, sizeof(ex.method), "%s", method);
	ex.target = path;
	ex.path = path;
	ex.query = "";
	ex.host = host;
	ex.status = status;
	ex.req.body = body;
	ex.req.body_len = len;
	ex.resp.body = (const uint8_t *)"";
	return ex;
}

static const char one_error[] = "{}\n{\"type\":\"event\"}\n{\"level\":\"error\"}\n"
				"{\"type\":\"session\"}\n{}\n";
#define ONE_ERROR_LEN (sizeof(one_error) - 1)

static void test_hosts_and_outcomes(void **state)
{
	struct env *e = *state;
	struct http_exchange ex;

	/* *.sentry.io and a --sentry-host are Sentry without any environment. */
	ex = exchange(1000, "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 200, one_error,
		      ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	ex.host = "sentry.corp.example:8443";
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 2);
	assert_int_equal(V(e, "bizprobe_sentry_items_total", "session"), 2);
	assert_int_equal(V(e, "sentry_errors_total", "warning"), 0);

	/* Not Sentry: another host, a server exchange, a GET, another path. */
	ex.host = "api.example.com";
	sentry_semantics_on_exchange(e->s, &ex);
	ex = exchange(1000, "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 200, one_error,
		      ONE_ERROR_LEN);
	ex.role = HTTP_ROLE_SERVER;
	sentry_semantics_on_exchange(e->s, &ex);
	ex.role = HTTP_ROLE_CLIENT;
	snprintf(ex.method, sizeof(ex.method), "GET");
	sentry_semantics_on_exchange(e->s, &ex);
	snprintf(ex.method, sizeof(ex.method), "POST");
	ex.path = "/api/1/minidump/";
	sentry_semantics_on_exchange(e->s, &ex);
	/* bizprobe's own reports are never the app's. */
	ex = exchange((uint32_t)getpid(), "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 200,
		      one_error, ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 2);

	/* Refused by Sentry: counted apart, by reason. */
	ex = exchange(1000, "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 429, one_error,
		      ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	ex.status = 503;
	sentry_semantics_on_exchange(e->s, &ex);
	ex.status = 413;
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 2);
	assert_int_equal(V(e, "bizprobe_sentry_rejected_total", "event", "rate_limited"), 1);
	assert_int_equal(V(e, "bizprobe_sentry_rejected_total", "session", "rate_limited"), 1);
	assert_int_equal(V(e, "bizprobe_sentry_rejected_total", "event", "server_error"), 1);
	assert_int_equal(V(e, "bizprobe_sentry_rejected_total", "event", "too_large"), 1);

	/* Unreadable: an encoding the HTTP stage keeps as sent, a cut body, garbage. */
	ex = exchange(1000, "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 200, one_error,
		      ONE_ERROR_LEN);
	ex.req.headers[0] = (struct http_header){"Content-Encoding", "br"};
	ex.req.n_headers = 1;
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "bizprobe_sentry_unreadable_envelopes_total", "encoding"), 1);
	ex.req.headers[0] = (struct http_header){"Content-Encoding", "gzip"};
	ex.req.body_len = ONE_ERROR_LEN - 12;
	ex.req.body_truncated = true;
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "bizprobe_sentry_unreadable_envelopes_total", "truncated"), 1);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 3); /* its first item was whole */
	ex = exchange(1000, "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 200, "garbage", 7);
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "bizprobe_sentry_unreadable_envelopes_total", "malformed"), 1);
	/* The legacy store endpoint. */
	ex = exchange(1000, "POST", "/api/1/store/", "o1.ingest.sentry.io", 200,
		      "{\"level\":\"fatal\"}", 17);
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "fatal"), 1);
}

/* A DSN host counts for the process whose environment names it, and only for it. */
static void test_dsn_from_environ(void **state)
{
	static const char env_a[] = "HOME=/root\0SENTRY_DSN=http://publickey@127.0.0.1:9123/1\0"
				    "STRIPE_SECRET_KEY=sk_test_abc";
	static const char env_b[] = "HOME=/root\0NEXT_PUBLIC_SENTRY_DSN=https://k@127.0.0.1:9555/2";
	struct env *e = *state;
	struct http_exchange ex;
	struct sentry_stats st;

	fake_proc(e, 2001, 100, env_a, sizeof(env_a) - 1);
	fake_proc(e, 2002, 100, "HOME=/\0", 7);
	ex = exchange(2001, "POST", "/api/1/envelope/", "127.0.0.1:9123", 200, one_error,
		      ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	sentry_semantics_on_exchange(e->s, &ex);
	/* Another port of the same address is another server. */
	ex.host = "127.0.0.1:9124";
	sentry_semantics_on_exchange(e->s, &ex);
	/* Another process without a DSN sending to that host: not its Sentry. */
	ex = exchange(2002, "POST", "/api/1/envelope/", "127.0.0.1:9123", 200, one_error,
		      ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 2);
	sentry_semantics_get_stats(e->s, &st);
	assert_int_equal(st.environ_reads, 2); /* once per process */
	assert_int_equal(st.environ_errors, 0);

	/* pid 2001 is reused by a process with another DSN: its new environment counts. */
	fake_proc(e, 2001, 200, env_b, sizeof(env_b) - 1);
	ex = exchange(2001, "POST", "/api/2/envelope/", "127.0.0.1:9555", 200, one_error,
		      ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 3);
	/* An environment that cannot be read: nothing counts, nothing breaks. */
	ex = exchange(2003, "POST", "/api/1/envelope/", "127.0.0.1:9123", 200, one_error,
		      ONE_ERROR_LEN);
	sentry_semantics_on_exchange(e->s, &ex);
	sentry_semantics_get_stats(e->s, &st);
	assert_int_equal(st.environ_errors, 1);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 3);
}

/* The SDK's gzip body (chunked, Content-Encoding: gzip) through the HTTP stage: the semantics
 * see it inflated. */
static struct recorder rec;

static void test_gzip_through_http_stage(void **state)
{
	struct env *e = *state;
	struct http_tracker_config cfg = {0};
	struct http_tracker *t;
	struct conn_ref c = test_conn(1000, 42);
	size_t gz_len, plain_len;
	uint8_t *gz = fixture("node9_error_big.envelope.gz", &gz_len);
	uint8_t *plain = gunzip(gz, gz_len, &plain_len);
	char head[512], chunk[32];
	struct http_exchange ex;

	t = http_tracker_new(&cfg, rec_cb, &rec);
	assert_non_null(t);
	snprintf(head, sizeof(head),
		 "POST /api/1/envelope/?sentry_version=7&sentry_key=publickey HTTP/1.1\r\n"
		 "content-encoding: gzip\r\nHost: 127.0.0.1:9123\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n");
	feed_str(t, &c, BP_DIR_EGRESS, head, 1);
	/* In the SDK's way: the gzip stream piped in pieces. */
	for (size_t off = 0; off < gz_len; off += 16384) {
		size_t n = gz_len - off < 16384 ? gz_len - off : 16384;

		snprintf(chunk, sizeof(chunk), "%zx\r\n", n);
		feed_str(t, &c, BP_DIR_EGRESS, chunk, 2);
		feed_bytes(t, &c, BP_DIR_EGRESS, gz + off, n, 3, 0);
		feed_str(t, &c, BP_DIR_EGRESS, "\r\n", 4);
	}
	feed_str(t, &c, BP_DIR_EGRESS, "0\r\n\r\n", 5);
	feed_str(t, &c, BP_DIR_INGRESS, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 6);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.ex[0].req.body_len, plain_len);
	assert_memory_equal(rec.ex[0].req.body, plain, plain_len);
	assert_false(rec.ex[0].req.body_truncated);

	ex = exchange(1000, "POST", rec.ex[0].path, rec.ex[0].host, rec.ex[0].status,
		      rec.ex[0].req.body, rec.ex[0].req.body_len);
	ex.req.headers[0] = (struct http_header){"content-encoding", "gzip"};
	ex.req.n_headers = 1;
	ex.host = "o1.ingest.sentry.io";
	sentry_semantics_on_exchange(e->s, &ex);
	assert_int_equal(V(e, "sentry_errors_total", "error"), 1);
	http_tracker_free(t);
	rec_free(&rec);
	free(plain);
	free(gz);
}

/* What the HTTP stage asks before the bodies arrive: exactly the exchanges on_exchange reads. */
static void test_wants_bodies(void **state)
{
	struct env *e = *state;
	struct http_exchange ex =
	    exchange(1000, "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 0, "", 0);

	assert_false(sentry_semantics_wants_bodies(NULL, &ex));
	assert_true(sentry_semantics_wants_bodies(e->s, &ex));
	ex.path = "/api/1/store/";
	assert_true(sentry_semantics_wants_bodies(e->s, &ex));
	ex.host = "sentry.corp.example:8443";
	assert_true(sentry_semantics_wants_bodies(e->s, &ex));
	ex.host = "api.example.com";
	assert_false(sentry_semantics_wants_bodies(e->s, &ex));
	ex.host = "o1.ingest.sentry.io";
	ex.role = HTTP_ROLE_SERVER;
	assert_false(sentry_semantics_wants_bodies(e->s, &ex));
	ex.role = HTTP_ROLE_CLIENT;
	snprintf(ex.method, sizeof(ex.method), "GET");
	assert_false(sentry_semantics_wants_bodies(e->s, &ex));
	snprintf(ex.method, sizeof(ex.method), "POST");
	ex.path = "/api/1/minidump/";
	assert_false(sentry_semantics_wants_bodies(e->s, &ex));
	ex = exchange((uint32_t)getpid(), "POST", "/api/1/envelope/", "o1.ingest.sentry.io", 0, "",
		      0);
	assert_false(sentry_semantics_wants_bodies(e->s, &ex));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recorded_node_envelopes),
	    cmocka_unit_test(test_multi_item_with_lengths),
	    cmocka_unit_test(test_truncated_at_every_byte),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_store),
	    cmocka_unit_test(test_labels_and_paths),
	    cmocka_unit_test(test_dsn_hosts),
	    cmocka_unit_test(test_environ_block),
	    cmocka_unit_test_setup_teardown(test_hosts_and_outcomes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wants_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dsn_from_environ, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_gzip_through_http_stage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
