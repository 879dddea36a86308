/* SPDX-License-Identifier: MIT */
/* Reading /proc: process identity, executable mappings, the list of processes. */
#ifndef BIZPROBE_CAPTURE_PROC_H
#define BIZPROBE_CAPTURE_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* (dev, ino) of a file, dev in the kernel's internal encoding (what BPF reads from s_dev). */
struct file_id {
	uint64_t dev;
	uint64_t ino;
};

int proc_file_id(const char *path, struct file_id *out);
/* The executable of pid, as the file itself (reached through /proc/PID/exe). */
int proc_exe_id(pid_t pid, struct file_id *out);
int proc_comm(pid_t pid, char *buf, size_t cap);
/* The NUL-separated argument vector; returns its length or a negative errno. */
ssize_t proc_cmdline(pid_t pid, char *buf, size_t cap);
/* /proc/PID/cgroup, up to cap - 1 bytes, NUL-terminated; its length or a negative errno. */
ssize_t proc_cgroup(pid_t pid, char *buf, size_t cap);

/*
 * The distinct files pid maps executable, in the order of /proc/PID/maps, each with a path that
 * reaches it from our mount namespace (/proc/PID/root/...), so that files inside containers
 * resolve. Read once per look at a process: the hooks judgement and the attach walk then see
 * the same snapshot of its code.
 */
struct proc_mappings {
	char **paths;
	size_t n, cap;
};

/* 0, or a negative errno (out is then empty). */
int proc_exec_mappings(pid_t pid, struct proc_mappings *out);
void proc_mappings_free(struct proc_mappings *m);

typedef void (*proc_pid_fn)(pid_t pid, void *ctx);
int proc_for_each_pid(proc_pid_fn fn, void *ctx);

bool proc_alive(pid_t pid);

/* The highest pid plus one (/proc/sys/kernel/pid_max); the kernel's limit when unreadable. */
uint32_t proc_pid_max(void);

#endif
