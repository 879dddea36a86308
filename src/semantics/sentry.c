// SPDX-License-Identifier: MIT
/*
 * Sentry semantics (bizprobe/sentry.h): which exchanges are the traced app's Sentry reports,
 * and what Sentry made of them. Envelope parsing lives in sentry_envelope.c.
 *
 * The DSN hosts of a process come from its own environment, read once per process on its first
 * exchange that looks like Sentry ingest (a POST to /api/{n}/envelope/ whose host is not already
 * known), not on every exchange: most processes never talk to Sentry, and those that do are
 * judged by the host their own DSN names. A pid seen again is checked against its start time,
 * so a reused pid gets its new process's environment.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bizprobe/sentry.h"

/* Processes whose DSN hosts are remembered at once; one entry costs about 520 bytes. A process
 * pushed out is read again on its next envelope. */
#define SENTRY_PID_SLOTS 256
/* Bytes of a process's environment read; Linux lets argv and envp together reach about 2 MiB
 * (ARG_MAX), most environments are a few KiB. */
#define SENTRY_ENVIRON_MAX (1u << 20)

struct sentry_pid {
	uint32_t pid;
	uint64_t start; /* /proc/PID/stat starttime: tells a reused pid */
	unsigned n_hosts;
	char hosts[2][SENTRY_HOST_MAX];
};

struct sentry_semantics {
	struct biz_event_sink sink;
	char **hosts; /* --sentry-host */
	unsigned n_hosts;
	char *proc_root;
	bool no_environ;
	uint32_t self; /* bizprobe's own pid: its reports are never the app's */
	struct sentry_pid pids[SENTRY_PID_SLOTS];
	struct sentry_stats stats;
};

struct sentry_semantics *sentry_semantics_new(const struct biz_event_sink *sink,
					      const struct sentry_config *cfg)
{
	static const struct sentry_config defaults = {0};
	struct sentry_semantics *s;

	if (!sink || !sink->fn) {
		errno = EINVAL;
		return NULL;
	}
	if (!cfg)
		cfg = &defaults;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->sink = *sink;
	s->no_environ = cfg->no_environ;
	s->self = (uint32_t)getpid();
	s->proc_root = strdup(cfg->proc_root ? cfg->proc_root : "/proc");
	s->hosts = calloc(cfg->n_extra_hosts + 1, sizeof(char *));
	if (!s->proc_root || !s->hosts)
		goto fail;
	for (unsigned i = 0; i < cfg->n_extra_hosts; i++) {
		const char *h = cfg->extra_hosts[i];

		if (!h || !*h || strlen(h) >= SENTRY_HOST_MAX || strpbrk(h, "/@ \t?#")) {
			errno = EINVAL;
			goto fail_errno;
		}
		s->hosts[i] = strdup(h);
		if (!s->hosts[i])
			goto fail;
		s->n_hosts++;
	}
	return s;
fail:
	errno = ENOMEM;
fail_errno:
	sentry_semantics_free(s);
	return NULL;
}

void sentry_semantics_free(struct sentry_semantics *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->n_hosts; i++)
		free(s->hosts[i]);
	free(s->hosts);
	free(s->proc_root);
	free(s);
}

void sentry_semantics_get_stats(const struct sentry_semantics *s, struct sentry_stats *out)
{
	*out = s->stats;
}

/* host without its port (or the brackets' content's end for an IPv6 literal). */
static size_t host_name_len(const char *host)
{
	if (host[0] == '[') {
		const char *close = strchr(host, ']');

		return close ? (size_t)(close - host + 1) : strlen(host);
	}
	return strcspn(host, ":");
}

bool sentry_host_matches(const char *want, const char *host)
{
	size_t wn, hn;
	const char *wp, *hp;

	if (!want || !host || !*want || !*host)
		return false;
	wn = host_name_len(want);
	hn = host_name_len(host);
	if (wn != hn || strncasecmp(want, host, wn))
		return false;
	wp = want[wn] == ':' ? want + wn + 1 : NULL;
	hp = host[hn] == ':' ? host + hn + 1 : NULL;
	return !wp || !hp || !strcmp(wp, hp);
}

/* sentry.io itself or any of its subdomains (o1.ingest.sentry.io, o1.ingest.de.sentry.io). */
static bool sentry_io(const char *host)
{
	static const char suffix[] = ".sentry.io";
	size_t n = host_name_len(host), k = sizeof(suffix) - 1;

	if (n == k - 1 && !strncasecmp(host, suffix + 1, n))
		return true;
	return n > k && !strncasecmp(host + n - k, suffix, k);
}

