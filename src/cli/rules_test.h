/* SPDX-License-Identifier: MIT */
/* `bizprobe rules test`: a rules file tried on a recording of `bizprobe trace --json --bodies`. */
#ifndef BIZPROBE_CLI_RULES_TEST_H
#define BIZPROBE_CLI_RULES_TEST_H

/*
 * argv[0] is "test"; options: --rules FILE (required), --namespace NAME. Reads the recording on
 * stdin and prints one JSON line per event on stdout, diagnostics and a summary on stderr.
 * Returns the exit status: 0, 1 when a line was not a valid recording (each one reported as
 * "line N: why"), 2 on a usage error or a rules file with errors.
 */
int cmd_rules_test(int argc, char **argv);

#endif
