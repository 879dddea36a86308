// SPDX-License-Identifier: MIT
/*
 * bizprobe bench: the state store (src/state/) at scale.
 *   state_bench DIR [USERS [EVENTS]]      (defaults: 1000000 users, 10000000 events)
 *
 * 1. Ingest: EVENTS business events in time order over 90 days through the real API
 *    (state_on_event, state_flush every BATCH events as the 250 ms tick would), generated before
 *    the clock starts: a new user registers in 10% of them (USERS in all), the rest are
 *    existing users' activity (content views 77%), payments (6% succeeded in USD or EUR, 2%
 *    failed), experiment exposures (3%), subscriptions created (1%) and canceled (0.5%),
 *    late successes (0.5%). Reports events/s, flush time per batch, ns per state_on_event.
 * 2. The resulting store: database size after a checkpoint, then the KPI recomputation
 *    (state_publish: every gauge, stats included) and the admin summary for 30d and 90d, each
 *    the median of 5 runs; a live tick (250 events of random users, then the flush); prune of
 *    the oldest month and the size after it; forget.
 * Each figure is checked for plausibility (every user counted, revenue as generated), so a
 * broken store fails the bench instead of looking fast. DIR is emptied first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bizprobe/business_event.h"
#include "bizprobe/metrics.h"
#include "bizprobe/state.h"

#define DAY_S	 86400LL
#define SPAN_S	 (90 * DAY_S)
#define T_END	 1796126400LL /* 2026-12-01T12:00:00Z */
#define BATCH	 16384
#define KPI_RUNS 5

enum gen_kind { G_REGISTER, G_VIEW, G_PAY_OK, G_PAY_FAIL, G_EXPOSE, G_SUB, G_CANCEL, G_LATE };

struct gen {
	uint32_t user, sub;
	uint8_t kind, flag;
	int64_t ts;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int e)
{
	fprintf(stderr, "state_bench: %s: %s\n", what, strerror(e < 0 ? -e : e));
	exit(1);
}

static void pseudo(uint32_t i, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;

	for (int w = 0; w < 4; w++) {
		x ^= x >> 31;
		x *= 0xbf58476d1ce4e5b9ULL;
		for (int k = 0; k < 16; k++)
			out[w * 16 + k] = hex[(x >> (4 * k)) & 15];
	}
	out[64] = '\0';
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return v[n / 2];
}

static uint64_t file_bytes(const char *dir)
{
	char p[4096];
	struct stat sb;
	uint64_t n = 0;

	snprintf(p, sizeof(p), "%s/state.db", dir);
	if (!stat(p, &sb))
		n += (uint64_t)sb.st_size;
	snprintf(p, sizeof(p), "%s/state.db-wal", dir);
	if (!stat(p, &sb))
		n += (uint64_t)sb.st_size;
	return n;
}

