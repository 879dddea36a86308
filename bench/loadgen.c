// SPDX-License-Identifier: MIT
/*
 * bizprobe bench, workload C: fixed-rate, open-loop HTTPS load generator with exact percentiles.
 *
 *   loadgen -p PORT -r RATE -d SECONDS [-c CONNS] [-w WARMUP_S] [-H HOST] [-u PATH]
 *
 * Request k is due at t0 + k/RATE whatever happened before (open loop). A due request goes out on
 * an idle keep-alive connection (one request in flight per connection, no pipelining); if none is
 * idle it waits in a FIFO. Latency is measured from the DUE time to the end of the response, so
 * queueing caused by a slow server counts (no coordinated omission, like wrk2). Timing sleeps in
 * epoll_pwait2 with a nanosecond timeout (no busy wait, it shares its CPU with bizprobe).
 * Latencies after the warm-up are kept in full and sorted: exact p50/p90/p99/p99.9/max.
 * Prints one JSON line on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	SSL *ssl;
	int busy;
	uint64_t due;
	char buf[65536];
	size_t len;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Length of a complete response at the start of buf, 0 if incomplete, -1 if unparseable. */
static long response_len(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	size_t hdr = (size_t)(end - buf) + 4;
	long cl = -1;
	for (const char *p = buf; p < end;) {
		const char *nl = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!nl)
			nl = end;
		if ((size_t)(nl - p) > 15 && !strncasecmp(p, "content-length:", 15))
			cl = strtol(p + 15, NULL, 10);
		p = nl + 2;
	}
	if (cl < 0)
		return -1;
	return hdr + (size_t)cl <= len ? (long)(hdr + (size_t)cl) : 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *path = "/";
	int port = 0, nconns = 16, opt;
	double rate = 1000, dur = 10, warm = 1;
	while ((opt = getopt(argc, argv, "H:p:r:d:c:w:u:")) != -1) {
		switch (opt) {
		case 'H': host = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'd': dur = atof(optarg); break;
		case 'c': nconns = atoi(optarg); break;
		case 'w': warm = atof(optarg); break;
		case 'u': path = optarg; break;
		default:
			fprintf(stderr, "usage: loadgen -p PORT -r RATE -d SECONDS [-c CONNS] [-w WARMUP] [-H HOST] [-u PATH]\n");
			return 2;
		}
	}
	if (!port || rate <= 0 || dur <= 0 || nconns <= 0) {
		fprintf(stderr, "loadgen: bad arguments\n");
		return 2;
	}
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake up on time, not up to 50 us late */
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	char req[512];
	int reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: bizprobe-bench-loadgen\r\n\r\n", path, host, port);

	int ep = epoll_create1(0);
	struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
	for (int i = 0; i < nconns; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		inet_pton(AF_INET, host, &sa.sin_addr);
		int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			perror("loadgen: connect");
			return 1;
		}
		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_connect(ssl) != 1) {
			fprintf(stderr, "loadgen: TLS handshake failed\n");
			return 1;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		conns[i].fd = fd;
		conns[i].ssl = ssl;
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}

	uint64_t total = (uint64_t)(rate * dur), period = (uint64_t)(1e9 / rate);
	uint64_t *queue = malloc(total * sizeof(uint64_t)), qhead = 0, qtail = 0;
	uint64_t *lat = malloc(total * sizeof(uint64_t)), nlat = 0, done = 0, errors = 0, k = 0;
	int *idle = malloc((size_t)nconns * sizeof(int)), nidle = nconns;
	for (int i = 0; i < nconns; i++)
		idle[i] = nconns - 1 - i;
	uint64_t t0 = now_ns() + 10000000ull, warm_end = t0 + (uint64_t)(warm * 1e9);
	uint64_t deadline = t0 + (uint64_t)(dur * 1e9) + 5000000000ull, max_q = 0;

	while (done + errors < total && now_ns() < deadline) {
		uint64_t now = now_ns();
		while (k < total && t0 + k * period <= now)
			queue[qtail++] = t0 + (k++) * period;
		if (qtail - qhead > max_q)
			max_q = qtail - qhead;
		while (qhead < qtail && nidle > 0) {
			struct conn *c = &conns[idle[--nidle]];
			c->due = queue[qhead++];
			c->busy = 1;
			int w = SSL_write(c->ssl, req, reqlen);
			if (w != reqlen) {
				fprintf(stderr, "loadgen: SSL_write failed\n");
				return 1;
			}
		}
		struct timespec ts = {0, 0};
		if (k < total && !(qhead < qtail && nidle > 0)) {
			uint64_t next = t0 + k * period;
			now = now_ns();
			uint64_t wait = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000000ull);
			ts.tv_nsec = (long)(wait % 1000000000ull);
		} else if (k >= total) {
			ts.tv_nsec = 10000000;
		}
		struct epoll_event evs[64];
		int n = epoll_pwait2(ep, evs, 64, &ts, NULL);
		for (int e = 0; e < n; e++) {
			struct conn *c = &conns[evs[e].data.u32];
			for (;;) {
				int r = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
				if (r <= 0) {
					int err = SSL_get_error(c->ssl, r);
					if (err == SSL_ERROR_WANT_READ)
						break;
					fprintf(stderr, "loadgen: connection closed by the server\n");
					return 1;
				}
				c->len += (size_t)r;
				long rl;
				while (c->busy && (rl = response_len(c->buf, c->len)) != 0) {
					uint64_t t = now_ns();
					if (rl < 0) {
						fprintf(stderr, "loadgen: unparseable response\n");
						return 1;
					}
					if (strncmp(c->buf, "HTTP/1.1 200", 12))
						errors++;
					else
						done++;
					if (c->due >= warm_end)
						lat[nlat++] = t - c->due;
					memmove(c->buf, c->buf + rl, c->len - (size_t)rl);
					c->len -= (size_t)rl;
					c->busy = 0;
					idle[nidle++] = (int)(c - conns);
				}
			}
		}
	}
	double elapsed = (double)(now_ns() - t0) / 1e9;
	qsort(lat, nlat, sizeof(uint64_t), cmp_u64);
#define PCT(p) (nlat ? (double)lat[(size_t)((double)(nlat - 1) * (p))] / 1000.0 : 0.0)
	printf("{\"rate\":%.0f,\"duration_s\":%.3f,\"sent\":%llu,\"completed\":%llu,\"errors\":%llu,\"measured\":%llu,"
	       "\"max_queue\":%llu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}\n",
	       rate, elapsed, (unsigned long long)k, (unsigned long long)done, (unsigned long long)errors,
	       (unsigned long long)nlat, (unsigned long long)max_q, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
	       nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0);
	return done + errors == total ? 0 : 1;
}
