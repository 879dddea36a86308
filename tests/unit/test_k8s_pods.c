// SPDX-License-Identifier: MIT
/* k8s_pods without a server: the workload behind an owner, PodLists and watch events applied to
 * the cache with exact results, bounds, and input that is not what the API sends. The HTTPS
 * list/watch itself: tests/integration/test_k8s_api.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bizprobe/k8s.h"

static void test_workload(void **state)
{
	char kind[K8S_KIND_MAX + 1], name[K8S_NAME_MAX + 1];
	static const struct {
		const char *okind, *oname, *hash, *pod, *kind, *name;
	} cases[] = {
	    {"ReplicaSet", "web-7d9f8b6c5d", "7d9f8b6c5d", "web-7d9f8b6c5d-x2k4p", "Deployment",
	     "web"},
	    {"ReplicaSet", "my-web-app-5f6d7c", "5f6d7c", "p", "Deployment", "my-web-app"},
	    /* a ReplicaSet of its own: no hash label, or one that is not its suffix */
	    {"ReplicaSet", "legacy-rs", NULL, "p", "ReplicaSet", "legacy-rs"},
	    {"ReplicaSet", "legacy-rs", "abc", "p", "ReplicaSet", "legacy-rs"},
	    {"ReplicaSet", "-7d9f", "7d9f", "p", "ReplicaSet", "-7d9f"},
	    {"Job", "report-29012345", NULL, "p", "CronJob", "report"},
	    {"Job", "migrate-db", NULL, "p", "Job", "migrate-db"},
	    {"StatefulSet", "db", NULL, "db-0", "StatefulSet", "db"},
	    {"DaemonSet", "fluentd", NULL, "fluentd-abcde", "DaemonSet", "fluentd"},
	    {NULL, NULL, NULL, "debug", "Pod", "debug"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		k8s_workload_from_owner(cases[i].okind, cases[i].oname, cases[i].hash, cases[i].pod,
					kind, sizeof(kind), name, sizeof(name));
		assert_string_equal(kind, cases[i].kind);
		assert_string_equal(name, cases[i].name);
	}
	/* Cut to the buffer, never past it. */
	k8s_workload_from_owner("StatefulSet", "abcdefgh", NULL, "p", kind, 4, name, 4);
	assert_string_equal(kind, "Sta");
	assert_string_equal(name, "abc");
}

struct fx {
	char dir[64], token[96], ca[96];
	struct k8s_pod_cache *c;
};

static struct k8s_pod_cache *cache(struct fx *f, unsigned max_pods, size_t max_label_bytes)
{
	struct k8s_pod_cache_config cfg = {
	    .api_url = "https://127.0.0.1:6443/",
	    .token_file = f->token,
	    .ca_file = f->ca,
	    .node_name = "node-a",
	    .max_pods = max_pods,
	    .max_label_bytes = max_label_bytes,
	};
	char err[256];
	FILE *o;

