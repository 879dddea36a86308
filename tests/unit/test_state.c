// SPDX-License-Identifier: MIT
/*
 * The state stage's KPIs (include/bizprobe/state.h) on synthetic events with an injected clock,
 * each against the figure the test works out from the events it sent: sliding windows at their
 * boundary, expiry, conversion, churn with subscriptions older than the window, ARPU per
 * currency, experiment attribution, forget, and the admin summary field by field.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_state_util.h"

struct fixture {
	char *dir;
	struct state *st;
	struct metrics_registry *reg;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = st_dir();
	f->st = st_open_in(f->dir, 0, 0);
	f->reg = metrics_registry_new();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	state_close(f->st);
	metrics_registry_free(f->reg);
	st_rmdir(f->dir);
	free(f);
	return 0;
}

static void publish(struct fixture *f, int64_t now)
{
	assert_int_equal(state_flush(f->st), 0);
	assert_int_equal(state_publish(f->st, f->reg, now), 0);
}

/* Users last seen at the windows' edges: exactly at now - W is inside, a second earlier is out.
 * Run at a now in the middle of an hour and at one on the hour (the partial-hour edge path and
 * the whole-hours path). */
static void check_boundaries(struct fixture *f, int64_t now)
{
	/* A fan: now - 24h; B creator: now - 24h - 1; C fan: now - 24h + 1; D fan: now - 7d;
	 * E creator: now - 7d - 1; F (no type): now - 30d; G fan: now - 30d - 1. */
	ev_seen(f->st, U(1), "fan", now - DAY);
	ev_seen(f->st, U(2), "creator", now - DAY - 1);
	ev_seen(f->st, U(3), "fan", now - DAY + 1);
	ev_seen(f->st, U(4), "fan", now - 7 * DAY);
	ev_seen(f->st, U(5), "creator", now - 7 * DAY - 1);
	ev_seen(f->st, U(6), NULL, now - 30 * DAY);
	ev_seen(f->st, U(7), "fan", now - 30 * DAY - 1);
	/* earlier activity of the same users does not count twice */
	ev_seen(f->st, U(1), "fan", now - 20 * DAY);
	ev_seen(f->st, U(3), "fan", now - 2 * DAY);
	publish(f, now);

	assert_true(ACTIVE(f->reg, "24h", "total") == 2);
	assert_true(ACTIVE(f->reg, "24h", "fan") == 2);
	assert_true(ACTIVE(f->reg, "24h", "creator") == 0);
	assert_true(ACTIVE(f->reg, "7d", "total") == 4);
	assert_true(ACTIVE(f->reg, "7d", "fan") == 3);
	assert_true(ACTIVE(f->reg, "7d", "creator") == 1);
	assert_true(ACTIVE(f->reg, "30d", "total") == 6);
	assert_true(ACTIVE(f->reg, "30d", "fan") == 3);
	assert_true(ACTIVE(f->reg, "30d", "creator") == 2);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 7);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "fan", NULL) == 4);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "creator", NULL) == 2);

	/* one second later A leaves 24h, D leaves 7d, F leaves 30d */
	assert_int_equal(state_publish(f->st, f->reg, now + 1), 0);
	assert_true(ACTIVE(f->reg, "24h", "total") == 1);
	assert_true(ACTIVE(f->reg, "7d", "total") == 3);
	assert_true(ACTIVE(f->reg, "30d", "total") == 5);
	/* a day later C is gone too; a month later nobody is active, everybody still counted */
	assert_int_equal(state_publish(f->st, f->reg, now + DAY), 0);
	assert_true(ACTIVE(f->reg, "24h", "total") == 0);
	assert_int_equal(state_publish(f->st, f->reg, now + 31 * DAY), 0);
	assert_true(ACTIVE(f->reg, "30d", "total") == 0);
	assert_true(ACTIVE(f->reg, "30d", "fan") == 0);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 7);

	/* B comes back: it moves into 24h and out of its old hour */
	ev_seen(f->st, U(2), "creator", now + 31 * DAY - 5);
	publish(f, now + 31 * DAY);
	assert_true(ACTIVE(f->reg, "24h", "total") == 1);
	assert_true(ACTIVE(f->reg, "24h", "creator") == 1);
	assert_true(ACTIVE(f->reg, "30d", "total") == 1);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 7);
}

