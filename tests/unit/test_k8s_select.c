// SPDX-License-Identifier: MIT
/* k8s_select: node mode's --select and --k8s-labels, exact matches of each kind, alternatives
 * within a kind and conjunction across kinds, and refusals with their reasons. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/k8s.h"

static struct k8s_label shop_labels[] = {{"app", "web"}, {"tier", "frontend"}};
static const struct k8s_pod_info shop_pod = {
    .uid = "11111111-1111-4111-8111-111111111111",
    .namespace_ = "shop",
    .name = "web-7d9f8b6c5d-x2k4p",
    .workload_kind = "Deployment",
    .workload_name = "web",
    .labels = shop_labels,
    .n_labels = 2,
};

static const struct k8s_proc_view node_in_shop = {
    .exe = "/usr/local/bin/node",
    .comm = "node",
    .cgroup = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod11111111_1111_4111_"
	      "8111_111111111111.slice/cri-containerd-ab.scope",
    .pod = &shop_pod,
};
static const struct k8s_proc_view node_on_host = {
    .exe = "/usr/bin/node",
    .comm = "node",
    .cgroup = "/user.slice",
    .pod = NULL,
};
static const struct k8s_proc_view python_in_shop = {
    .exe = "/usr/bin/python3.11",
    .comm = "python3",
    .cgroup = "/kubepods.slice/x.scope",
    .pod = &shop_pod,
};

static bool sel(const char *const *args, const struct k8s_proc_view *v)
{
	struct k8s_selection s = {0};
	char err[256];
	bool m;

	for (size_t i = 0; args[i]; i++)
		if (k8s_selection_add(&s, args[i], err, sizeof(err)))
			fail_msg("%s: %s", args[i], err);
	m = k8s_selection_match(&s, v);
	k8s_selection_free(&s);
	return m;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_kinds(void **state)
{
	assert_true(sel(ARGS("comm=node"), &node_in_shop));
	assert_true(sel(ARGS("comm=node"), &node_on_host));
	assert_false(sel(ARGS("comm=nod"), &node_on_host));
	assert_true(sel(ARGS("exe=/usr/*/bin/node"), &node_in_shop));
	assert_false(sel(ARGS("exe=/usr/*/node"), &node_in_shop)); /* '*' is one directory */
	assert_true(sel(ARGS("exe=/usr/bin/python3*"), &python_in_shop));
	assert_true(sel(ARGS("k8s-namespace=shop"), &node_in_shop));
	assert_false(sel(ARGS("k8s-namespace=shop"), &node_on_host)); /* no pod: no namespace */
	assert_false(sel(ARGS("k8s-namespace=sho"), &node_in_shop));
	assert_true(sel(ARGS("k8s-label=app=web"), &node_in_shop));
	assert_false(sel(ARGS("k8s-label=app=api"), &node_in_shop));
	assert_false(sel(ARGS("k8s-label=version=web"), &node_in_shop));
	assert_true(sel(ARGS("cgroup=/kubepods.slice/*"), &node_in_shop));
	assert_false(sel(ARGS("cgroup=/kubepods.slice/*"), &node_on_host));
}

static void test_combinations(void **state)
{
	/* Within a kind: either. */
	assert_true(sel(ARGS("comm=python3", "comm=node"), &node_on_host));
	assert_true(sel(ARGS("comm=python3", "comm=node"), &python_in_shop));
	/* Across kinds: both. */
	assert_true(sel(ARGS("comm=node", "k8s-namespace=shop"), &node_in_shop));
	assert_false(sel(ARGS("comm=node", "k8s-namespace=shop"), &node_on_host));
	assert_false(sel(ARGS("comm=node", "k8s-namespace=shop"), &python_in_shop));
	assert_true(
	    sel(ARGS("comm=node", "comm=python3", "k8s-label=tier=frontend"), &python_in_shop));
	assert_false(sel(
	    ARGS("comm=node", "k8s-label=tier=frontend", "k8s-label=app=api", "cgroup=/user.slice"),
	    &node_in_shop));
	/* No selector selects nothing. */
	{
		struct k8s_selection s = {0};

		assert_false(k8s_selection_match(&s, &node_in_shop));
	}
}

