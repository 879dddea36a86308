/* SPDX-License-Identifier: MIT */
/*
 * Kubernetes node mode (src/k8s/): which container and pod a process belongs to, from its
 * /proc/PID/cgroup (k8s_cgroup_*), and what the kube API says about that pod (k8s_pod_cache_*).
 * Both are usable without the other: without API access a process is still placed in its pod by
 * uid and container id.
 */
#ifndef BIZPROBE_K8S_H
#define BIZPROBE_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bizprobe/business_event.h"

/* A pod uid as the API shows it: a UUID (36) or, for static pods, the kubelet's 32-hex hash. */
#define K8S_POD_UID_MAX 40
/* Container ids of containerd, CRI-O and Docker: 64 hex digits (a sha256). */
#define K8S_CONTAINER_ID_LEN 64
/* One /proc/PID/cgroup line or path longer than this is refused (-E2BIG), not cut: a cut path
 * could name another cgroup. The kernel's own limit for a path is PATH_MAX. */
#define K8S_CGROUP_LINE_MAX 4096
/* The whole file: hybrid hierarchies have ~15 lines; more than this is not a cgroup file. */
#define K8S_CGROUP_FILE_MAX 65536

enum k8s_qos {
	K8S_QOS_UNKNOWN = 0, /* a container outside kubepods (plain docker) */
	K8S_QOS_GUARANTEED,  /* directly under kubepods: the kubelet gives it no QoS level */
	K8S_QOS_BURSTABLE,
	K8S_QOS_BESTEFFORT,
};

enum k8s_runtime {
	K8S_RUNTIME_UNKNOWN = 0, /* cgroupfs driver: a bare id names no runtime */
	K8S_RUNTIME_CONTAINERD,	 /* cri-containerd-<id>.scope */
	K8S_RUNTIME_CRIO,	 /* crio-<id>.scope, crio-<id> */
	K8S_RUNTIME_DOCKER,	 /* docker-<id>.scope, /docker/<id> */
};

enum k8s_cgroup_driver {
	K8S_DRIVER_NONE = 0,
	K8S_DRIVER_SYSTEMD,  /* kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice */
	K8S_DRIVER_CGROUPFS, /* /kubepods/<qos>/pod<uid>/<id> */
};

struct k8s_container_ref {
	char pod_uid[K8S_POD_UID_MAX + 1]; /* with dashes; "" when the path does not show it (a
					    * sibling container seen from inside the pod's own
					    * cgroup namespace: look it up by container id) */
	char container_id[K8S_CONTAINER_ID_LEN + 1];
	enum k8s_qos qos;
	enum k8s_runtime runtime;
	enum k8s_cgroup_driver driver;
	bool v2; /* taken from the unified hierarchy's 0:: line */
};

/*
 * One cgroup path (what follows the second ':' of a line), as the reader's cgroup namespace
 * shows it: "/../.." components (bizprobe in its own cgroup namespace) are fine, the pod and
 * container are found by their names wherever they sit. Deeper cgroups under the container's
 * (a container that makes its own) belong to that container.
 * Returns 0; -ENOENT when the path is no container's (err says so); -EINVAL for a path that
 * names a pod or container wrongly (err says how); -E2BIG when longer than K8S_CGROUP_LINE_MAX.
 * len bytes are read, no NUL needed.
 */
int k8s_cgroup_parse_path(const char *path, size_t len, struct k8s_container_ref *out, char *err,
			  size_t err_len);

/*
 * A whole /proc/PID/cgroup file, v1 ("N:controllers:/path"), v2 ("0::/path") or hybrid: the v2
 * line when it names a container, else the first v1 line that does. A malformed line (no two
 * colons, not a number first, not an absolute path) is -EINVAL with its line number in err.
 */
int k8s_cgroup_parse(const char *text, size_t len, struct k8s_container_ref *out, char *err,
		     size_t err_len);

