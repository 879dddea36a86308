// SPDX-License-Identifier: MIT
/*
 * Capture session: the BPF lifecycle (open, configure, load, attach, poll, detach) and process
 * selection (--pid, --exe, processes started later, restarts, libraries loaded later).
 */
#include "bizprobe/capture_session.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bizprobe.skel.h"
#include "features.h"
#include "proc.h"
#include "proc_watch.h"
#include "tls_attach.h"

#define DEFAULT_MAX_COPY (256u * 1024)
/* 4 MiB: under load the reader drains it every BATCH_MS, and it held the bench's 50k
 * exchanges/s for 60 s without a loss. Its pages are mapped twice (the kernel's wrap-around
 * trick), so a ring that has filled once shows as twice its size in RSS: 8 MiB of the 32 MiB
 * budget. */
#define DEFAULT_RINGBUF (4u << 20)
#define RESCAN_INTERVAL_NS 1000000000ull /* fallback /proc scan for --exe targets */
/* Under load, how long records may wait in the ring for company before the reader looks. */
#define BATCH_MS 20
/* A traced process's children are attached this long after their fork (see add_newborn). */
#define DEFAULT_CHILD_DELAY_MS 100
#define MAX_TRACKED 4096
#define CMDLINE_MAX 4096

/* A --pid target remembered so that its program is traced again after a restart: a new process
 * of the same executable with the same command line. */
struct restart_watch {
	uint32_t pid;
	struct file_id exe;
	char cmdline[CMDLINE_MAX];
	ssize_t cmdline_len;
};

struct capture_session {
	struct bizprobe_bpf *skel;
	struct ring_buffer *rb;
	struct tls_attacher *tls;
	struct capture_callbacks cb;
	bool verbose;
	enum capture_socket_hooks hooks;
	/* The raw syscall tracepoints, while a process they serve is traced (see sync_syscall_hooks). */
	struct bpf_link *sys_enter, *sys_exit;

	struct file_id exes[CAPTURE_MAX_EXES];
	size_t n_exes;
	bool (*select)(uint32_t pid, void *ctx); /* node mode's selection, or NULL */
	void (*selected)(uint32_t pid, void *ctx); /* a chosen process is attached, or NULL */
	void *select_ctx;
	uint64_t (*select_epoch)(void *ctx); /* the pod list's changes, or NULL */
	uint64_t epoch_seen;		     /* its value at the last look */
	struct proc_watch *procs; /* the kernel's list of processes, or NULL: read /proc */
	struct restart_watch watches[CAPTURE_MAX_PIDS];
	size_t n_watches;

	uint32_t traced[MAX_TRACKED]; /* pids currently in the kernel's targets map */
	size_t n_traced;
	uint32_t rescan[MAX_TRACKED]; /* pids whose mappings changed since the last poll */
	size_t n_rescan;
	uint32_t newborn[MAX_TRACKED]; /* children the kernel traced, looked at once they settle */
	uint64_t newborn_due_ns[MAX_TRACKED];
	size_t n_newborn;
	uint64_t newborn_delay_ns;
	uint64_t next_proc_scan_ns;

	volatile uint8_t *target_bytes; /* the targets map, mapped: one byte per pid */
	size_t target_pids;		/* how many pids it covers */

	bool busy; /* the last poll found records: keep looking every BATCH_MS */

	struct capture_stats stats;
	__u64 *percpu_vals; /* one per possible CPU, for reading the stats map */
	int ncpu;
};

