// SPDX-License-Identifier: MIT
/*
 * Node mode's targets: which (namespace, workload) each traced process belongs to, so that its
 * exchanges' business events and the per-target self-metrics carry them (--k8s-labels). Both
 * tables are bounded: K8S_MAX_TARGETS pairs (then one shared "other" pair), and the pids the
 * capture session can trace at most. Used on the capture thread only: no lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/k8s.h"

/* Open addressing, at most half full: a lookup per exchange stays a probe or two. */
#define PID_SLOTS (2 * K8S_MAX_TARGET_PIDS)

struct pid_slot {
	uint32_t pid; /* 0: empty (pid 0 is never traced) */
	uint32_t target;
};

struct k8s_targets {
	struct k8s_target targets[K8S_MAX_TARGETS + 1]; /* the last one is the overflow */
	size_t n_targets;
	bool overflow_used;
	struct pid_slot pids[PID_SLOTS];
	size_t n_pids;
};

void k8s_target_names(const struct k8s_pod_info *pod, const char **namespace_,
		      const char **workload)
{
	if (!pod) {
		*namespace_ = K8S_TARGET_UNKNOWN;
		*workload = K8S_TARGET_UNKNOWN;
		return;
	}
	*namespace_ = pod->namespace_[0] ? pod->namespace_ : K8S_TARGET_UNKNOWN;
	/* k8s_workload_from_owner makes a bare pod its own workload, kind "Pod": right for a log
	 * line, one series per pod for a label. */
	if (!strcmp(pod->workload_kind, "Pod") || !pod->workload_name[0])
		*workload = K8S_TARGET_NONE;
	else
		*workload = pod->workload_name;
}

static void name_target(struct k8s_target *tg, unsigned index, const char *ns, const char *wl)
{
	size_t nl = strnlen(ns, K8S_NAME_MAX), wll = strnlen(wl, K8S_NAME_MAX);

	memcpy(tg->namespace_, ns, nl);
	tg->namespace_[nl] = '\0';
	memcpy(tg->workload, wl, wll);
	tg->workload[wll] = '\0';
	tg->biz.namespace_ = tg->namespace_;
	tg->biz.workload = tg->workload;
	tg->index = index;
}

struct k8s_targets *k8s_targets_new(void)
{
	struct k8s_targets *t = calloc(1, sizeof(*t));

	if (t)
		name_target(&t->targets[K8S_MAX_TARGETS], K8S_MAX_TARGETS, "other", "other");
	return t;
}

void k8s_targets_free(struct k8s_targets *t)
{
	free(t);
}

struct k8s_target *k8s_targets_intern(struct k8s_targets *t, const char *namespace_,
				      const char *workload)
{
	for (size_t i = 0; i < t->n_targets; i++)
		if (!strcmp(t->targets[i].namespace_, namespace_) &&
		    !strcmp(t->targets[i].workload, workload))
			return &t->targets[i];
	if (t->n_targets == K8S_MAX_TARGETS) {
		t->overflow_used = true;
		return &t->targets[K8S_MAX_TARGETS];
	}
	name_target(&t->targets[t->n_targets], (unsigned)t->n_targets, namespace_, workload);
	return &t->targets[t->n_targets++];
}

static size_t slot_of(uint32_t pid)
{
	/* Fibonacci hashing: consecutive pids (a burst of forks) spread over the table. */
	return (size_t)((pid * 2654435761u) % PID_SLOTS);
}

static struct pid_slot *find_slot(struct k8s_targets *t, uint32_t pid)
{
	for (size_t i = slot_of(pid);; i = (i + 1) % PID_SLOTS)
		if (t->pids[i].pid == pid || !t->pids[i].pid)
			return &t->pids[i];
}

struct k8s_target *k8s_targets_pid(struct k8s_targets *t, uint32_t pid)
{
	struct pid_slot *s = pid ? find_slot(t, pid) : NULL;

	return s && s->pid ? &t->targets[s->target] : NULL;
}

int k8s_targets_set_pid(struct k8s_targets *t, uint32_t pid, struct k8s_target *target)
{
	struct pid_slot *s;

	if (!pid)
		return -EINVAL;
	s = find_slot(t, pid);
	if (!s->pid) {
		if (t->n_pids == K8S_MAX_TARGET_PIDS)
			return -ENOSPC;
		s->pid = pid;
		t->n_pids++;
	}
	s->target = target->index;
	return 0;
}

/* Linear probing cannot just empty a slot: the entries after it that probed past it would be
 * lost. The run after the slot is inserted again. */
static void remove_slot(struct k8s_targets *t, size_t i)
{
	t->pids[i].pid = 0;
	t->n_pids--;
	for (size_t j = (i + 1) % PID_SLOTS; t->pids[j].pid; j = (j + 1) % PID_SLOTS) {
		struct pid_slot moved = t->pids[j];

		t->pids[j].pid = 0;
		*find_slot(t, moved.pid) = moved;
	}
}

void k8s_targets_forget_pid(struct k8s_targets *t, uint32_t pid)
{
	struct pid_slot *s = pid ? find_slot(t, pid) : NULL;

	if (s && s->pid)
		remove_slot(t, (size_t)(s - t->pids));
}

void k8s_targets_sweep(struct k8s_targets *t, const uint32_t *traced, size_t n)
{
	static struct pid_slot kept[PID_SLOTS]; /* the capture thread's alone */
	size_t n_kept = 0;

	for (size_t i = 0; i < n; i++) {
		struct pid_slot *s = traced[i] ? find_slot(t, traced[i]) : NULL;

		if (s && s->pid && n_kept < PID_SLOTS)
			kept[n_kept++] = *s;
	}
	memset(t->pids, 0, sizeof(t->pids));
	t->n_pids = 0;
	for (size_t i = 0; i <= K8S_MAX_TARGETS; i++)
		t->targets[i].processes = 0;
	for (size_t i = 0; i < n_kept; i++) {
		struct pid_slot *s = find_slot(t, kept[i].pid);

		if (s->pid)
			continue; /* listed twice */
		*s = kept[i];
		t->n_pids++;
		t->targets[s->target].processes++;
	}
}

size_t k8s_targets_count(const struct k8s_targets *t)
{
	return t->n_targets + (t->overflow_used ? 1 : 0);
}

const struct k8s_target *k8s_targets_at(const struct k8s_targets *t, size_t i)
{
	if (i < t->n_targets)
		return &t->targets[i];
	return i == t->n_targets && t->overflow_used ? &t->targets[K8S_MAX_TARGETS] : NULL;
}
