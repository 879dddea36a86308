// SPDX-License-Identifier: MIT
/*
 * `bizprobe run`'s state stage: the SQLite store (src/state/) fed with every business event,
 * written once a second together with the counters and the Stripe stage's snapshot (so that a
 * restart resumes all three from the same second), publishing the KPI gauges every few seconds,
 * and answering GET /api/admin/metrics.
 *
 * The database work runs on a writer thread of its own: a flush of a busy second or a KPI
 * recomputation at a million users takes tens to hundreds of milliseconds, which the pipeline
 * thread must spend reading the ring buffer. The pipeline thread only hands over what it alone
 * may touch (the Stripe stage's snapshot) and says when; the store and the registry have their
 * own locks.
 *
 * One process per store: a lock file keeps a second run (or `state forget` writing directly)
 * out; `state forget` hands its pseudonyms to the running process through the forget/
 * directory, since only the process that staged a batch can clear it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bizprobe/state.h"
#include "run_state.h"

#define FLUSH_EVERY_TICKS   4  /* ticks are 250 ms: kill -9 loses at most one second */
#define PUBLISH_EVERY_TICKS 20 /* KPI gauges every 5 s: a publish reads the database */
#define PRUNE_EVERY_S	    86400
#define FORGET_PER_TICK	    64
#define MAX_MRR_CURRENCIES  64

struct run_state {
	struct state *st;
	struct metrics_registry *reg;
	struct stripe_semantics *stripe;
	char dir[PATH_MAX];
	int lock_fd;
	char ns_prefix[128];
	const char *prefixes[3];
	char report_currency[8];
	/* Stored series whose family is not registered yet (a rules reload may declare it): the
	 * writer retries every second; restoring adds, so an event counted first is not lost. */
	int restore_waiting;
	unsigned ticks;
	uint64_t stripe_signature; /* what the last snapshot saw; a change takes a new one */
	time_t last_prune;
	/* The writer thread and what the pipeline thread asks of it (under w_lock). */
	pthread_t writer;
	bool writer_running;
	pthread_mutex_t w_lock;
	pthread_cond_t w_cond;
	bool flush_due, publish_due, stop;
	void *stripe_blob; /* the latest snapshot not written yet, or NULL */
	size_t stripe_blob_len;
	bool stripe_blob_failed; /* a write failed: the next flush takes a snapshot again */
	/* MRR per currency, from BIZ_MRR events, for the admin summary (server thread). */
	pthread_mutex_t mrr_lock;
	char mrr_currency[MAX_MRR_CURRENCIES][8];
	double mrr_amount[MAX_MRR_CURRENCIES];
	unsigned n_mrr;
};

/* The 22nd field of /proc/PID/stat: when the process started, in clock ticks since boot. A
 * pid reused by another process has another start time. */
static unsigned long long start_time(uint32_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces and parentheses */
	if (!p)
		return 0;
	/* After ") ": state is field 3, starttime field 22. */
	if (sscanf(p + 2,
		   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
		   "%*d %llu",
		   &t) != 1)
		return 0;
	return t;
}

int run_state_dir(const struct cli_opts *o, const char *ns, char *out, size_t size)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	EVP_MD_CTX *ctx;
	char item[PATH_MAX + 64];
	int ok;

	if (o->state_dir)
		return snprintf(out, size, "%s", o->state_dir) < (int)size ? 0 : -ENAMETOOLONG;
	ctx = EVP_MD_CTX_new();
	ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, ns, strlen(ns) + 1);
	for (size_t i = 0; ok && i < o->capture.n_pids; i++) {
		int n = snprintf(item, sizeof(item), "pid:%u:%llu", o->capture.pids[i],
				 start_time(o->capture.pids[i]));

		ok = EVP_DigestUpdate(ctx, item, (size_t)n + 1);
	}
	for (size_t i = 0; ok && i < o->capture.n_exes; i++) {
		int n = snprintf(item, sizeof(item), "exe:%s", o->capture.exes[i]);

		ok = EVP_DigestUpdate(ctx, item, (size_t)n + 1);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len);
	EVP_MD_CTX_free(ctx);
	if (!ok || md_len < 8)
		return -EIO;
	return snprintf(out, size, "%s/run-%02x%02x%02x%02x%02x%02x%02x%02x", STATE_DEFAULT_DIR,
			md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]) < (int)size
		   ? 0
		   : -ENAMETOOLONG;
}