static void set_err(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Where pid is in a pid set, or n when it is not there. The sets are small (MAX_TRACKED). */
static size_t pid_index(const uint32_t *set, size_t n, uint32_t pid)
{
	size_t i = 0;

	while (i < n && set[i] != pid)
		i++;
	return i;
}

/* How the kernel sees pid's plaintext sockets (enum bp_target_hooks), or 0 when it does not
 * trace pid: its programs set and clear these bytes too (fork, exec, exit). */
static uint8_t hooks_of(const struct capture_session *s, uint32_t pid)
{
	return pid < s->target_pids ? s->target_bytes[pid] : 0;
}

static bool is_traced(struct capture_session *s, uint32_t pid)
{
	return pid_index(s->traced, s->n_traced, pid) < s->n_traced;
}

static void add_unique(uint32_t *set, size_t *n, uint32_t pid)
{
	if (pid_index(set, *n, pid) == *n && *n < MAX_TRACKED)
		set[(*n)++] = pid;
}

static void remove_pid(uint32_t *set, size_t *n, uint32_t pid)
{
	size_t i = pid_index(set, *n, pid);

	if (i < *n)
		set[i] = set[--*n];
}

struct attach_ctx {
	struct capture_session *s;
	uint32_t pid;	/* whose breakpoints: a process, or TLS_EVERY_PROCESS */
	bool libc;	/* the process is seen through its C library's socket calls */
	bool has_ssl; /* one of the files had OpenSSL */
	bool failed;  /* some file's probes could not be attached */
};

static void attach_mapping(struct attach_ctx *c, const char *path)
{
	int rc = tls_attach_file(c->s->tls, path, c->pid, c->libc);

	if (rc < 0) {
		c->s->stats.attach_errors++;
		c->failed = true;
	} else if (rc > 0)
		c->has_ssl = true;
}

/*
 * Whose breakpoints a traced process's files get. With --pid alone, the traced processes' own:
 * other processes running the same node binary or libssl never stop at them. With --exe, a
 * selected program's process must be traced from its first instruction (curl is done in a few
 * milliseconds), before userspace could attach anything for it: its files are attached for
 * every process that maps them, and the programs filter by process.
 */
static uint32_t binding_for(const struct capture_session *s, uint32_t pid)
{
	return s->n_exes ? TLS_EVERY_PROCESS : pid;
}

/* The libssl a process may load later (Python imports ssl on demand), under root (a process's
 * /proc/PID/root, or "" for ours): attached before it is mapped, so a late dlopen races nothing. */
static void attach_system_libssl(struct capture_session *s, const char *root, uint32_t bind_pid)
{
	static const char *const patterns[] = {
		"/usr/lib/x86_64-linux-gnu/libssl.so.*", "/lib/x86_64-linux-gnu/libssl.so.*",
		"/usr/lib64/libssl.so.*", "/usr/local/lib/libssl.so.*", "/usr/lib/libssl.so.*",
	};
	struct attach_ctx c = {s, bind_pid, false, false, false};
	char pattern[128];

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		glob_t g;

		snprintf(pattern, sizeof(pattern), "%s%s", root, patterns[i]);
		if (glob(pattern, 0, NULL, &g) != 0)
			continue;
		for (size_t k = 0; k < g.gl_pathc; k++)
			attach_mapping(&c, g.gl_pathv[k]);
		globfree(&g);
	}
}

/* Moves pid from one set of socket hooks to the other. Compare and swap: the kernel clears the
 * byte when the process exits, and a byte set again after that would trace whoever gets the pid
 * next. */
