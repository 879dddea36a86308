// SPDX-License-Identifier: MIT
/*
 * Node mode: the capture session asks, at each exec and in a /proc scan once a second, whether
 * a process is one to trace; the answer comes from what the host shows of it (its executable's
 * path inside its mount namespace, /proc/PID/comm, its unified-hierarchy cgroup) and, for the
 * k8s-* selectors, from the pod its cgroup names, looked up in the kube API pod cache.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../capture/proc.h"
#include "bizprobe/k8s.h"
#include "run_node.h"

struct run_node {
	struct k8s_selection sel;
	struct k8s_pod_cache *pods; /* NULL: no selector needs pod metadata */
	uint64_t selected;
};

struct run_node *run_node_new(const struct cli_opts *o)
{
	struct run_node *n = calloc(1, sizeof(*n));
	char err[512];

	if (!n) {
		fprintf(stderr, "bizprobe run: out of memory\n");
		return NULL;
	}
	for (size_t i = 0; i < o->n_selects; i++) {
		if (k8s_selection_add(&n->sel, o->selects[i], err, sizeof(err))) {
			fprintf(stderr, "bizprobe run: %s\n", err);
			goto fail;
		}
	}
	if (k8s_selection_needs_pod(&n->sel)) {
		struct k8s_pod_cache_config cfg = {
		    .api_url = o->kube_api,
		    .token_file = o->kube_token_file,
		    .ca_file = o->kube_ca_file,
		};

		n->pods = k8s_pod_cache_new(&cfg, err, sizeof(err));
		if (!n->pods) {
			fprintf(stderr, "bizprobe run: the k8s-* selectors need the kube API: %s\n",
				err);
			goto fail;
		}
		/* A first list now, so that the start-up scan already knows the pods; the watch
		 * thread lists again (with back-off) if this one fails. */
		if (k8s_pod_cache_sync(n->pods, err, sizeof(err)))
			fprintf(stderr, "bizprobe run: kube API: %s (retrying)\n", err);
		if (k8s_pod_cache_start(n->pods)) {
			fprintf(stderr, "bizprobe run: cannot start the kube API watch\n");
			goto fail;
		}
	}
	return n;
fail:
	run_node_free(n);
	return NULL;
}

/* The pod a process's cgroup names, from the cache; 0 and *pod filled (release it), or -1. */
static int pod_of(struct run_node *n, const char *cgroup_file, size_t len,
		  struct k8s_pod_info *pod)
{
	struct k8s_container_ref ref;
	char err[256];

	if (k8s_cgroup_parse(cgroup_file, len, &ref, err, sizeof(err)))
		return -1;
	if (ref.pod_uid[0] && !k8s_pod_cache_lookup(n->pods, ref.pod_uid, pod))
		return 0;
	if (ref.container_id[0] && !k8s_pod_cache_lookup_container(n->pods, ref.container_id, pod))
		return 0;
	return -1;
}

bool run_node_select(uint32_t pid, void *ctx)
{
	struct run_node *n = ctx;
	static char cgroup_file[K8S_CGROUP_FILE_MAX + 1]; /* the capture thread's alone */
	char exe[PATH_MAX], comm[64], cgroup[K8S_CGROUP_LINE_MAX + 1];
	struct k8s_pod_info pod;
	struct k8s_proc_view view = {0};
	ssize_t len;
	bool match, have_pod = false;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	len = readlink(path, exe, sizeof(exe) - 1);
	if (len <= 0)
		return false; /* a kernel thread, or gone */
	exe[len] = '\0';
	view.exe = exe;
	if (!proc_comm((pid_t)pid, comm, sizeof(comm)))
		view.comm = comm;
	len = proc_cgroup((pid_t)pid, cgroup_file, sizeof(cgroup_file));
	if (len > 0 && !k8s_cgroup_v2_path(cgroup_file, (size_t)len, cgroup, sizeof(cgroup)))
		view.cgroup = cgroup;
	if (n->pods && len > 0 && !pod_of(n, cgroup_file, (size_t)len, &pod)) {
		view.pod = &pod;
		have_pod = true;
	}
	match = k8s_selection_match(&n->sel, &view);
	if (match) {
		n->selected++;
		if (have_pod)
			fprintf(stderr, "bizprobe run: node: tracing pid %u (%s, %s %s/%s)\n", pid,
				view.comm ? view.comm : "?", pod.workload_kind, pod.namespace_,
				pod.workload_name);
		else
			fprintf(stderr, "bizprobe run: node: tracing pid %u (%s)\n", pid,
				view.comm ? view.comm : "?");
	}
	if (have_pod)
		k8s_pod_info_release(&pod);
	return match;
}

void run_node_free(struct run_node *n)
{
	if (!n)
		return;
	k8s_pod_cache_free(n->pods);
	k8s_selection_free(&n->sel);
	free(n);
}
