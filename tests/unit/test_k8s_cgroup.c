// SPDX-License-Identifier: MIT
/* k8s_cgroup: each kubelet/runtime layout gives exactly its pod uid, container id, QoS, runtime
 * and driver; hybrid files prefer the v2 line; paths seen from another cgroup namespace; hostile
 * input is an error with a message, never a crash or a wrong answer. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* Refusals list only path and rc. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "bizprobe/k8s.h"

#define UID	   "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
#define UID_	   "1a2b3c4d_5e6f_4a8b_9c0d_1e2f3a4b5c6d"
#define STATIC_UID "6e3a5cbd6f3d0d3e7a1b8c0e8d7f0a12"
#define CID	   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CID2	   "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

struct want {
	const char *path;
	int rc;
	const char *uid;
	const char *cid;
	enum k8s_qos qos;
	enum k8s_runtime rt;
	enum k8s_cgroup_driver drv;
};

static const struct want paths[] = {
    /* systemd driver, containerd, each QoS class */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
     ".slice/cri-containerd-" CID ".scope",
     0, UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_CONTAINERD, K8S_DRIVER_SYSTEMD},
    {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
     ".slice/cri-containerd-" CID ".scope",
     0, UID, CID, K8S_QOS_BESTEFFORT, K8S_RUNTIME_CONTAINERD, K8S_DRIVER_SYSTEMD},
    {"/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" CID ".scope", 0, UID, CID,
     K8S_QOS_GUARANTEED, K8S_RUNTIME_CONTAINERD, K8S_DRIVER_SYSTEMD},
    /* systemd driver, CRI-O and Docker (dockershim / cri-dockerd) */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/crio-" CID
     ".scope",
     0, UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_CRIO, K8S_DRIVER_SYSTEMD},
    {"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/docker-" CID
     ".scope",
     0, UID, CID, K8S_QOS_BESTEFFORT, K8S_RUNTIME_DOCKER, K8S_DRIVER_SYSTEMD},
    /* a static pod: the kubelet's hash as uid */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" STATIC_UID
     ".slice/cri-containerd-" CID ".scope",
     0, STATIC_UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_CONTAINERD, K8S_DRIVER_SYSTEMD},
    /* a container that made cgroups of its own below its scope */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
     ".slice/cri-containerd-" CID ".scope/init.scope",
     0, UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_CONTAINERD, K8S_DRIVER_SYSTEMD},
    /* cgroupfs driver: bare ids, CRI-O's crio-<id>, every QoS */
    {"/kubepods/burstable/pod" UID "/" CID, 0, UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_UNKNOWN,
     K8S_DRIVER_CGROUPFS},
    {"/kubepods/besteffort/pod" UID "/" CID, 0, UID, CID, K8S_QOS_BESTEFFORT, K8S_RUNTIME_UNKNOWN,
     K8S_DRIVER_CGROUPFS},
    {"/kubepods/guaranteed/pod" UID "/" CID, 0, UID, CID, K8S_QOS_GUARANTEED, K8S_RUNTIME_UNKNOWN,
     K8S_DRIVER_CGROUPFS},
    {"/kubepods/pod" UID "/" CID, 0, UID, CID, K8S_QOS_GUARANTEED, K8S_RUNTIME_UNKNOWN,
     K8S_DRIVER_CGROUPFS},
    {"/kubepods/burstable/pod" UID "/crio-" CID, 0, UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_CRIO,
     K8S_DRIVER_CGROUPFS},
    /* kind and k3s nest kubepods under their own cgroup */
    {"/system.slice/k3s.service/kubepods/besteffort/pod" UID "/" CID, 0, UID, CID,
     K8S_QOS_BESTEFFORT, K8S_RUNTIME_UNKNOWN, K8S_DRIVER_CGROUPFS},
    /* bizprobe in its own cgroup namespace (a container of another pod): relative paths */
    {"/../../kubepods-burstable-pod" UID_ ".slice/cri-containerd-" CID ".scope", 0, UID, CID,
     K8S_QOS_BURSTABLE, K8S_RUNTIME_CONTAINERD, K8S_DRIVER_SYSTEMD},
    {"/../../../burstable/pod" UID "/" CID, 0, UID, CID, K8S_QOS_BURSTABLE, K8S_RUNTIME_UNKNOWN,
     K8S_DRIVER_CGROUPFS},
    {"/../../pod" UID "/" CID, 0, UID, CID, K8S_QOS_UNKNOWN, K8S_RUNTIME_UNKNOWN,
     K8S_DRIVER_CGROUPFS},
    /* ... of the same pod: the sibling's container shows, its pod does not (API by id) */
    {"/../cri-containerd-" CID2 ".scope", 0, "", CID2, K8S_QOS_UNKNOWN, K8S_RUNTIME_CONTAINERD,
     K8S_DRIVER_NONE},
    {"/../" CID2, 0, "", CID2, K8S_QOS_UNKNOWN, K8S_RUNTIME_UNKNOWN, K8S_DRIVER_NONE},
    /* plain Docker, no pod */
    {"/system.slice/docker-" CID ".scope", 0, "", CID, K8S_QOS_UNKNOWN, K8S_RUNTIME_DOCKER,
     K8S_DRIVER_NONE},
    {"/docker/" CID, 0, "", CID, K8S_QOS_UNKNOWN, K8S_RUNTIME_DOCKER, K8S_DRIVER_NONE},
    /* not containers */
    {"/", -ENOENT},
    {"/user.slice/user-0.slice/session-1.scope", -ENOENT},
    {"/kubepods.slice/kubepods-burstable.slice", -ENOENT},
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice", -ENOENT},
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
     ".slice/crio-conmon-" CID ".scope",
     -ENOENT},
    {"/system.slice/containerd.service", -ENOENT},
    {"/" CID, -ENOENT}, /* a bare id with nothing saying it is a container's */
    {"/../podman-pause.scope", -ENOENT},
    {"/process_api/549ea3c4ccd18e13ebffbdfc0e6262c8", -ENOENT},
    /* names that claim a pod or container and are wrong */
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnot_a_uid.slice/"
     "cri-containerd-" CID ".scope",
     -EINVAL},
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
     ".slice/cri-containerd-0123.scope",
     -EINVAL},
    {"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
     ".slice/cri-containerd-" CID "00.scope",
     -EINVAL},
    {"/kubepods/burstable/pod" UID "/" CID "x", -EINVAL},
    {"/kubepods/burstable/pod" UID "/"
     "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
     "ABCDEF",
     -EINVAL}, /* ids are lowercase */
    {"/kubepods/burstable/podzz/" CID, -EINVAL},
    {"/kubepods.slice/kubepods-pod" UID ".slice/cri-containerd-" CID ".scope",
     -EINVAL}, /* systemd escapes '-' as '_': dashes here are not a uid */
    {"/system.slice/docker-xyz.scope", -EINVAL},
    {"kubepods/burstable/pod" UID "/" CID, -EINVAL}, /* relative */
    {"", -EINVAL},
    {"/kubepods/burstable/pod" UID "/\t" CID, -EINVAL},
};

