// SPDX-License-Identifier: MIT
/*
 * Prometheus endpoint on libmicrohttpd (Debian 0.9.75): one internal polling thread, bounded
 * connections and timeouts, the registry rendered per scrape under its own mutex. Also the
 * admin summary and the status page (its logic in status_page.c, only the HTTP side here).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "bizprobe/metrics_server.h"
#include "bizprobe/status_page.h"

#define METRICS_SERVER_DEFAULT_LISTEN ":9464"
#define METRICS_SERVER_MAX_CONNS      64 /* Prometheus scrapes with one; leave room for humans */
#define METRICS_SERVER_TIMEOUT_S      10
#define METRICS_SERVER_MAX_PEM	      (1 << 20)

/* Every page response: nothing from elsewhere (no CDN), no framing, no referrer. */
#define STATUS_CSP                                                                                \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "            \
	"img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

static const char status_disabled_html[] =
    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bizprobe status"
    "</title></head><body><h1>bizprobe status page: off</h1><p id=\"disabled\">The status page "
    "is disabled because ADMIN_API_TOKEN is not set. Start bizprobe run with ADMIN_API_TOKEN in "
    "its environment (a secret of its own, as for the admin API) and sign in here with it. "
    "Prometheus metrics stay at <a href=\"/metrics\">/metrics</a>.</p></body></html>\n";

/* A POST body being received (POST /login), per connection. */
struct post_state {
	size_t len;
	bool too_large;
	char body[STATUS_LOGIN_BODY_MAX + 1];
};

struct metrics_server {
	struct MHD_Daemon *daemon;
	struct metrics_registry *reg;
	char *token;
	char *admin_token;
	unsigned (*admin)(const char *range, char **json, void *ctx);
	void *admin_ctx;
	char *cert_pem;
	char *key_pem;
	uint16_t port;
	bool tls;
	/* The status page: on with an admin token. */
	struct status_auth *auth;
	struct status_sources status;
	char *namespace;
	struct metrics_family *logins; /* bizprobe_status_logins_total{outcome} */
};

/* Hashing both sides first makes the comparison constant-time in the length too. */
bool metrics_server_auth_ok(const char *authorization, const char *token)
{
	static const char prefix[] = "Bearer ";
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned int la = 0, lb = 0;
	const char *presented;

	if (!token || !*token)
		return true;
	if (!authorization || strncasecmp(authorization, prefix, sizeof(prefix) - 1))
		return false;
	presented = authorization + sizeof(prefix) - 1;
	if (!EVP_Digest(presented, strlen(presented), a, &la, EVP_sha256(), NULL) ||
	    !EVP_Digest(token, strlen(token), b, &lb, EVP_sha256(), NULL) || la != lb)
		return false;
	return CRYPTO_memcmp(a, b, la) == 0;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body,
			     const char *ctype, const char *hdr, const char *hdr_value)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (hdr)
		MHD_add_response_header(r, hdr, hdr_value);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A status page response: len bytes of data (kept, copied or freed as mode says), its type, the
 * page's security headers, no caching unless cacheable (the public CSS and JS), and up to two
 * more headers as name/value pairs (Location, Set-Cookie). */
static enum MHD_Result page_reply(struct MHD_Connection *conn, unsigned status, const char *data,
				  size_t len, enum MHD_ResponseMemoryMode mode, const char *ctype,
				  bool cacheable, const char *const hdrs[4])
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free((void *)data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "Content-Security-Policy", STATUS_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
				cacheable ? "private, max-age=60" : "no-store");
	for (unsigned i = 0; hdrs && i < 4 && hdrs[i]; i += 2)
		MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The admin summary: its own token (a leaked scrape token must not open business figures). */
static enum MHD_Result admin_reply(struct metrics_server *srv, struct MHD_Connection *conn)
{
	const char *json_type = "application/json";
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *body = NULL;
	unsigned status;

	if (!metrics_server_auth_ok(
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
		srv->admin_token))
		return reply(conn, MHD_HTTP_UNAUTHORIZED, "{\"error\":\"unauthorized\"}\n",
			     json_type, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	status = srv->admin(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "range"),
			    &body, srv->admin_ctx);
	if (!body)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}\n",
			     json_type, NULL, NULL);
	r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, json_type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static bool session_ok(struct metrics_server *srv, struct MHD_Connection *conn)
{
	return status_auth_session_ok(
	    srv->auth, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_COOKIE));
}

