// SPDX-License-Identifier: MIT
/*
 * Opt-out signals a request carries. Global Privacy Control (Sec-GPC, a legal opt-out under the
 * CCPA) and Do Not Track are honoured alike: an opted-out request is counted but not tied to a
 * pseudonym.
 */
#include <string.h>

#include "bizprobe/identity.h"

/* The header value is exactly "1", give or take surrounding whitespace; "0", "11" or "yes" are
 * not an opt-out (the GPC spec defines only "1"). */
static bool privacy_header_is_one(const char *v)
{
	if (!v)
		return false;
	v += strspn(v, " \t\r\n");
	if (*v != '1')
		return false;
	v++;
	return v[strspn(v, " \t\r\n")] == '\0';
}

bool privacy_opted_out(const char *sec_gpc, const char *dnt)
{
	return privacy_header_is_one(sec_gpc) || privacy_header_is_one(dnt);
}
