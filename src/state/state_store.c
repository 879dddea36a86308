// SPDX-License-Identifier: MIT
/*
 * The store itself: the directory and file modes, the two connections (WAL, so the reader sees
 * the last committed flush while the writer writes the next), migrations, prepared statements,
 * blobs and statistics.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state_internal.h"

static const char *const sql_text[SQL_N] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_USER_GET] = "SELECT id, user_type, first_seen, last_seen, registered_at, first_paid_at,"
		     " last_converted_at, act_base, act_bits FROM users"
		     " WHERE substr(pseudonym, 1, 4) = ?1 AND pseudonym = ?2",
    [SQL_USER_INSERT] = "INSERT INTO users (pseudonym, first_seen, last_seen, act_base, act_bits)"
			" VALUES (?2, ?3, ?3, ?4, ?5)",
    [SQL_USER_UPDATE] = "UPDATE users SET user_type = ?2, first_seen = ?3, last_seen = ?4,"
			" registered_at = ?5, first_paid_at = ?6, last_converted_at = ?7,"
			" act_base = ?8, act_bits = ?9 WHERE id = ?1",
    [SQL_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [SQL_EXPOSURE_INSERT] = "INSERT OR IGNORE INTO exposures (user_id, experiment, variant,"
			    " first_exposed_at) VALUES (?1, ?2, ?3, ?4)",
    [SQL_EXPOSURE_CONVERT] = "UPDATE exposures SET converted_at = ?2 WHERE user_id = ?1 AND"
			     " converted_at IS NULL AND first_exposed_at <= ?2"
			     " RETURNING experiment, variant",
    [SQL_EXPOSURES_OF_USER] = "SELECT experiment, variant, converted_at IS NOT NULL"
			      " FROM exposures WHERE user_id = ?1",
    [SQL_EXPOSURES_DELETE_USER] = "DELETE FROM exposures WHERE user_id = ?1",
    [SQL_SUB_CREATED] =
	"INSERT INTO subscriptions (subject, user_id, currency, monthly, created_at)"
	" VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (subject) DO UPDATE SET"
	" user_id = coalesce(user_id, excluded.user_id),"
	" currency = coalesce(excluded.currency, currency),"
	" monthly = coalesce(excluded.monthly, monthly),"
	" created_at = coalesce(created_at, excluded.created_at)",
    [SQL_SUB_CANCELED] = "INSERT INTO subscriptions (subject, user_id, currency, canceled_at)"
			 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (subject) DO UPDATE SET"
			 " user_id = coalesce(user_id, excluded.user_id),"
			 " currency = coalesce(currency, excluded.currency),"
			 " canceled_at = coalesce(canceled_at, excluded.canceled_at)",
    [SQL_SUBS_UNLINK_USER] = "UPDATE subscriptions SET user_id = NULL WHERE user_id = ?1",
    [SQL_HIST_ADD] = "INSERT INTO hist (kind, user_type, hour, n) VALUES (?1, ?2, ?3, ?4)"
		     " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [SQL_DAILY_ADD] = "INSERT INTO daily (day, active, new) VALUES (?1, ?2, ?3) ON CONFLICT DO"
		      " UPDATE SET active = active + excluded.active, new = new + excluded.new",
    [SQL_COHORT_ADD] = "INSERT INTO cohorts (week, k, n) VALUES (?1, ?2, ?3)"
		       " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [SQL_LEDGER_ADD] = "INSERT INTO ledger (ts, kind, status, currency, n, amount)"
		       " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET"
		       " n = n + excluded.n, amount = amount + excluded.amount",
    [SQL_LEDGER_HOUR_ADD] = "INSERT INTO ledger_hours (hour, kind, status, currency, n, amount)"
			    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO UPDATE SET"
			    " n = n + excluded.n, amount = amount + excluded.amount",
    [SQL_EXPCOUNT_ADD] = "INSERT INTO experiment_counts (experiment, variant, exposed, converted)"
			 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET"
			 " exposed = exposed + excluded.exposed,"
			 " converted = converted + excluded.converted",
    [SQL_USERCOUNT_ADD] = "INSERT INTO user_counts (user_type, n) VALUES (?1, ?2)"
			  " ON CONFLICT DO UPDATE SET n = n + excluded.n",
    [SQL_BLOB_PUT] = "INSERT OR REPLACE INTO blobs (key, value) VALUES (?1, ?2)",
    [SQL_BLOB_DELETE] = "DELETE FROM blobs WHERE key = ?1",
    [SQL_BLOB_GET] = "SELECT value FROM blobs WHERE key = ?1",
    [SQL_COUNTERS_CLEAR] = "DELETE FROM counters",
    [SQL_COUNTER_PUT] = "INSERT OR REPLACE INTO counters (family, labels, names, type, value,"
			" count, bounds, buckets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [SQL_COUNTERS_ALL] = "SELECT family, labels, names, type, value, count, bounds, buckets"
			 " FROM counters ORDER BY family, labels",
    [SQL_HIST_SUM] = "SELECT user_type, sum(n) FROM hist WHERE kind = ?1 AND hour >= ?2"
		     " GROUP BY user_type",
    [SQL_SEEN_EDGE] = "SELECT coalesce(user_type, ''), count(*) FROM users"
		      " WHERE last_seen >= ?1 AND last_seen < ?2 GROUP BY 1",
    [SQL_CONV_EDGE] = "SELECT count(*) FROM users"
		      " WHERE last_converted_at >= ?1 AND last_converted_at < ?2",
    [SQL_REG_EDGE] = "SELECT count(*) FROM users WHERE registered_at >= ?1 AND registered_at < ?2",
    [SQL_LEDGER_WINDOW] =
	"SELECT kind, status, currency, sum(n), sum(amount) FROM ("
	" SELECT kind, status, currency, n, amount FROM ledger_hours WHERE hour >= ?2"
	" UNION ALL"
	" SELECT kind, status, currency, n, amount FROM ledger WHERE ts >= ?1 AND ts < ?2 * 3600"
	") GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    [SQL_USER_COUNTS] = "SELECT user_type, n FROM user_counts ORDER BY user_type",
    [SQL_SUBS_TOTAL] = "SELECT count(*) FROM subscriptions",
    [SQL_SUBS_CREATED_SINCE] = "SELECT count(*) FROM subscriptions WHERE created_at >= ?1",
    [SQL_SUBS_CANCELED_SINCE] = "SELECT count(*) FROM subscriptions WHERE canceled_at >= ?1",
    [SQL_SUBS_CANCELED_BEFORE] = "SELECT count(*) FROM subscriptions WHERE canceled_at < ?1 AND"
				 " (created_at IS NULL OR created_at < ?1)",
    [SQL_SUBS_ACTIVE] = "SELECT count(*) FROM subscriptions WHERE canceled_at IS NULL",
    [SQL_EXPCOUNTS] = "SELECT experiment, variant, exposed, converted FROM experiment_counts"
		      " ORDER BY 1, 2",
    [SQL_DAILY_RANGE] = "SELECT day, active, new FROM daily WHERE day >= ?1 AND day <= ?2"
			" ORDER BY day",
    [SQL_LEDGER_DAYS] = "SELECT hour / 24, kind, status, currency, sum(n), sum(amount)"
			" FROM ledger_hours WHERE hour >= ?1 * 24 AND hour < (?2 + 1) * 24"
			" GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    [SQL_COHORTS_RANGE] = "SELECT week, k, n FROM cohorts WHERE week >= ?1 ORDER BY week, k",
};

int state_sqlite_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

sqlite3_stmt *state_stmt(struct state_db *d, enum state_sql id)
{
	sqlite3_stmt *s = d->stmts[id];

	if (!s) {
		if (sqlite3_prepare_v3(d->h, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
				       NULL) != SQLITE_OK)
			return NULL;
		d->stmts[id] = s;
	} else {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
	}
	return s;
}

int state_step_done(sqlite3_stmt *s)
{
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : state_sqlite_err(rc);
}

int state_exec(struct state_db *d, const char *sql)
{
	return state_sqlite_err(sqlite3_exec(d->h, sql, NULL, NULL, NULL));
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void db_close(struct state_db *d)
{
	for (unsigned i = 0; i < SQL_N; i++)
		sqlite3_finalize(d->stmts[i]);
	memset(d->stmts, 0, sizeof(d->stmts));
	sqlite3_close(d->h);
	d->h = NULL;
}

/* The database file exists and is 0600 before SQLite opens it: SQLite creates a missing file
 * 0644 (less the umask) and gives its -wal and -shm files the database file's mode. */
