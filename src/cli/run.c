// SPDX-License-Identifier: MIT
/* `bizprobe run`: business metrics from the traced processes' traffic, served to Prometheus until
 * SIGINT/SIGTERM. Exchanges go to the semantics (Stripe), whose business events go to the
 * metrics stage. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bizprobe/business_event.h"
#include "bizprobe/identity.h"
#include "bizprobe/k8s.h"
#include "bizprobe/metrics.h"
#include "bizprobe/metrics_server.h"
#include "bizprobe/self_metrics.h"
#include "bizprobe/stripe.h"
#include "bizprobe/trace_format.h"
#include "cli.h"
#include "run_node.h"
#include "run_rules.h"
#include "run_sentry.h"
#include "run_state.h"

#define DEFAULT_LISTEN	   "127.0.0.1:9464"
#define DEFAULT_NAMESPACE "direct_fan" /* the guide's metric prefix */
#define DEFAULT_SALT_FILE STATE_DEFAULT_DIR "/salt"
#define SECRET_MAX 256

/* Seconds one exchange spends in the semantics stage: well under a millisecond normally. */
static const double processing_buckets[] = {1e-6,   2.5e-6, 5e-6,  1e-5, 2.5e-5, 5e-5,
					    1e-4,   2.5e-4, 5e-4,  1e-3, 1e-2,   1e-1};

struct run_ctx {
	struct metrics_registry *reg;
	/* Both NULL when ENABLE_BUSINESS_METRICS=false. */
	struct stripe_semantics *stripe;
	struct business_metrics *bm;
	struct self_metrics *self;
	struct metrics_family *collection_ms; /* the guide's name, a counter of milliseconds */
	struct metrics_family *processing_s;  /* per exchange */
	struct run_rules *rules;	      /* NULL without --rules */
	struct pseudonymizer *pseudonymizer;
	bool untracked_users; /* ENABLE_USER_TRACKING=false */
	struct rules_env rules_env;
	bool trace_lines;
	struct run_sentry *sentry; /* the app's Sentry reports; failed flows to bizprobe's DSN */
	struct run_state *state;   /* NULL when the default state directory is busy */
	/* The status page's recent events (redacted: name, labels, time); NULL when it is off. */
	struct recent_events *status_events;
	struct run_node *node; /* --node: which processes of the host are traced */
	/* --k8s-labels: the target of the exchange the semantics work on now; NULL between
	 * exchanges (events of a tick, a timeout passing) and outside node mode. */
	const struct biz_target *exchange_target;
};

/* Every business event goes to each consumer: the metrics stage, the state, Sentry, the status
 * page. The producers do not know targets: the event gets the one of the exchange being
 * interpreted here, before it fans out. */
static void on_event(const struct business_event *ev, void *ctx)
{
	struct run_ctx *r = ctx;
	struct business_event with_target;

	if (r->exchange_target && !ev->target) {
		with_target = *ev;
		with_target.target = r->exchange_target;
		ev = &with_target;
	}

	business_metrics_on_event(ev, r->bm);
	run_state_on_event(r->state, ev);
	run_sentry_on_event(ev, r->sentry);
	recent_events_on_event(r->status_events, ev);
}

/*
 * The HTTP stage keeps an exchange's bodies only for the consumers below that read them: Stripe
 * API calls and webhooks, the app's Sentry traffic, the routes of rules that read a body field.
 * Everything else (pages, assets, APIs no rule reads) is counted, not stored or inflated. The
 * trace lines of --trace show body sizes only, which are still counted.
 */
static bool bodies_wanted(const struct http_exchange *head, void *ctx)
{
	struct run_ctx *r = ctx;

	return stripe_semantics_wants_bodies(r->stripe, head) ||
	       run_sentry_wants_bodies(r->sentry, head) || run_rules_wants_bodies(r->rules, head);
}

static void on_exchange(const struct http_exchange *ex, uint64_t wall_ns, void *ctx)
{
	struct run_ctx *r = ctx;

	r->exchange_target = run_node_exchange(r->node, ex->conn.pid);
	if (r->stripe) {
		int64_t t0 = cli_clock_ns(CLOCK_MONOTONIC), dt;

		run_sentry_begin(r->sentry, ex);
		stripe_semantics_on_exchange(r->stripe, ex, (time_t)(wall_ns / 1000000000ull));
		if (r->rules)
			run_rules_eval(r->rules, &r->rules_env, ex, wall_ns);
		run_sentry_end(r->sentry);
		dt = cli_clock_ns(CLOCK_MONOTONIC) - t0;
		metrics_add(r->collection_ms, NULL, (double)dt / 1e6);
		metrics_observe(r->processing_s, NULL, (double)dt / 1e9);
	}
	r->exchange_target = NULL;
	if (r->trace_lines) {
		char line[8192];

		if (trace_format_text(ex, wall_ns, line, sizeof(line)) >= 0) {
			puts(line);
			fflush(stdout);
		}
	}
}