static void test_window_boundaries_mid_hour(void **state)
{
	check_boundaries(*state, NOW + 1234);
}

static void test_window_boundaries_on_the_hour(void **state)
{
	check_boundaries(*state, NOW);
}

/* The latest non-NULL type wins and moves the user between types. */
static void test_user_type_changes(void **state)
{
	struct fixture *f = *state;

	ev_seen(f->st, U(1), NULL, NOW - 100);
	publish(f, NOW);
	assert_true(ACTIVE(f->reg, "24h", "total") == 1);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 1);
	ev_register(f->st, U(1), "creator", NOW - 50);
	ev_seen(f->st, U(1), NULL, NOW - 40); /* no type: keeps creator */
	publish(f, NOW);
	assert_true(ACTIVE(f->reg, "24h", "creator") == 1);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "creator", NULL) == 1);
	ev_seen(f->st, U(1), "fan", NOW - 30);
	publish(f, NOW);
	assert_true(ACTIVE(f->reg, "24h", "creator") == 0);
	assert_true(ACTIVE(f->reg, "24h", "fan") == 1);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "creator", NULL) == 0);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "fan", NULL) == 1);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 1);
}

static void test_conversion_rate(void **state)
{
	struct fixture *f = *state;

	/* U1 pays at now - 1h; U2 subscribes at now - 2d; U3 fails a payment at now - 3h; U4 is
	 * only seen at now - 5h; U5 paid at now - 40d (outside every window) and was seen at now -
	 * 10d; a payment without a user converts nobody. */
	ev_pay(f->st, U(1), "succeeded", "USD", 12, NOW - HOUR);
	ev_sub(f->st, true, U(2), S(1), "USD", 9.99, NOW - 2 * DAY);
	ev_pay(f->st, U(3), "failed", "USD", 0, NOW - 3 * HOUR);
	ev_seen(f->st, U(4), "fan", NOW - 5 * HOUR);
	ev_pay(f->st, U(5), "succeeded", "USD", 5, NOW - 40 * DAY);
	ev_seen(f->st, U(5), "fan", NOW - 10 * DAY);
	ev_pay(f->st, NULL, "succeeded", "USD", 7, NOW - 2 * HOUR);
	publish(f, NOW);

	/* 24h: U1 converted of U1, U3, U4 */
	assert_true(st_metric(f->reg, "direct_fan_conversion_rate", "24h", NULL) == 100.0 / 3);
	/* 7d: U1, U2 of U1..U4 */
	assert_true(st_metric(f->reg, "direct_fan_conversion_rate", "7d", NULL) == 50.0);
	/* 30d: U1, U2 of U1..U5 */
	assert_true(st_metric(f->reg, "direct_fan_conversion_rate", "30d", NULL) == 40.0);
	/* a year later nobody is active: 0, not NaN */
	assert_int_equal(state_publish(f->st, f->reg, NOW + 365 * DAY), 0);
	assert_true(st_metric(f->reg, "direct_fan_conversion_rate", "30d", NULL) == 0.0);
}

/* Subscriptions older than the window count in its denominator while they were active at its
 * start; one canceled before the start does not count at all. */
