// SPDX-License-Identifier: GPL-2.0
/* A self-contained CO-RE program for tests/vm/cases/25-bpftool-load-core.sh: no headers, so it
 * builds anywhere clang can target BPF. The task_struct fields are relocated by libbpf against
 * the running kernel's /sys/kernel/btf/vmlinux. */
typedef unsigned int __u32;
typedef unsigned long long __u64;

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

static __u64 (*bpf_get_current_task)(void) = (void *)35;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;

__attribute__((section("tracepoint/syscalls/sys_enter_getpid"), used))
int core_probe(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct task_struct *parent = 0;
	int tgid = 0;

	bpf_probe_read_kernel(&parent, sizeof(parent), &t->real_parent);
	bpf_probe_read_kernel(&tgid, sizeof(tgid), &parent->tgid);
	return tgid > 0;
}

char LICENSE[] __attribute__((section("license"), used)) = "GPL";
