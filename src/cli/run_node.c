// SPDX-License-Identifier: MIT
/*
 * Node mode: the capture session asks, at each exec and in a /proc scan once a second, whether
 * a process is one to trace; the answer comes from what the host shows of it (its executable's
 * path inside its mount namespace, /proc/PID/comm, its unified-hierarchy cgroup) and, for the
 * k8s-* selectors, from the pod its cgroup names, looked up in the kube API pod cache.
 *
 * Whenever the cache changes (a list, a watch event), every traced process is asked again
 * whether its pod still satisfies the pod selectors: one whose pod lost a selected label is
 * dropped. With --k8s-labels each traced process has a target, its pod's (namespace, workload),
 * which its exchanges' business events and the per-target self-metrics carry.
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
	struct k8s_pod_cache *pods; /* NULL: neither a selector nor --k8s-labels needs pods, or
				     * (--k8s-labels alone) no kube API is configured */
	uint64_t selected;
	uint64_t dropped;      /* traced processes whose pod stopped matching */
	uint64_t pod_changes;  /* the cache's lists + watch events when last looked at */
	unsigned labels;       /* --k8s-labels */
	struct k8s_targets *targets; /* with --k8s-labels */
	/* The self-metrics' label values of each target, in the order of k8s_targets_at. */
	const char *target_values[K8S_MAX_TARGETS + 1][2];
	/* The line run_node_selected says once the process chosen last is attached. */
	uint32_t chosen_pid;
	char chosen_line[768]; /* comm, kind, namespace (253), name (253) */
};

static struct k8s_pod_cache *start_pod_cache(const struct cli_opts *o, char *err, size_t len)
{
	struct k8s_pod_cache_config cfg = {
	    .api_url = o->kube_api,
	    .token_file = o->kube_token_file,
	    .ca_file = o->kube_ca_file,
	};
	struct k8s_pod_cache *pods = k8s_pod_cache_new(&cfg, err, len);

