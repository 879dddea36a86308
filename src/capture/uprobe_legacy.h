/* SPDX-License-Identifier: MIT */
/* Uprobes created through tracefs (uprobe_events) instead of the uprobe PMU. */
#ifndef BIZPROBE_CAPTURE_UPROBE_LEGACY_H
#define BIZPROBE_CAPTURE_UPROBE_LEGACY_H

#include <stdbool.h>
#include <stdint.h>

struct bpf_link;
struct bpf_program;

/*
 * Creates a uprobe event in tracefs for path:offset, opens it as a tracepoint perf event and
 * attaches prog. Used when the uprobe PMU refuses us: some kernels (6.18 here) require
 * CAP_SYS_ADMIN for it even with CAP_PERFMON, while tracefs events need only CAP_PERFMON.
 * Returns the link or NULL with errno set. The event is removed by uprobe_legacy_cleanup().
 */
struct bpf_link *uprobe_legacy_attach(struct bpf_program *prog, const char *path, uint64_t offset,
				      bool retprobe);

/* Removes every event uprobe_legacy_attach created (after their links are destroyed). */
void uprobe_legacy_cleanup(void);

#endif