static double get(struct metrics_registry *reg, const char *name, const char *const *labels)
{
	struct metrics_family *f = metrics_registry_find(reg, name);
	double v = -1;

	if (!f || metrics_get(f, labels, &v))
		return -1;
	return v;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : NULL;
	uint32_t n_users = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 1000000;
	uint64_t n_events = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000000;
	struct state_config cfg = {.dir = dir, .batch_events = BATCH};
	struct metrics_registry *reg;
	struct state_stats stats;
	struct state *st;
	struct gen *g;
	uint32_t users = 0, subs = 0;
	double t0, t_ingest, flush_s = 0, flush_max = 0, kpi[KPI_RUNS], sum30[KPI_RUNS],
			     sum90[KPI_RUNS];
	int64_t usd_micro = 0;
	uint64_t n_flushes = 0;
	char err[512], cmd[4200];
	int e;

	if (!dir || !n_users || n_events < n_users) {
		fprintf(stderr, "usage: state_bench DIR [USERS [EVENTS]]   (EVENTS >= USERS)\n");
		return 2;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd))
		die("rm", EIO);

	/* the events, in time order, before the clock starts */
	g = calloc(n_events, sizeof(*g));
	if (!g)
		die("calloc", ENOMEM);
	for (uint64_t i = 0; i < n_events; i++) {
		struct gen *x = &g[i];
		uint64_t left = n_events - i, r = next_rand() % 1000;

		x->ts = T_END - SPAN_S + (int64_t)(i * (uint64_t)SPAN_S / n_events);
		/* registrations spread so that exactly n_users happen */
		if (!users || (users < n_users && next_rand() % left < n_users - users)) {
			x->kind = G_REGISTER;
			x->user = users++;
			continue;
		}
		x->user = (uint32_t)(next_rand() % users);
		x->flag = (uint8_t)(next_rand() & 1);
		if (r < 770) {
			x->kind = G_VIEW;
		} else if (r < 830) {
			x->kind = G_PAY_OK;
			if (!x->flag)
				usd_micro += 12500000;
		} else if (r < 850) {
			x->kind = G_PAY_FAIL;
		} else if (r < 880) {
			x->kind = G_EXPOSE;
		} else if (r < 890) {
			x->kind = G_SUB;
			x->sub = subs++;
		} else if (r < 895 && subs) {
			x->kind = G_CANCEL;
			x->sub = (uint32_t)(next_rand() % subs);
		} else if (r < 900) {
			x->kind = G_LATE;
		} else {
			x->kind = G_VIEW;
		}
	}

	e = state_open(&cfg, &st, err, sizeof(err));
	if (e) {
		fprintf(stderr, "state_bench: %s\n", err);
		return 1;
	}
	t0 = now_s();
	for (uint64_t i = 0; i < n_events; i++) {
		const struct gen *x = &g[i];
		char u[65], s[65];
		struct business_event ev = {.user = u, .wall_ns = (uint64_t)x->ts * 1000000000ull};
		const char *cur = x->flag ? "EUR" : "USD";

		pseudo(x->user, u);
		switch (x->kind) {
		case G_REGISTER:
			ev.kind = BIZ_RULE_EVENT;
			ev.name = "registration";
			ev.labels[0] =
			    (struct biz_label){"user_type", x->user % 10 ? "fan" : "creator"};
			ev.labels[1] = (struct biz_label){"method", "email"};
			ev.n_labels = 2;
			break;
		case G_VIEW:
			ev.kind = BIZ_RULE_EVENT;
			ev.name = "content_view";
			ev.user_type = x->user % 10 ? "fan" : "creator";
			ev.labels[0] = (struct biz_label){"content_type", "video"};
			ev.n_labels = 1;
			break;
		case G_PAY_OK:
		case G_PAY_FAIL:
			ev.kind = BIZ_PAYMENT_ATTEMPT;
			ev.name = x->kind == G_PAY_OK ? "payment_succeeded" : "payment_failed";
			ev.labels[0] = (struct biz_label){
			    "status", x->kind == G_PAY_OK ? "succeeded" : "failed"};
			ev.labels[1] = (struct biz_label){"currency", cur};
			ev.n_labels = 2;
			ev.has_value = x->kind == G_PAY_OK;
			ev.value = 12.5;
			break;
		case G_EXPOSE:
			ev.kind = BIZ_RULE_EVENT;
			ev.name = "experiment_exposure";
			ev.labels[0] =
			    (struct biz_label){"experiment", x->flag ? "flow" : "banner"};
			ev.labels[1] =
			    (struct biz_label){"variant", x->user % 2 ? "control" : "treatment"};
			ev.n_labels = 2;
			break;
		case G_SUB:
		case G_CANCEL:
			pseudo(0x80000000u | x->sub, s);
			ev.kind =
			    x->kind == G_SUB ? BIZ_SUBSCRIPTION_CREATED : BIZ_SUBSCRIPTION_CANCELED;
			ev.subject = s;
			ev.labels[0] = (struct biz_label){"currency", cur};
			ev.n_labels = 1;
			ev.has_value = x->kind == G_SUB;
			ev.value = 9.99;
			break;
		case G_LATE:
			ev.kind = BIZ_PAYMENT_LATE_SUCCESS;
			ev.user = NULL;
			ev.labels[0] = (struct biz_label){"currency", "EUR"};
			ev.n_labels = 1;
			ev.has_value = true;
			ev.value = 3;
			break;
		}
		state_on_event(st, &ev);
		if ((i + 1) % BATCH == 0 || i + 1 == n_events) {
			double f0 = now_s(), d;

			e = state_flush(st);
			if (e)
				die("flush", e);
			d = now_s() - f0;
			flush_s += d;
			flush_max = d > flush_max ? d : flush_max;
			n_flushes++;
		}
	}
	t_ingest = now_s() - t0;
	free(g);
	if (state_get_stats(st, &stats))
		die("stats", EIO);
	if (stats.events_dropped || stats.users != n_users)
		die("ingest: events dropped or users missing", EPROTO);
	printf("{\"bench\":\"state_ingest\",\"users\":%u,\"events\":%llu,\"seconds\":%.2f,"
	       "\"events_per_s\":%.0f,\"flush_ms_mean\":%.2f,\"flush_ms_max\":%.2f,"
	       "\"on_event_ns\":%.0f,\"batch\":%d}\n",
	       n_users, (unsigned long long)n_events, t_ingest, (double)n_events / t_ingest,
	       1e3 * flush_s / (double)n_flushes, 1e3 * flush_max,
	       1e9 * (t_ingest - flush_s) / (double)n_events, BATCH);
	fflush(stdout);
	state_close(st); /* checkpoints the WAL into the database */

	e = state_open(&cfg, &st, err, sizeof(err));
	if (e) {
		fprintf(stderr, "state_bench: %s\n", err);
		return 1;
	}
	reg = metrics_registry_new();
	for (int r = 0; r < KPI_RUNS; r++) {
		char *json = NULL;
		double k0 = now_s();

		e = state_publish(st, reg, T_END);
		if (e)
			die("publish", e);
		kpi[r] = now_s() - k0;
		k0 = now_s();
		e = state_summary_json(st, T_END, "30d", "USD", NULL, 0, &json);
		if (e)
			die("summary", e);
		sum30[r] = now_s() - k0;
		free(json);
		k0 = now_s();
		e = state_summary_json(st, T_END, "90d", "USD", NULL, 0, &json);
		if (e)
			die("summary", e);
		sum90[r] = now_s() - k0;
		free(json);
	}
	{
		const char *total[] = {"total"}, *a30[] = {"30d", "total"},
			   *a24[] = {"24h", "total"};
		const char *arpu[] = {"30d", "all_users", "USD"};
		double tot = get(reg, "direct_fan_total_users", total);
		double act30 = get(reg, "direct_fan_active_users", a30);
		double act24 = get(reg, "direct_fan_active_users", a24);
		double arpu_usd = get(reg, "direct_fan_arpu", arpu);

		if (tot != n_users || act30 <= 0 || act30 > n_users || act24 <= 0 || arpu_usd <= 0)
			die("implausible KPIs", EPROTO);
		printf("{\"bench\":\"state_kpis\",\"users\":%u,\"events\":%llu,\"db_bytes\":%llu,"
		       "\"db_mb\":%.1f,\"publish_ms_median\":%.1f,\"summary_30d_ms_median\":%.1f,"
		       "\"summary_90d_ms_median\":%.1f,\"active_24h\":%.0f,\"active_30d\":%.0f,"
		       "\"total_users\":%.0f,\"revenue_usd_90d\":%.2f}\n",
		       n_users, (unsigned long long)n_events, (unsigned long long)file_bytes(dir),
		       (double)file_bytes(dir) / 1e6, 1e3 * median(kpi, KPI_RUNS),
		       1e3 * median(sum30, KPI_RUNS), 1e3 * median(sum90, KPI_RUNS), act24, act30,
		       tot, (double)usd_micro / 1e6);
	}
	{
		/* a tick as a live system has it: 250 events of random users, then the flush */
		double ticks[100];

		for (int t = 0; t < 100; t++) {
			double k0;

			for (int i = 0; i < 250; i++) {
				char u[65];
				struct business_event ev = {
				    .kind = BIZ_RULE_EVENT,
				    .name = "content_view",
				    .user = u,
				    .user_type = "fan",
				    .wall_ns = (uint64_t)(T_END - 100 + t) * 1000000000ull,
				};

				pseudo((uint32_t)(next_rand() % n_users), u);
				state_on_event(st, &ev);
			}
			k0 = now_s();
			e = state_flush(st);
			if (e)
				die("flush", e);
			ticks[t] = now_s() - k0;
		}
		{
			double mean = 0, med;

			for (int t = 0; t < 100; t++)
				mean += ticks[t] / 100;
			med = median(ticks, 100); /* sorts ticks */
			printf("{\"bench\":\"state_tick\",\"events_per_flush\":250,"
			       "\"flush_ms_median\":%.2f,\"flush_ms_mean\":%.2f,"
			       "\"flush_ms_max\":%.2f}\n",
			       1e3 * med, 1e3 * mean, 1e3 * ticks[99]);
		}
	}
	{
		char u[65];
		double p0 = now_s(), t_prune, t_forget;

		e = state_prune(st, T_END + 30 * DAY_S); /* the oldest month goes */
		if (e)
			die("prune", e);
		t_prune = now_s() - p0;
		pseudo(n_users / 2, u);
		p0 = now_s();
		e = state_forget_user(st, u);
		if (e && e != -ENOENT)
			die("forget", e);
		t_forget = now_s() - p0;
		if (state_get_stats(st, &stats))
			die("stats", EIO);
		state_close(st); /* checkpoints: the size is the database file's */
		printf("{\"bench\":\"state_maintenance\",\"prune_oldest_month_ms\":%.0f,"
		       "\"forget_ms\":%.2f,\"users_after_prune\":%llu,"
		       "\"db_mb_after_prune_and_close\":%.1f}\n",
		       1e3 * t_prune, 1e3 * t_forget, (unsigned long long)stats.users,
		       (double)file_bytes(dir) / 1e6);
	}
	metrics_registry_free(reg);
	return 0;
}
