// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bizprobe/k8s.h"
#include "cli.h"

void cli_usage(FILE *out)
{
	fprintf(out,
		"bizprobe %s: business metrics from a running application's HTTP traffic, via eBPF\n"
		"\n"
		"usage:\n"
		"  bizprobe trace [--pid PID]... [--exe PATH]... [--json] [--bodies] [options]\n"
		"  bizprobe run   [--pid PID]... [--exe PATH]... [--listen ADDR:PORT]\n"
		"                 [--namespace NAME] [--tls-cert FILE --tls-key FILE]\n"
		"                 [--webhook-secret-file FILE] [--stripe-host HOST]...\n"
		"                 [--rules FILE] [--salt-file FILE] [--sentry-host HOST]...\n"
		"                 [--sentry-dsn DSN] [--state-dir DIR] [--report-currency CUR]\n"
		"                 [options]\n"
		"  bizprobe run --node --select KIND=VALUE... [run options]\n"
		"  bizprobe state forget --user ID [--state-dir DIR] [--salt-file FILE]\n"
		"  bizprobe rules check FILE\n"
		"  bizprobe rules test --rules FILE [--namespace NAME] < trace.jsonl\n"
		"  bizprobe version\n"
		"\n"
		"selection:\n"
		"  --pid PID          trace this process (repeatable); traced again if it restarts\n"
		"  --exe PATH         trace every process running this executable, now and later\n"
		"  --child-delay MS   with --pid, a traced process's child is attached once it has\n"
		"                     lived MS milliseconds (default 100)\n"
		"  --socket-hooks auto|syscalls|libc  how plaintext sockets are seen. syscalls: raw\n"
		"                     syscall tracepoints, which every process on the host pays for\n"
		"                     at each syscall while they are attached. libc (not with\n"
		"                     --exe): uprobes in the traced processes' C library; other\n"
		"                     processes pay nothing, the traced ones a trap per socket call,\n"
		"                     and calls that bypass libc are not seen. auto (default): per\n"
		"                     process, libc for one that maps a C library and runs no Go\n"
		"                     code, syscalls for the others and for all when --exe is given,\n"
		"                     the tracepoints attached only while such a process is traced\n"
		"trace:\n"
		"  --json             JSON Lines, one object per exchange\n"
		"  --bodies           also show bodies, with keys, tokens, cards and e-mails redacted\n"
		"  --raw-paths        show paths and Host as sent; by default a path shows as its\n"
		"                     route template (/users/{id}/orders: ids and e-mails hidden).\n"
		"                     With --json --bodies, record with it for `rules test` of routes\n"
		"                     with {params}\n"
		"run:\n"
		"  --listen ADDR:PORT metrics endpoint (default 127.0.0.1:9464)\n"
		"  --namespace NAME   metric name prefix (default direct_fan)\n"
		"  --trace            also print each exchange (the trace view) on stdout\n"
		"  --action-timeout S      a payment left in requires_action counts with that\n"
		"                          status after S seconds (default 3600)\n"
		"  --processing-timeout S  likewise for processing (default 259200)\n"
		"  --rules FILE       business events from the app's requests (YAML); reloaded\n"
		"                     on SIGHUP and when the file changes (a ConfigMap update)\n"
		"  --salt-file FILE   keeps a generated user-pseudonym salt when USER_TRACKING_SALT\n"
		"                     is unset (default: salt in the --state-dir given, else\n"
		"                     /var/lib/bizprobe/salt)\n"
		"  --state-dir DIR    the KPIs' memory (SQLite), counters, MRR and webhook dedupe\n"
		"                     across restarts; one run per directory (default: one\n"
		"                     directory per traced target under /var/lib/bizprobe)\n"
		"  --report-currency CUR  the currency of summary.monthlyRecurringRevenue in\n"
		"                     /api/admin/metrics (default USD)\n"
		"  --sentry-host HOST the app's Sentry, besides *.sentry.io and the host of the\n"
		"                     SENTRY_DSN in its environment (repeatable): counted in\n"
		"                     sentry_errors_total\n"
		"  --node             trace every process on this host that the --select arguments\n"
		"                     pick, found at its exec and by a /proc scan once a second;\n"
		"                     dropped when its pod stops matching (a label removed)\n"
		"  --select KIND=VALUE  exe=GLOB (path inside its container), comm=NAME,\n"
		"                     cgroup=GLOB, k8s-namespace=NS, k8s-label=KEY=VALUE; one kind\n"
		"                     repeated is either, different kinds must all hold\n"
		"  --kube-api URL, --kube-token-file F, --kube-ca-file F  the kube API for the k8s-*\n"
		"                     selectors (default: the in-cluster service account; NODE_NAME)\n"
		"  --k8s-labels LIST  namespace, workload or namespace,workload: labels added to\n"
		"                     every business counter and histogram (the traced process's\n"
		"                     pod's; \"unknown\" without the kube API, workload \"none\" for\n"
		"                     a pod no controller owns), and per-target self-metrics.\n"
		"                     Pod names are refused (a series per pod)\n"
		"  --sentry-dsn DSN   report failed business flows to this Sentry project (or\n"
		"                     SENTRY_DSN in bizprobe's environment, which ps does not show)\n"
		"  environment: METRICS_AUTH_TOKEN (bearer token for /metrics),\n"
		"  ADMIN_API_TOKEN (bearer token for /api/admin/metrics),\n"
		"  STRIPE_WEBHOOK_SECRET, ENABLE_BUSINESS_METRICS=false (exports only bizprobe_*),\n"
		"  USER_TRACKING_SALT, ENABLE_USER_TRACKING=false (no user is identified)\n"
		"options:\n"
		"  --max-copy BYTES   bytes copied per read/write call (default 262144)\n"
		"  --body-cap BYTES   body bytes kept per message (default 65536)\n"
		"  --memory-limit BYTES  the HTTP stage's memory for all connections together\n"
		"                     (default 67108864); over it the least recently active\n"
		"                     connections give way, counted in bizprobe_http_* metrics\n"
		"  --ringbuf BYTES    kernel-to-user ring buffer (default 4194304)\n"
		"  -v, --verbose      attach decisions and libbpf messages on stderr\n",
		BIZPROBE_VERSION);
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > 0xffffffffUL)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Sentry's (src/cli/run_sentry.c), numbered apart from the others. */
enum {
	OPT_SENTRY_HOST = 2000,
	OPT_SENTRY_DSN,
};

