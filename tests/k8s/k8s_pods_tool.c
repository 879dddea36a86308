// SPDX-License-Identifier: MIT
/*
 * Drives the kube API pod cache (src/k8s/k8s_pods.c) for tests/integration/test_k8s_api.py:
 * starts its list+watch thread against --api-url, then answers commands on stdin, one line of
 * JSON each on stdout:
 *   dump          {"stats":{...},"pods":[{uid,namespace,name,workload_kind,workload_name,
 *                 labels:{...}}...]} (pods sorted by uid)
 *   container ID  the pod running that container, or {"error":"ENOENT"}
 *   quit
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bizprobe/k8s.h"

static json_object *pod_json(const struct k8s_pod_info *p)
{
	json_object *o = json_object_new_object(), *l = json_object_new_object();

	json_object_object_add(o, "uid", json_object_new_string(p->uid));
	json_object_object_add(o, "namespace", json_object_new_string(p->namespace_));
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "workload_kind", json_object_new_string(p->workload_kind));
	json_object_object_add(o, "workload_name", json_object_new_string(p->workload_name));
	for (size_t i = 0; i < p->n_labels; i++)
		json_object_object_add(l, p->labels[i].key,
				       json_object_new_string(p->labels[i].value));
	json_object_object_add(o, "labels", l);
	return o;
}

static int cmp_uid(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void dump(struct k8s_pod_cache *c)
{
	static char uids[4096][K8S_POD_UID_MAX + 1];
	struct k8s_pod_cache_stats st;
	json_object *o = json_object_new_object(), *s = json_object_new_object();
	json_object *pods = json_object_new_array();
	size_t n = k8s_pod_cache_uids(c, uids, 4096);

	k8s_pod_cache_get_stats(c, &st);
	json_object_object_add(s, "lists", json_object_new_int64((int64_t)st.lists));
	json_object_object_add(s, "watch_events", json_object_new_int64((int64_t)st.watch_events));
	json_object_object_add(s, "errors", json_object_new_int64((int64_t)st.errors));
	json_object_object_add(s, "pods_dropped", json_object_new_int64((int64_t)st.pods_dropped));
	json_object_object_add(s, "labels_dropped",
			       json_object_new_int64((int64_t)st.labels_dropped));
	json_object_object_add(s, "pods", json_object_new_int64(st.pods));
	json_object_object_add(s, "label_bytes", json_object_new_int64((int64_t)st.label_bytes));
	json_object_object_add(s, "synced", json_object_new_boolean(st.synced));
	qsort(uids, n, sizeof(uids[0]), cmp_uid);
	for (size_t i = 0; i < n; i++) {
		struct k8s_pod_info p;

		if (!k8s_pod_cache_lookup(c, uids[i], &p)) {
			json_object_array_add(pods, pod_json(&p));
			k8s_pod_info_release(&p);
		}
	}
	json_object_object_add(o, "stats", s);
	json_object_object_add(o, "pods", pods);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(stdout);
	json_object_put(o);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"api-url", required_argument, NULL, 'u'},
	    {"token-file", required_argument, NULL, 't'},
	    {"ca-file", required_argument, NULL, 'c'},
	    {"node", required_argument, NULL, 'n'},
	    {"max-pods", required_argument, NULL, 'p'},
	    {"max-label-bytes", required_argument, NULL, 'l'},
	    {"watch-timeout", required_argument, NULL, 'w'},
	    {0},
	};
	struct k8s_pod_cache_config cfg = {0};
	struct k8s_pod_cache *c;
	char err[512], line[512];
	int ch;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			cfg.api_url = optarg;
			break;
		case 't':
			cfg.token_file = optarg;
			break;
		case 'c':
			cfg.ca_file = optarg;
			break;
		case 'n':
			cfg.node_name = optarg;
			break;
		case 'p':
			cfg.max_pods = (unsigned)atoi(optarg);
			break;
		case 'l':
			cfg.max_label_bytes = (size_t)atol(optarg);
			break;
		case 'w':
			cfg.watch_timeout_s = (unsigned)atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	c = k8s_pod_cache_new(&cfg, err, sizeof(err));
	if (!c) {
		fprintf(stderr, "k8s_pods_tool: %s\n", err);
		return 1;
	}
	if (k8s_pod_cache_start(c)) {
		k8s_pod_cache_free(c);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "dump")) {
			dump(c);
		} else if (!strncmp(line, "container ", 10)) {
			struct k8s_pod_info p;

			if (k8s_pod_cache_lookup_container(c, line + 10, &p)) {
				puts("{\"error\":\"ENOENT\"}");
			} else {
				json_object *o = pod_json(&p);

				puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
				json_object_put(o);
				k8s_pod_info_release(&p);
			}
			fflush(stdout);
		} else if (!strcmp(line, "quit")) {
			break;
		}
	}
	k8s_pod_cache_free(c);
	return 0;
}
