/* SPDX-License-Identifier: MIT */
/* Growing the capture stage's arrays (files, links, legacy events), which only ever append. */
#ifndef BIZPROBE_CAPTURE_ARRAY_H
#define BIZPROBE_CAPTURE_ARRAY_H

#include <stdbool.h>
#include <stdlib.h>

/* Makes room in *arr (*cap elements of elem bytes) for element n, doubling from 32. False, with
 * the array untouched, when out of memory. */
static inline bool array_grow(void **arr, unsigned *cap, unsigned n, size_t elem)
{
	unsigned ncap;
	void *p;

	if (n < *cap)
		return true;
	ncap = *cap ? *cap * 2 : 32;
	p = realloc(*arr, ncap * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = ncap;
	return true;
}

#endif