/* Reads /proc/PID/cgroup (proc_root: "/proc" when NULL) and parses it. */
int k8s_cgroup_read(const char *proc_root, pid_t pid, struct k8s_container_ref *out, char *err,
		    size_t err_len);

const char *k8s_qos_name(enum k8s_qos q);
const char *k8s_runtime_name(enum k8s_runtime r);

/* ---- The kube API's view of the pods on this node. ---- */

#define K8S_NAME_MAX 253 /* a DNS subdomain: the longest name or namespace the API accepts */
#define K8S_KIND_MAX 63

struct k8s_label {
	const char *key;
	const char *value;
};

/* One pod, copied out of the cache (k8s_pod_cache_lookup): owns its strings. */
struct k8s_pod_info {
	char uid[K8S_POD_UID_MAX + 1];
	char namespace_[K8S_NAME_MAX + 1];
	char name[K8S_NAME_MAX + 1];
	/* The owning workload: a ReplicaSet's pods are the Deployment's whose name the ReplicaSet's
	 * is minus its pod-template-hash; a pod without a controller is its own workload. */
	char workload_kind[K8S_KIND_MAX + 1];
	char workload_name[K8S_NAME_MAX + 1];
	struct k8s_label *labels; /* n_labels, key order as the API sent them */
	size_t n_labels;
	char *label_buf; /* holds the labels' strings */
};

void k8s_pod_info_release(struct k8s_pod_info *p);
/* The value of label key, or NULL. */
const char *k8s_pod_info_label(const struct k8s_pod_info *p, const char *key);

#define K8S_DEFAULT_SA_DIR	    "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_DEFAULT_MAX_PODS	    1024 /* kubelet's default is 110 pods a node */
#define K8S_DEFAULT_MAX_LABEL_BYTES (1u << 20)

struct k8s_pod_cache_config {
	/* "https://host:port"; NULL: from KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT. */
	const char *api_url;
	const char *token_file; /* NULL: K8S_DEFAULT_SA_DIR/token (re-read: it is rotated) */
	const char *ca_file;	/* NULL: K8S_DEFAULT_SA_DIR/ca.crt */
	const char *node_name;	/* NULL: NODE_NAME; the watch is restricted to its pods */
	unsigned max_pods;	/* 0: K8S_DEFAULT_MAX_PODS; pods beyond it are counted, not kept */
	size_t max_label_bytes; /* 0: K8S_DEFAULT_MAX_LABEL_BYTES, keys and values of all pods */
	unsigned watch_timeout_s; /* the server ends each watch after it; 0: 300 */
};

struct k8s_pod_cache_stats {
	uint64_t lists;		 /* successful lists */
	uint64_t watch_events;	 /* ADDED/MODIFIED/DELETED applied */
	uint64_t errors;	 /* failed requests, unparsable answers (then listed again) */
	uint64_t pods_dropped;	 /* not kept: max_pods reached */
	uint64_t labels_dropped; /* labels not kept: max_label_bytes reached */
	uint32_t pods;		 /* pods held now */
	size_t label_bytes;	 /* label bytes held now */
	bool synced;		 /* a list has completed */
};

struct k8s_pod_cache;

/* Checks the configuration (URL, node name, token and CA files readable); NULL with err set. */
struct k8s_pod_cache *k8s_pod_cache_new(const struct k8s_pod_cache_config *cfg, char *err,
					size_t err_len);
/* Lists the node's pods once, replacing the cache. 0 or a negative errno, err set. */
int k8s_pod_cache_sync(struct k8s_pod_cache *c, char *err, size_t err_len);
/* A thread that lists, then watches from the list's resourceVersion, listing again when the
 * watch ends with 410 Gone or an error (backing off up to 30 s). */