enum {
	OPT_PID = 1000, OPT_EXE, OPT_JSON, OPT_BODIES, OPT_MAX_COPY, OPT_BODY_CAP, OPT_RINGBUF,
	OPT_LISTEN, OPT_NAMESPACE, OPT_TLS_CERT, OPT_TLS_KEY, OPT_WEBHOOK_SECRET_FILE,
	OPT_STRIPE_HOST, OPT_EMPTY_PROBES, OPT_ACTION_TIMEOUT, OPT_PROCESSING_TIMEOUT, OPT_TRACE,
	OPT_CHILD_DELAY, OPT_SOCKET_HOOKS, OPT_RULES, OPT_SALT_FILE, OPT_MEMORY_LIMIT, OPT_RAW_PATHS,
};

/* The state stage's (src/cli/run_state.c). */
enum {
	OPT_STATE_DIR = 3000,
	OPT_REPORT_CURRENCY,
	OPT_USER,
};

/* Node mode's (src/cli/run_node.c). */
enum {
	OPT_NODE = 3100,
	OPT_SELECT,
	OPT_KUBE_API,
	OPT_KUBE_TOKEN_FILE,
	OPT_KUBE_CA_FILE,
	OPT_K8S_LABELS,
};

int cli_parse(const char *cmd, int argc, char **argv, struct cli_opts *o)
{
	static const struct option longopts[] = {
		{"pid", required_argument, NULL, OPT_PID},
		{"exe", required_argument, NULL, OPT_EXE},
		{"child-delay", required_argument, NULL, OPT_CHILD_DELAY},
		{"socket-hooks", required_argument, NULL, OPT_SOCKET_HOOKS},
		{"json", no_argument, NULL, OPT_JSON},
		{"bodies", no_argument, NULL, OPT_BODIES},
		{"raw-paths", no_argument, NULL, OPT_RAW_PATHS},
		{"max-copy", required_argument, NULL, OPT_MAX_COPY},
		{"body-cap", required_argument, NULL, OPT_BODY_CAP},
		{"memory-limit", required_argument, NULL, OPT_MEMORY_LIMIT},
		{"ringbuf", required_argument, NULL, OPT_RINGBUF},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"namespace", required_argument, NULL, OPT_NAMESPACE},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"webhook-secret-file", required_argument, NULL, OPT_WEBHOOK_SECRET_FILE},
		{"stripe-host", required_argument, NULL, OPT_STRIPE_HOST},
		{"action-timeout", required_argument, NULL, OPT_ACTION_TIMEOUT},
		{"trace", no_argument, NULL, OPT_TRACE},
		{"processing-timeout", required_argument, NULL, OPT_PROCESSING_TIMEOUT},
		{"rules", required_argument, NULL, OPT_RULES},
		{"salt-file", required_argument, NULL, OPT_SALT_FILE},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"report-currency", required_argument, NULL, OPT_REPORT_CURRENCY},
		{"user", required_argument, NULL, OPT_USER},
		{"node", no_argument, NULL, OPT_NODE},
		{"select", required_argument, NULL, OPT_SELECT},
		{"kube-api", required_argument, NULL, OPT_KUBE_API},
		{"kube-token-file", required_argument, NULL, OPT_KUBE_TOKEN_FILE},
		{"kube-ca-file", required_argument, NULL, OPT_KUBE_CA_FILE},
		{"k8s-labels", required_argument, NULL, OPT_K8S_LABELS},
		{"sentry-host", required_argument, NULL, OPT_SENTRY_HOST},
		{"sentry-dsn", required_argument, NULL, OPT_SENTRY_DSN},
		/* Hidden: the benchmark's floor (same attach points, programs return at once). */
		{"empty-probes", no_argument, NULL, OPT_EMPTY_PROBES},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	uint32_t v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_PID:
			if (parse_u32(optarg, &v) || v == 0 ||
			    o->capture.n_pids >= CAPTURE_MAX_PIDS) {
				fprintf(stderr, "bizprobe %s: bad --pid %s\n", cmd, optarg);
				return -EINVAL;
			}
			o->capture.pids[o->capture.n_pids++] = v;
			break;
		case OPT_EXE:
			if (o->capture.n_exes >= CAPTURE_MAX_EXES) {
				fprintf(stderr, "bizprobe %s: too many --exe\n", cmd);
				return -EINVAL;
			}
			o->capture.exes[o->capture.n_exes++] = optarg;
			break;
		case OPT_CHILD_DELAY:
			if (parse_u32(optarg, &v) || v == 0 || v > 3600000) {
				fprintf(stderr, "bizprobe %s: bad --child-delay %s (1 to 3600000 ms)\n",
					cmd, optarg);
				return -EINVAL;
			}
			o->capture.child_delay_ms = v;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case OPT_BODIES:
			o->bodies = true;
			break;
		case OPT_RAW_PATHS:
			o->raw_paths = true;
			break;
		case OPT_TRACE:
			o->trace_lines = true;
			break;
		case OPT_MAX_COPY:
		case OPT_BODY_CAP:
		case OPT_RINGBUF:
			if (parse_u32(optarg, &v) || v == 0) {
				fprintf(stderr, "bizprobe %s: bad size %s\n", cmd, optarg);
				return -EINVAL;
			}
			if (c == OPT_MAX_COPY)
				o->capture.max_copy_bytes = v;
			else if (c == OPT_BODY_CAP)
				o->http.body_cap = v;
			else
				o->capture.ringbuf_bytes = v;
			break;
		case OPT_MEMORY_LIMIT: {
			char *end;
			unsigned long long m;

			errno = 0;
			m = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || optarg[0] == '-' || m == 0 ||
			    m > SIZE_MAX) {
				fprintf(stderr, "bizprobe %s: bad --memory-limit %s\n", cmd, optarg);
				return -EINVAL;
			}
			o->http.memory_limit = (size_t)m;
			break;
		}
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_NAMESPACE:
			o->namespace_ = optarg;
			break;
		case OPT_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			o->tls_key = optarg;
			break;
		case OPT_WEBHOOK_SECRET_FILE:
			o->webhook_secret_file = optarg;
			break;
		case OPT_STRIPE_HOST:
			if (o->n_stripe_hosts < sizeof(o->stripe_hosts) / sizeof(o->stripe_hosts[0]))
				o->stripe_hosts[o->n_stripe_hosts++] = optarg;
			break;
		case OPT_ACTION_TIMEOUT:
		case OPT_PROCESSING_TIMEOUT:
			if (parse_u32(optarg, &v) || v == 0) {
				fprintf(stderr, "bizprobe %s: bad timeout %s\n", cmd, optarg);
				return -EINVAL;
			}
			if (c == OPT_ACTION_TIMEOUT)
				o->action_timeout_s = v;
			else
				o->processing_timeout_s = v;
			break;
		case OPT_RULES:
			o->rules_file = optarg;
			break;
		case OPT_STATE_DIR:
			o->state_dir = optarg;
			break;
		case OPT_REPORT_CURRENCY:
			if (strlen(optarg) != 3 || strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
				fprintf(stderr, "bizprobe %s: --report-currency takes an ISO code in "
						"capitals (USD, EUR)\n",
					cmd);
				return -EINVAL;
			}
			o->report_currency = optarg;
			break;
		case OPT_USER:
			o->forget_user = optarg;
			break;
		case OPT_NODE:
			o->node = true;
			break;
		case OPT_SELECT:
			if (o->n_selects >= sizeof(o->selects) / sizeof(o->selects[0])) {
				fprintf(stderr, "bizprobe %s: too many --select\n", cmd);
				return -EINVAL;
			}
			o->selects[o->n_selects++] = optarg;
			break;
		case OPT_KUBE_API:
			o->kube_api = optarg;
			break;
		case OPT_KUBE_TOKEN_FILE:
			o->kube_token_file = optarg;
			break;
		case OPT_KUBE_CA_FILE:
			o->kube_ca_file = optarg;
			break;
		case OPT_K8S_LABELS: {
			char why[256];

			if (k8s_labels_parse(optarg, &o->k8s_labels, why, sizeof(why))) {
				fprintf(stderr, "bizprobe %s: %s\n", cmd, why);
				return -EINVAL;
			}
			break;
		}
		case OPT_SALT_FILE:
			o->salt_file = optarg;
			break;
		case OPT_SENTRY_HOST:
			if (o->n_sentry_hosts >= sizeof(o->sentry_hosts) / sizeof(o->sentry_hosts[0])) {
				fprintf(stderr, "bizprobe %s: too many --sentry-host\n", cmd);
				return -EINVAL;
			}
			o->sentry_hosts[o->n_sentry_hosts++] = optarg;
			break;
		case OPT_SENTRY_DSN:
			o->sentry_dsn = optarg;
			break;
		case OPT_EMPTY_PROBES:
			o->capture.empty_probes = true;
			break;
		case OPT_SOCKET_HOOKS:
			if (!strcmp(optarg, "auto"))
				o->capture.socket_hooks = SOCKET_HOOKS_AUTO;
			else if (!strcmp(optarg, "syscalls"))
				o->capture.socket_hooks = SOCKET_HOOKS_SYSCALLS;
			else if (!strcmp(optarg, "libc"))
				o->capture.socket_hooks = SOCKET_HOOKS_LIBC;
			else {
				fprintf(stderr,
					"bizprobe %s: bad --socket-hooks %s (auto, syscalls or libc)\n",
					cmd, optarg);
				return -EINVAL;
			}
			break;
		case 'v':
			o->capture.verbose = true;
			break;
		case 'h':
			cli_usage(stdout);
			return 1;
		default:
			cli_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bizprobe %s: unexpected argument %s\n", cmd, argv[optind]);
		return -EINVAL;
	}
	{
		char why[256];

		/* The caps must fit the budget: else every exchange at the caps would be cut. */
		if (http_tracker_config_check(&o->http, why, sizeof(why))) {
			fprintf(stderr, "bizprobe %s: --memory-limit too small for --body-cap: %s\n",
				cmd, why);
			return -EINVAL;
		}
	}
	if (o->node != (o->n_selects > 0) || (o->node && strcmp(cmd, "run"))) {
		fprintf(stderr, "bizprobe %s: %s\n", cmd,
			strcmp(cmd, "run") ? "--node and --select are for bizprobe run"
			: o->node ? "--node needs at least one --select KIND=VALUE"
				  : "--select is for --node");
		return -EINVAL;
	}
	/* A process of an --exe must be seen from its exec (curl is done in milliseconds), before
	 * userspace could plant uprobes for it; libc-wide uprobes for every process would trap
	 * every libc call on the host, the cost this mode exists to avoid. Node mode chooses its
	 * processes in userspace, after their exec, anyway. */
	if (o->capture.socket_hooks == SOCKET_HOOKS_LIBC && o->capture.n_exes) {
		fprintf(stderr, "bizprobe %s: --socket-hooks libc is not for --exe: its processes "
				"must be seen from their exec\n", cmd);
		return -EINVAL;
	}
	if (o->k8s_labels && !o->node) {
		fprintf(stderr, "bizprobe %s: --k8s-labels is for --node\n", cmd);
		return -EINVAL;
	}
	/* `state forget` works on stored state: it traces nothing. */
	if (!o->capture.n_pids && !o->capture.n_exes && !o->node && strncmp(cmd, "state", 5)) {
		fprintf(stderr,
			"bizprobe %s: select processes with --pid PID, --exe PATH or --node "
			"--select KIND=VALUE\n",
			cmd);
		return -EINVAL;
	}
	return 0;
}