	strcpy(f->dir, "/tmp/bizprobe-k8s-pods-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->token, sizeof(f->token), "%s/token", f->dir);
	snprintf(f->ca, sizeof(f->ca), "%s/ca.crt", f->dir);
	o = fopen(f->token, "w");
	fputs("t\n", o);
	fclose(o);
	o = fopen(f->ca, "w");
	fclose(o);
	f->c = k8s_pod_cache_new(&cfg, err, sizeof(err));
	if (!f->c)
		fail_msg("%s", err);
	return f->c;
}

static void done(struct fx *f)
{
	k8s_pod_cache_free(f->c);
	unlink(f->token);
	unlink(f->ca);
	rmdir(f->dir);
}

#define POD(name, uid, labels, owner)                                                              \
	"{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"shop\",\"uid\":\"" uid               \
	"\",\"labels\":{" labels "}" owner                                                         \
	"},\"status\":{\"containerStatuses\":[{\"containerID\":"                                   \
	"\"cri-o://" uid uid "\"}]}}"
#define U1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define U2 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define U3 "cccccccccccccccccccccccccccccccc"
#define RS                                                                                         \
	",\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"web-abc\",\"controller\":true}" \
	"]"

static void test_list_and_events(void **state)
{
	struct fx f;
	struct k8s_pod_cache *c = cache(&f, 0, 0);
	struct k8s_pod_info p;
	struct k8s_pod_cache_stats st;
	const char *list =
	    "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[" POD(
		"web-abc-1", U1, "\"app\":\"web\",\"pod-template-hash\":\"abc\"",
		RS) "," POD("solo", U2, "", "") ",{\"metadata\":{\"name\":\"no-uid\"}}]}";
	const char *mod =
	    "{\"type\":\"MODIFIED\",\"object\":" POD("solo", U2, "\"v\":\"2\"", "") "}";
	const char *add = "{\"type\":\"ADDED\",\"object\":" POD("third", U3, "", "") "}";
	const char *del = "{\"type\":\"DELETED\",\"object\":" POD("web-abc-1", U1, "", "") "}";

	assert_int_equal(k8s_pod_cache_apply_list(c, list, strlen(list)), 0);
	k8s_pod_cache_get_stats(c, &st);
	assert_int_equal(st.pods, 2); /* the item without a uid names nothing */
	assert_int_equal(st.label_bytes, strlen("app") + strlen("web") + 2 +
					     strlen("pod-template-hash") + strlen("abc") + 2);
	assert_int_equal(k8s_pod_cache_lookup(c, U1, &p), 0);
	assert_string_equal(p.namespace_, "shop");
	assert_string_equal(p.name, "web-abc-1");
	assert_string_equal(p.workload_kind, "Deployment");
	assert_string_equal(p.workload_name, "web");
	assert_int_equal(p.n_labels, 2);
	assert_string_equal(k8s_pod_info_label(&p, "app"), "web");
	assert_null(k8s_pod_info_label(&p, "tier"));
	k8s_pod_info_release(&p);
	assert_int_equal(k8s_pod_cache_lookup_container(c, U2 U2, &p), 0);
	assert_string_equal(p.name, "solo");
	assert_string_equal(p.workload_kind, "Pod");
	k8s_pod_info_release(&p);

	assert_int_equal(k8s_pod_cache_apply_event(c, mod, strlen(mod)), 0);
	assert_int_equal(k8s_pod_cache_apply_event(c, add, strlen(add)), 0);
	assert_int_equal(k8s_pod_cache_apply_event(c, del, strlen(del)), 0);
	assert_int_equal(k8s_pod_cache_lookup(c, U1, &p), -ENOENT);
	assert_int_equal(k8s_pod_cache_lookup(c, U2, &p), 0);
	assert_string_equal(k8s_pod_info_label(&p, "v"), "2");
	k8s_pod_info_release(&p);
	k8s_pod_cache_get_stats(c, &st);
	assert_int_equal(st.pods, 2);
	assert_int_equal(st.watch_events, 3);
	assert_int_equal(st.label_bytes, 4);
	done(&f);
}

static void test_not_api_input(void **state)
{
	struct fx f;
	struct k8s_pod_cache *c = cache(&f, 0, 0);
	struct k8s_pod_cache_stats st;
	const char *list = "{\"kind\":\"PodList\",\"items\":[" POD("a", U1, "", "") "]}";
	const char *bad[] = {
	    "",
	    "null",
	    "[]",
	    "{\"kind\":\"ServiceList\",\"items\":[]}",
	    "{\"kind\":\"PodList\",\"items\":{}}",
	    "{\"kind\":\"PodList\",\"items\":[]} trailing",
	    "{\"kind\":\"PodList\",\"items\":[",
	};
	const char *bad_ev[] = {
	    "{}",
	    "{\"type\":\"ADDED\"}",
	    "{\"type\":\"EXPLODED\",\"object\":{}}",
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"x\"}}}",
	    "\"ADDED\"",
	};
	const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410}}";
	const char *other = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500}}";
	char long_name[400];

	assert_int_equal(k8s_pod_cache_apply_list(c, list, strlen(list)), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(k8s_pod_cache_apply_list(c, bad[i], strlen(bad[i])), -EINVAL);
	for (size_t i = 0; i < sizeof(bad_ev) / sizeof(bad_ev[0]); i++)
		assert_int_equal(k8s_pod_cache_apply_event(c, bad_ev[i], strlen(bad_ev[i])),
				 -EINVAL);
	assert_int_equal(k8s_pod_cache_apply_event(c, gone, strlen(gone)), -ESTALE);
	assert_int_equal(k8s_pod_cache_apply_event(c, other, strlen(other)), -EPROTO);
	/* A name longer than the API allows is no pod of the API's. */
	memset(long_name, 'n', sizeof(long_name));
	{
		char ev[1024];
		int n = snprintf(ev, sizeof(ev),
				 "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"" U2
				 "\",\"namespace\":\"x\",\"name\":\"%.300s\"}}}",
				 long_name);

		assert_int_equal(k8s_pod_cache_apply_event(c, ev, (size_t)n), -EINVAL);
	}
	/* Through all of it the list's pod stayed. */
	k8s_pod_cache_get_stats(c, &st);
	assert_int_equal(st.pods, 1);
	assert_int_equal(st.lists, 1);
	assert_int_equal(st.watch_events, 0);
	done(&f);
}