static void on_tick(struct capture_session *cs, struct http_tracker *ht, bool final, void *ctx)
{
	struct run_ctx *r = ctx;
	struct capture_stats c;
	struct http_tracker_stats h;

	capture_session_get_stats(cs, &c);
	http_tracker_get_stats(ht, &h);
	self_metrics_update(r->self, &c, &h);
	if (r->stripe) {
		struct stripe_stats ss;

		stripe_semantics_tick(r->stripe, time(NULL));
		stripe_semantics_get_stats(r->stripe, &ss);
		self_metrics_update_stripe(r->self, &ss);
	}
	run_node_tick(r->node, cs, r->self);
	run_state_tick(r->state, final);
	run_sentry_tick(r->sentry);
	if (r->rules) {
		/* SIGHUP first: it records the version it loaded, so the watch does not load the
		 * same edit again. */
		if (cli_take_reload_request())
			run_rules_reload(r->rules);
		run_rules_watch(r->rules);
		run_rules_publish(r->rules);
	}
}

/* The signing secret comes from a file (a mounted Kubernetes Secret) or the environment, never
 * from argv, where `ps` would show it. A file others can read is refused: the secret forges
 * webhooks. One that does not fit is refused too, rather than cut. */
static int load_secret(const char *file, char *out, size_t cap)
{
	const char *env = getenv("STRIPE_WEBHOOK_SECRET");
	struct stat st;
	FILE *f;
	size_t n;
	int err = 0;

	out[0] = '\0';
	if (!file) {
		if (env && strlen(env) >= cap) {
			fprintf(stderr, "bizprobe run: STRIPE_WEBHOOK_SECRET is longer than %zu bytes\n",
				cap - 1);
			return -EINVAL;
		}
		if (env)
			snprintf(out, cap, "%s", env);
		return 0;
	}
	f = fopen(file, "re");
	if (!f || fstat(fileno(f), &st)) {
		err = -errno;
		fprintf(stderr, "bizprobe run: --webhook-secret-file %s: %s\n", file, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		fprintf(stderr, "bizprobe run: --webhook-secret-file %s: %s; run chmod 600 %s\n", file,
			S_ISREG(st.st_mode) ? "group or others may access it" : "not a regular file",
			file);
		err = -EPERM;
		goto out;
	}
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (n == cap - 1 && fgetc(f) != EOF && strlen(out) == n) {
		fprintf(stderr, "bizprobe run: --webhook-secret-file %s: longer than %zu bytes\n", file,
			cap - 1);
		err = -EINVAL;
	}
out:
	if (f)
		fclose(f);
	if (err)
		explicit_bzero(out, cap);
	return err;
}

/* The semantics stage's own cost: the guide's collection counter, and a histogram per exchange. */
static int register_pipeline_families(struct run_ctx *r, const char *ns)
{
	char name[256];
	struct metrics_family_opts ms = {
	    .name = name,
	    .help = "Milliseconds spent turning exchanges into business events (a counter: "
		    "rate() of it is the share of a core spent).",
	    .type = METRICS_COUNTER,
	    .fixed_name = true,
	};
	struct metrics_family_opts hist = {
	    .name = "bizprobe_exchange_processing_seconds",
	    .help = "Time one exchange spends in the semantics stage.",
	    .type = METRICS_HISTOGRAM,
	    .buckets = processing_buckets,
	    .n_buckets = sizeof(processing_buckets) / sizeof(processing_buckets[0]),
	};

	if (snprintf(name, sizeof(name), "%s_platform_metrics_collection_duration_ms", ns) >=
	    (int)sizeof(name))
		return -EINVAL;
	return metrics_family_register(r->reg, &ms, &r->collection_ms) ?:
	       metrics_family_register(r->reg, &hist, &r->processing_s);
}

static bool env_false(const char *name)
{
	const char *v = getenv(name);

	return v && (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0);
}

/* The guide's privacy variables. Users are always pseudonymized: ANONYMIZE_USER_DATA=false
 * cannot turn that off, and saying so beats silently ignoring it. */
static int setup_identity(struct run_ctx *r, const struct cli_opts *o)
{
	char err[512] = "", salt_file[4096];

	if (env_false("ANONYMIZE_USER_DATA"))
		fprintf(stderr, "bizprobe run: ANONYMIZE_USER_DATA=false is ignored: users are "
				"always pseudonymized (HMAC-SHA256 under USER_TRACKING_SALT)\n");
	/* Without tracking no identity source is read; the pseudonymizer still keys Stripe
	 * subscriptions for the state stage. */
	r->untracked_users = env_false("ENABLE_USER_TRACKING");
	if (r->untracked_users)
		fprintf(stderr, "bizprobe run: ENABLE_USER_TRACKING=false: events count, no user is "
				"identified\n");
	/* The salt lives with the pseudonyms it made: in the --state-dir given. */
	snprintf(salt_file, sizeof(salt_file), "%s%s", o->state_dir ? o->state_dir : DEFAULT_SALT_FILE,
		 o->state_dir ? "/salt" : "");
	r->pseudonymizer = pseudonymizer_new(getenv("USER_TRACKING_SALT"),
					     o->salt_file ? o->salt_file : salt_file, err,
					     sizeof(err));
	if (!r->pseudonymizer) {
		fprintf(stderr, "bizprobe run: %s\n", err);
		return -1;
	}
	return 0;
}

/* The state stage: an explicit --state-dir that cannot be used stops the run; the default
 * directory held by another run of the same targets leaves this one without state. */
static int start_state(struct run_ctx *r, const struct cli_opts *o, const char *ns)
{
	char dir[4096];
	bool fatal = true;

	if (run_state_dir(o, ns, dir, sizeof(dir))) {
		fprintf(stderr, "bizprobe run: --state-dir too long\n");
		return -1;
	}
	r->state = run_state_new(dir, o->state_dir != NULL, ns, o->report_currency, r->reg,
				 r->stripe, &fatal);
	if (!r->state && fatal)
		return -1;
	run_state_restore_stripe(r->state);
	if (!r->state)
		fprintf(stderr, "bizprobe run: going on without state: no KPIs, counters start "
				"from 0\n");
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct cli_opts o = {0};
	struct run_ctx r = {0};
	struct metrics_server *srv = NULL;
	struct metrics_server_config sc = {0};
	char secret[SECRET_MAX];
	uint8_t stripe_id_key[STRIPE_ID_KEY_LEN];
	int rc = cli_parse("run", argc, argv, &o);
	const char *ns = o.namespace_ ? o.namespace_ : DEFAULT_NAMESPACE;

	if (rc)
		return rc > 0 ? 0 : 2;
	if (load_secret(o.webhook_secret_file, secret, sizeof(secret)))
		return 2;
	if (!!o.tls_cert != !!o.tls_key) {
		fprintf(stderr, "bizprobe run: --tls-cert and --tls-key go together\n");
		return 2;
	}
	rc = 1;
	r.trace_lines = o.trace_lines;
	r.reg = metrics_registry_new();
	if (!r.reg || metrics_process_register(r.reg) ||
	    metrics_build_info_register(r.reg, BIZPROBE_VERSION)) {
		fprintf(stderr, "bizprobe run: out of memory\n");
		goto cleanup;
	}
	if (!env_false("ENABLE_BUSINESS_METRICS")) {
		struct business_metrics_config bcfg = {
			.namespace = ns,
			.label_namespace = (o.k8s_labels & K8S_LABEL_NAMESPACE) != 0,
			.label_workload = (o.k8s_labels & K8S_LABEL_WORKLOAD) != 0,
		};
		struct biz_event_sink sink = {on_event, &r};
		struct stripe_config scfg = {
			.extra_hosts = o.stripe_hosts,
			.n_extra_hosts = (unsigned)o.n_stripe_hosts,
			.webhook_secret = secret[0] ? secret : NULL,
			.action_timeout_s = o.action_timeout_s,
			.processing_timeout_s = o.processing_timeout_s,
		};

		r.bm = business_metrics_new(r.reg, &bcfg);
		if (!r.bm || register_pipeline_families(&r, bcfg.namespace)) {
			fprintf(stderr, "bizprobe run: bad --namespace or out of memory\n");
			goto cleanup;
		}
		if (setup_identity(&r, &o))
			goto cleanup;
		scfg.pseudonymizer = r.pseudonymizer;
		scfg.untracked_users = r.untracked_users;
		run_state_stripe_key(r.pseudonymizer, stripe_id_key);
		scfg.id_key = stripe_id_key;
		if (o.rules_file) {
			r.rules = run_rules_new(o.rules_file, bcfg.namespace, r.reg);
			if (!r.rules) {
				fprintf(stderr, "bizprobe run: %s: not loaded (see above)\n",
					o.rules_file);
				rc = 2;
				goto cleanup;
			}
			run_rules_declare(r.rules, r.bm);
			r.rules_env = (struct rules_env){
			    r.untracked_users ? NULL : r.pseudonymizer, sink};
			/* The file may name the Stripe metadata keys of its users (read once: a
			 * reload changes the rules, not Stripe's configuration). */
			scfg.user_keys = run_rules_user_keys(r.rules, &scfg.n_user_keys);
		}
		r.stripe = stripe_semantics_new(&sink, &scfg);
		if (!r.stripe) {
			fprintf(stderr, "bizprobe run: out of memory\n");
			goto cleanup;
		}
		if (!secret[0])
			fprintf(stderr, "bizprobe run: no STRIPE_WEBHOOK_SECRET: webhook signatures "
					"are not verified\n");
		r.sentry = run_sentry_new(&o, r.reg, r.untracked_users ? NULL : r.pseudonymizer,
					  scfg.user_keys, scfg.n_user_keys, sink);
		if (!r.sentry) {
			rc = 2;
			goto cleanup;
		}
	}
	r.self = self_metrics_new(r.reg);
	if (!r.self)
		goto cleanup;
	/* Before the state: a bad --select must not leave a store behind. */
	if (o.node) {
		r.node = run_node_new(&o);
		if (!r.node) {
			rc = 2;
			goto cleanup;
		}
		if (run_node_register_metrics(r.node, r.self, r.reg)) {
			fprintf(stderr, "bizprobe run: out of memory\n");
			goto cleanup;
		}
		o.capture.select = run_node_select;
		o.capture.select_epoch = run_node_select_epoch;
		o.capture.selected = run_node_selected;
		o.capture.select_ctx = r.node;
	}
	if (r.bm && start_state(&r, &o, ns)) {
		rc = 2;
		goto cleanup;
	}

	sc.listen = o.listen ? o.listen : DEFAULT_LISTEN;
	sc.token = getenv("METRICS_AUTH_TOKEN");
	if (sc.token && !sc.token[0])
		sc.token = NULL;
	sc.tls_cert_path = o.tls_cert;
	sc.tls_key_path = o.tls_key;
	/* The admin token opens the admin API (with state) and the status page (always). */
	sc.admin_token = getenv("ADMIN_API_TOKEN");
	if (sc.admin_token && !sc.admin_token[0])
		sc.admin_token = NULL;
	if (r.state) {
		sc.admin = run_state_admin;
		sc.admin_ctx = r.state;
	}
	sc.namespace = ns;
	if (sc.admin_token)
		r.status_events = recent_events_new();
	sc.recent = r.status_events;
	if (metrics_server_start(r.reg, &sc, &srv)) {
		fprintf(stderr, "bizprobe run: cannot serve metrics on %s (address in use? bad "
				"certificate?)\n",
			sc.listen);
		goto cleanup;
	}
	fprintf(stderr, "bizprobe run: metrics at %s://%s/metrics%s\n", o.tls_cert ? "https" : "http",
		sc.listen, sc.token ? " (bearer token required)" : "");
	fprintf(stderr, "bizprobe run: status page at %s://%s/%s\n", o.tls_cert ? "https" : "http",
		sc.listen, sc.admin_token ? " (sign in with ADMIN_API_TOKEN)"
					  : " is off: set ADMIN_API_TOKEN");
	o.http.body_filter = bodies_wanted;
	o.http.body_filter_ctx = &r;
	rc = cli_pipeline_run(&o, on_exchange, on_tick, &r);
cleanup:
	metrics_server_stop(srv);
	run_state_free(r.state);
	recent_events_free(r.status_events);
	run_node_free(r.node);
	run_sentry_free(r.sentry);
	stripe_semantics_free(r.stripe);
	run_rules_free(r.rules);
	pseudonymizer_free(r.pseudonymizer);
	business_metrics_free(r.bm);
	self_metrics_free(r.self);
	metrics_registry_free(r.reg);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}
