// SPDX-License-Identifier: MIT
/* `bizprobe rules check FILE` and the rules loading `run` shares with it. */
#include <stdio.h>
#include <string.h>

#include "bizprobe/rules.h"
#include "cli.h"
#include "rules_test.h"

/* One line per problem, the format editors and CI annotations understand. */
static void print_diag(const struct rules_diag *d, void *ctx)
{
	unsigned *errors = ctx;

	if (!d->warning && errors)
		(*errors)++;
	fprintf(stderr, "%s:%u:%u: %s%s\n", d->file, d->line, d->col,
		d->warning ? "warning: " : "", d->message);
}

struct rules *cli_load_rules(const char *path, const char *namespace_)
{
	struct rules_load_config cfg = {.namespace = namespace_ ? namespace_ : "direct_fan"};
	unsigned errors = 0;

	return rules_load_file(path, &cfg, print_diag, &errors);
}

static void rules_usage(FILE *out)
{
	fprintf(out, "usage:\n"
		     "  bizprobe rules check FILE     exit 0 when FILE is valid, else 2 with\n"
		     "                                FILE:LINE:COL: message for each error\n"
		     "  bizprobe rules test --rules FILE [--namespace NAME] < trace.jsonl\n"
		     "                                the events recorded exchanges would produce\n"
		     "                                (record with bizprobe trace --json --bodies)\n");
}

static int rules_check(int argc, char **argv)
{
	struct rules *r;

	if (argc != 2 || argv[1][0] == '-') {
		rules_usage(stderr);
		return 2;
	}
	r = cli_load_rules(argv[1], NULL);
	if (!r)
		return 2;
	printf("%s: %u events, valid\n", argv[1], rules_count(r));
	rules_free(r);
	return 0;
}

int cmd_rules(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : "";

	if (!strcmp(sub, "check"))
		return rules_check(argc - 1, argv + 1);
	if (!strcmp(sub, "test"))
		return cmd_rules_test(argc - 1, argv + 1);
	if (!strcmp(sub, "help") || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		rules_usage(stdout);
		return 0;
	}
	rules_usage(stderr);
	return 2;
}