static bool hand_over(struct capture_session *s, uint32_t pid, uint8_t from, uint8_t to)
{
	return __atomic_compare_exchange_n(&s->target_bytes[pid], &from, to, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/*
 * Every file the process maps executable (its executable, libssl, ...), and, for a process the
 * user selected that has no OpenSSL yet, the libssl it may load later. A node process has its own
 * OpenSSL, and the children of a traced process (a shell for each spawned command) mostly never
 * load one: links on a libssl they will not map would cost a descriptor each, and a grace period
 * each at removal. A library they load after all is attached when its mapping is reported.
 *
 * With --socket-hooks auto, a process's code may have changed since it was judged (an exec, a
 * library loaded): it is judged again here. One seen through its libc that now makes its own
 * syscalls (it exec'd a Go program) would go unseen: the tracepoints take it over at once (the
 * poll attaches them). One the tracepoints see that now goes through libc (a static wrapper
 * exec'd the app) moves to its libc's probes once they are planted, so that the rest of the host
 * stops paying for it; a call under way then is taken by whichever exit sees its stash.
 */
/* --socket-hooks auto's judgement of a process from its files (see choose_hooks); false in the
 * other modes, which judge nothing. */
static bool libc_fits(struct capture_session *s, const struct proc_mappings *files)
{
	return s->hooks == SOCKET_HOOKS_AUTO && !s->n_exes && tls_libc_hooks_fit(s->tls, files);
}

/* fits: libc_fits of files, judged once by the caller. */
static void attach_mappings(struct capture_session *s, uint32_t pid,
			    const struct proc_mappings *files, bool fits, bool selected)
{
	struct attach_ctx c = {s, binding_for(s, pid), false, false, false};
	uint8_t hooks = hooks_of(s, pid);
	bool judge = hooks && s->hooks == SOCKET_HOOKS_AUTO && !s->n_exes;
	char root[32];

	if (judge && hooks == BP_TARGET_LIBC && !fits &&
	    hand_over(s, pid, BP_TARGET_LIBC, BP_TARGET_SYSCALLS) && s->verbose)
		fprintf(stderr, "bizprobe: socket hooks for pid %u: syscalls (its code now "
				"bypasses libc)\n", pid);
	c.libc = hooks_of(s, pid) == BP_TARGET_LIBC || (judge && fits);
	for (size_t i = 0; i < files->n; i++)
		attach_mapping(&c, files->paths[i]);
	if (judge && fits && hooks == BP_TARGET_SYSCALLS && !c.failed &&
	    hand_over(s, pid, BP_TARGET_SYSCALLS, BP_TARGET_LIBC) && s->verbose)
		fprintf(stderr, "bizprobe: socket hooks for pid %u: libc (its code now goes "
				"through libc)\n", pid);
	if (c.has_ssl || (c.pid != TLS_EVERY_PROCESS && !selected))
		return;
	snprintf(root, sizeof(root), "/proc/%u/root", pid);
	attach_system_libssl(s, root, c.pid);
}

static void scan_mappings(struct capture_session *s, uint32_t pid, bool selected)
{
	struct proc_mappings files;

	proc_exec_mappings((pid_t)pid, &files);
	attach_mappings(s, pid, &files, hooks_of(s, pid) && libc_fits(s, &files), selected);
	proc_mappings_free(&files);
}

static size_t round_up(size_t n, size_t unit)
{
	return (n + unit - 1) / unit * unit;
}

/* The kernel maps whole pages of an mmapable array. */
static size_t target_map_bytes(const struct capture_session *s)
{
	return round_up(s->target_pids, (size_t)getpagesize());
}

static bool exe_selected(struct capture_session *s, const struct file_id *id)
{
	for (size_t i = 0; i < s->n_exes; i++)
		if (s->exes[i].dev == id->dev && s->exes[i].ino == id->ino)
			return true;
	return false;
}

/*
 * Which hooks will see pid's plaintext sockets. With --socket-hooks auto: its own libc's, when
 * they can see every socket call it makes (fits, see libc_fits), because then the rest of the
 * host pays nothing; the raw syscall tracepoints otherwise. With an --exe, always the
 * tracepoints: its processes must be seen from their exec on (the kernel marks them before
 * userspace could plant anything), so the tracepoints are on anyway, and every probe is then
 * bound to every process (binding_for), which libc's never are (tls_attach_file). Judged when
 * the process is first traced, its children inheriting the answer, and again by scan_mappings
 * when its code changes.
 */
static uint8_t choose_hooks(const struct capture_session *s, bool fits)
{
	if (s->hooks == SOCKET_HOOKS_SYSCALLS || s->n_exes)
		return BP_TARGET_SYSCALLS;
	if (s->hooks == SOCKET_HOOKS_LIBC)
		return BP_TARGET_LIBC;
	return fits ? BP_TARGET_LIBC : BP_TARGET_SYSCALLS;
}

static int trace_pid(struct capture_session *s, uint32_t pid)
{
	struct proc_mappings files;
	bool fits;

	if (pid >= s->target_pids)
		return -E2BIG;
	proc_exec_mappings((pid_t)pid, &files);
	fits = libc_fits(s, &files);
	s->target_bytes[pid] = choose_hooks(s, fits);
	add_unique(s->traced, &s->n_traced, pid);
	attach_mappings(s, pid, &files, fits, true);
	proc_mappings_free(&files);
	if (s->verbose)
		fprintf(stderr, "bizprobe: tracing pid %u\nbizprobe: socket hooks for pid %u: %s\n",
			pid, pid, hooks_of(s, pid) == BP_TARGET_LIBC ? "libc" : "syscalls");
	return 0;
}

static void consider_pid(pid_t pid, void *ctx)
{
	struct capture_session *s = ctx;
	struct file_id id;

	if (is_traced(s, (uint32_t)pid) || pid == getpid())
		return;
	s->stats.processes_examined++;
	if (s->n_exes && !proc_exe_id(pid, &id) && exe_selected(s, &id))
		trace_pid(s, (uint32_t)pid);
	else if (s->select && s->select((uint32_t)pid, s->select_ctx) &&
		 !trace_pid(s, (uint32_t)pid) && s->selected)
		s->selected((uint32_t)pid, s->select_ctx);
}

/*
 * The periodic look at the host's processes (--exe, node mode), a fallback for what the exec
 * events miss: processes whose exec the kernel could not match by inode (overlay filesystems),
 * node mode's processes that joined a selected cgroup or were renamed after their exec, events
 * the ring had no room for. Only processes that are new or changed program, name or cgroups
 * since the last look are examined, and all of them when select()'s other input, the pod list,
 * changed; without the kernel's list, every process in /proc.
 */
static void scan_processes(struct capture_session *s)
{
	uint64_t epoch = s->select_epoch ? s->select_epoch(s->select_ctx) : 0;
	bool everyone = epoch != s->epoch_seen;

	s->epoch_seen = epoch;
	if (!s->procs || proc_watch_scan(s->procs, everyone, consider_pid, s))
		proc_for_each_pid(consider_pid, s);
}

/* A new process of a --pid target's program with the same arguments: the target restarted. */
static void check_restart(struct capture_session *s, uint32_t pid)
{
	char cmdline[CMDLINE_MAX];
	struct file_id id;
	ssize_t len;

	if (proc_exe_id((pid_t)pid, &id))
		return;
	for (size_t i = 0; i < s->n_watches; i++) {
		struct restart_watch *w = &s->watches[i];

		if (w->exe.dev != id.dev || w->exe.ino != id.ino || proc_alive((pid_t)w->pid))
			continue;
		len = proc_cmdline((pid_t)pid, cmdline, sizeof(cmdline));
		if (len != w->cmdline_len || memcmp(cmdline, w->cmdline, (size_t)len) != 0)
			continue;
		if (s->verbose)
			fprintf(stderr, "bizprobe: pid %u restarted as %u\n", w->pid, pid);
		w->pid = pid;
		trace_pid(s, pid);
		return;
	}
}

static bool is_newborn(struct capture_session *s, uint32_t pid)
{
	return pid_index(s->newborn, s->n_newborn, pid) < s->n_newborn;
}

/*
 * A process the kernel started tracing: a selected program's exec, or a traced process's child.
 * With per-process links, a child is attached only once it has lived newborn_delay_ns (100 ms
 * unless --child-delay says otherwise), whatever it execs or maps meanwhile: a server that
 * spawns a command per request (a shell, curl) forks children that exit within milliseconds,
 * and attaching to each would queue links (and their grace periods) faster than they can be
 * removed. A child's TLS calls in that window are not seen.
 */
static void add_newborn(struct capture_session *s, uint32_t pid)
{
	if (binding_for(s, pid) == TLS_EVERY_PROCESS) {
		add_unique(s->rescan, &s->n_rescan, pid);
		return;
	}
	if (is_newborn(s, pid))
		return;
	if (s->n_newborn == MAX_TRACKED) {
		add_unique(s->rescan, &s->n_rescan, pid);
		return;
	}
	s->newborn[s->n_newborn] = pid;
	s->newborn_due_ns[s->n_newborn++] = now_ns() + s->newborn_delay_ns;
}

/* A traced process's mappings changed (an exec, an executable mapping): looked at in this poll,
 * or when it settles if it is a newborn. */
static void mappings_changed(struct capture_session *s, uint32_t pid)
{
	if (!is_newborn(s, pid))
		add_unique(s->rescan, &s->n_rescan, pid);
}

/* Removes newborn i; the last one takes its place. */
static void drop_newborn(struct capture_session *s, size_t i)
{
	s->n_newborn--;
	s->newborn[i] = s->newborn[s->n_newborn];
	s->newborn_due_ns[i] = s->newborn_due_ns[s->n_newborn];
}

static void forget_newborn(struct capture_session *s, uint32_t pid)
{
	size_t i = pid_index(s->newborn, s->n_newborn, pid);

	if (i < s->n_newborn)
		drop_newborn(s, i);
}

static void scan_settled_newborns(struct capture_session *s)
{
	uint64_t now = now_ns();

	for (size_t i = s->n_newborn; i-- > 0;) {
		uint32_t pid = s->newborn[i];

		if (s->newborn_due_ns[i] > now)
			continue;
		/* The newborn moved into slot i comes from above it, where the walk has been. */
		drop_newborn(s, i);
		if (is_traced(s, pid))
			scan_mappings(s, pid, false);
	}
}

static int handle_record(void *ctx, void *data, size_t size)
{
	struct capture_session *s = ctx;
	const struct bp_event *ev = data;
	struct capture_chunk chunk = {0};

	if (size < sizeof(*ev))
		return 0;
	s->stats.records++;
	switch (ev->kind) {
	case BP_EV_DATA:
	case BP_EV_CLOSE:
		chunk.conn.pid = ev->tgid;
		chunk.conn.id = ev->conn_id;
		chunk.conn.generation = ev->generation;
		chunk.conn.tls = ev->source == BP_SRC_TLS;
		memcpy(chunk.conn.comm, ev->comm, sizeof(chunk.conn.comm));
		chunk.conn.comm[BP_COMM_LEN - 1] = '\0';
		chunk.ts_ns = ev->ts_ns;
		chunk.dir = ev->dir;
		if (ev->lost_before) {
			/* The gap comes before this record's bytes: deliver it on its own, in
			 * pieces a capture_chunk can say (its lost is 32-bit, the kernel's 64). */
			uint64_t gap = ev->lost_before;

			s->stats.lost_bytes += gap;
			while (gap) {
				chunk.lost = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
				gap -= chunk.lost;
				if (s->cb.on_chunk)
					s->cb.on_chunk(&chunk, s->cb.ctx);
			}
			chunk.lost = 0;
		}
		if (ev->kind == BP_EV_CLOSE) {
			if (s->cb.on_close)
				s->cb.on_close(&chunk.conn, ev->ts_ns, s->cb.ctx);
			break;
		}
		/* Cannot happen with our BPF side; never trust a length. Counted: the stream
		 * then has a hole the HTTP stage does not know of. */
		if (ev->copied > size - sizeof(*ev)) {
			s->stats.malformed_records++;
			break;
		}
		chunk.data = (const uint8_t *)(ev + 1);
		chunk.len = ev->copied;
		if (ev->len < ev->copied) {
			/* len is what the call moved: never less than what it copied. Trust the
			 * copied bytes, which are there, and lose nothing after them. */
			s->stats.malformed_records++;
			chunk.lost = 0;
		} else {
			chunk.lost = ev->len - ev->copied;
		}
		s->stats.bytes += ev->copied;
		s->stats.lost_bytes += chunk.lost;
		if (s->cb.on_chunk)
			s->cb.on_chunk(&chunk, s->cb.ctx);
		break;
	case BP_EV_EXEC:
		if (is_traced(s, ev->tgid))
			mappings_changed(s, ev->tgid);
		else {
			/* The kernel traces selected executables itself; learn about them. Others
			 * are matched here, by what stat() says (see tp_sched_exec). */
			if (hooks_of(s, ev->tgid)) {
				add_unique(s->traced, &s->n_traced, ev->tgid);
				add_newborn(s, ev->tgid);
			} else if (s->n_exes || s->n_watches || s->select) {
				consider_pid((pid_t)ev->tgid, s);
				if (!is_traced(s, ev->tgid))
					check_restart(s, ev->tgid);
			}
		}
		break;
	case BP_EV_MMAP:
		mappings_changed(s, ev->tgid);
		break;
	case BP_EV_EXIT:
		remove_pid(s->traced, &s->n_traced, ev->tgid);
		remove_pid(s->rescan, &s->n_rescan, ev->tgid);
		forget_newborn(s, ev->tgid);
		tls_detach_process(s->tls, ev->tgid);
		if (s->cb.on_exit)
			s->cb.on_exit(ev->tgid, s->cb.ctx);
		break;
	}
	return 0;
}

static int add_exe_target(struct capture_session *s, const char *path, char *err, size_t err_len)
{
	int fd = bpf_map__fd(s->skel->maps.target_exes);
	__u32 flags = 1; /* EXE_TRACE */
	struct file_id id;
	char real[PATH_MAX];

	if (!realpath(path, real) || proc_file_id(real, &id)) {
		set_err(err, err_len, "--exe %s: %s", path, strerror(errno));
		return -ENOENT;
	}
	if (bpf_map_update_elem(fd, &id, &flags, BPF_ANY)) {
		set_err(err, err_len, "--exe %s: %s", path, strerror(errno));
		return -errno;
	}
	s->exes[s->n_exes++] = id;
	/* Every process running it is traced: one set of links serves them all. */
	if (tls_attach_file(s->tls, real, TLS_EVERY_PROCESS, false) < 0)
		s->stats.attach_errors++;
	return 0;
}

static int add_pid_target(struct capture_session *s, uint32_t pid, char *err, size_t err_len)
{
	int fd = bpf_map__fd(s->skel->maps.target_exes);
	struct restart_watch *w = &s->watches[s->n_watches];
	__u32 flags = 2; /* EXE_NOTIFY */
	int rc;

	if (!proc_alive((pid_t)pid)) {
		set_err(err, err_len, "--pid %u: no such process", pid);
		return -ESRCH;
	}
	rc = trace_pid(s, pid);
	if (rc == -E2BIG)
		set_err(err, err_len, "--pid %u: above pid_max as it was at start (%zu)", pid,
			s->target_pids);
	else if (rc)
		set_err(err, err_len, "--pid %u: %s", pid, strerror(-rc));
	if (rc)
		return rc;
	w->pid = pid;
	if (proc_exe_id((pid_t)pid, &w->exe) == 0) {
		w->cmdline_len = proc_cmdline((pid_t)pid, w->cmdline, sizeof(w->cmdline));
		/* Keep an exe's TRACE flag if --exe selected it too. */
		if (!exe_selected(s, &w->exe))
			bpf_map_update_elem(fd, &w->exe, &flags, BPF_NOEXIST);
		s->n_watches++;
	}
	return 0;
}

/* Each traced process holds a perf event per probed function and file (up to 18 for node and
 * libssl): the soft limit on open files goes up to the hard one, as far as it allows. */
static void raise_open_file_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int libbpf_print_verbose(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return vfprintf(stderr, fmt, args);
}

/* What the raw syscall tracepoints serve: a traced BP_TARGET_SYSCALLS process, or the --exe
 * processes the kernel marks so at their exec. */
static bool syscall_hooks_needed(const struct capture_session *s)
{
	if (s->hooks == SOCKET_HOOKS_LIBC)
		return false; /* not even loaded */
	if (s->n_exes)
		return true;
	for (size_t i = 0; i < s->n_traced; i++)
		if (hooks_of(s, s->traced[i]) == BP_TARGET_SYSCALLS)
			return true;
	return false;
}

/*
 * Attaches the raw syscall tracepoints when a traced process needs them and removes them when
 * none does: while attached, every syscall of every process on the host takes the slow path
 * (bench/RESULTS.md: a dd bs=1 elsewhere runs at ~70%). The exit side goes first and comes off
 * last, so that no call's entry is stashed without its exit to take it.
 */
static int sync_syscall_hooks(struct capture_session *s)
{
	bool need = syscall_hooks_needed(s);

	if (need == (s->sys_enter != NULL))
		return 0;
	if (!need) {
		bpf_link__destroy(s->sys_enter);
		bpf_link__destroy(s->sys_exit);
		s->sys_enter = s->sys_exit = NULL;
		if (s->verbose)
			fprintf(stderr, "bizprobe: raw syscall tracepoints detached\n");
		return 0;
	}
	s->sys_exit = bpf_program__attach(s->skel->progs.rtp_sys_exit);
	if (s->sys_exit)
		s->sys_enter = bpf_program__attach(s->skel->progs.rtp_sys_enter);
	if (!s->sys_enter) {
		int err = -errno;

		bpf_link__destroy(s->sys_exit);
		s->sys_exit = NULL;
		s->stats.attach_errors++;
		fprintf(stderr, "bizprobe: attaching the raw syscall tracepoints failed: %s\n",
			strerror(-err));
		return err;
	}
	if (s->verbose)
		fprintf(stderr, "bizprobe: raw syscall tracepoints attached\n");
	return 0;
}

struct capture_session *capture_session_new(const struct capture_config *cfg,
					    const struct capture_callbacks *cb, char *err,
					    size_t err_len)
{
	struct capture_session *s = calloc(1, sizeof(*s));
	uint32_t rb_bytes = cfg->ringbuf_bytes ? cfg->ringbuf_bytes : DEFAULT_RINGBUF;
	void *target_map;
	int rc;

	if (!s) {
		set_err(err, err_len, "out of memory");
		return NULL;
	}
	s->cb = *cb;
	s->verbose = cfg->verbose;
	s->hooks = cfg->socket_hooks;
	s->select = cfg->select;
	s->selected = cfg->selected;
	s->select_ctx = cfg->select_ctx;
	s->select_epoch = cfg->select_epoch;
	s->newborn_delay_ns =
		(uint64_t)(cfg->child_delay_ms ? cfg->child_delay_ms : DEFAULT_CHILD_DELAY_MS) * 1000000ull;
	libbpf_set_print(cfg->verbose ? libbpf_print_verbose : libbpf_print);

	raise_open_file_limit();
	rc = features_check(err, err_len);
	if (rc)
		goto fail;
	s->skel = bizprobe_bpf__open();
	if (!s->skel) {
		set_err(err, err_len, "opening the BPF object failed: %s", strerror(errno));
		goto fail;
	}
	s->skel->rodata->max_copy_bytes = cfg->max_copy_bytes ? cfg->max_copy_bytes : DEFAULT_MAX_COPY;
	s->skel->rodata->empty_probes = cfg->empty_probes;
	/* The ring must be a power of two and a multiple of the page size. */
	while (rb_bytes & (rb_bytes - 1))
		rb_bytes &= rb_bytes - 1;
	if (rb_bytes < (uint32_t)getpagesize())
		rb_bytes = (uint32_t)getpagesize();
	bpf_map__set_max_entries(s->skel->maps.events, rb_bytes);
	/* Under load the reader looks every BATCH_MS anyway; a wake-up (an interrupt in the traced
	 * thread) is only worth it when the ring is filling faster than that: once a quarter of it
	 * waits. */
	s->skel->rodata->wakeup_bytes = rb_bytes / 4;
	/* One byte per possible pid (see targets): 32 KiB at pid_max 32768, 4 MiB at the ceiling.
	 * pid_max raised after this is not followed: processes above the old limit are not traced
	 * (with --pid, an error at start). */
	s->target_pids = round_up(proc_pid_max(), BP_TARGETS_PER_ENTRY);
	bpf_map__set_max_entries(s->skel->maps.targets,
				 (uint32_t)(s->target_pids / BP_TARGETS_PER_ENTRY));
	/* One record-assembly buffer per CPU (see struct scratch_record). */
	bpf_map__set_max_entries(s->skel->maps.scratch, (uint32_t)libbpf_num_possible_cpus());
	features_disable_missing(s->skel);
	/* Attached by sync_syscall_hooks, only while a traced process needs them. */
	bpf_program__set_autoattach(s->skel->progs.rtp_sys_enter, false);
	bpf_program__set_autoattach(s->skel->progs.rtp_sys_exit, false);
	if (s->hooks == SOCKET_HOOKS_LIBC) {
		bpf_program__set_autoload(s->skel->progs.rtp_sys_enter, false);
		bpf_program__set_autoload(s->skel->progs.rtp_sys_exit, false);
	}
	if (!features_choose_call_storage(s->skel) && cfg->verbose)
		fprintf(stderr, "bizprobe: no task storage for tracing programs: calls wait in "
				"hash maps\n");

	rc = bizprobe_bpf__load(s->skel);
	if (rc) {
		set_err(err, err_len, "loading the BPF programs failed: %s%s", strerror(-rc),
			rc == -EPERM ? " (needs CAP_BPF, CAP_PERFMON; see README)" : "");
		goto fail;
	}
	target_map = mmap(NULL, target_map_bytes(s), PROT_READ | PROT_WRITE, MAP_SHARED,
			  bpf_map__fd(s->skel->maps.targets), 0);
	if (target_map == MAP_FAILED) {
		set_err(err, err_len, "mapping the targets map failed: %s", strerror(errno));
		goto fail;
	}
	s->target_bytes = target_map;
	rc = bizprobe_bpf__attach(s->skel);
	if (rc) {
		set_err(err, err_len, "attaching tracepoints failed: %s", strerror(-rc));
		goto fail;
	}
	s->ncpu = libbpf_num_possible_cpus();
	if (s->ncpu > 0)
		s->percpu_vals = calloc((size_t)s->ncpu, sizeof(*s->percpu_vals));
	s->tls = tls_attacher_new(s->skel, cfg->verbose, s->hooks != SOCKET_HOOKS_SYSCALLS);
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.events), handle_record, s, NULL);
	if (!s->tls || !s->rb) {
		set_err(err, err_len, "setting up the ring buffer failed: %s", strerror(errno));
		goto fail;
	}

	for (size_t i = 0; i < cfg->n_exes && i < CAPTURE_MAX_EXES; i++)
		if (add_exe_target(s, cfg->exes[i], err, err_len))
			goto fail;
	for (size_t i = 0; i < cfg->n_pids && i < CAPTURE_MAX_PIDS; i++)
		if (add_pid_target(s, cfg->pids[i], err, err_len))
			goto fail;
	if (s->n_exes)
		attach_system_libssl(s, "", TLS_EVERY_PROCESS);
	if (s->n_exes || s->select) {
		s->procs = proc_watch_new();
		if (!s->procs)
			fprintf(stderr, "bizprobe: no BPF task iterator (%s): every process's /proc "
					"files are read once a second\n", strerror(errno));
		scan_processes(s);
	}
	rc = sync_syscall_hooks(s);
	if (rc) {
		set_err(err, err_len, "attaching tracepoints failed: %s", strerror(-rc));
		goto fail;
	}
	s->next_proc_scan_ns = now_ns() + RESCAN_INTERVAL_NS;
	return s;
fail:
	capture_session_free(s);
	return NULL;
}

