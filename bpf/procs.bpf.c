// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * The host's processes in one read, for --exe and node mode's periodic look at them: each
 * process as its pid and a signature of what selection reads about it (its program, its name,
 * its cgroups). Userspace then reads /proc only for the processes that are new or whose
 * signature changed, instead of three /proc files of every process every second.
 * A BPF task iterator (no kprobes, no fentry): the kernel runs it once per read.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "bizprobe/capture_event.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

static __always_inline __u64 mix(__u64 h, __u64 v)
{
	return (h ^ v) * 0x100000001b3ull;
}

SEC("iter/task")
int process_signatures(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct bp_proc_signature rec = {};
	struct inode *exe;
	__u64 comm[2] = {};
	__u64 h = 0xcbf29ce484222325ull;

	/* One record per process, from its leader; kernel threads have no program. */
	if (!task || task->pid != task->tgid)
		return 0;
	exe = BPF_CORE_READ(task, mm, exe_file, f_inode);
	if (!exe)
		return 0;
	bpf_probe_read_kernel(comm, sizeof(comm), task->comm);
	h = mix(h, BPF_CORE_READ(exe, i_ino));
	h = mix(h, BPF_CORE_READ(exe, i_sb, s_dev));
	h = mix(h, comm[0]);
	h = mix(h, comm[1]);
	/* A process's set of cgroups, one object per combination: any migration, in any
	 * hierarchy (v1 controllers or the unified one), gives it another. */
	h = mix(h, (__u64)BPF_CORE_READ(task, cgroups));
	rec.pid = task->tgid;
	rec.signature = h;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
