// SPDX-License-Identifier: MIT
/*
 * `bizprobe state forget --user ID`: erases one person from the state store (GDPR). The id is
 * pseudonymized with the salt the runs use, and the pseudonym is erased from every store: the
 * one --state-dir names, else each under /var/lib/bizprobe. A store that a running bizprobe
 * holds is erased by that process (its unflushed batch may hold the user too): the pseudonym
 * goes into the store's forget/ directory and the command waits until the run took it. A store
 * nobody runs on is erased here, directly.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bizprobe/identity.h"
#include "bizprobe/state.h"
#include "cli.h"
#include "run_state.h"

#define HANDOFF_WAIT_MS 10000 /* a run takes its queue every second */

static bool has_store(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;

	return snprintf(path, sizeof(path), "%s/%s", dir, STATE_DB_FILE) < (int)sizeof(path) &&
	       !stat(path, &st);
}

/* Hands the pseudonym to the run that holds dir; waits until it is taken. */
static int hand_off(const char *dir, const char *pseudonym)
{
	char qdir[PATH_MAX], tmp[PATH_MAX + 8], file[PATH_MAX + 8];
	FILE *f;

	snprintf(qdir, sizeof(qdir), "%s/%s", dir, STATE_FORGET_DIR);
	if (mkdir(qdir, 0700) && errno != EEXIST)
		return -errno;
	snprintf(file, sizeof(file), "%s/%s", qdir, pseudonym);
	snprintf(tmp, sizeof(tmp), "%s/.%s", qdir, pseudonym);
	f = fopen(tmp, "we");
	if (!f || fclose(f) || rename(tmp, file))
		return -errno;
	for (int waited = 0; waited < HANDOFF_WAIT_MS; waited += 50) {
		if (access(file, F_OK))
			return 0;
		usleep(50 * 1000);
	}
	return -ETIMEDOUT;
}

static int erase_directly(const char *dir, const char *pseudonym)
{
	struct state_config cfg = {.dir = dir};
	struct state *st;
	char err[512];
	int rc = state_open(&cfg, &st, err, sizeof(err));

	if (rc) {
		fprintf(stderr, "bizprobe state forget: %s\n", err);
		return rc;
	}
	rc = state_forget_user(st, pseudonym);
	state_close(st);
	return rc;
}

/* 0 erased, 1 not there, -1 failed; prints what happened. */
static int forget_in(const char *dir, const char *pseudonym)
{
	int lock = run_state_lock(dir), rc;

	if (lock == -EBUSY) {
		rc = hand_off(dir, pseudonym);
		if (rc) {
			fprintf(stderr,
				"bizprobe state forget: %s: the running bizprobe did not take "
				"the request (%s); it stays queued in %s/%s\n",
				dir, strerror(-rc), dir, STATE_FORGET_DIR);
			return -1;
		}
		printf("%s: erased by the running bizprobe\n", dir);
		return 0;
	}
	if (lock < 0) {
		fprintf(stderr, "bizprobe state forget: %s: %s\n", dir, strerror(-lock));
		return -1;
	}
	rc = erase_directly(dir, pseudonym);
	close(lock);
	if (rc == -ENOENT) {
		printf("%s: no such user\n", dir);
		return 1;
	}
	if (rc)
		return -1;
	printf("%s: erased\n", dir);
	return 0;
}

static int forget(const struct cli_opts *o)
{
	char salt_file[PATH_MAX], err[512] = "", pseudonym[PSEUDONYM_LEN];
	const char *salt = getenv("USER_TRACKING_SALT");
	struct pseudonymizer *p;
	int failed = 0, erased = 0, stores = 0;

	if (!o->forget_user || !*o->forget_user) {
		fprintf(stderr, "bizprobe state forget: --user ID is required\n");
		return 2;
	}
	snprintf(salt_file, sizeof(salt_file), "%s/salt",
		 o->state_dir ? o->state_dir : STATE_DEFAULT_DIR);
	if (o->salt_file)
		snprintf(salt_file, sizeof(salt_file), "%s", o->salt_file);
	/* Never make a salt here: a new one would pseudonymize the id to nobody. */
	if ((!salt || !*salt) && access(salt_file, R_OK)) {
		fprintf(stderr,
			"bizprobe state forget: no USER_TRACKING_SALT and no salt file %s: "
			"give the salt the runs use\n",
			salt_file);
		return 2;
	}
	p = pseudonymizer_new(salt, salt_file, err, sizeof(err));
	if (!p) {
		fprintf(stderr, "bizprobe state forget: %s\n", err);
		return 2;
	}
	pseudonymize(p, o->forget_user, strlen(o->forget_user), pseudonym);
	pseudonymizer_free(p);

	if (o->state_dir) {
		int rc = has_store(o->state_dir) ? forget_in(o->state_dir, pseudonym) : 1;

		stores = has_store(o->state_dir);
		failed = rc < 0;
		erased = rc == 0;
	} else {
		DIR *d = opendir(STATE_DEFAULT_DIR);
		struct dirent *de;

		if (has_store(STATE_DEFAULT_DIR)) {
			int rc = forget_in(STATE_DEFAULT_DIR, pseudonym);

			stores++;
			failed += rc < 0;
			erased += rc == 0;
		}

		while (d && (de = readdir(d))) {
			char dir[PATH_MAX];
			int rc;

			if (de->d_name[0] == '.' ||
			    snprintf(dir, sizeof(dir), "%s/%s", STATE_DEFAULT_DIR, de->d_name) >=
				(int)sizeof(dir) ||
			    !has_store(dir))
				continue;
			stores++;
			rc = forget_in(dir, pseudonym);
			failed += rc < 0;
			erased += rc == 0;
		}
		if (d)
			closedir(d);
	}
	if (!stores)
		printf("no state store under %s\n",
		       o->state_dir ? o->state_dir : STATE_DEFAULT_DIR);
	explicit_bzero(pseudonym, sizeof(pseudonym));
	(void)erased;
	return failed ? 1 : 0;
}

int cmd_state(int argc, char **argv)
{
	struct cli_opts o = {0};
	int rc;

	if (argc < 2 || strcmp(argv[1], "forget")) {
		fprintf(stderr, "usage: bizprobe state forget --user ID [--state-dir DIR] "
				"[--salt-file FILE]\n");
		return 2;
	}
	rc = cli_parse("state forget", argc - 1, argv + 1, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	return forget(&o);
}
