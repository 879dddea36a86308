// SPDX-License-Identifier: MIT
/*
 * Prometheus endpoint on libmicrohttpd (Debian 0.9.75): one internal polling thread, bounded
 * connections and timeouts, the registry rendered per scrape under its own mutex.
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

#include "bizprobe/metrics_server.h"

#define METRICS_SERVER_DEFAULT_LISTEN ":9464"
#define METRICS_SERVER_MAX_CONNS      64 /* Prometheus scrapes with one; leave room for humans */
#define METRICS_SERVER_TIMEOUT_S      10
#define METRICS_SERVER_MAX_PEM	      (1 << 20)

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

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct metrics_server *srv = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = NULL;
	size_t len = 0;
	const char *text_plain = "text/plain; charset=utf-8";

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", text_plain,
			     MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (!strcmp(url, "/healthz"))
		return reply(conn, MHD_HTTP_OK, "ok\n", text_plain, NULL, NULL);
	if (!strcmp(url, "/api/admin/metrics") && srv->admin && srv->admin_token)
		return admin_reply(srv, conn);
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
	if (cfg && cfg->admin && cfg->admin_token && *cfg->admin_token) {
		srv->admin = cfg->admin;
		srv->admin_ctx = cfg->admin_ctx;
		srv->admin_token = strdup(cfg->admin_token);
		if (!srv->admin_token) {
			err = -ENOMEM;
			goto fail;
		}
	}
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
	free(srv->admin_token);
	if (srv->key_pem)
		OPENSSL_cleanse(srv->key_pem, strlen(srv->key_pem));
	free(srv->key_pem);
	free(srv->cert_pem);
	free(srv);
}