int sentry_dsn_host(const char *dsn, size_t len, char *out, size_t size)
{
	const char *end = dsn + len, *p, *auth, *at = NULL, *h;
	size_t n;

	out[0] = '\0';
	if (len > 7 && !strncasecmp(dsn, "http://", 7))
		p = dsn + 7;
	else if (len > 8 && !strncasecmp(dsn, "https://", 8))
		p = dsn + 8;
	else
		return -EINVAL;
	auth = p;
	while (p < end && *p != '/' && *p != '?' && *p != '#')
		p++;
	/* The key comes before the last '@' of the authority; a DSN always has one. */
	for (const char *q = auth; q < p; q++) {
		if (*q == '@')
			at = q;
	}
	if (!at || at == auth)
		return -EINVAL;
	h = at + 1;
	n = (size_t)(p - h);
	if (!n || n >= size)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']' &&
		    c != '_') {
			out[0] = '\0';
			return -EINVAL;
		}
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return 0;
}

unsigned sentry_environ_dsn_hosts(const char *block, size_t len, char out[2][SENTRY_HOST_MAX])
{
	static const char *const names[] = {"SENTRY_DSN=", "NEXT_PUBLIC_SENTRY_DSN="};
	unsigned n = 0;

	for (size_t v = 0; v < 2; v++) {
		size_t k = strlen(names[v]);

		for (size_t off = 0; off < len;) {
			const char *e = block + off;
			const char *z = memchr(e, '\0', len - off);
			size_t elen = z ? (size_t)(z - e) : len - off;

			if (elen > k && !memcmp(e, names[v], k) &&
			    !sentry_dsn_host(e + k, elen - k, out[n], SENTRY_HOST_MAX)) {
				if (n == 1 && !strcmp(out[0], out[1]))
					out[1][0] = '\0';
				else
					n++;
				break;
			}
			off += elen + 1;
		}
	}
	return n;
}

/* Field 22 of /proc/PID/stat; 0 when unreadable. */
static uint64_t proc_start_time(const struct sentry_semantics *s, uint32_t pid)
{
	char path[512], buf[1024];
	unsigned long long v = 0;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%u/stat", s->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: the fields start after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p, " %llu", &v);
	return v;
}

/* Reads the process's environment for its DSN hosts. The buffer held other secrets of the
 * process: it is wiped before it is freed. */
