// SPDX-License-Identifier: MIT
/*
 * What the node agent and the status page read from others: /proc/PID/cgroup files (a
 * container with a delegated cgroup names its own sub-cgroups), the kube API's pod lists and
 * watch events (bounded by the cache's caps), and a browser's login body and Cookie header.
 * Input: a mode byte, then the bytes it reads.
 *   mode % 3 == 0  a cgroup file: parsed whole and as one path; what a parse returns is
 *                  terminated within its fields and names a known QoS, runtime and driver
 *   mode % 3 == 1  pod JSON: strings of the input applied as a list, then as watch events, to
 *                  a cache capped at 8 pods; it never holds more than its caps
 *   mode % 3 == 2  a login body and a Cookie header: a login is OK only for a body long enough
 *                  to hold the token, and a header is a session only when it holds the
 *                  session value this process handed out
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "bizprobe/k8s.h"
#include "bizprobe/status_page.h"
#include "fuzz_util.h"

#define FUZZ_TOKEN "fuzz-admin-token"
#define MAX_PODS   8
#define MAX_LABELS 4096

static struct k8s_pod_cache *cache;
static struct status_auth *auth;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f))
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/bizprobe-fuzz-k8s-XXXXXX";
	char token[64], ca[64], err[256];
	struct k8s_pod_cache_config cfg = {
	    .api_url = "https://127.0.0.1:9",
	    .token_file = token,
	    .ca_file = ca,
	    .node_name = "node-a",
	    .max_pods = MAX_PODS,
	    .max_label_bytes = MAX_LABELS,
	};

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	snprintf(token, sizeof(token), "%s/token", dir);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	write_file(token, "t\n");
	write_file(ca, "");
	cache = k8s_pod_cache_new(&cfg, err, sizeof(err));
	auth = status_auth_new(FUZZ_TOKEN);
	if (!cache || !auth)
		abort();
	/* The harness's own oracle works: the right form opens, a wrong one does not. */
	if (status_auth_login(auth, "token=" FUZZ_TOKEN, sizeof("token=" FUZZ_TOKEN) - 1, 0) !=
		STATUS_LOGIN_OK ||
	    status_auth_login(auth, "token=x", 7, 0) != STATUS_LOGIN_REFUSED)
		abort();
	/* The files were only checked for being readable; nothing is fetched. */
	unlink(token);
	unlink(ca);
	rmdir(dir);
	return 0;
}

static void check_ref(const struct k8s_container_ref *r)
{
	if (strnlen(r->pod_uid, sizeof(r->pod_uid)) == sizeof(r->pod_uid) ||
	    strnlen(r->container_id, sizeof(r->container_id)) == sizeof(r->container_id) ||
	    r->qos > K8S_QOS_BESTEFFORT || r->runtime > K8S_RUNTIME_DOCKER ||
	    r->driver > K8S_DRIVER_CGROUPFS)
		abort();
	fuzz_sink += strlen(k8s_qos_name(r->qos)) + strlen(k8s_runtime_name(r->runtime));
}

static void cgroup_file(const uint8_t *data, size_t n)
{
	uint8_t *p = fuzz_dup(data, n); /* exact size: no NUL to lean on */
	struct k8s_container_ref ref;
	char err[256];

	memset(&ref, 0, sizeof(ref));
	if (k8s_cgroup_parse((const char *)p, n, &ref, err, sizeof(err)) == 0)
		check_ref(&ref);
	memset(&ref, 0, sizeof(ref));
	if (k8s_cgroup_parse_path((const char *)p, n, &ref, err, sizeof(err)) == 0)
		check_ref(&ref);
	free(p);
}

static void pod_json(struct fuzz_in *in)
{
	struct k8s_pod_cache_stats st;
	size_t len;
	const uint8_t *s = fuzz_bytes(in, SIZE_MAX, &len);
	uint8_t *c = fuzz_dup(s, len);

	k8s_pod_cache_apply_list(cache, (const char *)c, len);
	free(c);
	while (in->n) {
		s = fuzz_bytes(in, SIZE_MAX, &len);
		c = fuzz_dup(s, len);
		k8s_pod_cache_apply_event(cache, (const char *)c, len);
		free(c);
	}
	k8s_pod_cache_get_stats(cache, &st);
	if (st.pods > MAX_PODS || st.label_bytes > MAX_LABELS)
		abort();
}

static void login(struct fuzz_in *in)
{
	size_t blen;
	const uint8_t *b = fuzz_bytes(in, STATUS_LOGIN_BODY_MAX, &blen);
	uint8_t *body = fuzz_dup(b, blen);
	char *header = fuzz_str(in, STATUS_COOKIE_HEADER_MAX);
	char set_cookie[256], session[128];
	enum status_login_result r;
	const char *value;
	size_t vlen;

	/* A minute apart at least, so that the failure budget never refuses a right token. */
	r = status_auth_login(auth, (const char *)body, blen, (time_t)fuzz_u8(in) * 120);
	/* Decoding never makes a form longer: a right token needs at least "token=" and it. */
	if (r > STATUS_LOGIN_THROTTLED ||
	    (r == STATUS_LOGIN_OK && blen < sizeof("token=" FUZZ_TOKEN) - 1))
		abort();
	if (status_auth_session_ok(auth, header)) {
		/* Only the value this process handed out opens a session. */
		if (status_auth_set_cookie(auth, false, set_cookie, sizeof(set_cookie)))
			abort();
		value = strchr(set_cookie, '=');
		vlen = value ? strcspn(value + 1, ";") : 0;
		if (!value || vlen >= sizeof(session))
			abort();
		memcpy(session, value + 1, vlen);
		session[vlen] = '\0';
		if (!strstr(header, session))
			abort();
	}
	free(body);
	free(header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};

	switch (fuzz_u8(&in) % 3) {
	case 0:
		cgroup_file(in.p, in.n);
		break;
	case 1:
		pod_json(&in);
		break;
	default:
		login(&in);
		break;
	}
	return 0;
}