static int prepare_files(const char *dir, const char *path, char *err, size_t errlen)
{
	struct stat sb;
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST) {
		int e = -errno;

		errf(err, errlen, "state: cannot create %s: %s", dir, strerror(errno));
		return e;
	}
	if (stat(dir, &sb)) {
		int e = -errno;

		errf(err, errlen, "state: %s: %s", dir, strerror(errno));
		return e;
	}
	if (!S_ISDIR(sb.st_mode)) {
		errf(err, errlen, "state: %s is not a directory (--state-dir)", dir);
		return -ENOTDIR;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = -errno;

		errf(err, errlen, "state: cannot open %s: %s", path, strerror(errno));
		return e;
	}
	if (fchmod(fd, 0600)) {
		int e = -errno;

		close(fd);
		errf(err, errlen, "state: cannot make %s 0600: %s", path, strerror(errno));
		return e;
	}
	close(fd);
	return 0;
}

static int db_open(struct state_db *d, const char *path, bool readonly, char *err, size_t errlen)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc;

	rc = sqlite3_open_v2(path, &d->h, flags, NULL);
	if (rc != SQLITE_OK) {
		errf(err, errlen, "state: cannot open %s: %s", path,
		     d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
		sqlite3_close(d->h);
		d->h = NULL;
		return state_sqlite_err(rc);
	}
	sqlite3_extended_result_codes(d->h, 1);
	/* Another process (bizprobe state forget) may hold the write lock for a moment. */
	sqlite3_busy_timeout(d->h, 5000);
	rc =
	    sqlite3_exec(d->h,
			 readonly ? "PRAGMA query_only = 1; PRAGMA cache_size = -16384;"
				    " PRAGMA mmap_size = 268435456;"
				  /* auto_vacuum only takes on a new file (set before its first
				   * table): prune gives freed pages back with incremental_vacuum */
				  : "PRAGMA auto_vacuum = INCREMENTAL;"
				    " PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
				    /* a checkpoint (an fsync) every 16 MB of WAL, not every
				     * 4 MB: most ticks then commit without one */
				    " PRAGMA wal_autocheckpoint = 4096;"
				    " PRAGMA journal_size_limit = 33554432;"
				    " PRAGMA foreign_keys = OFF; PRAGMA secure_delete = ON;"
				    " PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456;",
			 NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		errf(err, errlen, "state: %s: %s", path, sqlite3_errmsg(d->h));
		db_close(d);
		return state_sqlite_err(rc);
	}
	return 0;
}

