// SPDX-License-Identifier: MIT
/* probe_site_past_prologue: the libc uprobes' site in glibc's syscall wrappers, and the entry
 * for any other code; probe_site_ssl_core: OpenSSL's shared read and write. Byte sequences as
 * objdump shows Debian 12's libc.so.6 (read, accept4) and libssl.so.3 (SSL_read_ex). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* A file with SSL_read_ex's thunk at 0x100 calling 0x40, a plain function at 0x200 that calls
 * 0x40 at +30 (as SSL_read does), and at 0x40 the first bytes given. */
static uint64_t core_of(const unsigned char *core_first, size_t n, bool plain_calls_core,
			bool exact_thunk)
{
	/* sub $0x8,%rsp; call rel32; xor %edx,%edx; test %eax,%eax; cmovs %edx,%eax;
	 * add $0x8,%rsp; xor %edx,%edx; xor %ecx,%ecx; ret (libssl.so.3's bytes) */
	unsigned char thunk[] = {0x48, 0x83, 0xec, 0x08, 0xe8, 0,    0,	   0,	 0,    0x31, 0xd2, 0x85,
				 0xc0, 0x0f, 0x48, 0xc2, 0x48, 0x83, 0xc4, 0x08, 0x31, 0xd2, 0x31, 0xc9, 0xc3};
	unsigned char file[0x300] = {0};
	char path[] = "/tmp/bizprobe-probe-site-XXXXXX";
	int32_t rel = 0x40 - (0x100 + 9);
	uint64_t core;
	int fd;

	memcpy(thunk + 5, &rel, sizeof(rel));
	if (!exact_thunk)
		thunk[13] = 0x90; /* no cmovs: the thunk does something else with the result */
	memcpy(file + 0x100, thunk, sizeof(thunk));
	memcpy(file + 0x40, core_first, n);
	file[0x200 + 30] = 0xe8;
	rel = (plain_calls_core ? 0x40 : 0x60) - (0x200 + 30 + 5);
	memcpy(file + 0x200 + 31, &rel, sizeof(rel));
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, file, sizeof(file)), (ssize_t)sizeof(file));
	close(fd);
	core = probe_site_ssl_core(path, 0x100, 0x200);
	unlink(path);
	return core;
}

static void test_ssl_core_only_for_the_exact_thunk(void **state)
{
	static const unsigned char push_r13[] = {0x41, 0x55, 0x41, 0x54};
	static const unsigned char push_rbp[] = {0x55, 0x48, 0x89, 0xe5};
	static const unsigned char sub_rsp[] = {0x48, 0x83, 0xec, 0x18};

	assert_int_equal(core_of(push_r13, sizeof(push_r13), true, true), 0x40);
	assert_int_equal(core_of(push_rbp, sizeof(push_rbp), true, true), 0x40);
	/* The core would be single-stepped too: nothing gained, the public functions stay. */
	assert_int_equal(core_of(sub_rsp, sizeof(sub_rsp), true, true), 0);
	/* SSL_read does not reach it: its calls would go unseen. */
	assert_int_equal(core_of(push_r13, sizeof(push_r13), false, true), 0);
	/* Not exactly the thunk. */
	assert_int_equal(core_of(push_r13, sizeof(push_r13), true, false), 0);
	assert_int_equal(probe_site_ssl_core("/nonexistent/libssl.so.3", 0x100, 0x200), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_glibc_wrappers_are_probed_on_their_jump),
	    cmocka_unit_test(test_other_code_is_probed_at_its_entry),
	    cmocka_unit_test(test_ssl_core_only_for_the_exact_thunk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
