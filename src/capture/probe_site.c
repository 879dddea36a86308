// SPDX-License-Identifier: MIT
#include "probe_site.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

/* len bytes of path at offset off; false when the file is shorter or unreadable. */
static bool read_code(const char *path, uint64_t off, unsigned char *code, size_t len)
{
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	got = pread(fd, code, len, (off_t)off);
	close(fd);
	return got == (ssize_t)len;
}

/*
 * Why: a uprobe on an instruction the kernel cannot emulate runs it out of line with a
 * single-step trap after the breakpoint. On this project's VMs that trap's exit path took a
 * third of a traced node's CPU at two libc calls per request, and its throughput fell to a
 * third. x86's uprobes emulate conditional jumps, so a probe on the jump costs one trap.
 *
 * The shape recognised is glibc's x86-64 syscall wrapper (read, write, accept4, close, ...):
 *   cmpb $0x0, __libc_single_threaded(%rip)   80 3d rel32 imm8
 *   [mov %ecx, %r10d]                          41 89 ca   (4-argument calls)
 *   je/jne <cancellable path>                  74/75 rel8, or 0f 84/85 rel32
 * Neither of the first two touches rdi, rsi, rdx, rcx, r8 or rsp, so the arguments an entry
 * program reads and the return address a uretprobe replaces are those of the entry. Anything
 * else is probed at its entry, as before.
 */
uint64_t probe_site_past_prologue(const char *path, uint64_t entry)
{
#if defined(__x86_64__)
	unsigned char code[12];
	size_t at = 0;

	if (!read_code(path, entry, code, sizeof(code)))
		return entry;
	if (code[0] != 0x80 || code[1] != 0x3d || code[6] != 0x00)
		return entry;
	at = 7;
	if (code[at] == 0x41 && code[at + 1] == 0x89 && code[at + 2] == 0xca)
		at += 3;
	if (code[at] == 0x74 || code[at] == 0x75 ||
	    (code[at] == 0x0f && (code[at + 1] == 0x84 || code[at + 1] == 0x85)))
		return entry + at;
#else
	(void)path;
#endif
	return entry;
}

/* The target of a `call rel32` whose opcode is at off; rel32 counts from the next instruction.
 * File offsets and addresses differ by a constant within the text segment. */
static uint64_t call_target(const unsigned char *code, uint64_t off)
{
	int32_t rel;

	memcpy(&rel, code + 1, sizeof(rel));
	return off + 5 + (uint64_t)(int64_t)rel;
}

uint64_t probe_site_ssl_core(const char *path, uint64_t ex_entry, uint64_t plain_entry)
{
#if defined(__x86_64__)
	/* sub $0x8,%rsp; call <core>; xor %edx,%edx; test %eax,%eax; cmovs %edx,%eax;
	 * add $0x8,%rsp; then the return (Debian's build clears the scratch registers first). */
	static const unsigned char head[] = {0x48, 0x83, 0xec, 0x08, 0xe8};
	static const unsigned char tail[] = {0x31, 0xd2, 0x85, 0xc0, 0x0f, 0x48,
					     0xc2, 0x48, 0x83, 0xc4, 0x08};
	unsigned char thunk[sizeof(head) + 4 + sizeof(tail)], plain[128], first[2];
	uint64_t core;
	bool called = false;

	if (!ex_entry || !plain_entry || !read_code(path, ex_entry, thunk, sizeof(thunk)) ||
	    memcmp(thunk, head, sizeof(head)) || memcmp(thunk + sizeof(head) + 4, tail, sizeof(tail)))
		return 0;
	core = call_target(thunk + 4, ex_entry + 4);
	/* push %reg, or push %r8-%r15 (REX.B): emulated, never single-stepped. */
	if (!read_code(path, core, first, sizeof(first)) ||
	    !((first[0] >= 0x50 && first[0] <= 0x57) ||
	      (first[0] == 0x41 && first[1] >= 0x50 && first[1] <= 0x57)))
		return 0;
	/* The plain function must reach the same core, or its calls would go unseen. A stray 0xe8
	 * byte would have to encode exactly this target to pass. */
	if (!read_code(path, plain_entry, plain, sizeof(plain)))
		return 0;
	for (size_t i = 0; i + 5 <= sizeof(plain) && !called; i++)
		called = plain[i] == 0xe8 && call_target(plain + i, plain_entry + i) == core;
	return called ? core : 0;
#else
	(void)path;
	(void)ex_entry;
	(void)plain_entry;
	return 0;
#endif
}
