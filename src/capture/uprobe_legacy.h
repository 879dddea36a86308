/* SPDX-License-Identifier: MIT */
/* Uprobes created through tracefs (uprobe_events) instead of the uprobe PMU. */
#ifndef BIZPROBE_CAPTURE_UPROBE_LEGACY_H
#define BIZPROBE_CAPTURE_UPROBE_LEGACY_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_link;
struct bpf_program;
struct file_id;

/*
 * Opens the uprobe event for path:offset (file is path's inode; the event is created in tracefs,
 * for every process on first use, for one process anew) as a tracepoint perf event for pid
 * (-1: every process) and attaches prog. Used
 * when the uprobe PMU refuses us: some kernels (6.18 here) require CAP_SYS_ADMIN for it even
 * with CAP_PERFMON, while tracefs events need only CAP_PERFMON.
 * Returns the link or NULL with errno set. The event is removed by uprobe_legacy_cleanup().
 */
struct bpf_link *uprobe_legacy_attach(struct bpf_program *prog, const char *path,
				      const struct file_id *file, uint64_t offset, bool retprobe,
				      int pid);

/* Removes every event uprobe_legacy_attach created (after their links are destroyed). */
void uprobe_legacy_cleanup(void);

/* Removes the events a bizprobe that is no longer running left behind (killed with SIGKILL, it
 * never ran uprobe_legacy_cleanup): bizprobe_<pid>_<n> whose pid is not a live bizprobe. Events
 * of running bizprobes are left alone. Returns how many were removed. */
int uprobe_legacy_remove_stale(void);

#endif