static int user_version(struct state_db *d, int *v)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(d->h, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : state_sqlite_err(rc);
}

static int migrate(struct state *st, char *err, size_t errlen)
{
	int v, e;

	e = user_version(&st->w, &v);
	if (e) {
		errf(err, errlen, "state: %s: cannot read its schema version: %s", st->path,
		     sqlite3_errmsg(st->w.h));
		return e;
	}
	if (v > STATE_SCHEMA_VERSION) {
		errf(err, errlen,
		     "state: %s has schema version %d, newer than this bizprobe's %d: refusing to "
		     "open it (run the bizprobe that wrote it, or use another --state-dir)",
		     st->path, v, STATE_SCHEMA_VERSION);
		return -EPROTO;
	}
	for (unsigned i = 0; i < state_n_migrations; i++) {
		const struct state_migration *m = &state_migrations[i];
		char bump[48];

		if (m->version <= v)
			continue;
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d;", m->version);
		e = state_exec(&st->w, "BEGIN IMMEDIATE");
		if (!e)
			e = state_exec(&st->w, m->sql);
		if (!e)
			e = state_exec(&st->w, bump);
		if (!e)
			e = state_exec(&st->w, "COMMIT");
		if (e) {
			errf(err, errlen,
			     "state: %s: migration to schema version %d (%s) failed: %s", st->path,
			     m->version, m->what, sqlite3_errmsg(st->w.h));
			state_exec(&st->w, "ROLLBACK");
			return e;
		}
		v = m->version;
	}
	return 0;
}

