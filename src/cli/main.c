// SPDX-License-Identifier: MIT
/* bizprobe: parse the command, run it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (strcmp(cmd, "trace") == 0 || strcmp(cmd, "run") == 0) {
		/* Before any thread exists: signals are handled by the pipeline's thread alone. */
		cli_block_stop_signals();
		return strcmp(cmd, "trace") == 0 ? cmd_trace(argc - 1, argv + 1)
						  : cmd_run(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "state") == 0)
		return cmd_state(argc - 1, argv + 1);
	if (strcmp(cmd, "rules") == 0)
		return cmd_rules(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("bizprobe %s\n", BIZPROBE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		cli_usage(stdout);
		return 0;
	}
	cli_usage(stderr);
	return 2;
}
