// SPDX-License-Identifier: MIT
#include "features.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bizprobe.skel.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

const char features_required_caps[] =
	"CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH (CAP_SYS_ADMIN on kernels "
	"before 5.8), CAP_SYS_RESOURCE where the memlock limit must be raised";

static const char *const tracefs_roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};

static bool cap_in(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* The raw capget syscall: one call, no libcap dependency for a yes/no question. */
static int check_caps(char *err, size_t err_len)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {0};
	static const struct {
		int cap;
		const char *name;
		const char *why;
	} need[] = {
		{CAP_BPF, "CAP_BPF", "to load BPF programs and maps"},
		{CAP_PERFMON, "CAP_PERFMON", "to attach uprobes and tracepoints"},
		{CAP_SYS_PTRACE, "CAP_SYS_PTRACE", "to read other processes' /proc/PID/maps and exe"},
		{CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH",
		 "to open binaries through /proc/PID/root"},
	};

	if (syscall(SYS_capget, &hdr, d))
		return 0; /* cannot tell: let the load itself fail with its own error */
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		/* CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON (and is all older kernels know). */
		if (cap_in(d, need[i].cap) ||
		    ((need[i].cap == CAP_BPF || need[i].cap == CAP_PERFMON) &&
		     cap_in(d, CAP_SYS_ADMIN)))
			continue;
		snprintf(err, err_len, "missing capability %s (needed %s); bizprobe needs %s",
			 need[i].name, need[i].why, features_required_caps);
		return -EPERM;
	}
	return 0;
}

const char *features_tracefs_root(void)
{
	char path[128];

	for (size_t i = 0; i < sizeof(tracefs_roots) / sizeof(tracefs_roots[0]); i++) {
		snprintf(path, sizeof(path), "%s/events", tracefs_roots[i]);
		if (access(path, F_OK) == 0)
			return tracefs_roots[i];
	}
	/* Not mounted (common in minimal hosts and VMs): mount it where the kernel expects. */
	if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
		return "/sys/kernel/tracing";
	return NULL;
}

int features_check(char *err, size_t err_len)
{
	int rc = check_caps(err, err_len);

	if (rc)
		return rc;
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(err, err_len,
			 "this kernel exposes no BTF (/sys/kernel/btf/vmlinux): bizprobe's CO-RE "
			 "programs need CONFIG_DEBUG_INFO_BTF=y");
		return -ENOTSUP;
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) != 1) {
		snprintf(err, err_len, "this kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, "
				       "Linux 5.8 and later)");
		return -ENOTSUP;
	}
	if (!features_tracefs_root()) {
		snprintf(err, err_len, "tracefs is not mounted and could not be mounted at "
				       "/sys/kernel/tracing");
		return -ENOTSUP;
	}
	return 0;
}

/* "tracepoint/CAT/NAME" or "raw_tracepoint/NAME" (sched events only) -> does tracefs have it? */
static bool tracepoint_exists(const char *sec)
{
	const char *root = features_tracefs_root();
	char path[256];

	if (!root)
		return false;
	if (strncmp(sec, "tracepoint/", 11) == 0)
		snprintf(path, sizeof(path), "%s/events/%s", root, sec + 11);
	else if (strncmp(sec, "raw_tracepoint/sys_", 19) == 0) /* sys_enter, sys_exit */
		snprintf(path, sizeof(path), "%s/events/raw_syscalls/%s", root, sec + 15);
	else if (strncmp(sec, "raw_tracepoint/", 15) == 0)
		snprintf(path, sizeof(path), "%s/events/sched/%s", root, sec + 15);
	else
		return true;
	return access(path, F_OK) == 0;
}

void features_disable_missing(struct bizprobe_bpf *skel)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj) {
		const char *sec = bpf_program__section_name(prog);

		if (tracepoint_exists(sec))
			continue;
		fprintf(stderr, "bizprobe: this kernel has no %s; that hook is off\n", sec);
		bpf_program__set_autoload(prog, false);
	}
}

/* Task storage for the programs that stash call arguments: uprobes (kprobe type) and the raw
 * syscall tracepoints, both reaching it through the tracing helpers from 5.11 on. */
static bool thread_storage_works(void)
{
	static const enum bpf_prog_type types[] = {BPF_PROG_TYPE_KPROBE,
						   BPF_PROG_TYPE_RAW_TRACEPOINT};

	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) != 1)
		return false;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (libbpf_probe_bpf_helper(types[i], BPF_FUNC_task_storage_get, NULL) != 1 ||
		    libbpf_probe_bpf_helper(types[i], BPF_FUNC_get_current_task_btf, NULL) != 1)
			return false;
	return true;
}

bool features_choose_call_storage(struct bizprobe_bpf *skel)
{
	if (thread_storage_works()) {
		skel->rodata->thread_storage = true;
		bpf_map__set_max_entries(skel->maps.sock_calls, 1);
		bpf_map__set_max_entries(skel->maps.ssl_calls, 1);
		return true;
	}
	/* The programs still name the map; code behind the false flag is never verified, so an
	 * ordinary map of any type satisfies the loader. */
	bpf_map__set_type(skel->maps.thread_calls, BPF_MAP_TYPE_HASH);
	bpf_map__set_max_entries(skel->maps.thread_calls, 1);
	return false;
}
