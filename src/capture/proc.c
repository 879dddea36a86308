// SPDX-License-Identifier: MIT
#include "proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The kernel's internal dev_t (MKDEV: 12-bit major, 20-bit minor), as sb->s_dev holds it. */
static uint64_t kernel_dev(dev_t dev)
{
	return ((uint64_t)major(dev) << 20) | minor(dev);
}

int proc_file_id(const char *path, struct file_id *out)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	out->dev = kernel_dev(st.st_dev);
	out->ino = st.st_ino;
	return 0;
}

int proc_exe_id(pid_t pid, struct file_id *out)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	return proc_file_id(path, out);
}

static ssize_t read_small_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, cap);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

int proc_comm(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	n = read_small_file(path, buf, cap - 1);
	if (n < 0)
		return (int)n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		n--;
	buf[n] = '\0';
	return 0;
}

ssize_t proc_cmdline(pid_t pid, char *buf, size_t cap)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	return read_small_file(path, buf, cap);
}

ssize_t proc_cgroup(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	n = read_small_file(path, buf, cap - 1);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static bool mappings_have(const struct proc_mappings *m, const char *path)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->paths[i], path) == 0)
			return true;
	return false;
}

static int mappings_add(struct proc_mappings *m, const char *path)
{
	char *copy;

	if (mappings_have(m, path))
		return 0;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		char **paths = realloc(m->paths, cap * sizeof(*paths));

		if (!paths)
			return -ENOMEM;
		m->paths = paths;
		m->cap = cap;
	}
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	m->paths[m->n++] = copy;
	return 0;
}

void proc_mappings_free(struct proc_mappings *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->paths[i]);
	free(m->paths);
	*m = (struct proc_mappings){0};
}

int proc_exec_mappings(pid_t pid, struct proc_mappings *out)
{
	char path[64], line[4096 + 256], last[4096] = "";
	int err = 0;
	FILE *f;

	*out = (struct proc_mappings){0};
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (!err && fgets(line, sizeof(line), f)) {
		char perms[8] = "", *file;
		char full[4096 + 64];
		size_t len;

		/* address perms offset dev inode pathname */
		if (sscanf(line, "%*s %7s %*s %*s %*s", perms) != 1 || perms[2] != 'x')
			continue;
		file = strchr(line, '/');
		if (!file)
			continue;
		len = strcspn(file, "\n");
		file[len] = '\0';
		/* Deleted or replaced files cannot be reached by path any more. */
		if (len > 10 && strcmp(file + len - 10, " (deleted)") == 0)
			continue;
		/* A file's executable segments are usually adjacent: most repeats stop here. */
		if (strcmp(file, last) == 0)
			continue;
		snprintf(last, sizeof(last), "%s", file);
		snprintf(full, sizeof(full), "/proc/%d/root%s", (int)pid, file);
		err = mappings_add(out, full);
	}
	fclose(f);
	if (err)
		proc_mappings_free(out);
	return err;
}

int proc_for_each_pid(proc_pid_fn fn, void *ctx)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		fn((pid_t)strtol(de->d_name, NULL, 10), ctx);
	}
	closedir(d);
	return 0;
}

bool proc_alive(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) == 0;
}

#define PID_MAX_LIMIT_ 4194304u /* the kernel's ceiling for pid_max on 64-bit */

uint32_t proc_pid_max(void)
{
	char buf[32];
	ssize_t n = read_small_file("/proc/sys/kernel/pid_max", buf, sizeof(buf) - 1);
	unsigned long v;
	char *end;

	if (n <= 0)
		return PID_MAX_LIMIT_;
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || v == 0 || v > PID_MAX_LIMIT_)
		return PID_MAX_LIMIT_;
	return (uint32_t)v;
}