static bool valid_namespace(const char *ns)
{
	size_t n = strlen(ns);

	if (!n || n >= 48 || (ns[0] >= '0' && ns[0] <= '9'))
		return false;
	return strspn(ns, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

int state_open(const struct state_config *cfg, struct state **out, char *err, size_t errlen)
{
	struct state *st;
	unsigned batch;
	int e;

	if (out)
		*out = NULL;
	if (!cfg || !cfg->dir || !*cfg->dir || !out) {
		errf(err, errlen, "state: no state directory");
		return -EINVAL;
	}
	if (cfg->namespace && !valid_namespace(cfg->namespace)) {
		errf(err, errlen, "state: invalid namespace '%s'", cfg->namespace);
		return -EINVAL;
	}
	if (cfg->retention_days > STATE_MAX_RETENTION_DAYS) {
		errf(err, errlen, "state: retention of %u days is over the %u allowed",
		     cfg->retention_days, STATE_MAX_RETENTION_DAYS);
		return -EINVAL;
	}
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutex_init(&st->w.lock, NULL);
	pthread_mutex_init(&st->r.lock, NULL);
	pthread_mutex_init(&st->batch_lock, NULL);
	snprintf(st->ns, sizeof(st->ns), "%s", cfg->namespace ? cfg->namespace : "direct_fan");
	st->retention_days =
	    cfg->retention_days ? cfg->retention_days : STATE_DEFAULT_RETENTION_DAYS;
	st->act_days = st->retention_days + STATE_ACT_EXTRA_DAYS;
	st->act_bytes = (st->act_days + 7) / 8;
	batch = cfg->batch_events ? cfg->batch_events : STATE_DEFAULT_BATCH_EVENTS;
	e = -ENOMEM;
	st->dir = strdup(cfg->dir);
	if (!st->dir || asprintf(&st->path, "%s/%s", cfg->dir, STATE_DB_FILE) < 0 ||
	    asprintf(&st->wal_path, "%s-wal", st->path) < 0) {
		st->path = st->wal_path = NULL;
		goto fail;
	}
	if (state_batch_init(&st->batch[0], batch) || state_batch_init(&st->batch[1], batch) ||
	    state_scratch_init(&st->scratch, batch, st->act_bytes))
		goto fail;

	e = prepare_files(st->dir, st->path, err, errlen);
	if (e)
		goto fail;
	e = db_open(&st->w, st->path, false, err, errlen);
	if (e)
		goto fail;
	e = migrate(st, err, errlen);
	if (e)
		goto fail;
	e = db_open(&st->r, st->path, true, err, errlen);
	if (e)
		goto fail;
	*out = st;
	return 0;
fail:
	if (e == -ENOMEM)
		errf(err, errlen, "state: out of memory");
	state_close(st);
	return e;
}

void state_close(struct state *st)
{
	if (!st)
		return;
	if (st->w.h && st->r.h)
		state_flush(st);
	db_close(&st->r);
	db_close(&st->w);
	state_batch_free(&st->batch[0]);
	state_batch_free(&st->batch[1]);
	state_scratch_free(&st->scratch);
	state_counter_set_clear(&st->unrestored);
	state_published_free(st->pub);
	pthread_mutex_destroy(&st->w.lock);
	pthread_mutex_destroy(&st->r.lock);
	pthread_mutex_destroy(&st->batch_lock);
	free(st->dir);
	free(st->path);
	free(st->wal_path);
	free(st);
}

int state_put_blob(struct state *st, const char *key, const void *data, size_t len)
{
	struct state_batch *b;
	struct state_blob_put p = {0};
	int e = 0;

	if (!st || !key)
		return -EINVAL;
	p.key = strdup(key);
	p.len = data ? len : 0;
	if (data) {
		p.data = malloc(len ? len : 1);
		if (p.data)
			memcpy(p.data, data, len);
	}
	if (!p.key || (data && !p.data)) {
		free(p.key);
		free(p.data);
		return -ENOMEM;
	}
	pthread_mutex_lock(&st->batch_lock);
	b = &st->batch[st->active];
	for (unsigned i = 0; i < b->n_blobs; i++) {
		if (!strcmp(b->blobs[i].key, key)) {
			free(b->blobs[i].key);
			free(b->blobs[i].data);
			b->blobs[i] = p;
			goto out;
		}
	}
	if (b->n_blobs == b->cap_blobs) {
		unsigned cap = b->cap_blobs ? b->cap_blobs * 2 : 4;
		struct state_blob_put *nb = realloc(b->blobs, cap * sizeof(*nb));

		if (!nb) {
			free(p.key);
			free(p.data);
			e = -ENOMEM;
			goto out;
		}
		b->blobs = nb;
		b->cap_blobs = cap;
	}
	b->blobs[b->n_blobs++] = p;
out:
	pthread_mutex_unlock(&st->batch_lock);
	return e;
}

/* A staged value, newest first: the active batch, then the one a flush may be writing. */
static int staged_blob(struct state *st, const char *key, void **data, size_t *len, bool *found)
{
	*found = false;
	for (unsigned k = 0; k < 2 && !*found; k++) {
		struct state_batch *b = &st->batch[k == 0 ? st->active : !st->active];

		for (unsigned i = 0; i < b->n_blobs; i++) {
			if (strcmp(b->blobs[i].key, key))
				continue;
			*found = true;
			if (!b->blobs[i].data)
				return -ENOENT;
			*len = b->blobs[i].len;
			*data = NULL;
			if (!*len)
				return 0;
			*data = malloc(*len);
			if (!*data)
				return -ENOMEM;
			memcpy(*data, b->blobs[i].data, *len);
			return 0;
		}
	}
	return 0;
}

int state_get_blob(struct state *st, const char *key, void **data, size_t *len)
{
	sqlite3_stmt *s;
	bool found;
	int e, rc;

	if (!st || !key || !data || !len)
		return -EINVAL;
	*data = NULL;
	*len = 0;
	pthread_mutex_lock(&st->batch_lock);
	e = staged_blob(st, key, data, len, &found);
	pthread_mutex_unlock(&st->batch_lock);
	if (found)
		return e;

	/* Not staged: a flush resets its batch only after committing it, so the key is either
	 * still staged or committed, never in between. */
	pthread_mutex_lock(&st->r.lock);
	s = state_stmt(&st->r, SQL_BLOB_GET);
	if (!s) {
		e = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*len = (size_t)sqlite3_column_bytes(s, 0);
		if (*len) {
			*data = malloc(*len);
			if (*data)
				memcpy(*data, sqlite3_column_blob(s, 0), *len);
			else
				e = -ENOMEM;
		}
	} else {
		e = rc == SQLITE_DONE ? -ENOENT : state_sqlite_err(rc);
	}
	sqlite3_reset(s);
out:
	pthread_mutex_unlock(&st->r.lock);
	return e;
}

static int64_t count_rows(struct state_db *d, const char *table)
{
	char sql[96];
	sqlite3_stmt *s;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(d->h, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static uint64_t file_size(const char *path)
{
	struct stat sb;

	return path && !stat(path, &sb) ? (uint64_t)sb.st_size : 0;
}

int state_get_stats(struct state *st, struct state_stats *out)
{
	static const char *const tables[] = {"users",  "subscriptions", "exposures",
					     "ledger", "blobs",		"counters"};
	int64_t n[6];
	int e = 0;

	if (!st || !out)
		return -EINVAL;
	pthread_mutex_lock(&st->r.lock);
	for (unsigned i = 0; i < 6; i++) {
		n[i] = count_rows(&st->r, tables[i]);
		if (n[i] < 0)
			e = -EIO;
	}
	pthread_mutex_unlock(&st->r.lock);
	pthread_mutex_lock(&st->batch_lock);
	*out = st->stats;
	pthread_mutex_unlock(&st->batch_lock);
	out->db_bytes = file_size(st->path) + file_size(st->wal_path);
	out->users = n[0] > 0 ? (uint64_t)n[0] : 0;
	out->subscriptions = n[1] > 0 ? (uint64_t)n[1] : 0;
	out->exposures = n[2] > 0 ? (uint64_t)n[2] : 0;
	out->ledger_rows = n[3] > 0 ? (uint64_t)n[3] : 0;
	out->blobs = n[4] > 0 ? (uint64_t)n[4] : 0;
	out->counters = n[5] > 0 ? (uint64_t)n[5] : 0;
	return e;
}
