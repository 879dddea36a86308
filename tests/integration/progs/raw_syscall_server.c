// SPDX-License-Identifier: MIT
/*
 * A plain-HTTP server that makes every socket call with syscall(2), past the C library's
 * wrappers, as Go programs do; and it carries a .go.buildinfo section, as Go programs do. What
 * `--socket-hooks auto` must recognise and trace with the syscall tracepoints (issue 20).
 * Usage: raw_syscall_server PORT. Answers each request "ok" and closes the connection.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What a Go linker writes at the start of this section. */
__attribute__((section(".go.buildinfo"), used)) static const char go_buildinfo[16] =
	"\xff Go buildinf:";

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

int main(int argc, char **argv)
{
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	long srv;

	if (argc != 2)
		return 2;
	addr.sin_port = htons((unsigned short)atoi(argv[1]));
	srv = syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	if (srv < 0 || syscall(SYS_setsockopt, srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    syscall(SYS_bind, srv, &addr, sizeof(addr)) || syscall(SYS_listen, srv, 16)) {
		perror("raw_syscall_server");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		char req[8192];
		size_t got = 0;
		long c = syscall(SYS_accept4, srv, NULL, NULL, 0);

		if (c < 0)
			continue;
		/* One request without a body: read until its blank line. */
		while (got < sizeof(req) - 1) {
			long n = syscall(SYS_read, c, req + got, sizeof(req) - 1 - got);

			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		syscall(SYS_write, c, reply, sizeof(reply) - 1);
		syscall(SYS_close, c);
	}
}
