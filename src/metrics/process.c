// SPDX-License-Identifier: MIT
/*
 * The standard process_* metrics every Prometheus client library exports, read from /proc/self
 * at each render, plus bizprobe_build_info.
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bizprobe/metrics.h"

struct metrics_process {
	struct metrics_family *cpu;
	struct metrics_family *rss;
	struct metrics_family *vsize;
	struct metrics_family *start;
	struct metrics_family *open_fds;
	struct metrics_family *max_fds;
	double last_cpu; /* a counter must not go down, even if /proc glitches */
};

static double boot_time_seconds(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	double btime = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "btime ", 6)) {
			btime = strtod(line + 6, NULL);
			break;
		}
	}
	fclose(f);
	return btime;
}

/* Fields of /proc/self/stat after the parenthesised comm, which may itself contain spaces. */
static int read_stat(double *cpu_s, double *vsize, double *rss, double *start_ticks)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n;
	char *p, *tok, *save = NULL;
	int field = 3; /* the field after ") " is the 3rd (state) */
	double utime = 0, stime = 0;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	for (tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		switch (field) {
		case 14:
			utime = strtod(tok, NULL);
			break;
		case 15:
			stime = strtod(tok, NULL);
			break;
		case 22:
			*start_ticks = strtod(tok, NULL);
			break;
		case 23:
			*vsize = strtod(tok, NULL);
			break;
		case 24:
			*rss = strtod(tok, NULL);
			break;
		}
	}
	if (field <= 24)
		return -EIO;
	*cpu_s = utime + stime;
	return 0;
}

static double count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	double n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the descriptor opendir itself holds */
}

static void process_collect(struct metrics_registry *reg, void *ctx)
{
	struct metrics_process *p = ctx;
	double cpu_ticks, vsize, rss_pages, start_ticks;
	long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	struct rlimit rl;

	if (hz <= 0)
		hz = 100;
	if (!read_stat(&cpu_ticks, &vsize, &rss_pages, &start_ticks)) {
		double cpu = cpu_ticks / (double)hz;

		if (cpu > p->last_cpu) {
			metrics_add(p->cpu, NULL, cpu - p->last_cpu);
			p->last_cpu = cpu;
		}
		metrics_set(p->vsize, NULL, vsize);
		metrics_set(p->rss, NULL, rss_pages * (double)page);
		metrics_set(p->start, NULL, boot_time_seconds() + start_ticks / (double)hz);
	}
	metrics_set(p->open_fds, NULL, count_open_fds());
	if (!getrlimit(RLIMIT_NOFILE, &rl))
		metrics_set(p->max_fds, NULL,
			    rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
}

int metrics_process_register(struct metrics_registry *reg)
{
	static const struct {
		const char *name, *help;
		enum metrics_type type;
		size_t off;
	} defs[] = {
	    {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
	     METRICS_COUNTER, offsetof(struct metrics_process, cpu)},
	    {"process_resident_memory_bytes", "Resident memory size in bytes.", METRICS_GAUGE,
	     offsetof(struct metrics_process, rss)},
	    {"process_virtual_memory_bytes", "Virtual memory size in bytes.", METRICS_GAUGE,
	     offsetof(struct metrics_process, vsize)},
	    {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
	     METRICS_GAUGE, offsetof(struct metrics_process, start)},
	    {"process_open_fds", "Number of open file descriptors.", METRICS_GAUGE,
	     offsetof(struct metrics_process, open_fds)},
	    {"process_max_fds", "Maximum number of open file descriptors.", METRICS_GAUGE,
	     offsetof(struct metrics_process, max_fds)},
	};
	struct metrics_process *p;
	int err;

	if (!reg)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
		struct metrics_family_opts o = {
		    .name = defs[i].name, .help = defs[i].help, .type = defs[i].type};
		struct metrics_family **slot = (struct metrics_family **)((char *)p + defs[i].off);

		err = metrics_family_register(reg, &o, slot);
		if (err)
			goto fail;
	}
	/* The registry frees p with itself: the families stay registered until then. */
	return metrics_registry_add_collector(reg, process_collect, p, free);
fail:
	free(p);
	return err;
}

int metrics_build_info_register(struct metrics_registry *reg, const char *version)
{
	static const char *const labels[] = {"version"};
	const char *values[] = {version ? version : "unknown"};
	struct metrics_family_opts o = {
	    .name = "bizprobe_build_info",
	    .help = "A metric with a constant '1' value labeled by the bizprobe version.",
	    .type = METRICS_GAUGE,
	    .label_names = labels,
	    .n_labels = 1,
	};
	struct metrics_family *f;
	int err = metrics_family_register(reg, &o, &f);

	if (err)
		return err;
	return metrics_set(f, values, 1);
}
