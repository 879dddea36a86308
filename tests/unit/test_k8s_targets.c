// SPDX-License-Identifier: MIT
/* k8s_targets: the label values of a pod's processes (a Deployment, a CronJob, a bare pod, an
 * unknown pod), the bounded table of (namespace, workload) pairs with its overflow, and the pid
 * map through insertions, removals in probe runs, reuse and sweeps. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/k8s.h"

static struct k8s_pod_info pod_owned(const char *ns, const char *name, const char *okind,
				     const char *oname, const char *hash)
{
	struct k8s_pod_info p = {0};

	snprintf(p.namespace_, sizeof(p.namespace_), "%s", ns);
	snprintf(p.name, sizeof(p.name), "%s", name);
	k8s_workload_from_owner(okind, oname, hash, name, p.workload_kind,
				sizeof(p.workload_kind), p.workload_name, sizeof(p.workload_name));
	return p;
}

static void test_names(void **state)
{
	static const struct {
		const char *ns, *pod, *okind, *oname, *hash, *want_ns, *want_wl;
	} cases[] = {
	    {"shop", "web-7d9f8b6c5d-x2k4p", "ReplicaSet", "web-7d9f8b6c5d", "7d9f8b6c5d", "shop",
	     "web"},
	    {"shop", "legacy-rs-abc12", "ReplicaSet", "legacy-rs", NULL, "shop", "legacy-rs"},
	    {"data", "db-0", "StatefulSet", "db", NULL, "data", "db"},
	    {"kube-system", "fluent-bit-8x7q", "DaemonSet", "fluent-bit", NULL, "kube-system",
	     "fluent-bit"},
	    {"shop", "report-29012345-abcde", "Job", "report-29012345", NULL, "shop", "report"},
	    {"shop", "migrate-v2-x1", "Job", "migrate-v2", NULL, "shop", "migrate-v2"},
	    {"default", "debug", NULL, NULL, NULL, "default", "none"},
	};
	const char *ns, *wl;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct k8s_pod_info p = pod_owned(cases[i].ns, cases[i].pod, cases[i].okind,
						  cases[i].oname, cases[i].hash);

		k8s_target_names(&p, &ns, &wl);
		assert_string_equal(ns, cases[i].want_ns);
		assert_string_equal(wl, cases[i].want_wl);
	}
	k8s_target_names(NULL, &ns, &wl);
	assert_string_equal(ns, "unknown");
	assert_string_equal(wl, "unknown");
}

static void test_table_bound(void **state)
{
	struct k8s_targets *t = k8s_targets_new();
	struct k8s_target *web = k8s_targets_intern(t, "shop", "web"), *over;
	char name[32];

	assert_non_null(t);
	assert_string_equal(web->biz.namespace_, "shop");
	assert_string_equal(web->biz.workload, "web");
	assert_int_equal(web->index, 0);
	assert_ptr_equal(k8s_targets_intern(t, "shop", "web"), web);
	/* Same workload name in another namespace: another target. */
	assert_ptr_not_equal(k8s_targets_intern(t, "data", "web"), web);
	assert_int_equal(k8s_targets_count(t), 2);
	for (int i = 2; i < K8S_MAX_TARGETS; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		assert_int_equal(k8s_targets_intern(t, "shop", name)->index, i);
	}
	assert_int_equal(k8s_targets_count(t), K8S_MAX_TARGETS);
	assert_null(k8s_targets_at(t, K8S_MAX_TARGETS));
	over = k8s_targets_intern(t, "late", "one");
	assert_string_equal(over->biz.namespace_, "other");
	assert_string_equal(over->biz.workload, "other");
	assert_ptr_equal(k8s_targets_intern(t, "later", "two"), over);
	assert_ptr_equal(k8s_targets_intern(t, "shop", "web"), web); /* the known still found */
	assert_int_equal(k8s_targets_count(t), K8S_MAX_TARGETS + 1);
	assert_ptr_equal(k8s_targets_at(t, K8S_MAX_TARGETS), over);
	k8s_targets_free(t);
}

static void test_pids(void **state)
{
	struct k8s_targets *t = k8s_targets_new();
	struct k8s_target *web = k8s_targets_intern(t, "shop", "web");
	struct k8s_target *db = k8s_targets_intern(t, "data", "db");
	uint32_t traced[K8S_MAX_TARGET_PIDS + 1];

	assert_null(k8s_targets_pid(t, 4242));
	assert_int_equal(k8s_targets_set_pid(t, 0, web), -EINVAL);
	/* Many pids, so that probe runs form and removals inside them must keep the rest. */
	for (uint32_t pid = 1; pid <= K8S_MAX_TARGET_PIDS; pid++)
		assert_int_equal(k8s_targets_set_pid(t, pid, pid % 3 ? web : db), 0);
	assert_int_equal(k8s_targets_set_pid(t, K8S_MAX_TARGET_PIDS + 1, web), -ENOSPC);
	assert_int_equal(k8s_targets_set_pid(t, 7, db), 0); /* a known pid is remapped */
	assert_ptr_equal(k8s_targets_pid(t, 7), db);
	for (uint32_t pid = 1; pid <= K8S_MAX_TARGET_PIDS; pid += 2)
		k8s_targets_forget_pid(t, pid);
	for (uint32_t pid = 1; pid <= K8S_MAX_TARGET_PIDS; pid++)
		if (pid % 2)
			assert_null(k8s_targets_pid(t, pid));
		else
			assert_ptr_equal(k8s_targets_pid(t, pid), pid % 3 ? web : db);
	/* The sweep keeps the traced pids it knows, and counts them. */
	traced[0] = 2;	/* web */
	traced[1] = 6;	/* db */
	traced[2] = 8;	/* web */
	traced[3] = 9;	/* forgotten above: counts nowhere */
	traced[4] = 12; /* db */
	traced[5] = 8;	/* listed twice */
	k8s_targets_sweep(t, traced, 6);
	assert_int_equal(web->processes, 2);
	assert_int_equal(db->processes, 2);
	assert_ptr_equal(k8s_targets_pid(t, 2), web);
	assert_ptr_equal(k8s_targets_pid(t, 12), db);
	assert_null(k8s_targets_pid(t, 4));
	assert_null(k8s_targets_pid(t, 9));
	k8s_targets_sweep(t, traced, 0);
	assert_int_equal(web->processes, 0);
	assert_null(k8s_targets_pid(t, 2));
	/* Room again for a full table after the sweep. */
	for (uint32_t pid = 1; pid <= K8S_MAX_TARGET_PIDS; pid++) {
		assert_int_equal(k8s_targets_set_pid(t, pid * 7919, db), 0);
		traced[pid - 1] = pid * 7919;
	}
	k8s_targets_sweep(t, traced, K8S_MAX_TARGET_PIDS);
	assert_int_equal(db->processes, K8S_MAX_TARGET_PIDS);
	assert_int_equal(web->processes, 0);
	k8s_targets_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_table_bound),
	    cmocka_unit_test(test_pids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
