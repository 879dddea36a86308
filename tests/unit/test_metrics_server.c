// SPDX-License-Identifier: MIT
/* Metrics endpoint: real libmicrohttpd daemon on 127.0.0.1 with an ephemeral port, fetched with
 * a raw socket (and `openssl s_client` for TLS, with a certificate made by the openssl CLI). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "bizprobe/metrics_server.h"

struct env {
	struct metrics_registry *reg;
	struct metrics_server *srv;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct metrics_family_opts o = {.name = "direct_fan_disputes_total",
					.help = "Disputes opened.",
					.type = METRICS_COUNTER};
	struct metrics_family *f;

	e->reg = metrics_registry_new();
	if (!e->reg || metrics_family_register(e->reg, &o, &f) || metrics_add(f, NULL, 3))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	metrics_server_stop(e->srv);
	metrics_registry_free(e->reg);
	free(e);
	return 0;
}

/* Sends a raw request, returns the whole response (malloc'd). */
static char *fetch(uint16_t port, const char *request)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char *buf = malloc(65536);
	size_t used = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_non_null(buf);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
	while ((n = read(fd, buf + used, 65535 - used)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(fd);
	return buf;
}

static char *get(uint16_t port, const char *path, const char *auth)
{
	char req[512];

	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n", path,
		 auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
	return fetch(port, req);
}

static void start(struct env *e, const struct metrics_server_config *cfg)
{
	assert_int_equal(metrics_server_start(e->reg, cfg, &e->srv), 0);
	assert_true(metrics_server_port(e->srv) > 0);
}

static void test_metrics_and_health(void **state)
{
	struct env *e = *state;
	struct metrics_server_config cfg = {.listen = "127.0.0.1:0"};
	char *r;

	start(e, &cfg);
	r = get(metrics_server_port(e->srv), "/metrics", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(
	    strcasestr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(r, "\r\n\r\n# HELP direct_fan_disputes_total Disputes opened.\n"
				  "# TYPE direct_fan_disputes_total counter\n"
				  "direct_fan_disputes_total 3\n"));
	free(r);
	r = get(metrics_server_port(e->srv), "/api/metrics?format=prometheus", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strstr(r, "direct_fan_disputes_total 3\n"));
	free(r);
	r = get(metrics_server_port(e->srv), "/healthz", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strstr(r, "\r\n\r\nok\n"));
	free(r);
	r = get(metrics_server_port(e->srv), "/nope", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 404", 12));
	free(r);
	r = fetch(metrics_server_port(e->srv), "POST /metrics HTTP/1.1\r\nHost: x\r\n"
					       "Content-Length: 0\r\nConnection: close\r\n\r\n");
	assert_true(!strncmp(r, "HTTP/1.1 405", 12));
	free(r);
}

/* bizprobe holds perf event descriptors per traced process: with enough of them the endpoint's
 * sockets are numbered past select()'s FD_SETSIZE, and scrapes must still be answered. */
static void test_descriptors_past_fd_setsize(void **state)
{
	struct env *e = *state;
	struct metrics_server_config cfg = {.listen = "127.0.0.1:0"};
	enum { HELD = 1100 };
	struct rlimit rl;
	int held[HELD];
	char *r;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 2048)
		skip();
	rl.rlim_cur = rl.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (int i = 0; i < HELD; i++) {
		held[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(held[i] >= 0);
	}
	assert_true(held[HELD - 1] >= 1024);
	start(e, &cfg);
	r = get(metrics_server_port(e->srv), "/metrics", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strstr(r, "\ndirect_fan_disputes_total 3\n"));
	free(r);
	for (int i = 0; i < HELD; i++)
		close(held[i]);
}

static void test_token(void **state)
{
	struct env *e = *state;
	struct metrics_server_config cfg = {.listen = "127.0.0.1:0", .token = "s3cr3t-token"};
	char *r;

	start(e, &cfg);
	r = get(metrics_server_port(e->srv), "/metrics", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	assert_null(strstr(r, "direct_fan_disputes_total"));
	assert_non_null(strcasestr(r, "WWW-Authenticate: Bearer"));
	free(r);
	r = get(metrics_server_port(e->srv), "/api/metrics", "Bearer s3cr3t-tokeN");
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	free(r);
	r = get(metrics_server_port(e->srv), "/api/metrics", "Bearer s3cr3t-token-longer");
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	free(r);
	r = get(metrics_server_port(e->srv), "/api/metrics", "Basic czNjcjN0LXRva2Vu");
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	free(r);
	r = get(metrics_server_port(e->srv), "/api/metrics", "Bearer s3cr3t-token");
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strstr(r, "direct_fan_disputes_total 3\n"));
	free(r);
	/* Liveness probes carry no token. */
	r = get(metrics_server_port(e->srv), "/healthz", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	free(r);
}

static void test_auth_ok(void **state)
{
	assert_true(metrics_server_auth_ok(NULL, NULL));
	assert_true(metrics_server_auth_ok("anything", ""));
	assert_true(metrics_server_auth_ok("Bearer abc", "abc"));
	assert_true(metrics_server_auth_ok("bearer abc", "abc"));
	assert_false(metrics_server_auth_ok("Bearer abcd", "abc"));
	assert_false(metrics_server_auth_ok("Bearer ", "abc"));
	assert_false(metrics_server_auth_ok(NULL, "abc"));
	assert_false(metrics_server_auth_ok("abc", "abc"));
}

static void test_bad_config(void **state)
{
	struct env *e = *state;
	struct metrics_server *srv = NULL;
	struct metrics_server_config bad[] = {
	    {.listen = "127.0.0.1"},
	    {.listen = "127.0.0.1:99999"},
	    {.listen = "localhost:80"},
	    {.listen = "[::1:80"},
	    {.listen = "127.0.0.1:0", .tls_cert_path = "/nonexistent.pem"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(metrics_server_start(e->reg, &bad[i], &srv), -EINVAL);
	{
		struct metrics_server_config c = {.listen = "127.0.0.1:0",
						  .tls_cert_path = "/nonexistent.pem",
						  .tls_key_path = "/nonexistent.key"};

		assert_int_equal(metrics_server_start(e->reg, &c, &srv), -ENOENT);
	}
	/* Address in use. */
	{
		struct metrics_server_config c = {.listen = "127.0.0.1:0"};
		char addr[32];
		struct metrics_server_config c2 = {.listen = addr};

		start(e, &c);
		snprintf(addr, sizeof(addr), "127.0.0.1:%u", metrics_server_port(e->srv));
		assert_int_equal(metrics_server_start(e->reg, &c2, &srv), -EIO);
	}
}

static void test_ipv6(void **state)
{
	struct env *e = *state;
	struct metrics_server_config cfg = {.listen = "[::1]:0"};
	int err = metrics_server_start(e->reg, &cfg, &e->srv);

	if (err == -EIO)
		skip(); /* no IPv6 loopback in this sandbox */
	assert_int_equal(err, 0);
	assert_true(metrics_server_port(e->srv) > 0);
}

static void test_tls(void **state)
{
	struct env *e = *state;
	char dir[] = "/tmp/bizprobe-tls-XXXXXX", cert[128], key[128], cmd[1024], out[8192];
	struct metrics_server_config cfg = {.listen = "127.0.0.1:0", .token = "tok"};
	size_t used = 0, n;
	FILE *p;

	if (system("command -v openssl >/dev/null 2>&1"))
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout %s -out %s -subj /CN=127.0.0.1 -days 1 >/dev/null 2>&1",
		 key, cert);
	assert_int_equal(system(cmd), 0);
	cfg.tls_cert_path = cert;
	cfg.tls_key_path = key;
	start(e, &cfg);
	snprintf(
	    cmd, sizeof(cmd),
	    "printf 'GET /metrics HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer tok\\r\\n"
	    "Connection: close\\r\\n\\r\\n' | timeout 10 openssl s_client -connect 127.0.0.1:%u "
	    "-quiet -ign_eof 2>/dev/null",
	    metrics_server_port(e->srv));
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((n = fread(out + used, 1, sizeof(out) - 1 - used, p)) > 0)
		used += n;
	out[used] = '\0';
	pclose(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_true(!strncmp(out, "HTTP/1.1 200", 12));
	assert_non_null(strstr(out, "direct_fan_disputes_total 3\n"));
	/* Plain HTTP to the TLS port gets no metrics. */
	{
		char *r = get(metrics_server_port(e->srv), "/metrics", "Bearer tok");

		assert_null(strstr(r, "direct_fan_disputes_total"));
		free(r);
	}
}

/* A stand-in admin handler: echoes the range it got, 400 for "bad". */
static unsigned echo_admin(const char *range, char **json, void *ctx)
{
	int *calls = ctx;

	(*calls)++;
	if (range && !strcmp(range, "bad")) {
		*json = strdup("{\"error\":\"bad range\"}");
		return 400;
	}
	if (asprintf(json, "{\"range\":\"%s\"}", range ? range : "(none)") < 0)
		*json = NULL;
	return 200;
}

static void test_admin_api(void **state)
{
	struct env *e = *state;
	int calls = 0;
	struct metrics_server_config cfg = {.listen = "127.0.0.1:0",
					    .token = "scrape-token",
					    .admin_token = "admin-token",
					    .admin = echo_admin,
					    .admin_ctx = &calls};
	char *r;

	start(e, &cfg);
	r = get(metrics_server_port(e->srv), "/api/admin/metrics?range=7d", NULL);
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	free(r);
	/* The scrape token opens /metrics, not the business summary. */
	r = get(metrics_server_port(e->srv), "/api/admin/metrics?range=7d", "Bearer scrape-token");
	assert_true(!strncmp(r, "HTTP/1.1 401", 12));
	free(r);
	assert_int_equal(calls, 0);
	r = get(metrics_server_port(e->srv), "/api/admin/metrics?range=7d", "Bearer admin-token");
	assert_true(!strncmp(r, "HTTP/1.1 200", 12));
	assert_non_null(strcasestr(r, "Content-Type: application/json"));
	assert_non_null(strstr(r, "\r\n\r\n{\"range\":\"7d\"}"));
	free(r);
	r = get(metrics_server_port(e->srv), "/api/admin/metrics?range=bad", "Bearer admin-token");
	assert_true(!strncmp(r, "HTTP/1.1 400", 12));
	free(r);
	assert_int_equal(calls, 2);
	metrics_server_stop(e->srv);
	e->srv = NULL;

	/* Without ADMIN_API_TOKEN the route does not exist. */
	cfg.admin_token = NULL;
	start(e, &cfg);
	r = get(metrics_server_port(e->srv), "/api/admin/metrics?range=7d", "Bearer admin-token");
	assert_true(!strncmp(r, "HTTP/1.1 404", 12));
	free(r);
	assert_int_equal(calls, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_metrics_and_health, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_descriptors_past_fd_setsize, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_admin_api, setup, teardown),
	    cmocka_unit_test(test_auth_ok),
	    cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