static void load_pid(struct sentry_semantics *s, struct sentry_pid *slot, uint32_t pid)
{
	char path[512];
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int fd;

	memset(slot, 0, sizeof(*slot));
	slot->pid = pid;
	slot->start = proc_start_time(s, pid);
	if (s->no_environ)
		return;
	snprintf(path, sizeof(path), "%s/%u/environ", s->proc_root, pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		s->stats.environ_errors++;
		return;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *nb;

			if (ncap > SENTRY_ENVIRON_MAX || !(nb = malloc(ncap)))
				break;
			if (buf) {
				memcpy(nb, buf, len);
				explicit_bzero(buf, cap);
				free(buf);
			}
			buf = nb;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n <= 0) {
			if (n < 0)
				s->stats.environ_errors++;
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	s->stats.environ_reads++;
	if (buf) {
		slot->n_hosts = sentry_environ_dsn_hosts(buf, len, slot->hosts);
		explicit_bzero(buf, cap);
		free(buf);
	}
}

static bool pid_hosts_match(const struct sentry_pid *slot, const char *host)
{
	for (unsigned i = 0; i < slot->n_hosts; i++) {
		if (sentry_host_matches(slot->hosts[i], host))
			return true;
	}
	return false;
}

static bool is_sentry_host(struct sentry_semantics *s, uint32_t pid, const char *host)
{
	struct sentry_pid *slot = &s->pids[pid % SENTRY_PID_SLOTS];

	if (sentry_io(host))
		return true;
	for (unsigned i = 0; i < s->n_hosts; i++) {
		if (sentry_host_matches(s->hosts[i], host))
			return true;
	}
	if (slot->pid != pid) {
		load_pid(s, slot, pid);
		return pid_hosts_match(slot, host);
	}
	if (pid_hosts_match(slot, host))
		return true;
	/* No match: is it still the process whose environment was read? */
	if (proc_start_time(s, pid) != slot->start) {
		load_pid(s, slot, pid);
		return pid_hosts_match(slot, host);
	}
	return false;
}

bool sentry_ingest_path(const char *path, bool *legacy)
{
	const char *api = NULL, *p;
	size_t n;

	if (!path)
		return false;
	/* The last "/api/" segment: a self-hosted Sentry may live under a prefix. */
	for (p = strstr(path, "/api/"); p; p = strstr(p + 1, "/api/"))
		api = p;
	if (!api)
		return false;
	p = api + 5;
	n = strspn(p, "0123456789");
	if (!n || n > 20 || p[n] != '/')
		return false;
	p += n + 1;
	if (!strcmp(p, "envelope/") || !strcmp(p, "envelope")) {
		*legacy = false;
		return true;
	}
	if (!strcmp(p, "store/") || !strcmp(p, "store")) {
		*legacy = true;
		return true;
	}
	return false;
}

struct emit_ctx {
	struct sentry_semantics *s;
	const char *outcome;
	const char *reason;
};

static void emit_item(const struct sentry_item *item, void *ctx)
{
	struct emit_ctx *c = ctx;
	struct business_event ev = {
	    .kind = BIZ_SENTRY_ITEM,
	    .labels = {{"type", item->type},
		       {"level", item->level},
		       {"outcome", c->outcome},
		       {"reason", c->reason}},
	    .n_labels = 4,
	};

	c->s->stats.items++;
	biz_emit(&c->s->sink, &ev);
}

static void emit_unreadable(struct sentry_semantics *s, const char *reason)
{
	struct business_event ev = {
	    .kind = BIZ_SENTRY_UNREADABLE,
	    .labels = {{"reason", reason}},
	    .n_labels = 1,
	};

	s->stats.unreadable++;
	biz_emit(&s->sink, &ev);
}

static const char *reject_reason(int status)
{
	if (status == 429)
		return "rate_limited";
	if (status == 413)
		return "too_large";
	if (status >= 400 && status <= 499)
		return "client_error";
	if (status >= 500 && status <= 599)
		return "server_error";
	return "other";
}

/* The HTTP stage inflates gzip and deflate (src/http/body.c); any other coding is kept as
 * sent, and cannot be read here. */
static bool decoded(const struct http_message *m)
{
	const char *ce = http_message_header(m, "Content-Encoding");
	size_t n;

	if (!ce)
		return true;
	while (*ce == ' ' || *ce == '\t')
		ce++;
	n = strcspn(ce, " \t");
	return !n || (n == 4 && !strncasecmp(ce, "gzip", 4)) ||
	       (n == 6 && !strncasecmp(ce, "x-gzip", 6)) ||
	       (n == 7 && !strncasecmp(ce, "deflate", 7)) ||
	       (n == 8 && !strncasecmp(ce, "identity", 8));
}

/* From the request alone, so that the HTTP stage can ask before the bodies arrive. */
static bool is_ingest(struct sentry_semantics *s, const struct http_exchange *ex, bool *legacy)
{
	return s && ex && ex->role == HTTP_ROLE_CLIENT && !strcmp(ex->method, "POST") &&
	       sentry_ingest_path(ex->path, legacy) && ex->conn.pid != s->self && ex->host &&
	       is_sentry_host(s, ex->conn.pid, ex->host);
}

bool sentry_semantics_wants_bodies(struct sentry_semantics *s, const struct http_exchange *head)
{
	bool legacy;

	return is_ingest(s, head, &legacy);
}

void sentry_semantics_on_exchange(struct sentry_semantics *s, const struct http_exchange *ex)
{
	struct emit_ctx c;
	enum sentry_parse_status st;
	bool legacy;

	if (!is_ingest(s, ex, &legacy))
		return;
	s->stats.exchanges++;
	c.s = s;
	if (ex->status >= 200 && ex->status <= 299) {
		c.outcome = "accepted";
		c.reason = "";
	} else {
		c.outcome = "rejected";
		c.reason = reject_reason(ex->status);
	}
	if (!decoded(&ex->req)) {
		emit_unreadable(s, "encoding");
		return;
	}
	if (legacy)
		st = sentry_store_parse(ex->req.body, ex->req.body_len, ex->req.body_truncated,
					emit_item, &c);
	else
		st = sentry_envelope_parse(ex->req.body, ex->req.body_len, ex->req.body_truncated,
					   emit_item, &c);
	if (st == SENTRY_PARSE_TRUNCATED)
		emit_unreadable(s, "truncated");
	else if (st == SENTRY_PARSE_MALFORMED)
		emit_unreadable(s, "malformed");
}