static void test_churn(void **state)
{
	struct fixture *f = *state;

	ev_sub(f->st, true, U(1), S(1), "USD", 10, NOW - 40 * DAY); /* active throughout */
	ev_sub(f->st, true, U(2), S(2), "USD", 10, NOW - 40 * DAY);
	ev_sub(f->st, false, U(2), S(2), "USD", 0, NOW - 10 * DAY);
	ev_sub(f->st, true, U(3), S(3), "USD", 10, NOW - 20 * DAY);
	ev_sub(f->st, false, U(3), S(3), "USD", 0, NOW - DAY);
	ev_sub(f->st, true, U(4), S(4), "EUR", 10, NOW - 3 * DAY);
	/* never seen created: created before anything the store knows */
	ev_sub(f->st, false, U(5), S(5), "USD", 0, NOW - 2 * DAY);
	ev_sub(f->st, true, U(6), S(6), "USD", 10, NOW - 60 * DAY);
	ev_sub(f->st, false, U(6), S(6), "USD", 0, NOW - 35 * DAY);
	/* a second cancellation of the same subscription changes nothing */
	ev_sub(f->st, false, U(3), S(3), "USD", 0, NOW - 100);
	/* no subject (no salt): not tracked */
	ev_sub(f->st, false, U(7), NULL, "USD", 0, NOW - 100);
	publish(f, NOW);

	/* 30d: canceled S2, S3, S5 / (active at start S1, S2, S5 + created S3, S4) */
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "30d", NULL) == 60.0);
	/* 7d: canceled S3, S5 / (active at start S1, S3, S5 + created S4) */
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "7d", NULL) == 50.0);
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "24h", NULL) == -1);
	/* 30 days after the last cancellation: S1 and S4 remain, none canceled */
	assert_int_equal(state_publish(f->st, f->reg, NOW + 31 * DAY), 0);
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "30d", NULL) == 0.0);
}

static void test_churn_empty(void **state)
{
	struct fixture *f = *state;

	publish(f, NOW);
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "30d", NULL) == 0.0);
	assert_true(st_metric(f->reg, "direct_fan_conversion_rate", "30d", NULL) == 0.0);
	assert_true(ACTIVE(f->reg, "30d", "total") == 0);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 0);
}

static void test_arpu(void **state)
{
	struct fixture *f = *state;

	ev_pay(f->st, U(1), "succeeded", "USD", 10.10, NOW - DAY);
	ev_late(f->st, NULL, "USD", 5.5, NOW - 2 * DAY); /* revenue, no conversion */
	ev_pay(f->st, U(2), "succeeded", "EUR", 20, NOW - 10 * DAY);
	ev_pay(f->st, U(2), "succeeded", "EUR", 0.2, NOW - 10 * DAY); /* same second: summed */
	ev_pay(f->st, U(1), "succeeded", "USD", 100, NOW - 31 * DAY); /* outside 30d */
	ev_pay(f->st, U(3), "failed", "USD", 0, NOW - 3 * DAY);
	ev_seen(f->st, U(4), "fan", NOW - 4 * DAY);
	publish(f, NOW);

	/* active U1..U4 = 4; converted U1, U2 = 2; USD 15.60, EUR 20.20, exact in micro units */
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "all_users", "USD", NULL) ==
		    15.6 / 4);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "paying_users", "USD", NULL) ==
		    15.6 / 2);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "all_users", "EUR", NULL) ==
		    20.2 / 4);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "paying_users", "EUR", NULL) ==
		    20.2 / 2);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "all_users", "other", NULL) == -1);

	/* 21 days on the EUR payments left the window: their series go, USD stays */
	assert_int_equal(state_publish(f->st, f->reg, NOW + 21 * DAY), 0);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "all_users", "EUR", NULL) == -1);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "paying_users", "EUR", NULL) == -1);
	/* U1, U3, U4 active (U2, seen at -10d, is out); U1's conversion at -1d is in */
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "all_users", "USD", NULL) ==
		    15.6 / 3);
	assert_true(st_metric(f->reg, "direct_fan_arpu", "30d", "paying_users", "USD", NULL) ==
		    15.6 / 1);
}

static double exp_conv(struct fixture *f, const char *e, const char *v)
{
	return st_metric(f->reg, "direct_fan_experiment_conversions_total", e, v, NULL);
}

static double exp_rate(struct fixture *f, const char *e, const char *v)
{
	return st_metric(f->reg, "direct_fan_experiment_conversion_rate", e, v, NULL);
}