	if (!pods)
		return NULL;
	/* A first list now, so that the start-up scan already knows the pods; the watch thread
	 * lists again (with back-off) if this one fails. */
	if (k8s_pod_cache_sync(pods, err, len))
		fprintf(stderr, "bizprobe run: kube API: %s (retrying)\n", err);
	if (k8s_pod_cache_start(pods)) {
		snprintf(err, len, "cannot start the kube API watch");
		k8s_pod_cache_free(pods);
		return NULL;
	}
	return pods;
}

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
	n->labels = o->k8s_labels;
	if (k8s_selection_needs_pod(&n->sel)) {
		n->pods = start_pod_cache(o, err, sizeof(err));
		if (!n->pods) {
			fprintf(stderr, "bizprobe run: the k8s-* selectors need the kube API: %s\n",
				err);
			goto fail;
		}
	} else if (n->labels) {
		/* Labels alone can do without the API: the cgroup path names a pod's uid, not its
		 * namespace or workload, so both are "unknown" then. */
		n->pods = start_pod_cache(o, err, sizeof(err));
		if (!n->pods)
			fprintf(stderr, "bizprobe run: --k8s-labels without the kube API (%s): "
					"namespace and workload are \"unknown\"\n",
				err);
	}
	if (n->labels) {
		n->targets = k8s_targets_new();
		if (!n->targets) {
			fprintf(stderr, "bizprobe run: out of memory\n");
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

	if (!n->pods)
		return -1; /* --k8s-labels without the kube API */
	if (k8s_cgroup_parse(cgroup_file, len, &ref, err, sizeof(err)))
		return -1;
	if (ref.pod_uid[0] && !k8s_pod_cache_lookup(n->pods, ref.pod_uid, pod))
		return 0;
	if (ref.container_id[0] && !k8s_pod_cache_lookup_container(n->pods, ref.container_id, pod))
		return 0;
	return -1;
}

/* Maps pid to its pod's target (pod NULL: unknown), the one its exchanges' events carry. A full
 * pid table leaves the process to be looked up again at each exchange. */
static struct k8s_target *assign_target(struct run_node *n, uint32_t pid,
					const struct k8s_pod_info *pod)
{
	const char *ns, *wl;
	struct k8s_target *t;

	k8s_target_names(pod, &ns, &wl);
	t = k8s_targets_intern(n->targets, ns, wl);
	k8s_targets_set_pid(n->targets, pid, t);
	return t;
}

uint64_t run_node_select_epoch(void *ctx)
{
	struct run_node *n = ctx;
	struct k8s_pod_cache_stats st;

	if (!n->pods)
		return 0;
	k8s_pod_cache_get_stats(n->pods, &st);
	return st.lists + st.watch_events;
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
	if (match && n->targets)
		assign_target(n, pid, have_pod ? &pod : NULL);
	if (match) {
		n->selected++;
		n->chosen_pid = pid;
		if (have_pod)
			snprintf(n->chosen_line, sizeof(n->chosen_line),
				 "bizprobe run: node: tracing pid %u (%s, %s %s/%s)\n", pid,
				 view.comm ? view.comm : "?", pod.workload_kind, pod.namespace_,
				 pod.workload_name);
		else
			snprintf(n->chosen_line, sizeof(n->chosen_line),
				 "bizprobe run: node: tracing pid %u (%s)\n", pid,
				 view.comm ? view.comm : "?");
	}
	if (have_pod)
		k8s_pod_info_release(&pod);
	return match;
}

/* Said once the process is attached: a container's first request right after this line is
 * seen (said at selection, the line came before its uprobes). */
void run_node_selected(uint32_t pid, void *ctx)
{
	struct run_node *n = ctx;

	if (pid == n->chosen_pid)
		fputs(n->chosen_line, stderr);
}

/* The pod of a traced process, read again: 0 and *pod (release it), or -1 (gone, in no pod,
 * or a pod the cache does not know). */
static int pod_of_pid(struct run_node *n, uint32_t pid, struct k8s_pod_info *pod)
{
	static char cgroup_file[K8S_CGROUP_FILE_MAX + 1]; /* the capture thread's alone */
	ssize_t len = proc_cgroup((pid_t)pid, cgroup_file, sizeof(cgroup_file));

	return len > 0 ? pod_of(n, cgroup_file, (size_t)len, pod) : -1;
}

/* Looks at pid's pod again: drops pid when the pod no longer satisfies the pod selectors, else
 * (with --k8s-labels) maps it to its pod's target. A pod the cache does not know is left alone:
 * a process outlives its pod's DELETED event by its grace period, and a list may be under way. */
static void look_again(struct run_node *n, struct capture_session *cs, uint32_t pid)
{
	struct k8s_pod_info pod;
	bool have_pod = !pod_of_pid(n, pid, &pod);

	if (have_pod && !k8s_selection_match_pod(&n->sel, &pod) &&
	    !capture_session_untrace(cs, pid)) {
		n->dropped++;
		if (n->targets)
			k8s_targets_forget_pid(n->targets, pid);
		fprintf(stderr, "bizprobe run: node: dropped pid %u (%s %s/%s): its pod no longer "
				"matches the selection\n",
			pid, pod.workload_kind, pod.namespace_, pod.workload_name);
	} else if (n->targets && (have_pod || !k8s_targets_pid(n->targets, pid))) {
		assign_target(n, pid, have_pod ? &pod : NULL);
	}
	if (have_pod)
		k8s_pod_info_release(&pod);
}

const struct biz_target *run_node_exchange(struct run_node *n, uint32_t pid)
{
	struct k8s_target *t;
	struct k8s_pod_info pod;
	bool have_pod;

	if (!n || !n->targets)
		return NULL;
	t = k8s_targets_pid(n->targets, pid);
	if (!t) {
		/* A child the kernel traced at its fork: its parent's pod, normally. */
		have_pod = !pod_of_pid(n, pid, &pod);
		t = assign_target(n, pid, have_pod ? &pod : NULL);
		if (have_pod)
			k8s_pod_info_release(&pod);
	}
	t->exchanges++;
	return &t->biz;
}

/* The --k8s-labels in force, in their order (namespace, then workload), each given as what
 * is put in out: the label names, or one target's values. Their count. */
static unsigned labels_in_force(const struct run_node *n, const char *namespace_,
				const char *workload, const char **out)
{
	unsigned k = 0;

	if (n->labels & K8S_LABEL_NAMESPACE)
		out[k++] = namespace_;
	if (n->labels & K8S_LABEL_WORKLOAD)
		out[k++] = workload;
	return k;
}

int run_node_register_metrics(struct run_node *n, struct self_metrics *self,
			      struct metrics_registry *reg)
{
	const char *names[2];
	unsigned k = labels_in_force(n, "namespace", "workload", names);

	return self_metrics_node_register(self, reg, names, k, K8S_MAX_TARGETS + 1);
}

void run_node_tick(struct run_node *n, struct capture_session *cs, struct self_metrics *self)
{
	static uint32_t traced[K8S_MAX_TARGET_PIDS]; /* the capture thread's alone */
	static struct self_target out[K8S_MAX_TARGETS + 1];
	size_t n_traced, n_targets = 0;
	uint64_t pod_changes;
	bool changed;

	if (!n)
		return;
	pod_changes = run_node_select_epoch(n); /* 0 without a pod cache: never changed */
	changed = pod_changes != n->pod_changes;
	n->pod_changes = pod_changes;
	n_traced = capture_session_traced(cs, traced, K8S_MAX_TARGET_PIDS);
	/* Each traced process is looked at again when the pods changed; without a change, only
	 * the ones without a target yet (children traced at their fork). */
	for (size_t i = 0; i < n_traced; i++)
		if (changed || (n->targets && !k8s_targets_pid(n->targets, traced[i])))
			look_again(n, cs, traced[i]);
	if (n->targets) {
		n_traced = capture_session_traced(cs, traced, K8S_MAX_TARGET_PIDS);
		k8s_targets_sweep(n->targets, traced, n_traced);
		n_targets = k8s_targets_count(n->targets);
		for (size_t i = 0; i < n_targets; i++) {
			const struct k8s_target *t = k8s_targets_at(n->targets, i);
			const char **v = n->target_values[i];

			labels_in_force(n, t->biz.namespace_, t->biz.workload, v);
			out[i] = (struct self_target){v, t->processes, t->exchanges};
		}
	}
	self_metrics_update_node(self, n->dropped, out, n_targets);
}

void run_node_free(struct run_node *n)
{
	if (!n)
		return;
	k8s_targets_free(n->targets);
	k8s_pod_cache_free(n->pods);
	k8s_selection_free(&n->sel);
	free(n);
}
