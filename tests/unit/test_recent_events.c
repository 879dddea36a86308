// SPDX-License-Identifier: MIT
/* The status page's ring of recent business events and its 10-second history
 * (src/export/recent_events.c): order, overflow, bounds, redaction, bucket ageing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bizprobe/recent_events.h"

#define S(x) ((uint64_t)(x)*1000000000ull)

static struct business_event payment(const char *status, uint64_t wall_ns)
{
	struct business_event ev = {
	    .kind = BIZ_PAYMENT_ATTEMPT,
	    .name = !strcmp(status, "succeeded") ? "payment_succeeded" : "payment_failed",
	    .labels = {{"status", status}, {"currency", "USD"}, {"code", ""}},
	    .n_labels = 3,
	    .has_value = true,
	    .value = 12.5,
	    .user = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    .subject = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    .wall_ns = wall_ns,
	};
	return ev;
}

static void test_newest_first_and_redacted(void **state)
{
	struct recent_events *re = recent_events_new();
	struct recent_event out[4];
	struct business_event a = payment("succeeded", S(1000)), b = payment("failed", S(1001));
	struct business_event mrr = {
	    .kind = BIZ_MRR, .labels = {{"currency", "USD"}}, .n_labels = 1, .wall_ns = S(1002)};
	uint64_t seen = 99;

	assert_non_null(re);
	assert_int_equal(recent_events_snapshot(re, out, 4, &seen), 0);
	assert_int_equal(seen, 0);
	recent_events_on_event(re, &a);
	recent_events_on_event(re, &mrr); /* not a business event: left out */
	recent_events_on_event(re, &b);
	recent_events_on_event(NULL, &a); /* a no-op */
	assert_int_equal(recent_events_snapshot(re, out, 4, &seen), 2);
	assert_int_equal(seen, 2);
	assert_string_equal(out[0].name, "payment_failed");
	assert_string_equal(out[1].name, "payment_succeeded");
	assert_int_equal(out[0].n_labels, 3);
	assert_string_equal(out[0].label_names[0], "status");
	assert_string_equal(out[0].label_values[0], "failed");
	assert_string_equal(out[0].label_values[2], "");
	assert_true(out[0].wall_ns == S(1001));
	/* Neither the user, nor the subject, nor the amount is anywhere in the entry. */
	assert_null(memmem(&out[0], sizeof(out[0]), "aaaaaaaa", 8));
	assert_null(memmem(&out[0], sizeof(out[0]), "bbbbbbbb", 8));
	recent_events_free(re);
}

static void test_ring_overflow_keeps_the_last(void **state)
{
	struct recent_events *re = recent_events_new();
	struct recent_event *out = calloc(RECENT_EVENTS_MAX + 5, sizeof(*out));
	char name[32];
	uint64_t seen;

	for (unsigned i = 0; i < RECENT_EVENTS_MAX + 7; i++) {
		struct business_event ev = {
		    .kind = BIZ_RULE_EVENT, .name = name, .wall_ns = S(2000 + i)};

		snprintf(name, sizeof(name), "ev%u", i);
		recent_events_on_event(re, &ev);
	}
	assert_int_equal(recent_events_snapshot(re, out, RECENT_EVENTS_MAX + 5, &seen),
			 RECENT_EVENTS_MAX);
	assert_int_equal(seen, RECENT_EVENTS_MAX + 7);
	snprintf(name, sizeof(name), "ev%u", RECENT_EVENTS_MAX + 6);
	assert_string_equal(out[0].name, name);
	assert_string_equal(out[RECENT_EVENTS_MAX - 1].name, "ev7");
	/* A smaller copy: the newest ones. */
	assert_int_equal(recent_events_snapshot(re, out, 3, NULL), 3);
	assert_string_equal(out[0].name, name);
	free(out);
	recent_events_free(re);
}

static void test_bounds(void **state)
{
	struct recent_events *re = recent_events_new();
	char long_name[300], long_value[300];
	struct business_event ev = {.kind = BIZ_RULE_EVENT, .name = long_name, .n_labels = 1};
	struct recent_event out[1];

	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(long_value, 'v', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	ev.labels[0] = (struct biz_label){"plan", long_value};
	recent_events_on_event(re, &ev);
	ev.n_labels = 99; /* a producer's bug must not read past the array */
	ev.labels[1] = (struct biz_label){NULL, NULL};
	recent_events_on_event(re, &ev);
	assert_int_equal(recent_events_snapshot(re, out, 1, NULL), 1);
	assert_int_equal(strlen(out[0].name), RECENT_EVENTS_NAME_MAX - 1);
	assert_int_equal(out[0].n_labels, BIZ_EVENT_MAX_LABELS);
	assert_int_equal(strlen(out[0].label_values[0]), RECENT_EVENTS_VALUE_MAX - 1);
	assert_string_equal(out[0].label_names[1], "");
	recent_events_free(re);
}

static void test_history_buckets(void **state)
{
	struct recent_events *re = recent_events_new();
	struct recent_bucket h[RECENT_EVENTS_BUCKETS];
	struct business_event ok1 = payment("succeeded", S(10003));
	struct business_event ok2 = payment("succeeded", S(10009) + 999999999ull);
	struct business_event bad = payment("failed", S(10010));
	struct business_event view = {.kind = BIZ_RULE_EVENT, .name = "view", .wall_ns = S(9400)};
	struct business_event ancient = payment("succeeded", S(100));
	uint32_t ok = 0, failed = 0, events = 0;

	recent_events_on_event(re, &ok1);
	recent_events_on_event(re, &ok2);
	recent_events_on_event(re, &bad);
	recent_events_on_event(re, &view);
	recent_events_history(re, 10015, h);
	/* Buckets end with the one holding now, oldest first, 10 s apart. */
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 1].start_s, 10010);
	assert_int_equal(h[0].start_s,
			 10010 - (RECENT_EVENTS_BUCKETS - 1) * RECENT_EVENTS_BUCKET_S);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 2].start_s, 10000);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 2].payments_succeeded, 2);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 2].events, 2);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 1].payments_failed, 1);
	/* 9400 is more than ten minutes before 10015, and its slot holds 10000 already. */
	for (unsigned i = 0; i < RECENT_EVENTS_BUCKETS; i++) {
		ok += h[i].payments_succeeded;
		failed += h[i].payments_failed;
		events += h[i].events;
	}
	assert_int_equal(ok, 2);
	assert_int_equal(failed, 1);
	assert_int_equal(events, 3);
	/* Ten minutes later the same slots are stale: all zero, not last round's counts. */
	recent_events_history(re, 10015 + RECENT_EVENTS_BUCKETS * RECENT_EVENTS_BUCKET_S, h);
	for (unsigned i = 0; i < RECENT_EVENTS_BUCKETS; i++)
		assert_int_equal(h[i].events, 0);
	/* An event older than its slot's current period is not counted into it. */
	recent_events_on_event(re, &ancient);
	recent_events_history(re, 10015, h);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 2].payments_succeeded, 2);
	/* NULL ring: an empty history with its times. */
	recent_events_history(NULL, 25, h);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 1].start_s, 20);
	assert_int_equal(h[RECENT_EVENTS_BUCKETS - 1].events, 0);
	recent_events_free(re);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_newest_first_and_redacted),
	    cmocka_unit_test(test_ring_overflow_keeps_the_last),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_history_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