static void test_experiments(void **state)
{
	struct fixture *f = *state;
	int64_t t = NOW - 10 * DAY;

	/* U1: exposed (control), then converts: credited to control */
	ev_expose(f->st, U(1), "flow", "control", t);
	ev_pay(f->st, U(1), "succeeded", "USD", 5, t + 10);
	/* U2: converts, then is exposed (treatment): not credited */
	ev_pay(f->st, U(2), "succeeded", "USD", 5, t);
	ev_expose(f->st, U(2), "flow", "treatment", t + 10);
	/* U3: exposed twice (treatment, then control): one exposure, to treatment; converts twice:
	 * credited once */
	ev_expose(f->st, U(3), "flow", "treatment", t);
	ev_expose(f->st, U(3), "flow", "control", t + 5);
	ev_sub(f->st, true, U(3), S(3), "USD", 9, t + 20);
	ev_pay(f->st, U(3), "succeeded", "USD", 5, t + 30);
	/* U4: exposed, a failed payment only */
	ev_expose(f->st, U(4), "flow", "control", t);
	ev_pay(f->st, U(4), "failed", "USD", 0, t + 1);
	/* U5: exposed to two experiments, one conversion credits both */
	ev_expose(f->st, U(5), "flow", "treatment", t);
	ev_expose(f->st, U(5), "banner", "control", t + 1);
	ev_pay(f->st, U(5), "succeeded", "USD", 1, t + 2);
	/* U6: an exposure and its conversion in the same second, in that order: credited */
	ev_expose(f->st, U(6), "banner", "treatment", t + 50);
	ev_pay(f->st, U(6), "succeeded", "USD", 1, t + 50);
	publish(f, NOW);

	/* flow/control: exposed U1, U4; converted U1. flow/treatment: exposed U2, U3, U5;
	 * converted U3, U5. banner/control: U5 of U5; banner/treatment: U6 of U6. */
	assert_true(exp_conv(f, "flow", "control") == 1);
	assert_true(exp_rate(f, "flow", "control") == 50.0);
	assert_true(exp_conv(f, "flow", "treatment") == 2);
	assert_true(exp_rate(f, "flow", "treatment") == 200.0 / 3);
	assert_true(exp_conv(f, "banner", "control") == 1);
	assert_true(exp_rate(f, "banner", "control") == 100.0);
	assert_true(exp_conv(f, "banner", "treatment") == 1);

	/* U2 converts again, now after its exposure: its first conversion after exposure */
	ev_pay(f->st, U(2), "succeeded", "USD", 5, t + 100);
	/* U4 is exposed again, converts: credited to control, the variant first seen */
	ev_expose(f->st, U(4), "flow", "treatment", t + 100);
	ev_pay(f->st, U(4), "succeeded", "USD", 5, t + 200);
	/* across flushes too: U1 converting again changes nothing */
	ev_pay(f->st, U(1), "succeeded", "USD", 5, t + 300);
	publish(f, NOW);
	assert_true(exp_conv(f, "flow", "control") == 2);
	assert_true(exp_rate(f, "flow", "control") == 100.0);
	assert_true(exp_conv(f, "flow", "treatment") == 3);
	assert_true(exp_rate(f, "flow", "treatment") == 100.0);
	/* the counter only moved up: publishing again adds nothing */
	assert_int_equal(state_publish(f->st, f->reg, NOW + DAY), 0);
	assert_true(exp_conv(f, "flow", "treatment") == 3);
}

