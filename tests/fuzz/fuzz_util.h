/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a reader that takes an input apart
 * into decisions and byte strings, so that one input drives a whole sequence of calls. Every
 * read is defined at the end of the input (zeros, empty strings), so any input is a valid run.
 */
#ifndef BIZPROBE_FUZZ_UTIL_H
#define BIZPROBE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Where harnesses add what they read, so that the reads are not optimized away. */
static volatile size_t fuzz_sink;

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = in->p[0];
	in->p++;
	in->n--;
	return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	return (uint16_t)(fuzz_u8(in) | fuzz_u8(in) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	return (uint32_t)fuzz_u16(in) | (uint32_t)fuzz_u16(in) << 16;
}

/* Up to max bytes, as many as a length byte says (or what is left). */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t max, size_t *len)
{
	size_t n = fuzz_u16(in);
	const uint8_t *p = in->p;

	if (n > max)
		n = max;
	if (n > in->n)
		n = in->n;
	in->p += n;
	in->n -= n;
	*len = n;
	return p;
}

/* A NUL-terminated malloc'd copy of up to max bytes (NULs inside kept: C sees a prefix). */
static inline char *fuzz_str(struct fuzz_in *in, size_t max)
{
	size_t n;
	const uint8_t *p = fuzz_bytes(in, max, &n);
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Exact-size heap copy of data: ASan then sees any read past its end. */
static inline uint8_t *fuzz_dup(const uint8_t *data, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (!c)
		abort();
	memcpy(c, data, n);
	return c;
}

#endif
