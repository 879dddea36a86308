// SPDX-License-Identifier: MIT
/*
 * Client addresses cut to a network prefix before they are used as a label or stored: a /24 or
 * /48 still tells which region or provider traffic comes from, not which household.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "bizprobe/identity.h"

static bool ip_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void ip_anonymize(const char *addr, char *out, size_t size)
{
	char in[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN] = "-";
	const char *s = addr;
	struct in6_addr a6;
	struct in_addr a4;
	size_t n;

	if (!out || !size)
		return;
	if (!addr)
		goto out;
	/* Spaces around it are allowed: X-Forwarded-For lists are split at commas, "a, b". */
	while (ip_space(*s))
		s++;
	n = strnlen(s, sizeof(in));
	if (n == sizeof(in)) /* longer than any address */
		goto out;
	while (n && ip_space(s[n - 1]))
		n--;
	memcpy(in, s, n);
	in[n] = '\0';
	if (inet_pton(AF_INET, in, &a4) == 1) {
		((uint8_t *)&a4.s_addr)[3] = 0;
		inet_ntop(AF_INET, &a4, text, sizeof(text));
	} else if (inet_pton(AF_INET6, in, &a6) == 1) {
		/* ::ffff:a.b.c.d is an IPv4 client on a dual-stack socket: its /48 would keep the
		 * whole IPv4 address, so it gets the IPv4 /24 and keeps its IPv6 form. */
		if (IN6_IS_ADDR_V4MAPPED(&a6))
			a6.s6_addr[15] = 0;
		else
			memset(a6.s6_addr + 6, 0, 10);
		inet_ntop(AF_INET6, &a6, text, sizeof(text));
	}
out:
	/* Too small for the prefix: "-" rather than a cut address that reads as another. */
	if (strlen(text) >= size)
		snprintf(text, sizeof(text), "-");
	snprintf(out, size, "%s", text);
}