static void test_layouts(void **state)
{
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		const struct want *w = &paths[i];
		struct k8s_container_ref r;
		char err[256] = "";
		int rc = k8s_cgroup_parse_path(w->path, strlen(w->path), &r, err, sizeof(err));

		if (rc != w->rc)
			fail_msg("%s: rc %d (%s), want %d", w->path, rc, err, w->rc);
		if (rc) {
			/* Every refusal says why. */
			if (!err[0])
				fail_msg("%s: no message", w->path);
			continue;
		}
		assert_string_equal(r.pod_uid, w->uid);
		assert_string_equal(r.container_id, w->cid);
		assert_int_equal(r.qos, w->qos);
		assert_int_equal(r.runtime, w->rt);
		assert_int_equal(r.driver, w->drv);
		assert_false(r.v2);
	}
}

static void test_messages(void **state)
{
	struct k8s_container_ref r;
	char err[256];
	const char *p =
	    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podnope.slice/x";

	assert_int_equal(k8s_cgroup_parse_path(p, strlen(p), &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "malformed pod cgroup \"kubepods-burstable-podnope.slice\"");
	p = "/kubepods/burstable/pod" UID "/sandbox";
	assert_int_equal(k8s_cgroup_parse_path(p, strlen(p), &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "pod " UID ": \"sandbox\" is no container cgroup");
	p = "/";
	assert_int_equal(k8s_cgroup_parse_path(p, 1, &r, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "not a container's cgroup");
	/* A NULL or empty err buffer is fine. */
	assert_int_equal(k8s_cgroup_parse_path(p, 1, &r, NULL, 0), -ENOENT);
}

/* len bytes exactly: the bytes after them (here a longer id) are not read. */
static void test_length_bounded(void **state)
{
	const char *p = "/kubepods/pod" UID "/" CID "ffff";
	struct k8s_container_ref r;

	assert_int_equal(k8s_cgroup_parse_path(p, strlen(p) - 4, &r, NULL, 0), 0);
	assert_string_equal(r.container_id, CID);
	assert_int_equal(k8s_cgroup_parse_path(p, strlen(p), &r, NULL, 0), -EINVAL);
}

static void test_hybrid_file(void **state)
{
	/* This machine's shape: v1 controllers at their roots, v2 holding the pod. */
	const char *f = "9:name=systemd:/\n"
			"8:pids:/\n"
			"4:memory:/process_api/549ea3c4ccd18e13ebffbdfc0e6262c8\n"
			"1:cpu,cpuacct:/\n"
			"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
			".slice/cri-containerd-" CID ".scope\n";
	struct k8s_container_ref r;
	char err[256] = "";

	assert_int_equal(k8s_cgroup_parse(f, strlen(f), &r, err, sizeof(err)), 0);
	assert_string_equal(r.pod_uid, UID);
	assert_string_equal(r.container_id, CID);
	assert_int_equal(r.qos, K8S_QOS_BESTEFFORT);
	assert_true(r.v2);
}

static void test_v2_wins(void **state)
{
	/* v1 and v2 disagree (a process moved in v2 only): the unified hierarchy is the truth. */
	const char *f = "4:memory:/kubepods/burstable/pod" UID "/" CID "\n"
			"0::/kubepods/besteffort/pod" STATIC_UID "/" CID2 "\n";
	struct k8s_container_ref r;

	assert_int_equal(k8s_cgroup_parse(f, strlen(f), &r, NULL, 0), 0);
	assert_string_equal(r.pod_uid, STATIC_UID);
	assert_string_equal(r.container_id, CID2);
	assert_true(r.v2);
}

static void test_v1_only(void **state)
{
	/* cgroup v1 with the cgroupfs driver: every controller line holds the pod; no 0:: line
	 * (or one at "/", as on hybrid machines where the kubelet only uses v1). Last line has no
	 * newline. */
	const char *f = "12:blkio:/kubepods/burstable/pod" UID "/" CID "\n"
			"11:cpu,cpuacct:/kubepods/burstable/pod" UID "/" CID "\n"
			"1:name=systemd:/kubepods/burstable/pod" UID "/" CID "\n"
			"0::/";
	struct k8s_container_ref r;

	assert_int_equal(k8s_cgroup_parse(f, strlen(f), &r, NULL, 0), 0);
	assert_string_equal(r.pod_uid, UID);
	assert_string_equal(r.container_id, CID);
	assert_int_equal(r.qos, K8S_QOS_BURSTABLE);
	assert_int_equal(r.driver, K8S_DRIVER_CGROUPFS);
	assert_false(r.v2);
}

static void test_file_errors(void **state)
{
	struct k8s_container_ref r;
	char err[256];
	const char *host = "1:cpu:/\n0::/user.slice\n";
	const char *bad = "0::/\ngarbage\n";
	const char *nonum = "x::/\n";
	const char *rel = "0::kubepods\n";
	const char *badpod = "1:cpu:/kubepods/burstable/podzz/" CID "\n0::/\n";

	assert_int_equal(k8s_cgroup_parse(host, strlen(host), &r, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "not a container's cgroup");
	assert_int_equal(k8s_cgroup_parse(bad, strlen(bad), &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 2: not \"ID:CONTROLLERS:PATH\"");
	assert_int_equal(k8s_cgroup_parse(nonum, strlen(nonum), &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: not \"ID:CONTROLLERS:PATH\"");
	assert_int_equal(k8s_cgroup_parse(rel, strlen(rel), &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: cgroup path is not absolute");
	assert_int_equal(k8s_cgroup_parse(badpod, strlen(badpod), &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1: malformed pod cgroup \"podzz\"");
	assert_int_equal(k8s_cgroup_parse("", 0, &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty cgroup file");
	assert_int_equal(k8s_cgroup_parse("\n\n", 2, &r, err, sizeof(err)), -EINVAL);
}

static void test_hostile(void **state)
{
	size_t big = K8S_CGROUP_FILE_MAX + 100;
	char *buf = malloc(big), err[256];
	struct k8s_container_ref r;
	unsigned seed = 12345;

	assert_non_null(buf);
	/* A line over the limit is refused, not cut. */
	memcpy(buf, "0::/", 4);
	memset(buf + 4, 'a', K8S_CGROUP_LINE_MAX + 10);
	assert_int_equal(k8s_cgroup_parse(buf, K8S_CGROUP_LINE_MAX + 14, &r, err, sizeof(err)),
			 -E2BIG);
	assert_string_equal(err, "line 1: 4110 bytes (more than 4096)");
	assert_int_equal(
	    k8s_cgroup_parse_path(buf + 3, K8S_CGROUP_LINE_MAX + 1, &r, err, sizeof(err)), -E2BIG);
	/* So is a file over its limit. */
	memset(buf, '\n', big);
	assert_int_equal(k8s_cgroup_parse(buf, big, &r, err, sizeof(err)), -E2BIG);
	/* Thousands of components within the line limit. */
	for (size_t i = 0; i < 4000; i += 2)
		memcpy(buf + i, "/a", 2);
	assert_int_equal(k8s_cgroup_parse_path(buf, 4000, &r, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "more than 256 path components");
	/* Only slashes: no component at all. */
	memset(buf, '/', 4000);
	assert_int_equal(k8s_cgroup_parse_path(buf, 4000, &r, err, sizeof(err)), -ENOENT);
	/* Random bytes and random splices of real lines: any answer but a crash, always a
	 * message on refusal, and a found container always has a full id. */
	for (int round = 0; round < 20000; round++) {
		static const char *parts[] = {"0::",	  "/",
					      "kubepods", "kubepods.slice",
					      "..",	  "kubepods-burstable-pod" UID_ ".slice",
					      "pod" UID,  "cri-containerd-" CID ".scope",
					      CID,	  ":",
					      "\n",	  "burstable",
					      "crio-",	  ".scope",
					      "\0",	  "pod"};
		size_t n = 0;
		int rc;

		seed = seed * 1103515245u + 12345u;
		if (round % 2) {
			n = seed % 600;
			for (size_t i = 0; i < n; i++) {
				seed = seed * 1103515245u + 12345u;
				buf[i] = (char)(seed >> 16);
			}
		} else {
			for (int k = 0; k < 12; k++) {
				const char *p;
				size_t pl;

				seed = seed * 1103515245u + 12345u;
				p = parts[(seed >> 16) % (sizeof(parts) / sizeof(parts[0]))];
				pl = p[0] ? strlen(p) : 1;
				memcpy(buf + n, p, pl);
				n += pl;
			}
		}
		err[0] = '\0';
		rc = k8s_cgroup_parse(buf, n, &r, err, sizeof(err));
		if (rc)
			assert_true(err[0] != '\0');
		else
			assert_int_equal(strlen(r.container_id), K8S_CONTAINER_ID_LEN);
		rc = k8s_cgroup_parse_path(buf, n, &r, err, sizeof(err));
		if (!rc)
			assert_int_equal(strlen(r.container_id), K8S_CONTAINER_ID_LEN);
	}
	free(buf);
}

/* k8s_cgroup_read against a fake /proc written by the test, and this process's real file. */
static void test_read(void **state)
{
	char root[] = "/tmp/bizprobe-k8s-cgroup-XXXXXX", dir[128], file[160], err[256];
	const char *f = "0::/kubepods/besteffort/pod" UID "/crio-" CID "\n";
	struct k8s_container_ref r;
	int fd;

	assert_non_null(mkdtemp(root));
	snprintf(dir, sizeof(dir), "%s/4242", root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(file, sizeof(file), "%s/cgroup", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f, strlen(f)), (ssize_t)strlen(f));
	close(fd);
	assert_int_equal(k8s_cgroup_read(root, 4242, &r, err, sizeof(err)), 0);
	assert_string_equal(r.pod_uid, UID);
	assert_int_equal(r.runtime, K8S_RUNTIME_CRIO);
	assert_int_equal(k8s_cgroup_read(root, 4243, &r, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/4243/cgroup: No such file or directory"));
	unlink(file);
	rmdir(dir);
	rmdir(root);
	/* The test itself runs in no pod (on these machines): -ENOENT, not an error. */
	assert_int_equal(k8s_cgroup_read(NULL, getpid(), &r, err, sizeof(err)), -ENOENT);
}

static void test_names(void **state)
{
	assert_string_equal(k8s_qos_name(K8S_QOS_BURSTABLE), "burstable");
	assert_string_equal(k8s_qos_name(K8S_QOS_BESTEFFORT), "besteffort");
	assert_string_equal(k8s_qos_name(K8S_QOS_GUARANTEED), "guaranteed");
	assert_string_equal(k8s_qos_name(K8S_QOS_UNKNOWN), "unknown");
	assert_string_equal(k8s_runtime_name(K8S_RUNTIME_CONTAINERD), "containerd");
	assert_string_equal(k8s_runtime_name(K8S_RUNTIME_CRIO), "cri-o");
	assert_string_equal(k8s_runtime_name(K8S_RUNTIME_DOCKER), "docker");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layouts),	   cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_length_bounded), cmocka_unit_test(test_hybrid_file),
	    cmocka_unit_test(test_v2_wins),	   cmocka_unit_test(test_v1_only),
	    cmocka_unit_test(test_file_errors),	   cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_read),	   cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
