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

#include "features.h"

/* Event names are bizprobe_<our pid>_<n>, so concurrent bizprobes never collide. */
static unsigned legacy_count;

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

struct bpf_link *uprobe_legacy_attach(struct bpf_program *prog, const char *path, uint64_t offset,
				      bool retprobe)
{
	struct perf_event_attr attr = {.size = sizeof(attr), .type = PERF_TYPE_TRACEPOINT};
	char name[64], line[4400];
	struct bpf_link *link;
	int id, pfd, err;

	snprintf(name, sizeof(name), "bizprobe_%d_%u", (int)getpid(), legacy_count++);
	snprintf(line, sizeof(line), "%c:uprobes/%s %s:0x%llx\n", retprobe ? 'r' : 'p', name, path,
		 (unsigned long long)offset);
	err = write_uprobe_events(line);
	if (err) {
		errno = -err;
		return NULL;
	}
	id = read_event_id(name);
	if (id < 0) {
		errno = -id;
		return NULL;
	}
	attr.config = (uint64_t)id;
	attr.sample_period = 1;
	attr.wakeup_events = 1;
	/* pid -1 on CPU 0: the BPF program hangs off the event itself and runs for every
	 * process on every CPU; the kernel side filters by tgid. */
	pfd = (int)syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
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

void uprobe_legacy_cleanup(void)
{
	char line[96];

	for (unsigned i = 0; i < legacy_count; i++) {
		snprintf(line, sizeof(line), "-:uprobes/bizprobe_%d_%u\n", (int)getpid(), i);
		write_uprobe_events(line);
	}
	legacy_count = 0;
}