static enum MHD_Result login_page(struct MHD_Connection *conn, unsigned status,
				  const char *message, const char *const hdrs[4])
{
	char *page = status_login_page(message);

	if (!page)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
			     "text/plain; charset=utf-8", NULL, NULL);
	return page_reply(conn, status, page, strlen(page), MHD_RESPMEM_MUST_FREE,
			  "text/html; charset=utf-8", false, hdrs);
}

/* GET /: the page with a session, the login form without (and no figure either way: the page
 * fetches them). */
static enum MHD_Result status_root(struct metrics_server *srv, struct MHD_Connection *conn)
{
	const struct status_asset *a;

	if (!srv->auth)
		return page_reply(conn, MHD_HTTP_NOT_FOUND, status_disabled_html,
				  sizeof(status_disabled_html) - 1, MHD_RESPMEM_PERSISTENT,
				  "text/html; charset=utf-8", false, NULL);
	if (!session_ok(srv, conn))
		return login_page(conn, MHD_HTTP_OK, NULL, NULL);
	a = status_asset_dashboard();
	return page_reply(conn, MHD_HTTP_OK, a->data, a->len, MHD_RESPMEM_PERSISTENT,
			  a->content_type, false, NULL);
}

static enum MHD_Result status_api(struct metrics_server *srv, struct MHD_Connection *conn)
{
	char *json = NULL;

	if (!srv->auth)
		return reply(conn, MHD_HTTP_NOT_FOUND, "{\"error\":\"the status page is off: set "
			     "ADMIN_API_TOKEN\"}\n", "application/json", NULL, NULL);
	if (!session_ok(srv, conn) &&
	    !metrics_server_auth_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								 MHD_HTTP_HEADER_AUTHORIZATION),
				    srv->admin_token))
		return page_reply(conn, MHD_HTTP_UNAUTHORIZED, "{\"error\":\"unauthorized\"}\n",
				  sizeof("{\"error\":\"unauthorized\"}\n") - 1,
				  MHD_RESPMEM_PERSISTENT, "application/json", false, NULL);
	if (status_page_json(&srv->status, time(NULL), &json))
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}\n",
			     "application/json", NULL, NULL);
	return page_reply(conn, MHD_HTTP_OK, json, strlen(json), MHD_RESPMEM_MUST_FREE,
			  "application/json", false, NULL);
}

static void count_login(struct metrics_server *srv, enum status_login_result r)
{
	static const char *const outcome[] = {"ok", "refused", "malformed", "throttled"};
	const char *labels[1] = {outcome[r]};

	if (srv->logins)
		metrics_inc(srv->logins, labels);
}

/* POST /login and /logout, once the whole body is in (ps). A browser follows the 303 to /. */
static enum MHD_Result status_post(struct metrics_server *srv, struct MHD_Connection *conn,
				   const char *url, struct post_state *ps)
{
	const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *hdrs[4] = {MHD_HTTP_HEADER_LOCATION, "/", MHD_HTTP_HEADER_SET_COOKIE, NULL};
	char cookie[256];
	enum status_login_result r;

	if (!strcmp(url, "/logout")) {
		hdrs[3] = status_auth_clear_cookie(srv->tls);
		return page_reply(conn, MHD_HTTP_SEE_OTHER, "", 0, MHD_RESPMEM_PERSISTENT,
				  "text/plain; charset=utf-8", false, hdrs);
	}
	if (ps->too_large) {
		count_login(srv, STATUS_LOGIN_MALFORMED);
		return login_page(conn, MHD_HTTP_CONTENT_TOO_LARGE, "That is not a token.", NULL);
	}
	if (!ctype || strncasecmp(ctype, "application/x-www-form-urlencoded",
				  sizeof("application/x-www-form-urlencoded") - 1)) {
		count_login(srv, STATUS_LOGIN_MALFORMED);
		return login_page(conn, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
				  "Sign in with the form.", NULL);
	}
	r = status_auth_login(srv->auth, ps->body, ps->len, time(NULL));
	count_login(srv, r);
	switch (r) {
	case STATUS_LOGIN_OK:
		if (status_auth_set_cookie(srv->auth, srv->tls, cookie, sizeof(cookie)))
			break;
		hdrs[3] = cookie;
		return page_reply(conn, MHD_HTTP_SEE_OTHER, "", 0, MHD_RESPMEM_MUST_COPY,
				  "text/plain; charset=utf-8", false, hdrs);
	case STATUS_LOGIN_THROTTLED:
		return login_page(conn, MHD_HTTP_TOO_MANY_REQUESTS,
				  "Too many wrong tokens: wait a minute and try again.", NULL);
	case STATUS_LOGIN_MALFORMED:
		return login_page(conn, MHD_HTTP_BAD_REQUEST, "Enter the admin token.", NULL);
	case STATUS_LOGIN_REFUSED:
		break;
	}
	return login_page(conn, MHD_HTTP_UNAUTHORIZED, "Wrong token.", NULL);
}

