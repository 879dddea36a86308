// SPDX-License-Identifier: MIT
/* probe_site_past_prologue: the libc uprobes' site in glibc's syscall wrappers, and the entry
 * for any other code. Byte sequences as objdump shows Debian 12's libc.so.6 (read, accept4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/capture/probe_site.h"

/* Writes code at file offset at (zeros before it) and returns probe_site_past_prologue(at). */
static uint64_t site_of(const unsigned char *code, size_t len, uint64_t at)
{
	char path[] = "/tmp/bizprobe-probe-site-XXXXXX";
	unsigned char pad[64] = {0};
	int fd = mkstemp(path);
	uint64_t site;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, pad, at), (ssize_t)at);
	assert_int_equal(write(fd, code, len), (ssize_t)len);
	close(fd);
	site = probe_site_past_prologue(path, at);
	unlink(path);
	return site;
}

static void test_glibc_wrappers_are_probed_on_their_jump(void **state)
{
	/* read: cmpb $0x0,0xe3331(%rip); je +0x17; xor %eax,%eax; syscall */
	static const unsigned char read_fn[] = {0x80, 0x3d, 0x31, 0x33, 0x0e, 0x00, 0x00, 0x74,
						0x17, 0x31, 0xc0, 0x0f, 0x05, 0xc3};
	/* accept4: cmpb; mov %ecx,%r10d; je +0x14; mov $0x120,%eax */
	static const unsigned char accept4_fn[] = {0x80, 0x3d, 0x81, 0x06, 0x0d, 0x00, 0x00,
						   0x41, 0x89, 0xca, 0x74, 0x14, 0xb8, 0x20};
	/* The same with a 32-bit jne, as a longer cancellable path would need. */
	static const unsigned char jne32_fn[] = {0x80, 0x3d, 0x00, 0x10, 0x00, 0x00, 0x00, 0x0f,
						 0x85, 0x00, 0x01, 0x00, 0x00, 0xc3};

	assert_int_equal(site_of(read_fn, sizeof(read_fn), 32), 32 + 7);
	assert_int_equal(site_of(accept4_fn, sizeof(accept4_fn), 16), 16 + 10);
	assert_int_equal(site_of(jne32_fn, sizeof(jne32_fn), 0), 7);
}

static void test_other_code_is_probed_at_its_entry(void **state)
{
	/* recvmsg: push %rbx; sub $0x10,%rsp; cmpb ...: the stack moved before the compare. */
	static const unsigned char recvmsg_fn[] = {0x53, 0x48, 0x83, 0xec, 0x10, 0x80, 0x3d, 0x3c,
						   0x0b, 0x0d, 0x00, 0x00, 0x74, 0x22};
	/* cmpb with a non-zero immediate, then a jump: not the wrapper's test, left alone. */
	static const unsigned char cmp1_fn[] = {0x80, 0x3d, 0x31, 0x33, 0x0e, 0x00, 0x01, 0x74,
						0x17, 0x31, 0xc0, 0x0f, 0x05, 0xc3};
	/* The wrapper's compare followed by something other than a jump. */
	static const unsigned char nojump_fn[] = {0x80, 0x3d, 0x31, 0x33, 0x0e, 0x00, 0x00, 0x31,
						  0xc0, 0x0f, 0x05, 0xc3, 0x90, 0x90};
	/* Too short to hold the pattern: the file ends inside it. */
	static const unsigned char short_fn[] = {0x80, 0x3d, 0x31, 0x33, 0x0e, 0x00, 0x00, 0x74};

	assert_int_equal(site_of(recvmsg_fn, sizeof(recvmsg_fn), 8), 8);
	assert_int_equal(site_of(cmp1_fn, sizeof(cmp1_fn), 8), 8);
	assert_int_equal(site_of(nojump_fn, sizeof(nojump_fn), 8), 8);
	assert_int_equal(site_of(short_fn, sizeof(short_fn), 8), 8);
	assert_int_equal(probe_site_past_prologue("/nonexistent/libc.so.6", 123), 123);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glibc_wrappers_are_probed_on_their_jump),
	    cmocka_unit_test(test_other_code_is_probed_at_its_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
