// SPDX-License-Identifier: MIT
#include "tls_attach.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe.skel.h"
#include "elf_sym.h"
#include "proc.h"
#include "uprobe_legacy.h"

enum tls_fn { FN_WRITE, FN_WRITE_EX, FN_READ, FN_READ_EX, FN_FREE, FN__COUNT };

static const char *const tls_fn_names[FN__COUNT] = {
	[FN_WRITE] = "SSL_write", [FN_WRITE_EX] = "SSL_write_ex", [FN_READ] = "SSL_read",
	[FN_READ_EX] = "SSL_read_ex", [FN_FREE] = "SSL_free",
};

#define LINKS_PER_FILE 9 /* write, write_ex, read, read_ex (entry and return each), free */

struct tls_file {
	struct file_id id;
	bool has_ssl;
	struct bpf_link *links[LINKS_PER_FILE];
};

struct tls_attacher {
	struct bizprobe_bpf *skel;
	bool verbose;
	struct tls_file *files;
	unsigned n_files, cap_files, n_ssl_files;
};

struct tls_attacher *tls_attacher_new(struct bizprobe_bpf *skel, bool verbose)
{
	struct tls_attacher *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->skel = skel;
	a->verbose = verbose;
	return a;
}

void tls_attacher_free(struct tls_attacher *a)
{
	if (!a)
		return;
	for (unsigned i = 0; i < a->n_files; i++)
		for (unsigned k = 0; k < LINKS_PER_FILE; k++)
			bpf_link__destroy(a->files[i].links[k]);
	uprobe_legacy_cleanup();
	free(a->files);
	free(a);
}

unsigned tls_attacher_files(const struct tls_attacher *a)
{
	return a->n_ssl_files;
}

static struct tls_file *find_file(struct tls_attacher *a, const struct file_id *id)
{
	for (unsigned i = 0; i < a->n_files; i++)
		if (a->files[i].id.dev == id->dev && a->files[i].id.ino == id->ino)
			return &a->files[i];
	return NULL;
}

static struct tls_file *add_file(struct tls_attacher *a, const struct file_id *id)
{
	struct tls_file *f;

	if (a->n_files == a->cap_files) {
		unsigned cap = a->cap_files ? a->cap_files * 2 : 32;
		struct tls_file *n = realloc(a->files, cap * sizeof(*n));

		if (!n)
			return NULL;
		a->files = n;
		a->cap_files = cap;
	}
	f = &a->files[a->n_files++];
	memset(f, 0, sizeof(*f));
	f->id = *id;
	return f;
}

static int attach_one(struct tls_file *f, unsigned slot, struct bpf_program *prog, const char *path,
		      uint64_t offset, bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = ret);
	struct bpf_link *link;

	libbpf_print_fn_t print;
	int err;

	/* pid -1: every process mapping this inode, present and future; the BPF side filters.
	 * libbpf's own complaint is silenced: a refusal here has a fallback. */
	print = libbpf_set_print(NULL);
	link = bpf_program__attach_uprobe_opts(prog, -1, path, offset, &opts);
	err = errno;
	libbpf_set_print(print);
	errno = err;
	if (!link && (errno == EACCES || errno == EPERM))
		link = uprobe_legacy_attach(prog, path, offset, ret);
	if (!link)
		return -errno;
	f->links[slot] = link;
	return 0;
}

int tls_attach_file(struct tls_attacher *a, const char *path)
{
	struct bizprobe_bpf *sk = a->skel;
	uint64_t off[FN__COUNT];
	struct file_id id;
	struct tls_file *f;
	int err;

	if (proc_file_id(path, &id))
		return 0; /* gone or unreachable: not ours to report */
	if (find_file(a, &id))
		return 0;
	f = add_file(a, &id);
	if (!f)
		return -ENOMEM;
	if (elf_sym_offsets(path, tls_fn_names, FN__COUNT, off) <= 0)
		return 0;
	if (!off[FN_READ] && !off[FN_READ_EX])
		return 0;
	f->has_ssl = true;
	a->n_ssl_files++;
	err = 0;
	if (off[FN_WRITE] && !err)
		err = attach_one(f, 0, sk->progs.up_ssl_write, path, off[FN_WRITE], false);
	if (off[FN_WRITE] && !err)
		err = attach_one(f, 1, sk->progs.urp_ssl_write, path, off[FN_WRITE], true);
	if (off[FN_WRITE_EX] && !err)
		err = attach_one(f, 2, sk->progs.up_ssl_write_ex, path, off[FN_WRITE_EX], false);
	if (off[FN_WRITE_EX] && !err)
		err = attach_one(f, 3, sk->progs.urp_ssl_write_ex, path, off[FN_WRITE_EX], true);
	if (off[FN_READ] && !err)
		err = attach_one(f, 4, sk->progs.up_ssl_read, path, off[FN_READ], false);
	if (off[FN_READ] && !err)
		err = attach_one(f, 5, sk->progs.urp_ssl_read, path, off[FN_READ], true);
	if (off[FN_READ_EX] && !err)
		err = attach_one(f, 6, sk->progs.up_ssl_read_ex, path, off[FN_READ_EX], false);
	if (off[FN_READ_EX] && !err)
		err = attach_one(f, 7, sk->progs.urp_ssl_read_ex, path, off[FN_READ_EX], true);
	if (off[FN_FREE] && !err)
		err = attach_one(f, 8, sk->progs.up_ssl_free, path, off[FN_FREE], false);
	if (err) {
		fprintf(stderr, "bizprobe: attaching OpenSSL uprobes to %s failed: %s\n", path,
			strerror(-err));
		return err;
	}
	if (a->verbose)
		fprintf(stderr, "bizprobe: OpenSSL uprobes attached to %s\n", path);
	return 1;
}