int k8s_pod_cache_start(struct k8s_pod_cache *c);
/* 0 and a copy in out (release it), or -ENOENT. */
int k8s_pod_cache_lookup(struct k8s_pod_cache *c, const char *uid, struct k8s_pod_info *out);
/* The pod running container_id (from status.containerStatuses), for a cgroup path that showed
 * the container but not its pod. */
int k8s_pod_cache_lookup_container(struct k8s_pod_cache *c, const char *container_id,
				   struct k8s_pod_info *out);
/* Up to cap uids of the pods held now; returns how many were written. */
size_t k8s_pod_cache_uids(struct k8s_pod_cache *c, char (*uids)[K8S_POD_UID_MAX + 1], size_t cap);
void k8s_pod_cache_get_stats(struct k8s_pod_cache *c, struct k8s_pod_cache_stats *out);
/* Stops the thread, frees everything. NULL is fine. */
void k8s_pod_cache_free(struct k8s_pod_cache *c);

/* For tests and the thread: a PodList body replaces the cache; one watch event line applies.
 * Both return 0 or -EINVAL (not the JSON expected; the cache is left as it was), -E2BIG (over
 * 64 MiB a list, 4 MiB an event); an event also -ESTALE (410 Gone: list again) or -EPROTO
 * (another ERROR event). */
int k8s_pod_cache_apply_list(struct k8s_pod_cache *c, const char *json, size_t len);
int k8s_pod_cache_apply_event(struct k8s_pod_cache *c, const char *json, size_t len);
/* The workload owning a pod from its controller ownerReference (pure, for tests): a ReplicaSet
 * named <deployment>-<pod-template-hash> is its Deployment, a Job named <cronjob>-<digits> its
 * CronJob, no owner the pod itself (kind "Pod"). owner_kind NULL: no controller. */
void k8s_workload_from_owner(const char *owner_kind, const char *owner_name,
			     const char *pod_template_hash, const char *pod_name, char *kind,
			     size_t kind_cap, char *name, size_t name_cap);

/* ---- Node mode's process selection (bizprobe run --node --select KIND=VALUE). ---- */

#define K8S_MAX_SELECTORS 32

enum k8s_select_kind {
	K8S_SELECT_EXE,	      /* exe=GLOB: the executable's path inside its container */
	K8S_SELECT_COMM,      /* comm=NAME: /proc/PID/comm, exactly */
	K8S_SELECT_NAMESPACE, /* k8s-namespace=NS: the pod's namespace (needs the kube API) */
	K8S_SELECT_LABEL,     /* k8s-label=KEY=VALUE: a pod label (needs the kube API) */
	K8S_SELECT_CGROUP, /* cgroup=GLOB: the unified-hierarchy path (as /proc/PID/cgroup's 0::) */
	K8S_SELECT__COUNT,
};

struct k8s_selector {
	enum k8s_select_kind kind;
	char *value; /* the GLOB, NAME, NS or label VALUE */
	char *key;   /* k8s-label's KEY; NULL otherwise */
};

/* Selectors of one kind are alternatives, selectors of different kinds must all hold:
 * `--select comm=node --select comm=python3 --select k8s-namespace=shop` is node or python3
 * processes of pods in shop. */
struct k8s_selection {
	struct k8s_selector sel[K8S_MAX_SELECTORS];
	size_t n;
};

/* What is known of one process; NULL fields are unknown (a process in no pod has pod NULL). */
struct k8s_proc_view {
	const char *exe;
	const char *comm;
	const char *cgroup;
	const struct k8s_pod_info *pod;
};

/* Adds one --select argument; 0 or -EINVAL with err saying what is wrong. */
int k8s_selection_add(struct k8s_selection *s, const char *arg, char *err, size_t err_len);
/* Whether any selector needs pod metadata (namespace or labels). */
bool k8s_selection_needs_pod(const struct k8s_selection *s);
bool k8s_selection_match(const struct k8s_selection *s, const struct k8s_proc_view *v);
/* Whether the pod still satisfies the pod selectors (k8s-namespace, k8s-label); the others are
 * taken as holding. What a traced process is asked again when its pod changes: a label can be
 * removed from a running pod, while exe, comm and cgroup were judged at exec (a traced process
 * that execs another program stays traced, as with --exe). true without pod selectors. */