/* How long the session may sleep before its own timed work (settled newborns, the /proc scan)
 * is due, capped at limit_ms. */
static int ms_until_due(struct capture_session *s, int limit_ms)
{
	uint64_t now = now_ns(), due = now + (uint64_t)limit_ms * 1000000ull;

	for (size_t i = 0; i < s->n_newborn; i++)
		if (s->newborn_due_ns[i] < due)
			due = s->newborn_due_ns[i];
	if ((s->n_exes || s->select) && s->next_proc_scan_ns < due)
		due = s->next_proc_scan_ns;
	return due > now ? (int)((due - now + 999999) / 1000000) : 0;
}

int capture_session_poll(struct capture_session *s, int timeout_ms)
{
	int wait = ms_until_due(s, timeout_ms), n, more;

	/* Records keep coming: look again in BATCH_MS. Otherwise sleep until the caller's or our
	 * own timed work (a burst still wakes us at the mark, see bpf/emit.h). */
	n = ring_buffer__poll(s->rb, s->busy && wait > BATCH_MS ? BATCH_MS : wait);
	if (n < 0)
		return n;
	/* A batch under way wakes nobody until it crosses the mark, so a poll may time out with
	 * records in the ring: take them too. */
	more = ring_buffer__consume(s->rb);
	if (more < 0)
		return more;
	n += more;
	s->busy = n > 0;
	while (s->n_rescan)
		scan_mappings(s, s->rescan[--s->n_rescan], false);
	scan_settled_newborns(s);
	if ((s->n_exes || s->select) && now_ns() >= s->next_proc_scan_ns) {
		scan_processes(s);
		s->next_proc_scan_ns = now_ns() + RESCAN_INTERVAL_NS;
	}
	sync_syscall_hooks(s);
	return n;
}