void run_state_stripe_key(const struct pseudonymizer *p, uint8_t key[STRIPE_ID_KEY_LEN])
{
	static const char label[] = "bizprobe stripe id digests";
	char hex[PSEUDONYM_LEN];

	pseudonymize(p, label, sizeof(label) - 1, hex);
	for (unsigned i = 0; i < STRIPE_ID_KEY_LEN; i++) {
		unsigned v = 0;

		sscanf(hex + 2 * i, "%2x", &v);
		key[i] = (uint8_t)v;
	}
	explicit_bzero(hex, sizeof(hex));
}

/* Made 0700 with its parents (mkdir -p) as needed. */
static int make_dir(const char *dir)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int run_state_lock(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, STATE_LOCK_FILE) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? -EBUSY : -errno;

		close(fd);
		return err;
	}
	return fd;
}

void run_state_restore_stripe(struct run_state *rs)
{
	void *data = NULL;
	size_t len = 0;
	int err;

	if (!rs || !rs->stripe || state_get_blob(rs->st, "stripe", &data, &len))
		return;
	err = stripe_semantics_restore(rs->stripe, data, len);
	if (err)
		fprintf(stderr,
			"bizprobe run: %s: the Stripe snapshot is %s; Stripe's memory starts "
			"empty\n",
			rs->dir,
			err == -EPROTO ? "of another format" : "incomplete (out of memory)");
	free(data);
}

static void *writer_main(void *arg);

struct run_state *run_state_new(const char *dir, bool explicit_dir, const char *ns,
				const char *report_currency, struct metrics_registry *reg,
				struct stripe_semantics *stripe, bool *fatal)
{
	struct run_state *rs = calloc(1, sizeof(*rs));
	struct state_config cfg = {.dir = dir, .namespace = ns};
	char err[512] = "";
	int rc;

	*fatal = explicit_dir;
	if (!rs)
		return NULL;
	rs->lock_fd = -1;
	pthread_mutex_init(&rs->mrr_lock, NULL);
	pthread_mutex_init(&rs->w_lock, NULL);
	pthread_cond_init(&rs->w_cond, NULL);
	snprintf(rs->dir, sizeof(rs->dir), "%s", dir);
	snprintf(rs->ns_prefix, sizeof(rs->ns_prefix), "%s_", ns);
	snprintf(rs->report_currency, sizeof(rs->report_currency), "%s",
		 report_currency ? report_currency : "USD");
	rs->prefixes[0] = rs->ns_prefix;
	rs->prefixes[1] = "business_events_total";
	rs->prefixes[2] = "sentry_errors_total";
	rs->reg = reg;
	rs->stripe = stripe;
	rc = make_dir(dir);
	if (!rc)
		rc = rs->lock_fd = run_state_lock(dir);
	if (rc < 0) {
		if (rc == -EBUSY)
			fprintf(stderr,
				"bizprobe run: %s: another bizprobe run uses this state "
				"directory; give each run its own --state-dir\n",
				dir);
		else
			fprintf(stderr, "bizprobe run: state directory %s: %s\n", dir,
				strerror(-rc));
		goto fail;
	}
	rc = state_open(&cfg, &rs->st, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "bizprobe run: %s\n", err);
		*fatal = explicit_dir || rc == -EPROTO;
		goto fail;
	}
	rs->restore_waiting = state_restore_counters(rs->st, reg);
	rs->stripe_signature = UINT64_MAX; /* the first flush takes a snapshot */
	rs->writer_running = pthread_create(&rs->writer, NULL, writer_main, rs) == 0;
	fprintf(stderr, "bizprobe run: state in %s\n", dir);
	return rs;