static void test_bounds(void **state)
{
	struct fx f;
	struct k8s_pod_cache *c = cache(&f, 2, 10);
	struct k8s_pod_cache_stats st;
	struct k8s_pod_info p;
	const char *list = "{\"kind\":\"PodList\",\"items\":[" POD(
	    "a", U1, "\"k\":\"vvvvvv\",\"x\":\"y\"", "") "," POD("b", U2, "\"z\":\"1\"",
								 "") "," POD("c", U3, "", "") "]}";

	assert_int_equal(k8s_pod_cache_apply_list(c, list, strlen(list)), 0);
	k8s_pod_cache_get_stats(c, &st);
	assert_int_equal(st.pods, 2);
	assert_int_equal(st.pods_dropped, 1);
	/* k=vvvvvv is 9 bytes with its NULs; x=y (4) does not fit beside it, nor z=1. */
	assert_int_equal(st.labels_dropped, 2);
	assert_int_equal(st.label_bytes, 9);
	assert_int_equal(k8s_pod_cache_lookup(c, U3, &p), -ENOENT);
	assert_int_equal(k8s_pod_cache_lookup(c, U1, &p), 0);
	assert_int_equal(p.n_labels, 1);
	k8s_pod_info_release(&p);
	done(&f);
}

static void test_config(void **state)
{
	struct k8s_pod_cache_config cfg = {
	    .token_file = "/nonexistent/token", .ca_file = "/nonexistent/ca", .node_name = "n"};
	char err[256];

	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_null(k8s_pod_cache_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "no kube API: KUBERNETES_SERVICE_HOST is unset (not in a pod?)");
	cfg.api_url = "http://x";
	assert_null(k8s_pod_cache_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "kube API URL http://x: not https://");
	cfg.api_url = "https://x";
	assert_null(k8s_pod_cache_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "service account token /nonexistent/token: No such file or "
				 "directory");
	cfg.node_name = NULL;
	unsetenv("NODE_NAME");
	assert_null(k8s_pod_cache_new(&cfg, err, sizeof(err)));
	assert_string_equal(err, "no node name: set NODE_NAME (the downward API's spec.nodeName)");
	k8s_pod_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_workload),	  cmocka_unit_test(test_list_and_events),
	    cmocka_unit_test(test_not_api_input), cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
