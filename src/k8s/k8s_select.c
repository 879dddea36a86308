// SPDX-License-Identifier: MIT
/* Node mode's selectors: which processes on the node are traced. Pure: the caller gathers what
 * is known of a process (exe, comm, cgroup path, its pod from the kube API) in a view. */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/k8s.h"
#include "k8s_internal.h"

static const char *const kind_names[K8S_SELECT__COUNT] = {
    [K8S_SELECT_EXE] = "exe",
    [K8S_SELECT_COMM] = "comm",
    [K8S_SELECT_NAMESPACE] = "k8s-namespace",
    [K8S_SELECT_LABEL] = "k8s-label",
    [K8S_SELECT_CGROUP] = "cgroup",
};

int k8s_selection_add(struct k8s_selection *s, const char *arg, char *err, size_t err_len)
{
	const char *eq = strchr(arg, '=');
	struct k8s_selector *sel;
	size_t kl;
	int kind = -1;

	if (s->n == K8S_MAX_SELECTORS) {
		k8s_seterr(err, err_len, "more than %d --select", K8S_MAX_SELECTORS);
		return -EINVAL;
	}
	kl = eq ? (size_t)(eq - arg) : 0;
	for (int k = 0; k < K8S_SELECT__COUNT && eq; k++)
		if (strlen(kind_names[k]) == kl && !memcmp(arg, kind_names[k], kl))
			kind = k;
	if (kind < 0) {
		k8s_seterr(err, err_len,
		       "--select %s: not exe=GLOB, comm=NAME, k8s-namespace=NS, "
		       "k8s-label=KEY=VALUE or cgroup=GLOB",
		       arg);
		return -EINVAL;
	}
	sel = &s->sel[s->n];
	memset(sel, 0, sizeof(*sel));
	sel->kind = (enum k8s_select_kind)kind;
	if (kind == K8S_SELECT_LABEL) {
		const char *veq = strchr(eq + 1, '=');

		if (!veq || veq == eq + 1) {
			k8s_seterr(err, err_len, "--select %s: k8s-label takes KEY=VALUE", arg);
			return -EINVAL;
		}
		sel->key = strndup(eq + 1, (size_t)(veq - eq - 1));
		sel->value = strdup(veq + 1);
	} else {
		if (!eq[1]) {
			k8s_seterr(err, err_len, "--select %s: empty %s", arg, kind_names[kind]);
			return -EINVAL;
		}
		/* comm is what the kernel keeps: 15 bytes. A longer name could never match. */
		if (kind == K8S_SELECT_COMM && strlen(eq + 1) > 15) {
			k8s_seterr(err, err_len,
			       "--select %s: a comm is at most 15 bytes (the kernel cuts "
			       "longer names; use exe=GLOB)",
			       arg);
			return -EINVAL;
		}
		sel->value = strdup(eq + 1);
	}
	if (!sel->value || (kind == K8S_SELECT_LABEL && !sel->key)) {
		free(sel->key);
		free(sel->value);
		k8s_seterr(err, err_len, "out of memory");
		return -ENOMEM;
	}
	s->n++;
	return 0;
}

bool k8s_selection_needs_pod(const struct k8s_selection *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->sel[i].kind == K8S_SELECT_NAMESPACE || s->sel[i].kind == K8S_SELECT_LABEL)
			return true;
	return false;
}

static bool one(const struct k8s_selector *sel, const struct k8s_proc_view *v)
{
	const char *label;

	switch (sel->kind) {
	case K8S_SELECT_EXE:
		/* FNM_PATHNAME: '*' stays within one directory, as a shell's. */
		return v->exe && !fnmatch(sel->value, v->exe, FNM_PATHNAME);
	case K8S_SELECT_COMM:
		return v->comm && !strcmp(sel->value, v->comm);
	case K8S_SELECT_NAMESPACE:
		return v->pod && !strcmp(sel->value, v->pod->namespace_);
	case K8S_SELECT_LABEL:
		label = v->pod ? k8s_pod_info_label(v->pod, sel->key) : NULL;
		return label && !strcmp(label, sel->value);
	case K8S_SELECT_CGROUP:
		return v->cgroup && !fnmatch(sel->value, v->cgroup, 0);
	default:
		return false;
	}
}

bool k8s_selection_match(const struct k8s_selection *s, const struct k8s_proc_view *v)
{
	bool given[K8S_SELECT__COUNT] = {0}, held[K8S_SELECT__COUNT] = {0};

	if (!s->n)
		return false; /* node mode without a selector traces nothing, not everything */
	for (size_t i = 0; i < s->n; i++) {
		given[s->sel[i].kind] = true;
		if (!held[s->sel[i].kind] && one(&s->sel[i], v))
			held[s->sel[i].kind] = true;
	}
	for (int k = 0; k < K8S_SELECT__COUNT; k++)
		if (given[k] && !held[k])
			return false;
	return true;
}

bool k8s_selection_match_pod(const struct k8s_selection *s, const struct k8s_pod_info *pod)
{
	bool given[K8S_SELECT__COUNT] = {0}, held[K8S_SELECT__COUNT] = {0};
	const struct k8s_proc_view v = {.pod = pod};

	for (size_t i = 0; i < s->n; i++) {
		enum k8s_select_kind k = s->sel[i].kind;

		if (k != K8S_SELECT_NAMESPACE && k != K8S_SELECT_LABEL)
			continue;
		given[k] = true;
		if (!held[k] && one(&s->sel[i], &v))
			held[k] = true;
	}
	for (int k = 0; k < K8S_SELECT__COUNT; k++)
		if (given[k] && !held[k])
			return false;
	return true;
}

void k8s_selection_free(struct k8s_selection *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->sel[i].key);
		free(s->sel[i].value);
	}
	s->n = 0;
}

int k8s_cgroup_v2_path(const char *text, size_t len, char *out, size_t cap)
{
	size_t pos = 0;

	while (pos < len) {
		const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - line) : len - pos;

		pos += ll + (nl ? 1 : 0);
		if (ll >= 3 && !memcmp(line, "0::", 3)) {
			if (ll - 3 >= cap)
				return -E2BIG;
			memcpy(out, line + 3, ll - 3);
			out[ll - 3] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

int k8s_labels_parse(const char *arg, unsigned *mask, char *err, size_t err_len)
{
	const char *p = arg;

	*mask = 0;
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == 9 && !memcmp(p, "namespace", 9)) {
			*mask |= K8S_LABEL_NAMESPACE;
		} else if (n == 8 && !memcmp(p, "workload", 8)) {
			*mask |= K8S_LABEL_WORKLOAD;
		} else {
			k8s_seterr(err, err_len,
			       "--k8s-labels %s: \"%.*s\" is not namespace or workload%s", arg,
			       (int)n, p,
			       n == 3 && !memcmp(p, "pod", 3)
				   ? " (pod names would make a series per pod restart)"
				   : "");
			return -EINVAL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!*mask) {
		k8s_seterr(err, err_len, "--k8s-labels: name namespace, workload or both");
		return -EINVAL;
	}
	return 0;
}