bool k8s_selection_match_pod(const struct k8s_selection *s, const struct k8s_pod_info *pod);
void k8s_selection_free(struct k8s_selection *s);

/* The unified hierarchy's path from a /proc/PID/cgroup file ("0::PATH"), NUL-terminated in out;
 * 0, -ENOENT (no 0:: line), -E2BIG (does not fit out). */
int k8s_cgroup_v2_path(const char *text, size_t len, char *out, size_t cap);

/* --k8s-labels: which pod facts label business series. */
#define K8S_LABEL_NAMESPACE (1u << 0)
#define K8S_LABEL_WORKLOAD  (1u << 1)
/* "namespace,workload", "namespace", "workload"; pod names are refused (cardinality). */
int k8s_labels_parse(const char *arg, unsigned *mask, char *err, size_t err_len);

/* ---- Node mode's targets (k8s_targets.c): the (namespace, workload) of each traced process,
 * the values of the --k8s-labels on its business series and self-metrics. ---- */

/* The pod is not known to the kube API (no API access, not listed yet): the cgroup path names
 * its uid, not its namespace or workload. Prometheus treats an empty value as no label. */
#define K8S_TARGET_UNKNOWN "unknown"
/* A pod no controller owns: its own name would be one series per pod (cardinality). */
#define K8S_TARGET_NONE "none"
/* Distinct (namespace, workload) pairs kept (a node runs 110 pods by default); beyond them,
 * every new pair shares the one target ("other", "other"). */
#define K8S_MAX_TARGETS 256
/* Processes mapped to their target: the capture session traces at most 4096. */
#define K8S_MAX_TARGET_PIDS 4096

/* The label values of a pod's processes: its namespace and its workload's name, "none" for a
 * bare pod; both K8S_TARGET_UNKNOWN when pod is NULL. Point into pod or at constants. */
void k8s_target_names(const struct k8s_pod_info *pod, const char **namespace_,
		      const char **workload);

struct k8s_target {
	struct biz_target biz; /* points at the two strings below */
	char namespace_[K8S_NAME_MAX + 1];
	char workload[K8S_NAME_MAX + 1];
	unsigned index;	    /* 0.. in order of first sight: stable while the table lives */
	uint32_t processes; /* traced now, as of the last k8s_targets_sweep */
	uint64_t exchanges; /* exchanges of its processes, counted by the caller */
};

struct k8s_targets;

struct k8s_targets *k8s_targets_new(void);
void k8s_targets_free(struct k8s_targets *t);
/* The target named so, added on first sight; the shared overflow target once K8S_MAX_TARGETS
 * are held. Never NULL. */
struct k8s_target *k8s_targets_intern(struct k8s_targets *t, const char *namespace_,
				      const char *workload);
/* pid's target, or NULL when pid has none (not seen yet). */
struct k8s_target *k8s_targets_pid(struct k8s_targets *t, uint32_t pid);
/* Maps pid to target (replacing what it had: a pid reused). -ENOSPC when K8S_MAX_TARGET_PIDS
 * pids are mapped already. */
int k8s_targets_set_pid(struct k8s_targets *t, uint32_t pid, struct k8s_target *target);
void k8s_targets_forget_pid(struct k8s_targets *t, uint32_t pid);
/* Keeps the pids of traced[] only (the others exited or were dropped) and recounts each
 * target's processes; pids in traced[] without a target count nowhere. */
void k8s_targets_sweep(struct k8s_targets *t, const uint32_t *traced, size_t n);
size_t k8s_targets_count(const struct k8s_targets *t);
const struct k8s_target *k8s_targets_at(const struct k8s_targets *t, size_t i);

#endif
