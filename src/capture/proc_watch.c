// SPDX-License-Identifier: MIT
#include "proc_watch.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "bizprobe/capture_event.h"
#include "procs.skel.h"

struct proc_list {
	struct bp_proc_signature *p;
	size_t n, cap;
};

struct proc_watch {
	struct procs_bpf *skel;
	struct proc_list last, now; /* the previous scan's list and this one's */
	bool scanned;
};

struct proc_watch *proc_watch_new(void)
{
	struct proc_watch *w = calloc(1, sizeof(*w));
	libbpf_print_fn_t print;
	int err;

	if (!w)
		return NULL;
	/* A kernel without task iterators has a fallback: libbpf need not say why. */
	print = libbpf_set_print(NULL);
	w->skel = procs_bpf__open_and_load();
	err = w->skel ? procs_bpf__attach(w->skel) : -errno;
	libbpf_set_print(print);
	if (!w->skel || err) {
		proc_watch_free(w);
		errno = err < 0 ? -err : EOPNOTSUPP;
		return NULL;
	}
	return w;
}

static int grow(struct proc_list *l)
{
	size_t cap = l->cap ? l->cap * 2 : 1024;
	struct bp_proc_signature *p = realloc(l->p, cap * sizeof(*p));

	if (!p)
		return -ENOMEM;
	l->p = p;
	l->cap = cap;
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct bp_proc_signature *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* This scan's list into l, by pid. */
static int read_list(struct proc_watch *w, struct proc_list *l)
{
	int fd = bpf_iter_create(bpf_link__fd(w->skel->links.process_signatures));
	size_t bytes = 0, size = sizeof(*l->p);
	int err = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (bytes + size > l->cap * size && (err = grow(l)))
			break;
		n = read(fd, (char *)l->p + bytes, l->cap * size - bytes);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		bytes += (size_t)n;
	}
	close(fd);
	l->n = bytes / size;
	/* The iterator walks pids in order already, but in the pid namespace of whoever reads. */
	qsort(l->p, l->n, size, by_pid);
	return err;
}

int proc_watch_scan(struct proc_watch *w, bool everyone, proc_pid_fn fn, void *ctx)
{
	const struct proc_list *last = &w->last;
	struct proc_list swap;
	size_t j = 0;
	int err = read_list(w, &w->now);

	if (err)
		return err;
	everyone |= !w->scanned;
	/* Both lists ascend by pid: one merge walk finds who is new or changed. */
	for (size_t i = 0; i < w->now.n; i++) {
		const struct bp_proc_signature *p = &w->now.p[i];

		while (j < last->n && last->p[j].pid < p->pid)
			j++;
		if (everyone || j == last->n || last->p[j].pid != p->pid ||
		    last->p[j].signature != p->signature)
			fn((pid_t)p->pid, ctx);
	}
	swap = w->last;
	w->last = w->now;
	w->now = swap;
	w->scanned = true;
	return 0;
}

void proc_watch_free(struct proc_watch *w)
{
	if (!w)
		return;
	procs_bpf__destroy(w->skel);
	free(w->last.p);
	free(w->now.p);
	free(w);
}
