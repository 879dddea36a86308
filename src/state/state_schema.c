// SPDX-License-Identifier: MIT
/*
 * The store's schema as migration steps: step i turns a store at user_version i - 1 into one at
 * version i, in one transaction with its user_version. A store is never edited in place by
 * hand-written DDL elsewhere: a change of schema is a new step at the end of this table, and
 * STATE_SCHEMA_VERSION (include/bizprobe/state.h) is the last step's version.
 *
 * Times are seconds since the epoch, days and hours are floor(ts / 86400) and floor(ts / 3600),
 * weeks the day number of their Monday; amounts are integer micro units of their currency, so
 * that sums are exact; a user type of "" is "none".
 */
#include "state_internal.h"

static const char schema_v1[] =
    /* One row per user ever seen (until pruned or forgotten). Looked up by the pseudonym's
     * first 4 bytes: an index 4x smaller than one on all 32 (at 10M users a few thousand share a
     * prefix), and the lookup compares the whole pseudonym. act_bits: bit i set = active on day
     * act_base + i. */
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " pseudonym BLOB NOT NULL,"
    " user_type TEXT,"
    " first_seen INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " registered_at INTEGER,"
    " first_paid_at INTEGER,"
    " last_converted_at INTEGER,"
    " act_base INTEGER NOT NULL,"
    " act_bits BLOB NOT NULL);"
    "CREATE INDEX users_pkey ON users(substr(pseudonym, 1, 4));"
    /* Users ever seen per type (pruning does not take them out: total_users counts them). */
    "CREATE TABLE user_counts (user_type TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;"
    /* Users by the hour of their last activity (kind 0, per type), last conversion (1) and
     * registration (2): a window's count is a sum over its whole hours plus an index range
     * over its first, partial hour. */
    "CREATE TABLE hist (kind INTEGER NOT NULL, user_type TEXT NOT NULL, hour INTEGER NOT NULL,"
    " n INTEGER NOT NULL, PRIMARY KEY (kind, user_type, hour)) WITHOUT ROWID;"
    /* Distinct active and newly registered users per UTC day. */
    "CREATE TABLE daily (day INTEGER PRIMARY KEY, active INTEGER NOT NULL DEFAULT 0,"
    " new INTEGER NOT NULL DEFAULT 0);"
    /* Registration-week cohorts: k 0 is the cohort's size, k >= 1 its users active in the
     * k-th week after. */
    "CREATE TABLE cohorts (week INTEGER NOT NULL, k INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (week, k)) WITHOUT ROWID;"
    /* Payment outcomes (kind 1, status: enum state_status), late successes (2) and the
     * registrations that registered nobody new (3: anonymous or repeated; a user's first is its
     * registered_at), per second and per hour ("" currency and status 0 when none). */
    "CREATE TABLE ledger (ts INTEGER NOT NULL, kind INTEGER NOT NULL, status INTEGER NOT NULL,"
    " currency TEXT NOT NULL, n INTEGER NOT NULL, amount INTEGER NOT NULL,"
    " PRIMARY KEY (ts, kind, status, currency)) WITHOUT ROWID;"
    "CREATE TABLE ledger_hours (hour INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " status INTEGER NOT NULL, currency TEXT NOT NULL, n INTEGER NOT NULL,"
    " amount INTEGER NOT NULL, PRIMARY KEY (hour, kind, status, currency)) WITHOUT ROWID;"
    /* subject: the subscription's pseudonym; created_at NULL: created before the store knew. */
    "CREATE TABLE subscriptions ("
    " id INTEGER PRIMARY KEY,"
    " subject BLOB NOT NULL UNIQUE,"
    " user_id INTEGER,"
    " currency TEXT,"
    " monthly INTEGER,"
    " created_at INTEGER,"
    " canceled_at INTEGER);"
    "CREATE TABLE exposures (user_id INTEGER NOT NULL, experiment TEXT NOT NULL,"
    " variant TEXT NOT NULL, first_exposed_at INTEGER NOT NULL, converted_at INTEGER,"
    " PRIMARY KEY (user_id, experiment)) WITHOUT ROWID;"
    /* Exposed and converted (user, experiment) pairs, kept when exposures are pruned. */
    "CREATE TABLE experiment_counts (experiment TEXT NOT NULL, variant TEXT NOT NULL,"
    " exposed INTEGER NOT NULL, converted INTEGER NOT NULL,"
    " PRIMARY KEY (experiment, variant)) WITHOUT ROWID;"
    "CREATE TABLE blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    /* Counter and histogram series of the registry: labels and names are JSON arrays of the
     * label values and names; bounds and buckets arrays of doubles and uint64s (host order). */
    "CREATE TABLE counters (family TEXT NOT NULL, labels TEXT NOT NULL, names TEXT NOT NULL,"
    " type INTEGER NOT NULL, value REAL NOT NULL, count INTEGER NOT NULL, bounds BLOB,"
    " buckets BLOB,"
    " PRIMARY KEY (family, labels)) WITHOUT ROWID;";

/* The read path's indexes: the window edges, prune's scan, forget's unlinking. */
static const char schema_v2[] =
    "CREATE INDEX users_last_seen ON users(last_seen);"
    "CREATE INDEX users_registered ON users(registered_at) WHERE registered_at IS NOT NULL;"
    "CREATE INDEX users_converted ON users(last_converted_at)"
    " WHERE last_converted_at IS NOT NULL;"
    "CREATE INDEX subscriptions_created ON subscriptions(created_at);"
    "CREATE INDEX subscriptions_canceled ON subscriptions(canceled_at);"
    "CREATE INDEX subscriptions_user ON subscriptions(user_id) WHERE user_id IS NOT NULL;";

const struct state_migration state_migrations[] = {
    {1, "tables", schema_v1},
    {2, "indexes of the KPI queries", schema_v2},
};
const unsigned state_n_migrations = sizeof(state_migrations) / sizeof(state_migrations[0]);

_Static_assert(sizeof(state_migrations) / sizeof(state_migrations[0]) == STATE_SCHEMA_VERSION,
	       "STATE_SCHEMA_VERSION is the number of migration steps");