size_t capture_session_traced(struct capture_session *s, uint32_t *out, size_t cap)
{
	size_t n = s->n_traced < cap ? s->n_traced : cap;

	memcpy(out, s->traced, n * sizeof(*out));
	return n;
}

/* What BP_EV_EXIT does for a process that ended, for one that goes on: the kernel's byte is
 * cleared here, since its exit will no longer be reported. Connections it had stay in the
 * kernel's LRU conns map until they age out. */
int capture_session_untrace(struct capture_session *s, uint32_t pid)
{
	if (!is_traced(s, pid))
		return -ENOENT;
	if (pid < s->target_pids)
		s->target_bytes[pid] = 0;
	remove_pid(s->traced, &s->n_traced, pid);
	remove_pid(s->rescan, &s->n_rescan, pid);
	forget_newborn(s, pid);
	tls_detach_process(s->tls, pid);
	if (s->verbose)
		fprintf(stderr, "bizprobe: no longer tracing pid %u\n", pid);
	if (s->cb.on_exit)
		s->cb.on_exit(pid, s->cb.ctx);
	return 0;
}

void capture_session_get_stats(struct capture_session *s, struct capture_stats *out)
{
	int fd = bpf_map__fd(s->skel->maps.stats);

	*out = s->stats;
	out->traced_processes = (uint32_t)s->n_traced;
	for (size_t i = 0; i < s->n_traced; i++)
		out->libc_hooked_processes += hooks_of(s, s->traced[i]) == BP_TARGET_LIBC;
	out->syscall_hooks = s->sys_enter != NULL;
	out->tls_files = tls_attacher_files(s->tls);
	if (!s->percpu_vals)
		return;
	for (__u32 k = 0; k < BP_STAT__COUNT; k++) {
		if (bpf_map_lookup_elem(fd, &k, s->percpu_vals))
			continue;
		for (int c = 0; c < s->ncpu; c++)
			out->kernel[k] += s->percpu_vals[c];
	}
}

void capture_session_free(struct capture_session *s)
{
	if (!s)
		return;
	ring_buffer__free(s->rb);
	bpf_link__destroy(s->sys_enter);
	bpf_link__destroy(s->sys_exit);
	tls_attacher_free(s->tls);
	proc_watch_free(s->procs);
	if (s->target_bytes)
		munmap((void *)s->target_bytes, target_map_bytes(s));
	bizprobe_bpf__destroy(s->skel);
	free(s->percpu_vals);
	free(s);
}