/* Forget takes a user out of every KPI and of the batch not yet flushed. */
static void test_forget(void **state)
{
	struct fixture *f = *state;

	ev_register(f->st, U(1), "fan", NOW - 3 * DAY);
	ev_expose(f->st, U(1), "flow", "control", NOW - 3 * DAY + 10);
	ev_sub(f->st, true, U(1), S(1), "USD", 10, NOW - 2 * DAY);
	ev_sub(f->st, false, U(1), S(1), "USD", 0, NOW - DAY);
	ev_register(f->st, U(2), "fan", NOW - 3 * DAY);
	ev_expose(f->st, U(2), "flow", "control", NOW - 3 * DAY);
	ev_pay(f->st, U(2), "succeeded", "USD", 4, NOW - 2 * DAY);
	ev_seen(f->st, U(3), "creator", NOW - HOUR);
	publish(f, NOW);
	assert_true(ACTIVE(f->reg, "7d", "total") == 3);
	assert_true(exp_conv(f, "flow", "control") == 2);
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "7d", NULL) == 100.0);

	/* U1 acts again, staged but not flushed when it is forgotten */
	ev_seen(f->st, U(1), "fan", NOW - 60);
	ev_expose(f->st, U(1), "banner", "control", NOW - 50);
	assert_int_equal(state_forget_user(f->st, U(1)), 0);
	publish(f, NOW);
	assert_true(ACTIVE(f->reg, "7d", "total") == 2);
	assert_true(ACTIVE(f->reg, "7d", "fan") == 1);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 2);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "fan", NULL) == 1);
	/* 100 x 1 converted (U2) / 2 active */
	assert_true(st_metric(f->reg, "direct_fan_conversion_rate", "7d", NULL) == 50.0);
	/* the counter was reset to its new value; the staged exposure is gone with the user */
	assert_true(exp_conv(f, "flow", "control") == 1);
	assert_true(exp_rate(f, "flow", "control") == 100.0);
	assert_true(st_metric(f->reg, "direct_fan_experiment_conversion_rate", "banner", "control",
			      NULL) == -1);
	/* the subscription stays, without its user */
	assert_true(st_metric(f->reg, "direct_fan_churn_rate", "7d", NULL) == 100.0);

	assert_int_equal(state_forget_user(f->st, U(1)), -ENOENT);
	assert_int_equal(state_forget_user(f->st, "alice@example.com"), -EINVAL);
	assert_int_equal(state_forget_user(f->st, NULL), -EINVAL);

	/* a user forgotten while only staged is not created at the next flush */
	ev_seen(f->st, U(9), "fan", NOW - 10);
	assert_int_equal(state_forget_user(f->st, U(9)), -ENOENT);
	publish(f, NOW);
	assert_true(st_metric(f->reg, "direct_fan_total_users", "total", NULL) == 2);
}

/* ---------------------------------------------------------------- the admin summary */
static struct json_object *get(struct json_object *o, const char *path)
{
	char buf[128], *save = NULL, *key;

	snprintf(buf, sizeof(buf), "%s", path);
	for (key = strtok_r(buf, ".", &save); key; key = strtok_r(NULL, ".", &save)) {
		struct json_object *next = NULL;

		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, (size_t)atoi(key));
		else if (!json_object_object_get_ex(o, key, &next))
			next = NULL;
		if (!next)
			fail_msg("no %s in the summary (at %s)", path, key);
		o = next;
	}
	return o;
}

static int64_t jint(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);

	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static double jdbl(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);

	assert_true(json_object_is_type(v, json_type_double));
	return json_object_get_double(v);
}

static const char *jstr(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);

	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static size_t jlen(struct json_object *o, const char *path)
{
	struct json_object *v = get(o, path);

	if (json_object_is_type(v, json_type_array))
		return json_object_array_length(v);
	assert_true(json_object_is_type(v, json_type_object));
	return (size_t)json_object_object_length(v);
}

