// SPDX-License-Identifier: MIT
#include "tls_attach.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"
#include "bizprobe.skel.h"
#include "elf_sym.h"
#include "probe_site.h"
#include "proc.h"
#include "uprobe_legacy.h"

enum tls_fn { FN_WRITE, FN_WRITE_EX, FN_READ, FN_READ_EX, FN_FREE, FN__COUNT };

static const char *const tls_fn_names[FN__COUNT] = {
	[FN_WRITE] = "SSL_write", [FN_WRITE_EX] = "SSL_write_ex", [FN_READ] = "SSL_read",
	[FN_READ_EX] = "SSL_read_ex", [FN_FREE] = "SSL_free",
};

#define SSL_LINKS 9 /* write, write_ex, read, read_ex (entry and return each), free */

/* The C library's socket calls, for the processes seen through libc (see bizprobe.bpf.c). */
enum libc_fn {
	LC_READ, LC_RECV, LC_RECVFROM, LC_READV, LC_RECVMSG, LC_WRITE, LC_SEND, LC_SENDTO,
	LC_WRITEV, LC_SENDMSG, LC_ACCEPT, LC_ACCEPT4, LC_CONNECT, LC_CLOSE, LC_DLOPEN, LC__COUNT
};

static const char *const libc_fn_names[LC__COUNT] = {
	[LC_READ] = "read",	  [LC_RECV] = "recv",	    [LC_RECVFROM] = "recvfrom",
	[LC_READV] = "readv",	  [LC_RECVMSG] = "recvmsg", [LC_WRITE] = "write",
	[LC_SEND] = "send",	  [LC_SENDTO] = "sendto",   [LC_WRITEV] = "writev",
	[LC_SENDMSG] = "sendmsg", [LC_ACCEPT] = "accept",   [LC_ACCEPT4] = "accept4",
	[LC_CONNECT] = "connect", [LC_CLOSE] = "close",	    [LC_DLOPEN] = "dlopen",
};

#define LIBC_LINKS 25 /* ten data calls (entry and return each), two accepts, connect, close, dlopen */
#define LINKS_PER_FILE (SSL_LINKS > LIBC_LINKS ? SSL_LINKS : LIBC_LINKS)

struct tls_file {
	struct file_id id;
	bool has_ssl;
	bool has_libc;	    /* the C library's socket calls (examined unless never wanted) */
	bool go;	    /* a Go program: its socket calls bypass libc */
	bool every_process; /* attached once for all processes (see tls_attach.h) */
	uint64_t off[FN__COUNT];
	/* OpenSSL's internal read and write that the plain and _ex functions share, when probing
	 * them avoids a single-step (probe_site_ssl_core); 0 when the public ones are probed. */
	uint64_t read_core, write_core;
	uint64_t libc_off[LC__COUNT];
};

/* The links of one file, for one process or for all. */
struct tls_binding {
	unsigned file; /* index into files */
	uint32_t pid;  /* TLS_EVERY_PROCESS for all */
	struct bpf_link *links[LINKS_PER_FILE];
};

/*
 * Links of exited processes, destroyed by a thread of their own: the kernel waits for a grace
 * period in every uprobe's removal (~110 ms each on 6.18, ~1 s for a process's 9 links), which
 * would hold up the poll loop and the attachment of the program's next process.
 */
struct link_reaper {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct bpf_link **queue;
	unsigned n, cap;
	bool stop, running;
};

struct tls_attacher {
	struct bizprobe_bpf *skel;
	bool verbose;
	bool libc_sockets; /* some process may be seen through libc */
	struct tls_file *files;
	unsigned n_files, cap_files, n_ssl_files;
	struct tls_binding *bindings;
	unsigned n_bindings, cap_bindings;
	struct link_reaper reaper;
};

static void *reap_links(void *arg)
{
	struct link_reaper *r = arg;
	struct bpf_link *link;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->n && !r->stop)
			pthread_cond_wait(&r->wake, &r->lock);
		if (!r->n)
			break;
		link = r->queue[--r->n];
		pthread_mutex_unlock(&r->lock);
		bpf_link__destroy(link);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct tls_attacher *tls_attacher_new(struct bizprobe_bpf *skel, bool verbose, bool libc_sockets)
{
	struct tls_attacher *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->skel = skel;
	a->verbose = verbose;
	a->libc_sockets = libc_sockets;
	/* A bizprobe killed with SIGKILL leaves its tracefs events: each holds a uprobe on a
	 * library's code until someone removes it. This start is the next chance. */
	{
		int stale = uprobe_legacy_remove_stale();

		if (stale && verbose)
			fprintf(stderr, "bizprobe: removed %d uprobe events left by a bizprobe that "
					"is gone\n",
				stale);
	}
	pthread_mutex_init(&a->reaper.lock, NULL);
	pthread_cond_init(&a->reaper.wake, NULL);
	a->reaper.running = pthread_create(&a->reaper.thread, NULL, reap_links, &a->reaper) == 0;
	return a;
}

