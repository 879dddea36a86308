/* SPDX-License-Identifier: MIT */
/* The command line: options shared by every command, and the capture -> HTTP pipeline they run. */
#ifndef BIZPROBE_CLI_H
#define BIZPROBE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bizprobe/capture_session.h"
#include "bizprobe/http_exchange.h"

#define BIZPROBE_VERSION "0.1.0"

struct cli_opts {
	struct capture_config capture;
	struct http_tracker_config http;
	/* trace */
	bool json;
	bool bodies;
	bool raw_paths; /* --raw-paths: paths and Host as sent, not route templates */
	/* run */
	bool trace_lines; /* --trace: also print each exchange, as `trace` does */
	const char *listen;
	const char *namespace_;
	const char *tls_cert;
	const char *tls_key;
	const char *webhook_secret_file;
	const char *stripe_hosts[8];
	size_t n_stripe_hosts;
	unsigned action_timeout_s;     /* 0: the semantics' default */
	unsigned processing_timeout_s; /* 0: the semantics' default */
	const char *rules_file; /* --rules: business events from the app's own traffic */
	const char *salt_file;	/* where a generated USER_TRACKING_SALT is kept */
	/* The state stage (src/cli/run_state.c) */
	const char *state_dir;	     /* --state-dir; NULL: one per target under /var/lib/bizprobe */
	const char *report_currency; /* --report-currency: the summary's MRR currency */
	const char *forget_user;     /* state forget --user */
	/* Sentry (src/cli/run_sentry.c) */
	const char *sentry_hosts[8]; /* --sentry-host: the app's Sentry besides *.sentry.io */
	size_t n_sentry_hosts;
	const char *sentry_dsn; /* --sentry-dsn: where bizprobe reports failed flows */
	/* Node mode (src/cli/run_node.c) */
	bool node;		  /* --node: every process the --select arguments pick */
	const char *selects[32];  /* --select KIND=VALUE, as given (K8S_MAX_SELECTORS) */
	size_t n_selects;
	const char *kube_api;	  /* --kube-api URL; NULL: the in-cluster service */
	const char *kube_token_file, *kube_ca_file; /* NULL: the service account's */
	unsigned k8s_labels; /* --k8s-labels: K8S_LABEL_NAMESPACE | K8S_LABEL_WORKLOAD, or 0 */
};

/* Parses argv after the command name. Returns 0, 1 when help was printed, or -EINVAL. */
int cli_parse(const char *cmd, int argc, char **argv, struct cli_opts *o);
void cli_usage(FILE *out);

/* Runs capture until SIGINT/SIGTERM, calling on_exchange for each completed exchange and tick
 * every 250 ms, a last time with final set once the ring buffer is drained. Returns the process
 * exit code. */
typedef void (*cli_exchange_fn)(const struct http_exchange *ex, uint64_t wall_ns, void *ctx);
typedef void (*cli_tick_fn)(struct capture_session *cs, struct http_tracker *ht, bool final,
			    void *ctx);
int cli_pipeline_run(const struct cli_opts *o, cli_exchange_fn on_exchange, cli_tick_fn tick,
		     void *ctx);

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, so that threads it creates
 * afterwards never take them; cli_pipeline_run unblocks them in its own thread. Called first
 * thing by the commands that run the pipeline. */
void cli_block_stop_signals(void);
/* clock_gettime(id) in nanoseconds (pipeline.c): the loop's, the stages' timings, the watches. */
int64_t cli_clock_ns(clockid_t id);

/* SIGHUP since the last call (run reloads its rules then). */
bool cli_take_reload_request(void);

struct rules;
/* Loads a rules file, printing each problem on stderr as "FILE:LINE:COL: message" (warnings as
 * "FILE:LINE:COL: warning: message"). NULL when it has errors. */
struct rules *cli_load_rules(const char *path, const char *namespace_);

int cmd_trace(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_rules(int argc, char **argv);
int cmd_state(int argc, char **argv);

#endif
