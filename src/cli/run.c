// SPDX-License-Identifier: MIT
/* `bizprobe run`: placeholder until the metrics pipeline is wired (issue 3). */
#include <stdio.h>

#include "cli.h"

int cmd_run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "bizprobe run: not built yet\n");
	return 2;
}