/* What a traced process is asked again when its pod changes: only the pod selectors. */
static void test_match_pod(void **state)
{
	static struct k8s_label unlabelled[] = {{"app", "web"}};
	struct k8s_pod_info relabelled = shop_pod;
	struct k8s_selection s = {0};
	char err[256];

	relabelled.labels = unlabelled;
	relabelled.n_labels = 1;
	assert_int_equal(k8s_selection_add(&s, "k8s-label=tier=frontend", err, sizeof(err)), 0);
	assert_int_equal(k8s_selection_add(&s, "comm=python3", err, sizeof(err)), 0);
	assert_true(k8s_selection_match_pod(&s, &shop_pod)); /* comm is not asked again */
	assert_false(k8s_selection_match_pod(&s, &relabelled));
	assert_false(k8s_selection_match_pod(&s, NULL));
	assert_int_equal(k8s_selection_add(&s, "k8s-namespace=data", err, sizeof(err)), 0);
	assert_false(k8s_selection_match_pod(&s, &shop_pod));
	assert_int_equal(k8s_selection_add(&s, "k8s-namespace=shop", err, sizeof(err)), 0);
	assert_true(k8s_selection_match_pod(&s, &shop_pod));
	k8s_selection_free(&s);
	/* Without pod selectors nothing can stop matching. */
	assert_int_equal(k8s_selection_add(&s, "comm=node", err, sizeof(err)), 0);
	assert_true(k8s_selection_match_pod(&s, NULL));
	k8s_selection_free(&s);
}

static void test_refusals(void **state)
{
	static const struct {
		const char *arg, *err;
	} bad[] = {
	    {"pid=1", "--select pid=1: not exe=GLOB, comm=NAME, k8s-namespace=NS, "
		      "k8s-label=KEY=VALUE or cgroup=GLOB"},
	    {"comm", "--select comm: not exe=GLOB, comm=NAME, k8s-namespace=NS, "
		     "k8s-label=KEY=VALUE or cgroup=GLOB"},
	    {"comm=", "--select comm=: empty comm"},
	    {"comm=a-very-long-process-name", "--select comm=a-very-long-process-name: a comm is "
					      "at most 15 bytes (the kernel cuts longer names; use "
					      "exe=GLOB)"},
	    {"k8s-label=app", "--select k8s-label=app: k8s-label takes KEY=VALUE"},
	    {"k8s-label==web", "--select k8s-label==web: k8s-label takes KEY=VALUE"},
	};
	struct k8s_selection s = {0};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(k8s_selection_add(&s, bad[i].arg, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, bad[i].err);
	}
	assert_int_equal(s.n, 0);
	for (int i = 0; i < K8S_MAX_SELECTORS; i++)
		assert_int_equal(k8s_selection_add(&s, "comm=node", err, sizeof(err)), 0);
	assert_int_equal(k8s_selection_add(&s, "comm=node", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "more than 32 --select");
	assert_false(k8s_selection_needs_pod(&s));
	k8s_selection_free(&s);
	assert_int_equal(k8s_selection_add(&s, "k8s-label=a=b=c", err, sizeof(err)), 0);
	assert_string_equal(s.sel[0].key, "a");
	assert_string_equal(s.sel[0].value, "b=c");
	assert_true(k8s_selection_needs_pod(&s));
	k8s_selection_free(&s);
}

static void test_labels_option(void **state)
{
	unsigned m;
	char err[256];

	assert_int_equal(k8s_labels_parse("namespace,workload", &m, err, sizeof(err)), 0);
	assert_int_equal(m, K8S_LABEL_NAMESPACE | K8S_LABEL_WORKLOAD);
	assert_int_equal(k8s_labels_parse("workload", &m, err, sizeof(err)), 0);
	assert_int_equal(m, K8S_LABEL_WORKLOAD);
	assert_int_equal(k8s_labels_parse("namespace,pod", &m, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--k8s-labels namespace,pod: \"pod\" is not namespace or workload "
				 "(pod names would make a series per pod restart)");
	assert_int_equal(k8s_labels_parse("", &m, err, sizeof(err)), -EINVAL);
	assert_int_equal(k8s_labels_parse(",", &m, err, sizeof(err)), -EINVAL);
}

static void test_v2_path(void **state)
{
	const char *f = "4:memory:/a\n0::/kubepods/besteffort/podx/y\n";
	char out[64];

	assert_int_equal(k8s_cgroup_v2_path(f, strlen(f), out, sizeof(out)), 0);
	assert_string_equal(out, "/kubepods/besteffort/podx/y");
	assert_int_equal(k8s_cgroup_v2_path(f, strlen(f), out, 10), -E2BIG);
	assert_int_equal(k8s_cgroup_v2_path("4:memory:/a", 11, out, sizeof(out)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kinds),    cmocka_unit_test(test_combinations),
	    cmocka_unit_test(test_refusals), cmocka_unit_test(test_labels_option),
	    cmocka_unit_test(test_v2_path),  cmocka_unit_test(test_match_pod),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