/* Collects a POST body into the connection's post_state: more than STATUS_LOGIN_BODY_MAX
 * bytes is not read further (the answer is 413), so nothing unbounded is held. */
static enum MHD_Result post_collect(struct MHD_Connection *conn, const char *upload_data,
				    size_t *upload_data_size, void **con_cls, bool *done)
{
	struct post_state *ps = *con_cls;

	*done = false;
	if (!ps) {
		ps = calloc(1, sizeof(*ps));
		if (!ps)
			return MHD_NO;
		*con_cls = ps;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!ps->too_large && *upload_data_size <= STATUS_LOGIN_BODY_MAX - ps->len) {
			memcpy(ps->body + ps->len, upload_data, *upload_data_size);
			ps->len += *upload_data_size;
		} else {
			ps->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	ps->body[ps->len] = '\0';
	*done = true;
	return MHD_YES;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct post_state *ps = *con_cls;

	if (!ps)
		return;
	/* The body held the token. */
	OPENSSL_cleanse(ps, sizeof(*ps));
	free(ps);
	*con_cls = NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct metrics_server *srv = cls;
	struct MHD_Response *r;
	const struct status_asset *asset;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	const char *text_plain = "text/plain; charset=utf-8";

	if (!strcmp(method, MHD_HTTP_METHOD_POST) &&
	    (!strcmp(url, "/login") || !strcmp(url, "/logout")) && srv->auth) {
		bool done;

		ret = post_collect(conn, upload_data, upload_data_size, con_cls, &done);
		if (ret != MHD_YES || !done)
			return ret;
		return status_post(srv, conn, url, *con_cls);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", text_plain,
			     MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (!strcmp(url, "/healthz"))
		return reply(conn, MHD_HTTP_OK, "ok\n", text_plain, NULL, NULL);
	if (!strcmp(url, "/api/admin/metrics") && srv->admin && srv->admin_token)
		return admin_reply(srv, conn);
	if (!strcmp(url, "/"))
		return status_root(srv, conn);
	if (!strcmp(url, "/api/status"))
		return status_api(srv, conn);
	asset = status_asset_find(url);
	if (asset)
		return page_reply(conn, MHD_HTTP_OK, asset->data, asset->len,
				  MHD_RESPMEM_PERSISTENT, asset->content_type, true, NULL);
	if (strcmp(url, "/metrics") && strcmp(url, "/api/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "not found\n", text_plain, NULL, NULL);
	if (!metrics_server_auth_ok(
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
		srv->token))
		return reply(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized\n", text_plain,
			     MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (prom_render(srv->reg, &text, &len))
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "render failed\n", text_plain,
			     NULL, NULL);
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, PROM_CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ADDR:PORT, [V6]:PORT or :PORT into a sockaddr. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port_s;
	unsigned long port;
	char *end;

	if (listen[0] == '[') {
		const char *close = strchr(listen, ']');

		if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, listen + 1, (size_t)(close - listen - 1));
		host[close - listen - 1] = '\0';
		port_s = close + 2;
	} else {
		colon = strrchr(listen, ':');
		if (!colon || (size_t)(colon - listen) >= sizeof(host))
			return -EINVAL;
		memcpy(host, listen, (size_t)(colon - listen));
		host[colon - listen] = '\0';
		port_s = colon + 1;
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (listen[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -EINVAL;
		*sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (!host[0])
			s4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		*sl = sizeof(*s4);
	}
	return 0;
}

static int read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;
	int err = 0;

	if (!f)
		return -errno;
	buf = malloc(METRICS_SERVER_MAX_PEM + 1);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	n = fread(buf, 1, METRICS_SERVER_MAX_PEM, f);
	if (ferror(f) || n == METRICS_SERVER_MAX_PEM) {
		err = -EIO;
		goto cleanup;
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
cleanup:
	free(buf);
	fclose(f);
	return err;
}

/* The status page's sources and its login counter (found again when another server on the
 * same registry registered it first). */
static int status_register(struct metrics_server *srv, struct metrics_registry *reg,
			   const struct metrics_server_config *cfg)
{
	static const char *const labels[] = {"outcome"};
	struct metrics_family_opts o = {
	    .name = "bizprobe_status_logins_total",
	    .help = "Sign-ins to the status page by outcome: ok, refused (wrong token), malformed, "
		    "throttled (too many wrong tokens in a minute).",
	    .type = METRICS_COUNTER,
	    .label_names = labels,
	    .n_labels = 1,
	};
	int err;

	if (cfg->namespace) {
		srv->namespace = strdup(cfg->namespace);
		if (!srv->namespace)
			return -ENOMEM;
	}
	srv->status = (struct status_sources){
	    .reg = reg,
	    .ns = srv->namespace,
	    .recent = cfg->recent,
	    .admin = cfg->admin,
	    .admin_ctx = cfg->admin_ctx,
	};
	err = metrics_family_register(reg, &o, &srv->logins);
	if (err == -EEXIST) {
		srv->logins = metrics_registry_find(reg, o.name);
		err = 0;
	}
	return err;
}

int metrics_server_start(struct metrics_registry *reg, const struct metrics_server_config *cfg,
			 struct metrics_server **out)
{
	const char *listen = cfg && cfg->listen ? cfg->listen : METRICS_SERVER_DEFAULT_LISTEN;
	/* MHD_USE_AUTO: epoll, not select(). Each traced process holds perf event descriptors, so
	 * with a few dozen of them a scrape's socket is numbered past select()'s 1024. */
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	bool tls = cfg && (cfg->tls_cert_path || cfg->tls_key_path);
	struct metrics_server *srv = NULL;
	const union MHD_DaemonInfo *info;
	struct sockaddr_storage ss;
	socklen_t sl;
	int err;

	if (!reg || !out)
		return -EINVAL;
	err = parse_listen(listen, &ss, &sl);
	if (err)
		return err;
	if (tls && !(cfg->tls_cert_path && cfg->tls_key_path))
		return -EINVAL;
	if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		return -ENOTSUP;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->reg = reg;
	if (cfg && cfg->token && *cfg->token) {
		srv->token = strdup(cfg->token);
		if (!srv->token) {
			err = -ENOMEM;
			goto fail;
		}
	}
	if (cfg && cfg->admin_token && *cfg->admin_token) {
		srv->admin = cfg->admin;
		srv->admin_ctx = cfg->admin_ctx;
		srv->admin_token = strdup(cfg->admin_token);
		srv->auth = status_auth_new(cfg->admin_token);
		err = status_register(srv, reg, cfg);
		if (!srv->admin_token || !srv->auth || err) {
			err = err ?: -ENOMEM;
			goto fail;
		}
	}
	srv->tls = tls;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls) {
		err = read_file(cfg->tls_cert_path, &srv->cert_pem);
		if (!err)
			err = read_file(cfg->tls_key_path, &srv->key_pem);
		if (err)
			goto fail;
		flags |= MHD_USE_TLS;
	}
	/* The port argument is ignored with MHD_OPTION_SOCK_ADDR; options without TLS end at the
	 * first MHD_OPTION_END. */
	srv->daemon = MHD_start_daemon(
	    flags, 0, NULL, NULL, handle, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_SERVER_MAX_CONNS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_SERVER_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
	    tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, srv->key_pem,
	    MHD_OPTION_HTTPS_MEM_CERT, srv->cert_pem, MHD_OPTION_END);
	if (!srv->daemon) {
		err = -EIO;
		goto fail;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info ? info->port : 0;
	*out = srv;
	return 0;
fail:
	metrics_server_stop(srv);
	return err;
}

uint16_t metrics_server_port(const struct metrics_server *srv)
{
	return srv ? srv->port : 0;
}

void metrics_server_stop(struct metrics_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	free(srv->token);
	if (srv->admin_token)
		OPENSSL_cleanse(srv->admin_token, strlen(srv->admin_token));
	free(srv->admin_token);
	status_auth_free(srv->auth);
	free(srv->namespace);
	if (srv->key_pem)
		OPENSSL_cleanse(srv->key_pem, strlen(srv->key_pem));
	free(srv->key_pem);
	free(srv->cert_pem);
	free(srv);
}