static void destroy_links(struct tls_binding *b)
{
	for (unsigned k = 0; k < LINKS_PER_FILE; k++)
		bpf_link__destroy(b->links[k]);
}

/* Hands b's links to the reaper (destroys them here if it cannot take them). */
static void retire_links(struct tls_attacher *a, struct tls_binding *b)
{
	struct link_reaper *r = &a->reaper;
	bool queued = r->running;

	pthread_mutex_lock(&r->lock);
	for (unsigned k = 0; k < LINKS_PER_FILE && queued; k++) {
		if (!b->links[k])
			continue;
		if (!array_grow((void **)&r->queue, &r->cap, r->n, sizeof(*r->queue)))
			queued = false;
		else {
			r->queue[r->n++] = b->links[k];
			b->links[k] = NULL;
		}
	}
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	destroy_links(b); /* whatever was not queued */
}

void tls_attacher_free(struct tls_attacher *a)
{
	if (!a)
		return;
	if (a->reaper.running) {
		pthread_mutex_lock(&a->reaper.lock);
		a->reaper.stop = true;
		pthread_cond_signal(&a->reaper.wake);
		pthread_mutex_unlock(&a->reaper.lock);
	}
	for (unsigned i = 0; i < a->n_bindings; i++)
		destroy_links(&a->bindings[i]);
	if (a->reaper.running)
		pthread_join(a->reaper.thread, NULL);
	/* Our tracefs events can go once no link uses them. */
	uprobe_legacy_cleanup();
	pthread_cond_destroy(&a->reaper.wake);
	pthread_mutex_destroy(&a->reaper.lock);
	free(a->reaper.queue);
	free(a->bindings);
	free(a->files);
	free(a);
}

unsigned tls_attacher_files(const struct tls_attacher *a)
{
	return a->n_ssl_files;
}

/* OpenSSL: the file defines SSL_read or SSL_read_ex (a node executable, a libssl). */
static bool ssl_offsets(const char *path, uint64_t off[FN__COUNT])
{
	return elf_sym_offsets(path, tls_fn_names, FN__COUNT, off) > 0 &&
	       (off[FN_READ] || off[FN_READ_EX]);
}

/* A C library: it defines the socket calls that no executable or libssl defines. */
static bool libc_socket_offsets(const char *path, uint64_t off[LC__COUNT])
{
	return elf_sym_offsets(path, libc_fn_names, LC__COUNT, off) > 0 && off[LC_ACCEPT4] &&
	       off[LC_RECVMSG] && off[LC_CLOSE];
}

static const char *const go_sections[] = {".go.buildinfo", ".gopclntab", ".note.go.buildid"};

/* The file behind path, examined on first sight. NULL only when out of memory. */
static struct tls_file *file_of(struct tls_attacher *a, const struct file_id *id, const char *path)
{
	struct tls_file *f;

	for (unsigned i = 0; i < a->n_files; i++)
		if (a->files[i].id.dev == id->dev && a->files[i].id.ino == id->ino)
			return &a->files[i];
	if (!array_grow((void **)&a->files, &a->cap_files, a->n_files, sizeof(*f)))
		return NULL;
	f = &a->files[a->n_files++];
	memset(f, 0, sizeof(*f));
	f->id = *id;
	if (ssl_offsets(path, f->off)) {
		f->has_ssl = true;
		a->n_ssl_files++;
		f->read_core = probe_site_ssl_core(path, f->off[FN_READ_EX], f->off[FN_READ]);
		f->write_core = probe_site_ssl_core(path, f->off[FN_WRITE_EX], f->off[FN_WRITE]);
	}
	if (!a->libc_sockets)
		return f;
	/* Sections every Go toolchain since 1.2 (.gopclntab) or 1.18 (.go.buildinfo) writes. */
	f->go = elf_has_section(path, go_sections, sizeof(go_sections) / sizeof(go_sections[0])) > 0;
	if (!f->has_ssl && libc_socket_offsets(path, f->libc_off)) {
		f->has_libc = true;
		/* dlopen included: only the glibc syscall wrappers match, the others stay at entry. */
		for (unsigned k = 0; k < LC__COUNT; k++)
			if (f->libc_off[k])
				f->libc_off[k] = probe_site_past_prologue(path, f->libc_off[k]);
	}
	return f;
}

