// SPDX-License-Identifier: MIT
/*
 * PID -> container -> pod from the cgroup path the kubelet and the runtime gave the process.
 * The layouts (kubelet's cgroup_manager_linux.go naming, as of 1.2x-1.3x):
 *   systemd driver:  /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid_>.slice/
 *                    cri-containerd-<id>.scope | crio-<id>.scope | docker-<id>.scope
 *                    (guaranteed pods: /kubepods.slice/kubepods-pod<uid_>.slice/...)
 *                    uid_ is the pod uid with '-' escaped as '_' (systemd reserves '-')
 *   cgroupfs driver: /kubepods/<qos>/pod<uid>/<id> (guaranteed: /kubepods/pod<uid>/<id>),
 *                    CRI-O there names it crio-<id>
 * Seen from another cgroup namespace (bizprobe in its own container, the default on cgroup v2)
 * the path starts with "/.." components up to the common ancestor, so nothing here assumes a
 * root: components are recognized by their own names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bizprobe/k8s.h"
#include "k8s_internal.h"

struct comp {
	const char *s;
	size_t n;
};

#define MAX_COMPONENTS 256

void k8s_seterr(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

const char *k8s_qos_name(enum k8s_qos q)
{
	switch (q) {
	case K8S_QOS_GUARANTEED:
		return "guaranteed";
	case K8S_QOS_BURSTABLE:
		return "burstable";
	case K8S_QOS_BESTEFFORT:
		return "besteffort";
	default:
		return "unknown";
	}
}

const char *k8s_runtime_name(enum k8s_runtime r)
{
	switch (r) {
	case K8S_RUNTIME_CONTAINERD:
		return "containerd";
	case K8S_RUNTIME_CRIO:
		return "cri-o";
	case K8S_RUNTIME_DOCKER:
		return "docker";
	default:
		return "unknown";
	}
}

static bool comp_eq(struct comp c, const char *s)
{
	return c.n == strlen(s) && !memcmp(c.s, s, c.n);
}

static bool comp_prefix(struct comp c, const char *p)
{
	size_t n = strlen(p);

	return c.n >= n && !memcmp(c.s, p, n);
}

static bool comp_suffix(struct comp c, const char *p)
{
	size_t n = strlen(p);

	return c.n >= n && !memcmp(c.s + c.n - n, p, n);
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

/* A pod uid: a UUID (8-4-4-4-12, with sep as separator) or a static pod's 32-hex hash. */
static bool parse_uid(const char *s, size_t n, char sep, char out[K8S_POD_UID_MAX + 1])
{
	static const size_t dash_at[] = {8, 13, 18, 23};
	size_t d = 0;

	if (n == 32) {
		for (size_t i = 0; i < n; i++)
			if (!is_hex(s[i]))
				return false;
	} else if (n == 36) {
		for (size_t i = 0; i < n; i++) {
			if (d < 4 && i == dash_at[d]) {
				if (s[i] != sep)
					return false;
				d++;
			} else if (!is_hex(s[i])) {
				return false;
			}
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = s[i] == sep ? '-' : s[i];
	out[n] = '\0';
	return true;
}

static bool parse_id(const char *s, size_t n, char out[K8S_CONTAINER_ID_LEN + 1])
{
	if (n != K8S_CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hex(s[i]))
			return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static int qos_of(struct comp c, enum k8s_qos *q)
{
	if (comp_eq(c, "burstable"))
		*q = K8S_QOS_BURSTABLE;
	else if (comp_eq(c, "besteffort"))
		*q = K8S_QOS_BESTEFFORT;
	else if (comp_eq(c, "guaranteed"))
		*q = K8S_QOS_GUARANTEED;
	else
		return -1;
	return 0;
}

enum match { NO_MATCH, MATCHED, MALFORMED };

/* kubepods-pod<uid>.slice, kubepods-<qos>-pod<uid>.slice. The QoS slices themselves
 * (kubepods-burstable.slice) are not pods. */
static enum match systemd_pod(struct comp c, struct k8s_container_ref *out)
{
	struct comp rest;
	enum k8s_qos q = K8S_QOS_GUARANTEED;

	if (!comp_prefix(c, "kubepods-") || !comp_suffix(c, ".slice"))
		return NO_MATCH;
	rest.s = c.s + strlen("kubepods-");
	rest.n = c.n - strlen("kubepods-") - strlen(".slice");
	if (comp_eq(rest, "burstable") || comp_eq(rest, "besteffort"))
		return NO_MATCH;
	if (comp_prefix(rest, "burstable-")) {
		q = K8S_QOS_BURSTABLE;
		rest.s += strlen("burstable-");
		rest.n -= strlen("burstable-");
	} else if (comp_prefix(rest, "besteffort-")) {
		q = K8S_QOS_BESTEFFORT;
		rest.s += strlen("besteffort-");
		rest.n -= strlen("besteffort-");
	}
	if (!comp_prefix(rest, "pod") || !parse_uid(rest.s + 3, rest.n - 3, '_', out->pod_uid))
		return MALFORMED;
	out->qos = q;
	out->driver = K8S_DRIVER_SYSTEMD;
	return MATCHED;
}

/* pod<uid> under kubepods, a QoS directory, or ".." (a sibling seen from a cgroup namespace). */
static enum match cgroupfs_pod(const struct comp *c, size_t i, struct k8s_container_ref *out)
{
	enum k8s_qos q = K8S_QOS_UNKNOWN;
	bool sibling;

	if (!comp_prefix(c[i], "pod") || i == 0)
		return NO_MATCH;
	sibling = comp_eq(c[i - 1], "..");

	if (comp_eq(c[i - 1], "kubepods"))
		q = K8S_QOS_GUARANTEED;
	else if (qos_of(c[i - 1], &q) && !sibling)
		return NO_MATCH;
	/* Under "..", "pod..." may be any cgroup's name (podman-...): only a uid makes it a pod. */
	if (!parse_uid(c[i].s + 3, c[i].n - 3, '-', out->pod_uid))
		return sibling ? NO_MATCH : MALFORMED;
	out->qos = q;
	out->driver = K8S_DRIVER_CGROUPFS;
	return MATCHED;
}

/* A container's own cgroup: <runtime>-<id>.scope (systemd), crio-<id> or a bare id (cgroupfs). */
static enum match container(struct comp c, bool bare_ok, struct k8s_container_ref *out)
{
	static const struct {
		const char *prefix;
		enum k8s_runtime rt;
	} scopes[] = {
	    {"cri-containerd-", K8S_RUNTIME_CONTAINERD},
	    {"crio-", K8S_RUNTIME_CRIO},
	    {"docker-", K8S_RUNTIME_DOCKER},
	};
	struct comp id = c;

	if (comp_prefix(c, "crio-conmon-"))
		return NO_MATCH; /* CRI-O's monitor process, not the container */
	for (size_t k = 0; k < sizeof(scopes) / sizeof(scopes[0]); k++) {
		if (!comp_prefix(c, scopes[k].prefix))
			continue;
		id.s = c.s + strlen(scopes[k].prefix);
		id.n = c.n - strlen(scopes[k].prefix);
		if (comp_suffix(id, ".scope"))
			id.n -= strlen(".scope");
		if (!parse_id(id.s, id.n, out->container_id))
			return MALFORMED;
		out->runtime = scopes[k].rt;
		return MATCHED;
	}
	if (bare_ok && parse_id(c.s, c.n, out->container_id)) {
		out->runtime = K8S_RUNTIME_UNKNOWN;
		return MATCHED;
	}
	return NO_MATCH;
}

static int split(const char *path, size_t len, struct comp *c, size_t *n, char *err, size_t err_len)
{
	size_t i = 1, start;

	*n = 0;
	while (i <= len) {
		start = i;
		while (i < len && path[i] != '/')
			i++;
		if (i > start) {
			if (*n == MAX_COMPONENTS) {
				k8s_seterr(err, err_len, "more than %d path components",
				       MAX_COMPONENTS);
				return -E2BIG;
			}
			c[(*n)++] = (struct comp){path + start, i - start};
		}
		i++;
	}
	return 0;
}

int k8s_cgroup_parse_path(const char *path, size_t len, struct k8s_container_ref *out, char *err,
			  size_t err_len)
{
	struct comp c[MAX_COMPONENTS];
	size_t n, pod_at = 0;
	enum match m = NO_MATCH;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > K8S_CGROUP_LINE_MAX) {
		k8s_seterr(err, err_len, "cgroup path of %zu bytes (more than %d)", len,
		       K8S_CGROUP_LINE_MAX);
		return -E2BIG;
	}
	if (!len || path[0] != '/') {
		k8s_seterr(err, err_len, "cgroup path is not absolute");
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
			k8s_seterr(err, err_len, "control character in cgroup path at byte %zu", i);
			return -EINVAL;
		}
	}
	rc = split(path, len, c, &n, err, err_len);
	if (rc)
		return rc;
	/* The innermost pod: a process can only be in one, but a cgroup namespace's ".." is
	 * read left to right. */
	for (size_t i = 0; i < n; i++) {
		struct k8s_container_ref tmp = {0};
		enum match pm = systemd_pod(c[i], &tmp);

		if (pm == NO_MATCH)
			pm = cgroupfs_pod(c, i, &tmp);
		if (pm == MALFORMED) {
			k8s_seterr(err, err_len, "malformed pod cgroup \"%.*s\"", (int)c[i].n, c[i].s);
			return -EINVAL;
		}
		if (pm == MATCHED) {
			memcpy(out->pod_uid, tmp.pod_uid, sizeof(out->pod_uid));
			out->qos = tmp.qos;
			out->driver = tmp.driver;
			pod_at = i + 1;
			m = MATCHED;
		}
	}
	if (m == MATCHED) {
		if (pod_at == n) {
			k8s_seterr(err, err_len, "pod %s's own cgroup, not one of its containers",
			       out->pod_uid);
			return -ENOENT;
		}
		m = container(c[pod_at], true, out);
		if (m == MATCHED)
			return 0;
		if (m == MALFORMED || !comp_prefix(c[pod_at], "crio-conmon-")) {
			k8s_seterr(err, err_len, "pod %s: \"%.*s\" is no container cgroup",
			       out->pod_uid, (int)c[pod_at].n, c[pod_at].s);
			return -EINVAL;
		}
		k8s_seterr(err, err_len, "pod %s: CRI-O's conmon, not a container", out->pod_uid);
		return -ENOENT;
	}
	/* No pod in sight: a container scope alone (a sibling container seen from inside the
	 * pod's cgroup namespace, or plain Docker), or /docker/<id>, or "../<id>". */
	for (size_t i = n; i-- > 0;) {
		bool bare = i > 0 && (comp_eq(c[i - 1], "docker") || comp_eq(c[i - 1], ".."));

		m = container(c[i], bare, out);
		if (m == MALFORMED) {
			k8s_seterr(err, err_len, "malformed container cgroup \"%.*s\"", (int)c[i].n,
			       c[i].s);
			return -EINVAL;
		}
		if (m == MATCHED) {
			if (out->runtime == K8S_RUNTIME_UNKNOWN && comp_eq(c[i - 1], "docker"))
				out->runtime = K8S_RUNTIME_DOCKER;
			return 0;
		}
	}
	k8s_seterr(err, err_len, "not a container's cgroup");
	return -ENOENT;
}

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

int k8s_cgroup_parse(const char *text, size_t len, struct k8s_container_ref *out, char *err,
		     size_t err_len)
{
	struct k8s_container_ref v1 = {0}, cur;
	char why[256] = "", first_why[300] = "";
	int first_bad = 0, lineno = 0;
	bool have_v1 = false, any = false;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	if (len > K8S_CGROUP_FILE_MAX) {
		k8s_seterr(err, err_len, "cgroup file of %zu bytes (more than %d)", len,
		       K8S_CGROUP_FILE_MAX);
		return -E2BIG;
	}
	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;
		const char *c1, *c2;
		bool v2;
		int rc;

		pos += ll + (nl ? 1 : 0);
		lineno++;
		if (!ll)
			continue;
		if (ll > K8S_CGROUP_LINE_MAX) {
			k8s_seterr(err, err_len, "line %d: %zu bytes (more than %d)", lineno, ll,
			       K8S_CGROUP_LINE_MAX);
			return -E2BIG;
		}
		c1 = memchr(line, ':', ll);
		c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line)) : NULL;
		if (!c2 || !all_digits(line, (size_t)(c1 - line))) {
			k8s_seterr(err, err_len, "line %d: not \"ID:CONTROLLERS:PATH\"", lineno);
			return -EINVAL;
		}
		any = true;
		v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
		rc = k8s_cgroup_parse_path(c2 + 1, ll - (size_t)(c2 + 1 - line), &cur, why,
					   sizeof(why));
		if (rc == -E2BIG ||
		    (rc == -EINVAL && !strcmp(why, "cgroup path is not absolute"))) {
			k8s_seterr(err, err_len, "line %d: %s", lineno, why);
			return rc;
		}
		if (rc == 0 && v2) {
			*out = cur;
			out->v2 = true;
			return 0;
		}
		if (rc == 0 && !have_v1) {
			v1 = cur;
			have_v1 = true;
		}
		if (rc == -EINVAL && !first_bad) {
			first_bad = rc;
			snprintf(first_why, sizeof(first_why), "line %d: %s", lineno, why);
		}
	}
	if (have_v1) {
		*out = v1;
		return 0;
	}
	if (first_bad) {
		k8s_seterr(err, err_len, "%s", first_why);
		return first_bad;
	}
	if (!any) {
		k8s_seterr(err, err_len, "empty cgroup file");
		return -EINVAL;
	}
	k8s_seterr(err, err_len, "%s", why[0] ? why : "not a container's cgroup");
	return -ENOENT;
}

int k8s_cgroup_read(const char *proc_root, pid_t pid, struct k8s_container_ref *out, char *err,
		    size_t err_len)
{
	char path[256], *buf;
	size_t n = 0;
	ssize_t r;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root ? proc_root : "/proc", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		k8s_seterr(err, err_len, "%s: %s", path, strerror(errno));
		return rc;
	}
	/* One byte more than allowed, to tell a file at the limit from one over it. */
	buf = malloc(K8S_CGROUP_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		k8s_seterr(err, err_len, "out of memory");
		return -ENOMEM;
	}
	while (n < K8S_CGROUP_FILE_MAX + 1) {
		r = read(fd, buf + n, K8S_CGROUP_FILE_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			k8s_seterr(err, err_len, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = k8s_cgroup_parse(buf, n, out, err, err_len);
out:
	free(buf);
	close(fd);
	return rc;
}
