/* SPDX-License-Identifier: MIT */
/*
 * Prometheus endpoint (src/export/metrics_server.c) on libmicrohttpd: GET /metrics and
 * /api/metrics (the path of the business-monitoring guide) render the registry; GET /healthz
 * answers "ok". Optional bearer token and TLS. GET /api/admin/metrics?range=... (the guide's
 * admin summary) is answered by a handler the command gives, behind a token of its own.
 *
 * The live status page (status_page.h) lives at / under the same admin token: GET / shows the
 * login form until POST /login (form field "token") sets the session cookie, then the page,
 * which polls GET /api/status (the cookie, or "Authorization: Bearer <admin_token>");
 * POST /logout clears the cookie; /status.css and /status.js are public. Without an admin
 * token, / says how to turn the page on (404).
 */
#ifndef BIZPROBE_METRICS_SERVER_H
#define BIZPROBE_METRICS_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "bizprobe/metrics.h"
#include "bizprobe/recent_events.h"

struct metrics_server_config {
	/* "ADDR:PORT": "127.0.0.1:9464", "[::1]:9464", ":9464" (all IPv4 addresses). Port 0 picks
	 * a free port (see metrics_server_port). NULL: ":9464". */
	const char *listen;
	/* When set, /metrics and /api/metrics need "Authorization: Bearer <token>" (401
	 * otherwise); /healthz stays open for liveness probes. */
	const char *token;
	/* Both set: serve HTTPS with this PEM certificate (chain) and key. */
	const char *tls_cert_path;
	const char *tls_key_path;
	/* GET /api/admin/metrics: needs "Authorization: Bearer <admin_token>" (ADMIN_API_TOKEN, a
	 * secret of its own); 404 when admin_token or admin is NULL. admin gets the query's range
	 * (NULL when absent) and returns a status (200, 400, 503) with a malloc'd JSON body. It
	 * runs on the server's thread. admin_token alone (admin NULL: no state) still opens the
	 * status page, without the summary. */
	const char *admin_token;
	unsigned (*admin)(const char *range, char **json, void *ctx);
	void *admin_ctx;
	/* The status page's sources: the business families' prefix (NULL: "direct_fan") and the
	 * recent events (NULL: none shown); recent must outlive the server. */
	const char *namespace;
	struct recent_events *recent;
};

struct metrics_server;

/* Starts serving reg (which must outlive the server) from libmicrohttpd's own thread.
 * Returns 0, -EINVAL (bad address, half a TLS pair), -ENOENT/-EACCES (TLS files),
 * -ENOTSUP (libmicrohttpd without TLS), -EIO (the daemon did not start: address in use, bad
 * TLS material; libmicrohttpd logs the reason to stderr). */
int metrics_server_start(struct metrics_registry *reg, const struct metrics_server_config *cfg,
			 struct metrics_server **out);
/* The port actually bound. */
uint16_t metrics_server_port(const struct metrics_server *srv);
/* Stops the daemon (waits for its thread) and frees srv; NULL is fine. */
void metrics_server_stop(struct metrics_server *srv);

/* Constant-time check of an Authorization header value against "Bearer <token>"; visible for
 * tests. Returns true on match. */
bool metrics_server_auth_ok(const char *authorization, const char *token);

#endif