static void summary_dataset(struct state *st)
{
	/* U1 fan: registers 11-17 12:00 (W47), pays USD 10 and registers again on 11-23 (W48),
	 * seen 11-30 (W49).
	 * U2 creator: registers 11-17 13:00, a failed payment 11-18.
	 * U3 fan: registers 11-25 (W48) with subscription S1 (EUR 9.99), seen 11-30.
	 * U4 fan: registered 10-22 (before the range), seen 11-29; S2 canceled 11-29 (never seen
	 * created). U5: seen 10-27 only. An anonymous registration on 11-28, a late success USD
	 * 2.50 on 11-29 and a requires_action attempt on 11-30 without a user. */
	ev_register(st, U(1), "fan", NOW - 14 * DAY);
	ev_register(st, U(2), "creator", NOW - 14 * DAY + HOUR);
	ev_pay(st, U(2), "failed", "USD", 0, NOW - 13 * DAY);
	ev_pay(st, U(1), "succeeded", "USD", 10, NOW - 8 * DAY);
	ev_register(st, U(1), "fan", NOW - 8 * DAY); /* again: a registration, not a new user */
	ev_register(st, U(3), "fan", NOW - 6 * DAY);
	ev_sub(st, true, U(3), S(1), "EUR", 9.99, NOW - 6 * DAY);
	ev_register(st, U(4), "fan", NOW - 40 * DAY);
	ev_seen(st, U(4), "fan", NOW - 2 * DAY);
	ev_sub(st, false, U(4), S(2), "USD", 0, NOW - 2 * DAY);
	ev_seen(st, U(5), NULL, NOW - 35 * DAY);
	st_send(st,
		(struct st_ev){BIZ_RULE_EVENT, "registration", NULL, NULL, NULL, NOW - 3 * DAY,
			       false, 0},
		"user_type", "fan", NULL);
	ev_late(st, NULL, "USD", 2.5, NOW - 2 * DAY);
	ev_pay(st, NULL, "requires_action", "USD", 0, NOW - DAY);
	ev_seen(st, U(1), "fan", NOW - DAY);
	ev_seen(st, U(3), "fan", NOW - DAY);
}

static struct json_object *summary_of(struct fixture *f, const char *range)
{
	static const struct state_mrr mrr[] = {{"USD", 19.99}, {"EUR", 9.99}};
	struct json_object *j;
	char *text = NULL;

	assert_int_equal(state_summary_json(f->st, NOW, range, "USD", mrr, 2, &text), 0);
	assert_non_null(text);
	j = json_tokener_parse(text);
	assert_non_null(j);
	free(text);
	return j;
}

