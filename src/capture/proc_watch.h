/* SPDX-License-Identifier: MIT */
/*
 * The host's processes as the kernel lists them (bpf/procs.bpf.c), for the periodic look that
 * --exe and node mode take at every process: which ones are new, or changed program, name or
 * cgroups since the last look. Those are the only ones whose /proc files need reading.
 */
#ifndef BIZPROBE_CAPTURE_PROC_WATCH_H
#define BIZPROBE_CAPTURE_PROC_WATCH_H

#include <stdbool.h>

#include "proc.h"

struct proc_watch;

/* NULL when the kernel cannot run the iterator (errno says why): the caller then reads /proc
 * for every process, as before. */
struct proc_watch *proc_watch_new(void);
/* Calls fn for every process that is new or changed since the last scan; for all of them at the
 * first scan, and when everyone is true. 0, or a negative errno (nothing was called). */
int proc_watch_scan(struct proc_watch *w, bool everyone, proc_pid_fn fn, void *ctx);
void proc_watch_free(struct proc_watch *w);

#endif
