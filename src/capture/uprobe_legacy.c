// SPDX-License-Identifier: MIT
#include "uprobe_legacy.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "array.h"
#include "features.h"
#include "proc.h"

/*
 * Event names are bizprobe_<our pid>_<n>, so concurrent bizprobes never collide. An event opened
 * for every process is one per probed location (file, offset, entry or return). One opened for
 * a single process is its own: the kernel keeps one program array per trace event, shared by
 * all perf events opened on it, and refuses a program already in it (EEXIST, in
 * perf_event_attach_bpf_prog, 6.18 here). Two processes running one file (replicas of an image,
 * a container restarted while the links of its first life are still being destroyed) would
 * otherwise get the breakpoints for the first alone.
 */
struct legacy_event {
	struct file_id file;
	uint64_t offset;
	bool retprobe;
	int pid; /* -1: every process */
	unsigned n;
	int id;
};

static struct legacy_event *legacy_events;
static unsigned legacy_count, legacy_cap, legacy_next;

static int write_uprobe_events(const char *line);

static int remove_event(unsigned n)
{
	char line[96];

	snprintf(line, sizeof(line), "-:uprobes/bizprobe_%d_%u\n", (int)getpid(), n);
	return write_uprobe_events(line);
}

/* The events of processes gone, once their links are destroyed (the kernel refuses, EBUSY,
 * while a perf event is open on one; the next sweep tries again): without this, a node agent
 * would keep nine events per container restart until it exits. */
static void sweep_dead(void)
{
	for (unsigned i = legacy_count; i-- > 0;) {
		struct legacy_event *ev = &legacy_events[i];
		int err;

		if (ev->pid < 0 || proc_alive((pid_t)ev->pid))
			continue;
		err = remove_event(ev->n);
		if (err && err != -ENOENT)
			continue;
		legacy_events[i] = legacy_events[--legacy_count];
	}
}

static int write_uprobe_events(const char *line)
{
	const char *root = features_tracefs_root();
	char path[256];
	ssize_t n;
	int fd;

	if (!root)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/uprobe_events", root);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, line, strlen(line));
	close(fd);
	return n < 0 ? -errno : 0;
}

static int read_event_id(const char *name)
{
	const char *root = features_tracefs_root();
	char path[256], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/events/uprobes/%s/id", root, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	return atoi(buf);
}

/* The tracefs event for a location and pid: for every process (pid -1) created on first use,
 * for one process created anew. Its id or a negative errno. */
static int event_id(const char *path, const struct file_id *file, uint64_t offset, bool retprobe,
		    int pid)
{
	struct legacy_event *ev;
	char name[64], line[4400];
	unsigned n;
	int id, err;

	for (unsigned i = 0; i < legacy_count && pid < 0; i++) {
		ev = &legacy_events[i];
		if (ev->pid < 0 && ev->file.dev == file->dev && ev->file.ino == file->ino &&
		    ev->offset == offset && ev->retprobe == retprobe)
			return ev->id;
	}
	if (pid >= 0)
		sweep_dead();
	if (!array_grow((void **)&legacy_events, &legacy_cap, legacy_count, sizeof(*ev)))
		return -ENOMEM;
	n = legacy_next++;
	snprintf(name, sizeof(name), "bizprobe_%d_%u", (int)getpid(), n);
	snprintf(line, sizeof(line), "%c:uprobes/%s %s:0x%llx\n", retprobe ? 'r' : 'p', name, path,
		 (unsigned long long)offset);
	err = write_uprobe_events(line);
	if (err)
		return err;
	id = read_event_id(name);
	if (id < 0) {
		snprintf(line, sizeof(line), "-:uprobes/%s\n", name);
		write_uprobe_events(line);
		return id;
	}
	legacy_events[legacy_count++] = (struct legacy_event){
	    .file = *file, .offset = offset, .retprobe = retprobe, .pid = pid, .n = n, .id = id};
	return id;
}

struct bpf_link *uprobe_legacy_attach(struct bpf_program *prog, const char *path,
				      const struct file_id *file, uint64_t offset, bool retprobe,
				      int pid)
{
	struct perf_event_attr attr = {.size = sizeof(attr), .type = PERF_TYPE_TRACEPOINT};
	struct bpf_link *link;
	int id, pfd, err;

	id = event_id(path, file, offset, retprobe, pid);
	if (id < 0) {
		errno = -id;
		return NULL;
	}
	attr.config = (uint64_t)id;
	attr.sample_period = 1;
	attr.wakeup_events = 1;
	/* For one process: the kernel plants the breakpoints in its memory alone. For all (pid
	 * -1, on CPU 0): the BPF program hangs off the event and runs for every process on every
	 * CPU; the kernel side filters by tgid. */
	pfd = (int)syscall(SYS_perf_event_open, &attr, pid, pid < 0 ? 0 : -1, -1,
			   PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return NULL;
	link = bpf_program__attach_perf_event(prog, pfd);
	if (!link) {
		err = errno;
		close(pfd);
		errno = err;
	}
	return link;
}

/* pid is a running bizprobe other than us: its events are its own (and in use: the kernel would
 * refuse to remove them anyway, EBUSY, but one created and not yet opened would go). */
static bool live_bizprobe(int pid)
{
	char path[64], comm[32] = "";
	ssize_t n;
	int fd;

	if (pid == (int)getpid())
		return false; /* ours from an earlier life of this pid are stale too */
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false; /* no such process */
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return false;
	comm[n] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "bizprobe") == 0;
}

int uprobe_legacy_remove_stale(void)
{
	const char *root = features_tracefs_root();
	char path[256], line[4400], del[128];
	int removed = 0;
	FILE *f;

	if (!root)
		return 0;
	snprintf(path, sizeof(path), "%s/uprobe_events", root);
	f = fopen(path, "re");
	if (!f)
		return 0;
	/* Lines are "p:uprobes/NAME PATH:0xOFFSET" (r: for return probes). The whole file is read
	 * before anything is removed: removing rewrites it. */
	{
		char **names = NULL;
		unsigned n_names = 0, cap = 0;

		while (fgets(line, sizeof(line), f)) {
			const char *name = strstr(line, ":uprobes/bizprobe_");
			int pid, k, len = 0;

			if (!name || name != line + 1)
				continue;
			name += strlen(":uprobes/");
			if (sscanf(name, "bizprobe_%d_%d%n", &pid, &k, &len) != 2 || pid <= 0 ||
			    (name[len] != ' ' && name[len] != '\n' && name[len] != '\0'))
				continue;
			if (live_bizprobe(pid))
				continue;
			if (!array_grow((void **)&names, &cap, n_names, sizeof(*names)))
				break;
			names[n_names] = strndup(name, (size_t)len);
			if (names[n_names])
				n_names++;
		}
		fclose(f);
		for (unsigned i = 0; i < n_names; i++) {
			snprintf(del, sizeof(del), "-:uprobes/%s\n", names[i]);
			if (write_uprobe_events(del) == 0)
				removed++;
			free(names[i]);
		}
		free(names);
	}
	return removed;
}

void uprobe_legacy_cleanup(void)
{
	for (unsigned i = 0; i < legacy_count; i++)
		remove_event(legacy_events[i].n);
	legacy_count = 0;
	legacy_next = 0;
	legacy_cap = 0;
	free(legacy_events);
	legacy_events = NULL;
}