static void test_summary_30d(void **state)
{
	struct fixture *f = *state;
	struct json_object *j;

	summary_dataset(f->st);
	assert_int_equal(state_flush(f->st), 0);
	j = summary_of(f, "30d");

	assert_string_equal(jstr(j, "range"), "30d");
	assert_string_equal(jstr(j, "generatedAt"), "2026-12-01T12:00:00Z");
	assert_int_equal(jint(j, "summary.totalUsers"), 5);
	assert_int_equal(jint(j, "summary.activeUsers"), 4);
	assert_int_equal(jint(j, "summary.newUsers"), 3);
	assert_int_equal(jint(j, "summary.payingUsers"), 2);
	assert_true(jdbl(j, "summary.monthlyRecurringRevenue") == 19.99);
	assert_int_equal(jlen(j, "summary.monthlyRecurringRevenueByCurrency"), 2);
	assert_true(jdbl(j, "summary.monthlyRecurringRevenueByCurrency.USD") == 19.99);
	assert_true(jdbl(j, "summary.monthlyRecurringRevenueByCurrency.EUR") == 9.99);
	assert_int_equal(jlen(j, "summary.revenueByCurrency"), 1);
	assert_true(jdbl(j, "summary.revenueByCurrency.USD") == 12.5);
	assert_true(jdbl(j, "summary.conversionRate") == 50.0);
	/* canceled S2 / (active at start S2 + created S1) */
	assert_true(jdbl(j, "summary.churnRate") == 50.0);
	assert_int_equal(jlen(j, "summary.arpuByCurrency"), 1);
	assert_true(jdbl(j, "summary.arpuByCurrency.USD") == 12.5 / 4);
	assert_int_equal(jint(j, "summary.registrations"), 5);
	assert_int_equal(jint(j, "summary.payments.succeeded"), 1);
	assert_int_equal(jint(j, "summary.payments.failed"), 1);
	assert_true(jdbl(j, "summary.payments.successRate") == 100.0 / 3);
	assert_int_equal(jint(j, "summary.subscriptions.active"), 1);
	assert_int_equal(jint(j, "summary.subscriptions.created"), 1);
	assert_int_equal(jint(j, "summary.subscriptions.canceled"), 1);

	/* 2026-11-01 .. 2026-12-01 */
	assert_int_equal(jlen(j, "daily"), 31);
	assert_string_equal(jstr(j, "daily.0.date"), "2026-11-01");
	assert_string_equal(jstr(j, "daily.30.date"), "2026-12-01");
	for (int i = 0; i < 31; i++) {
		char p[64];
		int64_t active = 0, fresh = 0;

		/* day index: 11-17 = 16, 11-18 = 17, 11-23 = 22, 11-25 = 24, 11-29 = 28,
		 * 11-30 = 29 */
		switch (i) {
		case 16:
			active = 2, fresh = 2;
			break;
		case 17:
		case 22:
		case 28:
			active = 1;
			break;
		case 24:
			active = 1, fresh = 1;
			break;
		case 29:
			active = 2;
			break;
		}
		snprintf(p, sizeof(p), "daily.%d.activeUsers", i);
		assert_int_equal(jint(j, p), active);
		snprintf(p, sizeof(p), "daily.%d.newUsers", i);
		assert_int_equal(jint(j, p), fresh);
		snprintf(p, sizeof(p), "daily.%d.revenueByCurrency", i);
		assert_int_equal(jlen(j, p), i == 22 || i == 28 ? 1 : 0);
		snprintf(p, sizeof(p), "daily.%d.payments", i);
		assert_int_equal(jlen(j, p), i == 17 || i == 22 || i == 29 ? 1 : 0);
	}
	assert_true(jdbl(j, "daily.22.revenueByCurrency.USD") == 10.0);
	assert_true(jdbl(j, "daily.28.revenueByCurrency.USD") == 2.5);
	assert_int_equal(jint(j, "daily.17.payments.failed"), 1);
	assert_int_equal(jint(j, "daily.22.payments.succeeded"), 1);
	assert_int_equal(jint(j, "daily.29.payments.requires_action"), 1);

	assert_int_equal(jlen(j, "cohorts"), 2);
	assert_string_equal(jstr(j, "cohorts.0.week"), "2026-W47");
	assert_int_equal(jint(j, "cohorts.0.users"), 2);
	assert_int_equal(jlen(j, "cohorts.0.retainedPercent"), 3);
	assert_true(jdbl(j, "cohorts.0.retainedPercent.0") == 100.0);
	assert_true(jdbl(j, "cohorts.0.retainedPercent.1") == 50.0);
	assert_true(jdbl(j, "cohorts.0.retainedPercent.2") == 50.0);
	assert_string_equal(jstr(j, "cohorts.1.week"), "2026-W48");
	assert_int_equal(jint(j, "cohorts.1.users"), 1);
	assert_int_equal(jlen(j, "cohorts.1.retainedPercent"), 2);
	assert_true(jdbl(j, "cohorts.1.retainedPercent.0") == 100.0);
	assert_true(jdbl(j, "cohorts.1.retainedPercent.1") == 100.0);
	json_object_put(j);

	/* forgetting U1 takes it out of the days and the cohort */
	assert_int_equal(state_forget_user(f->st, U(1)), 0);
	j = summary_of(f, "30d");
	assert_int_equal(jint(j, "summary.totalUsers"), 4);
	assert_int_equal(jint(j, "summary.payingUsers"), 1);
	assert_int_equal(jint(j, "summary.newUsers"), 2);
	/* U1's first registration goes with it; its second stays, as a fact without a person */
	assert_int_equal(jint(j, "summary.registrations"), 4);
	assert_int_equal(jint(j, "daily.16.activeUsers"), 1);
	assert_int_equal(jint(j, "daily.16.newUsers"), 1);
	assert_int_equal(jint(j, "daily.29.activeUsers"), 1);
	assert_int_equal(jint(j, "cohorts.0.users"), 1);
	assert_true(jdbl(j, "cohorts.0.retainedPercent.1") == 0.0);
	assert_true(jdbl(j, "cohorts.0.retainedPercent.2") == 0.0);
	/* revenue is not a person's: it stays */
	assert_true(jdbl(j, "summary.revenueByCurrency.USD") == 12.5);
	json_object_put(j);
}

