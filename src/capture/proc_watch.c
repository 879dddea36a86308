// SPDX-License-Identifier: MIT
#include "proc_watch.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "bizprobe/capture_event.h"
#include "procs.skel.h"

struct proc_watch {
	struct procs_bpf *skel;
	struct bp_proc_signature *last, *now; /* the previous scan's list and this one's */
	size_t n_last, n_now, cap_last, cap_now;
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

static int grow(struct proc_watch *w)
{
	size_t cap = w->cap_now ? w->cap_now * 2 : 1024;
	struct bp_proc_signature *p = realloc(w->now, cap * sizeof(*p));

	if (!p)
		return -ENOMEM;
	w->now = p;
	w->cap_now = cap;
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	const struct bp_proc_signature *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* This scan's list into w->now, by pid. */
static int read_list(struct proc_watch *w)
{
	int fd = bpf_iter_create(bpf_link__fd(w->skel->links.process_signatures));
	size_t bytes = 0;
	int err = 0;

	if (fd < 0)
		return -errno;
	w->n_now = 0;
	for (;;) {
		ssize_t n;

		if (bytes + sizeof(*w->now) > w->cap_now * sizeof(*w->now) && (err = grow(w)))
			break;
		n = read(fd, (char *)w->now + bytes, w->cap_now * sizeof(*w->now) - bytes);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : 0;
			break;
		}
		bytes += (size_t)n;
	}
	close(fd);
	w->n_now = bytes / sizeof(*w->now);
	/* The iterator walks pids in order already, but in the pid namespace of whoever reads. */
	qsort(w->now, w->n_now, sizeof(*w->now), by_pid);
	return err;
}

int proc_watch_scan(struct proc_watch *w, bool everyone, proc_pid_fn fn, void *ctx)
{
	struct bp_proc_signature *swap;
	size_t j = 0, cap;
	int err = read_list(w);

	if (err)
		return err;
	everyone |= !w->scanned;
	/* Both lists ascend by pid: one merge walk finds who is new or changed. */
	for (size_t i = 0; i < w->n_now; i++) {
		const struct bp_proc_signature *p = &w->now[i];

		while (j < w->n_last && w->last[j].pid < p->pid)
			j++;
		if (everyone || j == w->n_last || w->last[j].pid != p->pid ||
		    w->last[j].signature != p->signature)
			fn((pid_t)p->pid, ctx);
	}
	swap = w->last;
	w->last = w->now;
	w->now = swap;
	w->n_last = w->n_now;
	cap = w->cap_last;
	w->cap_last = w->cap_now;
	w->cap_now = cap;
	w->scanned = true;
	return 0;
}

void proc_watch_free(struct proc_watch *w)
{
	if (!w)
		return;
	procs_bpf__destroy(w->skel);
	free(w->last);
	free(w->now);
	free(w);
}