/* Judged from the files the attacher examines anyway: each is read once, whoever asks first. */
bool tls_libc_hooks_fit(struct tls_attacher *a, const struct proc_mappings *files)
{
	bool libc = false;

	if (!a->libc_sockets)
		return false;
	for (size_t i = 0; i < files->n; i++) {
		const struct tls_file *f;
		struct file_id id;

		if (proc_file_id(files->paths[i], &id))
			continue;
		f = file_of(a, &id, files->paths[i]);
		if (!f)
			continue;
		if (f->go)
			return false;
		libc |= f->has_libc;
	}
	return libc;
}

static bool bound(const struct tls_attacher *a, unsigned file, uint32_t pid)
{
	for (unsigned i = 0; i < a->n_bindings; i++)
		if (a->bindings[i].file == file && a->bindings[i].pid == pid)
			return true;
	return false;
}

static void unbind_at(struct tls_attacher *a, unsigned i)
{
	retire_links(a, &a->bindings[i]);
	a->bindings[i] = a->bindings[--a->n_bindings];
}

static int attach_one(struct bpf_link **slot, struct bpf_program *prog, const char *path,
		      const struct file_id *id, uint64_t offset, bool ret, uint32_t pid)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
	int target = pid == TLS_EVERY_PROCESS ? -1 : (int)pid;
	libbpf_print_fn_t print;
	struct bpf_link *link;
	int err;

	/* libbpf's own complaint is silenced: a refusal here has a fallback. */
	print = libbpf_set_print(NULL);
	link = bpf_program__attach_uprobe_opts(prog, target, path, offset, &opts);
	err = errno;
	libbpf_set_print(print);
	errno = err;
	if (!link && (errno == EACCES || errno == EPERM))
		link = uprobe_legacy_attach(prog, path, id, offset, ret, target);
	if (!link)
		return -errno;
	*slot = link;
	return 0;
}

struct link_plan {
	unsigned fn; /* enum tls_fn or enum libc_fn */
	struct bpf_program *prog;
	bool ret;
};

static int bind_links(struct tls_attacher *a, unsigned file, const char *path, uint32_t pid,
		      const struct link_plan *plan, unsigned n, const uint64_t *off)
{
	const struct tls_file *f = &a->files[file];
	struct tls_binding b = {.file = file, .pid = pid};
	int err = 0;

	for (unsigned k = 0; k < n && !err; k++)
		if (off[plan[k].fn])
			err = attach_one(&b.links[k], plan[k].prog, path, &f->id, off[plan[k].fn],
					 plan[k].ret, pid);
	if (!err && !array_grow((void **)&a->bindings, &a->cap_bindings, a->n_bindings, sizeof(b)))
		err = -ENOMEM;
	if (err) {
		destroy_links(&b);
		return err;
	}
	a->bindings[a->n_bindings++] = b;
	return 0;
}

static int bind_libc(struct tls_attacher *a, unsigned file, const char *path, uint32_t pid)
{
	struct bizprobe_bpf *k = a->skel;
	const struct link_plan plan[LIBC_LINKS] = {
		{LC_READ, k->progs.up_libc_buf, false},	     {LC_READ, k->progs.urp_libc_in, true},
		{LC_RECV, k->progs.up_libc_buf, false},	     {LC_RECV, k->progs.urp_libc_in, true},
		{LC_RECVFROM, k->progs.up_libc_buf, false},  {LC_RECVFROM, k->progs.urp_libc_in, true},
		{LC_READV, k->progs.up_libc_iov, false},     {LC_READV, k->progs.urp_libc_in, true},
		{LC_RECVMSG, k->progs.up_libc_msg, false},   {LC_RECVMSG, k->progs.urp_libc_in, true},
		{LC_WRITE, k->progs.up_libc_buf, false},     {LC_WRITE, k->progs.urp_libc_out, true},
		{LC_SEND, k->progs.up_libc_buf, false},	     {LC_SEND, k->progs.urp_libc_out, true},
		{LC_SENDTO, k->progs.up_libc_buf, false},    {LC_SENDTO, k->progs.urp_libc_out, true},
		{LC_WRITEV, k->progs.up_libc_iov, false},    {LC_WRITEV, k->progs.urp_libc_out, true},
		{LC_SENDMSG, k->progs.up_libc_msg, false},   {LC_SENDMSG, k->progs.urp_libc_out, true},
		{LC_ACCEPT, k->progs.urp_libc_accept, true}, {LC_ACCEPT4, k->progs.urp_libc_accept, true},
		{LC_CONNECT, k->progs.up_libc_connect, false}, {LC_CLOSE, k->progs.up_libc_close, false},
		{LC_DLOPEN, k->progs.urp_libc_dlopen, true},
	};

	return bind_links(a, file, path, pid, plan, LIBC_LINKS, a->files[file].libc_off);
}

