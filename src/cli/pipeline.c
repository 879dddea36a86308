// SPDX-License-Identifier: MIT
/* capture session -> HTTP tracker -> the command's exchange handler, until a signal. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Statistics and time-driven semantics run this often, not after every poll: reading the
 * kernel's counters is a syscall per counter. An idle loop wakes only for them. */
#define TICK_INTERVAL_NS 250000000ll
/* After SIGINT/SIGTERM, what the kernel already wrote is read for at most this long: under
 * steady traffic the ring never empties, and a stop must not wait for a quiet moment. */
#define DRAIN_MAX_NS 2000000000ll

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reload_requested;

/* The first SIGINT/SIGTERM asks for a clean stop (drain, detach); a second one, while that
 * runs, exits at once. Kernel objects go with the process, except tracefs uprobe events, which
 * the next start removes. */
static void on_signal(int sig)
{
	static const char msg[] = "bizprobe: second signal, exiting now\n";

	if (stop_requested) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
			/* nothing left to tell */
		}
		_exit(128 + sig);
	}
	stop_requested = 1;
}

void cli_block_stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void unblock_stop_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* With a rules file, SIGHUP means "reload it" (as for most daemons); otherwise it is the
 * terminal hanging up, and stops like SIGINT. */
static void on_sighup(int sig)
{
	(void)sig;
	reload_requested = 1;
}

bool cli_take_reload_request(void)
{
	if (!reload_requested)
		return false;
	reload_requested = 0;
	return true;
}

struct pipeline {
	struct http_tracker *ht;
	cli_exchange_fn on_exchange;
	void *ctx;
	int64_t mono_to_wall_ns; /* added to CLOCK_MONOTONIC stamps to get wall time */
	bool debug_chunks;	 /* BIZPROBE_DEBUG_CHUNKS=1: one stderr line per chunk */
};

int64_t cli_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* The debug view shows a chunk's first token only when it is a method or "HTTP/1.x": anything
 * else may be a header value or body, and those can carry secrets. */
static int start_token_len(const struct capture_chunk *chunk)
{
	static const char *const starts[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD",
					     "OPTIONS", "HTTP/1.1", "HTTP/1.0"};

	for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
		size_t n = strlen(starts[i]);

		if (chunk->len > n && memcmp(chunk->data, starts[i], n) == 0 &&
		    chunk->data[n] == ' ')
			return (int)n;
	}
	return 0;
}

static void on_chunk(const struct capture_chunk *chunk, void *ctx)
{
	struct pipeline *p = ctx;

	if (p->debug_chunks)
		fprintf(stderr, "chunk pid=%u id=%llx gen=%llu tls=%d dir=%s len=%u lost=%u head=%.*s\n",
			chunk->conn.pid, (unsigned long long)chunk->conn.id,
			(unsigned long long)chunk->conn.generation, chunk->conn.tls,
			chunk->dir == BP_DIR_EGRESS ? "out" : "in", chunk->len, chunk->lost,
			start_token_len(chunk), (const char *)chunk->data);

	http_tracker_feed(p->ht, chunk);
}

static void on_close(const struct conn_ref *conn, uint64_t ts_ns, void *ctx)
{
	struct pipeline *p = ctx;

	http_tracker_close(p->ht, conn, ts_ns);
}

static void on_exit_pid(uint32_t pid, void *ctx)
{
	struct pipeline *p = ctx;

	http_tracker_forget_pid(p->ht, pid);
}

static void on_exchange(const struct http_exchange *ex, void *ctx)
{
	struct pipeline *p = ctx;
	uint64_t wall = (uint64_t)((int64_t)ex->resp.last_ts_ns + p->mono_to_wall_ns);

	p->on_exchange(ex, wall, p->ctx);
}

/* The hooks chosen at start, for --verbose: per process, so the start says what it came to. */
static const char *socket_hooks_said(const struct capture_stats *st)
{
	if (!st->syscall_hooks)
		return st->libc_hooked_processes ? "libc (uprobes in the traced processes' C library)"
						 : "libc or syscalls, per process (none traced yet)";
	if (!st->libc_hooked_processes)
		return "syscalls (raw syscall tracepoints)";
	return "libc and syscalls, per process (raw syscall tracepoints for those that bypass libc)";
}

int cli_pipeline_run(const struct cli_opts *o, cli_exchange_fn fn, cli_tick_fn tick, void *ctx)
{
	struct pipeline p = {.on_exchange = fn, .ctx = ctx};
	struct capture_callbacks cb = {
		.on_chunk = on_chunk, .on_close = on_close, .on_exit = on_exit_pid, .ctx = &p};
	struct capture_session *cs = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	struct capture_stats st;
	char err[512] = "";
	int64_t next_tick = 0;
	int rc = 1;

	p.mono_to_wall_ns = cli_clock_ns(CLOCK_REALTIME) - cli_clock_ns(CLOCK_MONOTONIC);
	p.debug_chunks = getenv("BIZPROBE_DEBUG_CHUNKS") != NULL;
	p.ht = http_tracker_new(&o->http, on_exchange, &p);
	if (!p.ht) {
		fprintf(stderr, "bizprobe: out of memory\n");
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (o->rules_file) {
		struct sigaction hup = {.sa_handler = on_sighup};

		sigaction(SIGHUP, &hup, NULL);
	} else {
		sigaction(SIGHUP, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);

	cs = capture_session_new(&o->capture, &cb, err, sizeof(err));
	if (!cs) {
		fprintf(stderr, "bizprobe: %s\n", err);
		goto cleanup;
	}
	/* Every other thread (the metrics endpoint's, the capture's) was started with these
	 * blocked, so the kernel delivers them here, where the handler's flag is read; one that
	 * arrived during the set-up was held and is delivered now. */
	unblock_stop_signals();
	capture_session_get_stats(cs, &st);
	/* With --verbose only: scripts take the first line for the attached line. */
	if (o->capture.verbose)
		fprintf(stderr, "bizprobe: socket hooks: %s\n", socket_hooks_said(&st));
	/* Scripts wait for this line: from here on every selected process is captured. */
	fprintf(stderr, "bizprobe: attached: %u processes, %u OpenSSL files\n",
		st.traced_processes, st.tls_files);
	fflush(stderr);

	while (!stop_requested) {
		int64_t now = cli_clock_ns(CLOCK_MONOTONIC);
		/* Rounded up, so that the loop never spins on a timeout of 0 before the tick. */
		int n = capture_session_poll(
			cs, now < next_tick ? (int)((next_tick - now + 999999) / 1000000) : 0);

		if (n < 0 && n != -EINTR) {
			fprintf(stderr, "bizprobe: ring buffer: %s\n", strerror(-n));
			goto cleanup;
		}
		now = cli_clock_ns(CLOCK_MONOTONIC);
		if (now >= next_tick) {
			if (tick)
				tick(cs, p.ht, false, ctx);
			next_tick = now + TICK_INTERVAL_NS;
		}
	}
	/* Drain what the kernel already wrote, so a clean stop loses nothing, for a bounded time. */
	for (int64_t end = cli_clock_ns(CLOCK_MONOTONIC) + DRAIN_MAX_NS;
	     capture_session_poll(cs, 0) > 0 && cli_clock_ns(CLOCK_MONOTONIC) < end;)
		;
	if (tick)
		tick(cs, p.ht, true, ctx);
	rc = 0;
cleanup:
	capture_session_free(cs);
	http_tracker_free(p.ht);
	return rc;
}