fail:
	run_state_free(rs);
	return NULL;
}

static void note_mrr(struct run_state *rs, const struct business_event *ev)
{
	const char *cur = ev->n_labels ? ev->labels[0].value : NULL;
	unsigned i;

	if (!cur || !ev->has_value)
		return;
	pthread_mutex_lock(&rs->mrr_lock);
	for (i = 0; i < rs->n_mrr && strcmp(rs->mrr_currency[i], cur); i++)
		;
	if (i == rs->n_mrr && rs->n_mrr < MAX_MRR_CURRENCIES)
		snprintf(rs->mrr_currency[rs->n_mrr++], sizeof(rs->mrr_currency[0]), "%s", cur);
	if (i < rs->n_mrr)
		rs->mrr_amount[i] = ev->value;
	pthread_mutex_unlock(&rs->mrr_lock);
}

void run_state_on_event(struct run_state *rs, const struct business_event *ev)
{
	if (!rs)
		return;
	state_on_event(rs->st, ev);
	if (ev->kind == BIZ_MRR)
		note_mrr(rs, ev);
}

/* Erases the users `bizprobe state forget` queued: forget/<pseudonym>, one file each. */
static void forget_queued(struct run_state *rs)
{
	char path[PATH_MAX];
	unsigned done = 0;
	struct dirent *de;
	DIR *d;

	if (snprintf(path, sizeof(path), "%s/%s", rs->dir, STATE_FORGET_DIR) >= (int)sizeof(path))
		return;
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && done < FORGET_PER_TICK) {
		char file[PATH_MAX];

		if (strlen(de->d_name) != PSEUDONYM_LEN - 1 ||
		    strspn(de->d_name, "0123456789abcdef") != PSEUDONYM_LEN - 1)
			continue;
		state_forget_user(rs->st, de->d_name);
		if (snprintf(file, sizeof(file), "%s/%s", path, de->d_name) < (int)sizeof(file))
			unlink(file);
		done++;
	}
	closedir(d);
}

/* Changes whenever the Stripe stage's memory may have: exchanges seen, attempts pending,
 * subscriptions paying. */
static uint64_t stripe_signature(const struct stripe_semantics *s)
{
	struct stripe_stats st;

	stripe_semantics_get_stats(s, &st);
	return (st.api_exchanges + st.webhook_exchanges) * 1000003u ^ st.pending * 7919u ^
	       st.subscriptions;
}

/* Pipeline thread (the Stripe stage is its alone): a snapshot when the stage changed, handed
 * to the writer in place of one it has not written yet. Called with w_lock held. */
static void hand_over_stripe(struct run_state *rs)
{
	uint64_t sig;
	void *data;
	size_t len;

	if (!rs->stripe)
		return;
	if (rs->stripe_blob_failed) {
		rs->stripe_blob_failed = false;
		rs->stripe_signature = UINT64_MAX;
	}
	sig = stripe_signature(rs->stripe);
	if (sig == rs->stripe_signature || stripe_semantics_snapshot(rs->stripe, &data, &len))
		return;
	free(rs->stripe_blob);
	rs->stripe_blob = data;
	rs->stripe_blob_len = len;
	rs->stripe_signature = sig;
}

/* Writer thread: one round of what was asked. */
static void write_round(struct run_state *rs, bool flush, bool publish, void *blob, size_t len)
{
	time_t now = time(NULL);

	if (flush) {
		if (rs->restore_waiting > 0)
			rs->restore_waiting = state_restore_counters(rs->st, rs->reg);
		forget_queued(rs);
		if (blob && state_put_blob(rs->st, "stripe", blob, len)) {
			pthread_mutex_lock(&rs->w_lock);
			rs->stripe_blob_failed = true;
			pthread_mutex_unlock(&rs->w_lock);
		}
		state_save_counters(rs->st, rs->reg, rs->prefixes, 3);
		state_flush(rs->st);
	}
	if (publish)
		state_publish(rs->st, rs->reg, now);
	if (now - rs->last_prune >= PRUNE_EVERY_S) {
		state_prune(rs->st, now);
		rs->last_prune = now;
	}
}