static int bind_file(struct tls_attacher *a, unsigned file, const char *path, uint32_t pid)
{
	const struct tls_file *f = &a->files[file];
	uint64_t off[FN__COUNT];
	const struct link_plan plan[SSL_LINKS] = {
		{FN_WRITE, a->skel->progs.up_ssl_write, false},
		{FN_WRITE, a->skel->progs.urp_ssl_write, true},
		{FN_WRITE_EX, a->skel->progs.up_ssl_write_ex, false},
		{FN_WRITE_EX, a->skel->progs.urp_ssl_write_ex, true},
		{FN_READ, a->skel->progs.up_ssl_read, false},
		{FN_READ, a->skel->progs.urp_ssl_read, true},
		{FN_READ_EX, a->skel->progs.up_ssl_read_ex, false},
		{FN_READ_EX, a->skel->progs.urp_ssl_read_ex, true},
		{FN_FREE, a->skel->progs.up_ssl_free, false},
	};

	/* The shared internal function, probed with the _ex programs (its arguments and return are
	 * the _ex ones), sees the plain and the _ex calls once each. */
	memcpy(off, f->off, sizeof(off));
	if (f->read_core) {
		off[FN_READ_EX] = f->read_core;
		off[FN_READ] = 0;
	}
	if (f->write_core) {
		off[FN_WRITE_EX] = f->write_core;
		off[FN_WRITE] = 0;
	}
	return bind_links(a, file, path, pid, plan, SSL_LINKS, off);
}

int tls_attach_file(struct tls_attacher *a, const char *path, uint32_t pid, bool libc)
{
	struct file_id id;
	struct tls_file *f;
	unsigned file;
	int err;

	if (proc_file_id(path, &id))
		return 0; /* gone or unreachable: not ours to report */
	f = file_of(a, &id, path);
	if (!f)
		return -ENOMEM;
	file = (unsigned)(f - a->files);
	if (f->has_libc) {
		/* Never for every process: that would put a trap in every libc call on the host. */
		if (!libc || pid == TLS_EVERY_PROCESS || bound(a, file, pid))
			return 0;
		err = bind_libc(a, file, path, pid);
		if (err)
			fprintf(stderr, "bizprobe: attaching socket uprobes to %s for pid %u failed: %s\n",
				path, pid, strerror(-err));
		else if (a->verbose)
			fprintf(stderr, "bizprobe: socket uprobes attached to %s for pid %u\n", path, pid);
		return err < 0 ? err : 0;
	}
	if (!f->has_ssl)
		return 0;
	if (f->every_process || bound(a, file, pid))
		return 1;
	if (pid == TLS_EVERY_PROCESS) {
		/* Links for single processes would run the programs a second time. */
		for (unsigned i = a->n_bindings; i-- > 0;)
			if (a->bindings[i].file == file)
				unbind_at(a, i);
		f->every_process = true;
	}
	err = bind_file(a, file, path, pid);
	if (err) {
		if (pid == TLS_EVERY_PROCESS)
			f->every_process = false;
		fprintf(stderr, "bizprobe: attaching OpenSSL uprobes to %s failed: %s\n", path,
			strerror(-err));
		return err;
	}
	if (a->verbose && pid == TLS_EVERY_PROCESS)
		fprintf(stderr, "bizprobe: OpenSSL uprobes attached to %s\n", path);
	else if (a->verbose)
		fprintf(stderr, "bizprobe: OpenSSL uprobes attached to %s for pid %u\n", path, pid);
	return 1;
}

void tls_detach_process(struct tls_attacher *a, uint32_t pid)
{
	if (pid == TLS_EVERY_PROCESS)
		return;
	for (unsigned i = a->n_bindings; i-- > 0;)
		if (a->bindings[i].pid == pid)
			unbind_at(a, i);
}