static void test_summary_7d_24h(void **state)
{
	struct fixture *f = *state;
	struct json_object *j;
	char *text = (char *)"untouched";

	summary_dataset(f->st);
	assert_int_equal(state_flush(f->st), 0);
	j = summary_of(f, "7d");
	assert_int_equal(jint(j, "summary.activeUsers"), 3);
	assert_int_equal(jint(j, "summary.newUsers"), 1);
	assert_int_equal(jint(j, "summary.payingUsers"), 1);
	assert_true(jdbl(j, "summary.revenueByCurrency.USD") == 2.5);
	assert_true(jdbl(j, "summary.conversionRate") == 100.0 / 3);
	assert_true(jdbl(j, "summary.churnRate") == 50.0);
	assert_int_equal(jint(j, "summary.registrations"), 2);
	assert_int_equal(jint(j, "summary.payments.succeeded"), 0);
	assert_int_equal(jint(j, "summary.payments.failed"), 0);
	assert_true(jdbl(j, "summary.payments.successRate") == 0.0);
	assert_int_equal(jlen(j, "daily"), 8);
	assert_string_equal(jstr(j, "daily.0.date"), "2026-11-24");
	assert_int_equal(jlen(j, "cohorts"), 1);
	assert_string_equal(jstr(j, "cohorts.0.week"), "2026-W48");
	json_object_put(j);

	/* 24h: U1 and U3 were seen exactly 24h ago */
	j = summary_of(f, "24h");
	assert_int_equal(jint(j, "summary.activeUsers"), 2);
	assert_int_equal(jlen(j, "daily"), 2);
	assert_int_equal(jlen(j, "cohorts"), 0);
	assert_true(jdbl(j, "summary.monthlyRecurringRevenue") == 19.99);
	json_object_put(j);

	j = summary_of(f, "90d");
	assert_int_equal(jint(j, "summary.activeUsers"), 5);
	assert_int_equal(jint(j, "summary.newUsers"), 4);
	assert_int_equal(jlen(j, "daily"), 91);
	json_object_put(j);

	assert_int_equal(state_summary_json(f->st, NOW, "31d", NULL, NULL, 0, &text), -EINVAL);
	assert_int_equal(state_summary_json(f->st, NOW, NULL, NULL, NULL, 0, &text), -EINVAL);
	/* no MRR in the report currency: 0 */
	assert_int_equal(state_summary_json(f->st, NOW, "30d", "GBP", NULL, 0, &text), 0);
	j = json_tokener_parse(text);
	free(text);
	assert_true(jdbl(j, "summary.monthlyRecurringRevenue") == 0.0);
	assert_int_equal(jlen(j, "summary.monthlyRecurringRevenueByCurrency"), 0);
	json_object_put(j);
}

/* The JSON text itself: floats always look like floats, and read back exactly. */
static void test_summary_text(void **state)
{
	struct fixture *f = *state;
	static const struct state_mrr mrr[] = {{"USD", 0.1}, {"JPY", 1200}};
	char *text = NULL;

	assert_int_equal(state_summary_json(f->st, NOW, "24h", "USD", mrr, 2, &text), 0);
	assert_non_null(strstr(text, "\"range\":\"24h\""));
	assert_non_null(strstr(text, "\"monthlyRecurringRevenue\":0.1,"));
	assert_non_null(strstr(text, "\"monthlyRecurringRevenueByCurrency\":{\"USD\":0.1,"
				     "\"JPY\":1200.0}"));
	assert_non_null(strstr(text, "\"conversionRate\":0.0,"));
	assert_non_null(strstr(text, "\"totalUsers\":0,"));
	assert_non_null(strstr(text, "\"cohorts\":[]"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_window_boundaries_mid_hour, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_window_boundaries_on_the_hour, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_user_type_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_conversion_rate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_churn, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_churn_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_arpu, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_experiments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_summary_30d, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_summary_7d_24h, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_summary_text, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