static void *writer_main(void *arg)
{
	struct run_state *rs = arg;

	pthread_mutex_lock(&rs->w_lock);
	for (;;) {
		bool flush = rs->flush_due, publish = rs->publish_due;
		void *blob = rs->stripe_blob;
		size_t len = rs->stripe_blob_len;

		if (!flush && !publish) {
			if (rs->stop)
				break;
			pthread_cond_wait(&rs->w_cond, &rs->w_lock);
			continue;
		}
		rs->flush_due = rs->publish_due = false;
		rs->stripe_blob = NULL;
		pthread_mutex_unlock(&rs->w_lock);
		write_round(rs, flush, publish, blob, len);
		free(blob);
		pthread_mutex_lock(&rs->w_lock);
	}
	pthread_mutex_unlock(&rs->w_lock);
	return NULL;
}

/* Asks the writer for its last round and waits for it: nothing is left unwritten. */
static void stop_writer(struct run_state *rs)
{
	if (!rs->writer_running)
		return;
	pthread_mutex_lock(&rs->w_lock);
	rs->stop = true;
	pthread_cond_signal(&rs->w_cond);
	pthread_mutex_unlock(&rs->w_lock);
	pthread_join(rs->writer, NULL);
	rs->writer_running = false;
}

void run_state_tick(struct run_state *rs, bool final)
{
	bool flush, publish;

	if (!rs)
		return;
	rs->ticks++;
	flush = final || rs->ticks % FLUSH_EVERY_TICKS == 0;
	publish = final || rs->ticks == 1 || rs->ticks % PUBLISH_EVERY_TICKS == 0;
	if (!rs->writer_running) { /* the thread could not start: the work is done here */
		if (flush)
			hand_over_stripe(rs);
		write_round(rs, flush, publish, flush ? rs->stripe_blob : NULL,
			    rs->stripe_blob_len);
		free(rs->stripe_blob);
		rs->stripe_blob = NULL;
		return;
	}
	if (flush || publish) {
		pthread_mutex_lock(&rs->w_lock);
		if (flush)
			hand_over_stripe(rs);
		rs->flush_due |= flush;
		rs->publish_due |= publish;
		pthread_cond_signal(&rs->w_cond);
		pthread_mutex_unlock(&rs->w_lock);
	}
	if (final)
		stop_writer(rs);
}

unsigned run_state_admin(const char *range, char **json, void *ctx)
{
	struct run_state *rs = ctx;
	struct state_mrr mrr[MAX_MRR_CURRENCIES];
	char cur[MAX_MRR_CURRENCIES][8];
	unsigned n;
	int err;

	pthread_mutex_lock(&rs->mrr_lock);
	n = rs->n_mrr;
	for (unsigned i = 0; i < n; i++) {
		memcpy(cur[i], rs->mrr_currency[i], sizeof(cur[i]));
		mrr[i] = (struct state_mrr){cur[i], rs->mrr_amount[i]};
	}
	pthread_mutex_unlock(&rs->mrr_lock);
	err = state_summary_json(rs->st, time(NULL), range ? range : "30d", rs->report_currency,
				 mrr, n, json);
	if (err == -EINVAL) {
		*json = strdup("{\"error\":\"range must be one of 24h, 7d, 30d, 90d\"}");
		return 400;
	}
	if (err) {
		*json = strdup("{\"error\":\"the state store could not answer\"}");
		return 503;
	}
	return 200;
}

void run_state_free(struct run_state *rs)
{
	if (!rs)
		return;
	stop_writer(rs);
	free(rs->stripe_blob);
	state_close(rs->st);
	if (rs->lock_fd >= 0)
		close(rs->lock_fd);
	pthread_cond_destroy(&rs->w_cond);
	pthread_mutex_destroy(&rs->w_lock);
	pthread_mutex_destroy(&rs->mrr_lock);
	free(rs);
}
