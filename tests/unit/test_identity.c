// SPDX-License-Identifier: MIT
/*
 * identity: pseudonyms against HMAC-SHA256 computed here with OpenSSL's one-shot HMAC(), the salt
 * file's creation, reuse and refusals, JWTs built and signed here (base64url by EVP_EncodeBlock,
 * translated), cookies, address prefixes and opt-out headers.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bizprobe/identity.h"

#define NOW	   1700000000LL
#define SECRET	   "test-jwt-secret-0123456789"
#define SECRET_LEN (sizeof(SECRET) - 1)

/* --- ground truth --- */

static void expected_hmac_hex(const void *key, size_t key_len, const void *msg, size_t len,
			      char hex[PSEUDONYM_LEN])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	assert_non_null(HMAC(EVP_sha256(), key, (int)key_len, msg, len, mac, &mac_len));
	assert_int_equal(mac_len, 32);
	for (unsigned i = 0; i < mac_len; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
}

/* base64url of in[0..len) into out (NUL-terminated), with or without padding. */
static void b64url(const void *in, size_t len, bool pad, char *out)
{
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);

	for (int i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	while (!pad && n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
}

/* "b64(header).b64(payload).b64(HMAC-SHA256(secret, first two parts))"; no signature part's
 * content when secret is NULL (an empty one, as alg "none" has). Caller frees. */
static char *make_token(const char *header, const char *payload, const char *secret, bool pad)
{
	size_t hl = strlen(header), pl = strlen(payload);
	char *t = malloc(2 * (hl + pl) + 128);
	unsigned char mac[32];
	unsigned int mac_len = 0;
	size_t n;

	assert_non_null(t);
	b64url(header, hl, pad, t);
	n = strlen(t);
	t[n++] = '.';
	b64url(payload, pl, pad, t + n);
	n += strlen(t + n);
	if (secret)
		assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)t,
				     n, mac, &mac_len));
	t[n++] = '.';
	t[n] = '\0';
	if (secret)
		b64url(mac, mac_len, pad, t + n);
	return t;
}

static enum jwt_status decode(const char *token, const char *secret, int64_t now,
			      struct json_doc **out)
{
	return jwt_decode(token, strlen(token), (const uint8_t *)secret,
			  secret ? strlen(secret) : 0, now, out);
}

static enum jwt_status decode_status(const char *token, const char *secret)
{
	struct json_doc *d = (struct json_doc *)&d; /* must be reset to NULL on failure */
	enum jwt_status st = decode(token, secret, NOW, &d);

	if (st != JWT_OK)
		assert_null(d);
	json_doc_free(d);
	return st;
}

static bool is_lower_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* --- pseudonyms --- */

static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int setup_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/bizprobe-identity-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void tmp_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_pseudonym_salt_string(void **state)
{
	char err[256], got[PSEUDONYM_LEN], want[PSEUDONYM_LEN], other[PSEUDONYM_LEN];
	struct pseudonymizer *p = pseudonymizer_new("s3cret-salt", NULL, err, sizeof(err));

	assert_non_null(p);
	pseudonymize(p, "user-42", 7, got);
	expected_hmac_hex("s3cret-salt", 11, "user-42", 7, want);
	assert_string_equal(got, want);
	assert_true(is_lower_hex64(got));
	/* len bounds the id, NULs included: ids are bytes, not C strings. */
	pseudonymize(p, "ab\0cd", 5, got);
	expected_hmac_hex("s3cret-salt", 11, "ab\0cd", 5, want);
	assert_string_equal(got, want);
	pseudonymize(p, "user-42xyz", 7, other);
	expected_hmac_hex("s3cret-salt", 11, "user-42", 7, want);
	assert_string_equal(other, want);
	pseudonymize(p, "", 0, got);
	expected_hmac_hex("s3cret-salt", 11, "", 0, want);
	assert_string_equal(got, want);
	pseudonymize(p, "user-43", 7, got);
	assert_string_not_equal(got, other);
	pseudonymizer_free(p);
	pseudonymizer_free(NULL);
	/* NULL pseudonymizer: "", which is no pseudonym, rather than a crash. */
	pseudonymize(NULL, "x", 1, got);
	assert_string_equal(got, "");
}

static void test_pseudonym_salt_file_created_and_reused(void **state)
{
	char err[512], path[256], dir[256], a[PSEUDONYM_LEN], b[PSEUDONYM_LEN], want[PSEUDONYM_LEN];
	struct pseudonymizer *p1, *p2;
	uint8_t salt[64];
	struct stat st;
	ssize_t n;
	int fd;

	tmp_path(path, sizeof(path), "state/bizprobe/salt");
	p1 = pseudonymizer_new(NULL, path, err, sizeof(err));
	assert_non_null(p1);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 32);
	tmp_path(dir, sizeof(dir), "state");
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	tmp_path(dir, sizeof(dir), "state/bizprobe");
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, salt, sizeof(salt));
	close(fd);
	assert_int_equal(n, 32);
	pseudonymize(p1, "alice@example.com", 17, a);
	expected_hmac_hex(salt, 32, "alice@example.com", 17, want);
	assert_string_equal(a, want);

	/* A restart reads the same salt: same pseudonym, file untouched. */
	p2 = pseudonymizer_new("", path, err, sizeof(err));
	assert_non_null(p2);
	pseudonymize(p2, "alice@example.com", 17, b);
	assert_string_equal(a, b);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 32);
	pseudonymizer_free(p1);
	pseudonymizer_free(p2);

	/* No temporary file left next to it. */
	tmp_path(dir, sizeof(dir), "state/bizprobe");
	assert_int_equal(count_entries(dir), 1);
}

/* bizprobe instances starting at once on a new salt file all end up with the one salt. */
static void test_pseudonym_salt_file_race(void **state)
{
	enum { RACERS = 8 };
	char path[256], mine[RACERS][PSEUDONYM_LEN], want[PSEUDONYM_LEN];
	int go[2], res[2], status;
	pid_t pids[RACERS];
	uint8_t salt[32];
	int fd;

	tmp_path(path, sizeof(path), "race/salt");
	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(res), 0);
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			char err[512], out[PSEUDONYM_LEN] = "";
			struct pseudonymizer *p;
			bool ok;
			char c;

			close(go[1]);
			/* Released together when the parent closes its end. */
			if (read(go[0], &c, 1) != 0)
				_exit(2);
			p = pseudonymizer_new(NULL, path, err, sizeof(err));
			if (p)
				pseudonymize(p, "dave", 4, out);
			ok = p && write(res[1], out, sizeof(out)) == sizeof(out);
			pseudonymizer_free(p);
			_exit(ok ? 0 : 1);
		}
	}
	close(go[0]);
	close(go[1]);
	close(res[1]);
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(read(res[0], mine[i], PSEUDONYM_LEN), PSEUDONYM_LEN);
	}
	close(res[0]);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, salt, sizeof(salt)), 32);
	close(fd);
	expected_hmac_hex(salt, 32, "dave", 4, want);
	for (int i = 0; i < RACERS; i++)
		assert_string_equal(mine[i], want);
	/* The losers' temporary files are gone too. */
	tmp_path(path, sizeof(path), "race");
	assert_int_equal(count_entries(path), 1);
}

static void test_pseudonym_salt_file_given(void **state)
{
	char err[512], path[256], link_path[256], got[PSEUDONYM_LEN], want[PSEUDONYM_LEN];
	static const char salt[] = "operator-chosen salt\n";
	struct pseudonymizer *p;

	tmp_path(path, sizeof(path), "given");
	write_file(path, salt, sizeof(salt) - 1, 0600);
	p = pseudonymizer_new(NULL, path, err, sizeof(err));
	assert_non_null(p);
	pseudonymize(p, "u1", 2, got);
	/* Every byte is the salt, the newline included: no reinterpretation. */
	expected_hmac_hex(salt, sizeof(salt) - 1, "u1", 2, want);
	assert_string_equal(got, want);
	pseudonymizer_free(p);

	/* 0400 is owner-only as well. */
	assert_int_equal(chmod(path, 0400), 0);
	p = pseudonymizer_new(NULL, path, err, sizeof(err));
	assert_non_null(p);
	pseudonymizer_free(p);

	/* A symlink is followed and its target checked (Kubernetes mounts secrets as links). */
	tmp_path(link_path, sizeof(link_path), "link");
	assert_int_equal(symlink(path, link_path), 0);
	p = pseudonymizer_new(NULL, link_path, err, sizeof(err));
	assert_non_null(p);
	pseudonymize(p, "u1", 2, got);
	assert_string_equal(got, want);
	pseudonymizer_free(p);
	assert_int_equal(chmod(path, 0644), 0);
	assert_null(pseudonymizer_new(NULL, link_path, err, sizeof(err)));
	assert_non_null(strstr(err, link_path));
}

static void assert_refused(const char *path, const char *fix)
{
	char err[512];
	struct pseudonymizer *p;

	memset(err, 0, sizeof(err));
	p = pseudonymizer_new(NULL, path, err, sizeof(err));
	assert_null(p);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, fix));
}

static void test_pseudonym_salt_file_refused(void **state)
{
	char path[256], fix[300], small[16];
	static const uint8_t salt[32] = {1, 2, 3};
	mode_t modes[] = {0644, 0640, 0604, 0660, 0620, 0602, 0700 | 0004};
	struct pseudonymizer *p;

	tmp_path(path, sizeof(path), "loose-salt");
	snprintf(fix, sizeof(fix), "chmod 600 %s", path);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		write_file(path, salt, sizeof(salt), modes[i]);
		assert_refused(path, fix);
	}
	/* Refused, not rewritten: the operator's file keeps its bytes and mode. */
	{
		struct stat st;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0704);
		assert_int_equal(st.st_size, 32);
	}

	/* A directory, a FIFO (which must not block the open) and an empty file. */
	tmp_path(path, sizeof(path), "a-directory");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_refused(path, "not a regular file");
	tmp_path(path, sizeof(path), "a-fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_refused(path, "not a regular file");
	tmp_path(path, sizeof(path), "empty");
	write_file(path, "", 0, 0600);
	assert_refused(path, "empty");

	/* A parent that is a file cannot become a directory. */
	tmp_path(path, sizeof(path), "empty/salt");
	assert_refused(path, "cannot open salt file");

	/* A short err buffer is cut, not overrun. */
	tmp_path(path, sizeof(path), "loose-salt");
	memset(small, 'x', sizeof(small));
	p = pseudonymizer_new(NULL, path, small, 8);
	assert_null(p);
	assert_int_equal(strlen(small), 7);
	assert_int_equal(small[8], 'x');
	/* No err buffer at all. */
	assert_null(pseudonymizer_new(NULL, path, NULL, 0));
}

static void test_pseudonym_env_salt_wins_over_file(void **state)
{
	char err[512], path[256], env[PSEUDONYM_LEN], file[PSEUDONYM_LEN], want[PSEUDONYM_LEN];
	struct pseudonymizer *pe, *pf;

	tmp_path(path, sizeof(path), "env-vs-file");
	pe = pseudonymizer_new("from-env", path, err, sizeof(err));
	assert_non_null(pe);
	/* The salt string is used and the file is neither read nor made. */
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
	pf = pseudonymizer_new(NULL, path, err, sizeof(err));
	assert_non_null(pf);
	pseudonymize(pe, "bob", 3, env);
	pseudonymize(pf, "bob", 3, file);
	expected_hmac_hex("from-env", 8, "bob", 3, want);
	assert_string_equal(env, want);
	assert_true(is_lower_hex64(file));
	assert_string_not_equal(env, file);
	pseudonymizer_free(pe);
	pseudonymizer_free(pf);
}

static void test_pseudonym_process_salt(void **state)
{
	char err[64], a1[PSEUDONYM_LEN], a2[PSEUDONYM_LEN], b[PSEUDONYM_LEN];
	struct pseudonymizer *p = pseudonymizer_new(NULL, NULL, err, sizeof(err));
	struct pseudonymizer *q = pseudonymizer_new("", "", err, sizeof(err));

	assert_non_null(p);
	assert_non_null(q);
	pseudonymize(p, "carol", 5, a1);
	pseudonymize(p, "carol", 5, a2);
	pseudonymize(q, "carol", 5, b);
	assert_true(is_lower_hex64(a1));
	assert_string_equal(a1, a2);
	/* Two random salts (collision odds 2^-256). */
	assert_string_not_equal(a1, b);
	pseudonymizer_free(p);
	pseudonymizer_free(q);
}

/* --- JWT --- */

static void test_jwt_hs256_verified(void **state)
{
	const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	char payload[128];
	struct json_doc *d = NULL;
	char *t;
	int64_t exp = 0;

	snprintf(payload, sizeof(payload), "{\"sub\":\"user-1\",\"exp\":%lld}", NOW + 60);
	t = make_token(hdr, payload, SECRET, false);
	assert_null(strchr(t, '='));
	assert_int_equal(decode(t, SECRET, NOW, &d), JWT_OK);
	assert_non_null(d);
	assert_string_equal(json_string(json_get(json_doc_root(d), "sub")), "user-1");
	assert_true(json_int64(json_get(json_doc_root(d), "exp"), &exp));
	assert_int_equal(exp, NOW + 60);
	json_doc_free(d);
	/* payload NULL: verification only. */
	assert_int_equal(jwt_decode(t, strlen(t), (const uint8_t *)SECRET, SECRET_LEN, NOW, NULL),
			 JWT_OK);
	/* Only len bytes are read: a token inside a larger header value. */
	{
		size_t n = strlen(t);
		char *longer = malloc(n + 8);

		memcpy(longer, t, n);
		memcpy(longer + n, "; x=1", 6);
		assert_int_equal(
		    jwt_decode(longer, n, (const uint8_t *)SECRET, SECRET_LEN, NOW, NULL), JWT_OK);
		free(longer);
	}
	free(t);
}

static void test_jwt_padding(void **state)
{
	/* Lengths 28, 17 and 32 (the MAC) are 1, 2 and 2 mod 3: "==", "=" and "=". */
	const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWTx\"}";
	const char *payload = "{\"sub\":\"user-22\"}";
	struct json_doc *d = NULL;
	char *padded = make_token(hdr, payload, SECRET, true);
	char *bare = make_token(hdr, payload, SECRET, false);
	char *dot1, *dot2;

	assert_int_equal(strlen(hdr) % 3, 1);
	assert_int_equal(strlen(payload) % 3, 2);
	dot1 = strchr(padded, '.');
	dot2 = strchr(dot1 + 1, '.');
	assert_int_equal(dot1[-1], '=');
	assert_int_equal(dot1[-2], '=');
	assert_int_equal(dot2[-1], '=');
	assert_int_equal(padded[strlen(padded) - 1], '=');
	assert_null(strchr(bare, '='));
	assert_int_equal(decode(padded, SECRET, NOW, &d), JWT_OK);
	assert_string_equal(json_string(json_get(json_doc_root(d), "sub")), "user-22");
	json_doc_free(d);
	assert_int_equal(decode_status(bare, SECRET), JWT_OK);
	assert_int_equal(decode_status(padded, NULL), JWT_OK);
	assert_int_equal(decode_status(bare, NULL), JWT_OK);
	free(padded);
	free(bare);
}

static void test_jwt_no_secret_reads_any_alg(void **state)
{
	const char *hdrs[] = {
	    "{\"alg\":\"HS256\"}",
	    "{\"alg\":\"none\"}",
	    "{\"alg\":\"RS256\",\"kid\":\"k1\"}",
	    "{\"typ\":\"JWT\"}",
	    "{}",
	};
	struct json_doc *d = NULL;
	char *t;

	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		/* Signed with another key, or not signed at all. */
		t = make_token(hdrs[i], "{\"uid\":\"u-9\",\"exp\":1}", i % 2 ? NULL : "k", false);
		d = NULL;
		assert_int_equal(decode(t, NULL, NOW, &d), JWT_OK);
		assert_string_equal(json_string(json_get(json_doc_root(d), "uid")), "u-9");
		json_doc_free(d);
		free(t);
	}
	/* An RS256 signature is 256 bytes: its length is no concern without a secret. */
	{
		uint8_t sig[256];
		char *tok = malloc(1024);

		memset(sig, 0xa5, sizeof(sig));
		t = make_token("{\"alg\":\"RS256\"}", "{\"sub\":\"s\"}", NULL, false);
		strcpy(tok, t);
		b64url(sig, sizeof(sig), false, tok + strlen(tok));
		assert_int_equal(decode_status(tok, NULL), JWT_OK);
		assert_int_equal(decode_status(tok, SECRET), JWT_UNSUPPORTED_ALG);
		free(tok);
		free(t);
	}
	/* Still JSON objects, even unverified. */
	t = make_token("[\"alg\"]", "{\"sub\":\"s\"}", NULL, false);
	assert_int_equal(decode_status(t, NULL), JWT_MALFORMED);
	free(t);
	t = make_token("{\"alg\":\"none\"}", "\"just a string\"", NULL, false);
	assert_int_equal(decode_status(t, NULL), JWT_MALFORMED);
	free(t);
}

static void test_jwt_alg_refused_with_secret(void **state)
{
	const char *hdrs[] = {
	    "{\"alg\":\"none\"}",
	    "{\"alg\":\"None\"}",
	    "{\"alg\":\"HS512\"}",
	    "{\"alg\":\"HS384\"}",
	    "{\"alg\":\"RS256\"}",
	    "{\"alg\":\"ES256\"}",
	    "{\"alg\":\"hs256\"}",
	    "{\"alg\":\"HS256 \"}",
	    "{\"alg\":\"\"}",
	    "{\"typ\":\"JWT\"}",
	    "{\"alg\":null}",
	    "{\"alg\":256}",
	    "{\"alg\":[\"HS256\"]}",
	    "{\"x\":{\"alg\":\"HS256\"}}",
	    /* The last "alg" wins, as JSON.parse has it. */
	    "{\"alg\":\"HS256\",\"alg\":\"none\"}",
	};

	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		/* alg "none" with an empty signature, and every other header signed with the
		 * right key: the algorithm alone refuses them. */
		char *t = make_token(hdrs[i], "{\"sub\":\"x\"}", i == 0 ? NULL : SECRET, false);

		assert_int_equal(decode_status(t, SECRET), JWT_UNSUPPORTED_ALG);
		assert_int_equal(decode_status(t, NULL), JWT_OK);
		free(t);
	}
}

static void test_jwt_bad_signature(void **state)
{
	const char *hdr = "{\"alg\":\"HS256\"}";
	char *t = make_token(hdr, "{\"sub\":\"alice\"}", SECRET, false);
	char *forged = make_token(hdr, "{\"sub\":\"admin\"}", "guess", false);
	char *sig = strrchr(t, '.') + 1;
	char *spliced = malloc(strlen(t) + strlen(forged));
	size_t n = strlen(t);

	assert_int_equal(decode_status(t, SECRET), JWT_OK);
	/* Wrong key; a secret that is a prefix of the right one. */
	assert_int_equal(decode_status(t, "another-secret"), JWT_BAD_SIGNATURE);
	assert_int_equal(jwt_decode(t, n, (const uint8_t *)SECRET, SECRET_LEN - 1, NOW, NULL),
			 JWT_BAD_SIGNATURE);
	/* A NULL secret with a length fails closed. */
	assert_int_equal(jwt_decode(t, n, NULL, 5, NOW, NULL), JWT_BAD_SIGNATURE);
	/* Another payload under the first token's signature. */
	strcpy(spliced, forged);
	strcpy(strrchr(spliced, '.') + 1, sig);
	assert_int_equal(decode_status(spliced, SECRET), JWT_BAD_SIGNATURE);
	assert_int_equal(decode_status(spliced, NULL), JWT_OK);
	/* One signature character changed. */
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	assert_int_equal(decode_status(t, SECRET), JWT_BAD_SIGNATURE);
	sig[0] = '\0';
	assert_int_equal(decode_status(t, SECRET), JWT_BAD_SIGNATURE); /* empty signature */
	free(t);
	/* The right MAC cut to 16 bytes, or with a byte more. */
	for (size_t cut = 0; cut < 2; cut++) {
		unsigned char mac[33];
		unsigned int mac_len = 0;
		char *dot;

		t = make_token(hdr, "{\"sub\":\"alice\"}", NULL, false);
		dot = strrchr(t, '.');
		assert_non_null(HMAC(EVP_sha256(), SECRET, (int)SECRET_LEN, (unsigned char *)t,
				     (size_t)(dot - t), mac, &mac_len));
		mac[32] = 0;
		b64url(mac, cut ? 33 : 16, false, dot + 1);
		assert_int_equal(decode_status(t, SECRET), JWT_BAD_SIGNATURE);
		b64url(mac, 32, false, dot + 1);
		assert_int_equal(decode_status(t, SECRET), JWT_OK);
		free(t);
	}
	free(forged);
	free(spliced);
}

/* Any one character changed, anywhere, and a verified token is no longer OK. */
static void test_jwt_every_mutation_refused(void **state)
{
	char *t = make_token("{\"alg\":\"HS256\"}", "{\"sub\":\"u\",\"n\":12345}", SECRET, false);
	static const char repl[] = "AB_-.=+/ \"\\{}\x01\xff";
	size_t n = strlen(t);

	for (size_t i = 0; i < n; i++) {
		char orig = t[i];

		for (size_t k = 0; k < sizeof(repl) - 1; k++) {
			if (repl[k] == orig)
				continue;
			t[i] = repl[k];
			assert_int_not_equal(
			    jwt_decode(t, n, (const uint8_t *)SECRET, SECRET_LEN, NOW, NULL),
			    JWT_OK);
		}
		t[i] = orig;
	}
	assert_int_equal(decode_status(t, SECRET), JWT_OK);
	free(t);
}

static void test_jwt_expiry(void **state)
{
	struct {
		const char *payload;
		enum jwt_status with_secret;
	} cases[] = {
	    {"{\"exp\":1699999999}", JWT_EXPIRED},
	    {"{\"exp\":1700000000}", JWT_EXPIRED}, /* exp == now: no longer before it */
	    {"{\"exp\":1700000001}", JWT_OK},
	    {"{\"exp\":-5}", JWT_EXPIRED},
	    {"{\"exp\":9223372036854775807}", JWT_OK},
	    {"{\"sub\":\"no exp\"}", JWT_OK},
	    {"{\"nested\":{\"exp\":1}}", JWT_OK},
	    /* Not comparable: refused, not taken as never expiring. */
	    {"{\"exp\":\"1800000000\"}", JWT_MALFORMED},
	    {"{\"exp\":1800000000.5}", JWT_MALFORMED},
	    {"{\"exp\":1e400}", JWT_MALFORMED},
	    {"{\"exp\":99999999999999999999999999}", JWT_MALFORMED},
	    {"{\"exp\":-99999999999999999999999999}", JWT_MALFORMED},
	    {"{\"exp\":null}", JWT_MALFORMED},
	    {"{\"exp\":true}", JWT_MALFORMED},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *t = make_token("{\"alg\":\"HS256\"}", cases[i].payload, SECRET, false);

		assert_int_equal(decode_status(t, SECRET), cases[i].with_secret);
		/* Unverified reads leave expiry to the app. */
		assert_int_equal(decode_status(t, NULL), JWT_OK);
		free(t);
	}
}

static void test_jwt_shapes(void **state)
{
	struct {
		const char *token;
		/* Signatures are checked before the payload's JSON is parsed. */
		enum jwt_status unverified, verified;
	} cases[] = {
	    {"", JWT_MALFORMED, JWT_MALFORMED},
	    {".", JWT_MALFORMED, JWT_MALFORMED},
	    {"..", JWT_MALFORMED, JWT_MALFORMED},
	    {"...", JWT_MALFORMED, JWT_MALFORMED},
	    {"....", JWT_MALFORMED, JWT_MALFORMED},
	    {"abc", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e30", JWT_MALFORMED, JWT_MALFORMED},	      /* two parts */
	    {"eyJhbGciOiJIUzI1NiJ9.e30.x.y", JWT_MALFORMED, JWT_MALFORMED},   /* four */
	    {"eyJhbGciOiJIUzI1NiJ9.e30.x.y.z", JWT_MALFORMED, JWT_MALFORMED}, /* five: JWE */
	    {".e30.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9..", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9..abc", JWT_MALFORMED, JWT_MALFORMED},
	    /* Controls: {"alg":"HS256"}.{} with no signature, padded or not, and {}.{}. */
	    {"eyJhbGciOiJIUzI1NiJ9.e30.", JWT_OK, JWT_BAD_SIGNATURE},
	    {"eyJhbGciOiJIUzI1NiJ9.e30=.", JWT_OK, JWT_BAD_SIGNATURE},
	    {"e30.e30.", JWT_OK, JWT_UNSUPPORTED_ALG},
	    {"eyJhbGciOiJIUzI1NiJ9.eyAgfQ==.", JWT_OK, JWT_BAD_SIGNATURE}, /* "{  }" */
	    {"eyJhbGciOiJIUzI1NiJ9.eyAgfQ.", JWT_OK, JWT_BAD_SIGNATURE},
	    {"eyJhbGciOiJIUzI1NiJ9.eyAgfQ=.", JWT_MALFORMED, JWT_MALFORMED}, /* partial padding */
	    {"eyJhbGciOiJIUzI1NiJ9.eyAgfQ===.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e30==.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e=30.", JWT_MALFORMED, JWT_MALFORMED}, /* padding inside */
	    {"eyJhbGciOiJIUzI1NiJ9.e30.===", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e30.=", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e30*.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e3+.", JWT_MALFORMED, JWT_MALFORMED}, /* base64, not base64url */
	    {"eyJhbGciOiJIUzI1NiJ9.e3/.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e30.a*b", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9 .e30.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e3 0.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.e.", JWT_MALFORMED, JWT_MALFORMED}, /* one character mod 4 */
	    /* "{}" with a stray low bit */
	    {"eyJhbGciOiJIUzI1NiJ9.e31.", JWT_MALFORMED, JWT_MALFORMED},
	    {"eyJhbGciOiJIUzI1NiJ9.W10.", JWT_MALFORMED, JWT_BAD_SIGNATURE},	/* [] */
	    {"eyJhbGciOiJIUzI1NiJ9.MQ.", JWT_MALFORMED, JWT_BAD_SIGNATURE},	/* 1 */
	    {"eyJhbGciOiJIUzI1NiJ9.bnVsbA.", JWT_MALFORMED, JWT_BAD_SIGNATURE}, /* null */
	    {"eyJhbGciOiJIUzI1NiJ9.e30gZTMw.", JWT_MALFORMED,
	     JWT_BAD_SIGNATURE}, /* "{} e30": trailing bytes */
	    {"eyJhbGciOiJIUzI1NiJ9.eyJhIjox.", JWT_MALFORMED, JWT_BAD_SIGNATURE}, /* {"a":1 cut */
	    {"bm90IGpzb24.e30.", JWT_MALFORMED, JWT_MALFORMED},			  /* "not json" */
	    {"W10.e30.", JWT_MALFORMED, JWT_MALFORMED},				  /* header [] */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum jwt_status st = decode_status(cases[i].token, NULL);

		if (st != cases[i].unverified)
			fail_msg("case %zu \"%s\": %s", i, cases[i].token, jwt_status_str(st));
		st = decode_status(cases[i].token, SECRET);
		if (st != cases[i].verified)
			fail_msg("case %zu \"%s\" verified: %s", i, cases[i].token,
				 jwt_status_str(st));
	}
	assert_int_equal(jwt_decode(NULL, 10, NULL, 0, NOW, NULL), JWT_MALFORMED);
	/* A NUL inside the given length. */
	assert_int_equal(jwt_decode("e30.e\0.", 7, NULL, 0, NOW, NULL), JWT_MALFORMED);
}

static void test_jwt_size_cap(void **state)
{
	/* Header {"alg":"HS256"} is 20 characters, the MAC 43, two dots: the payload's
	 * base64url may take 8192 - 65 characters, i.e. JSON of 6095 bytes (8127 = 4*2031 + 3). */
	size_t fit = 6095;
	char *payload = malloc(fit + 2);
	char *t;

	for (int grow = 0; grow < 2; grow++) {
		size_t json_len = fit + (size_t)grow;

		memset(payload, 'a', json_len);
		memcpy(payload, "{\"p\":\"", 6);
		memcpy(payload + json_len - 2, "\"}", 3);
		t = make_token("{\"alg\":\"HS256\"}", payload, SECRET, false);
		assert_int_equal(strlen(t), 8192 + (size_t)grow);
		assert_int_equal(decode_status(t, SECRET), grow ? JWT_MALFORMED : JWT_OK);
		assert_int_equal(decode_status(t, NULL), grow ? JWT_MALFORMED : JWT_OK);
		free(t);
	}
	free(payload);
}

/* Random bytes and random dots: any status, never a crash or a leak (under ASan/valgrind). */
static void test_jwt_hostile_bytes(void **state)
{
	static const char alphabet[] = "eyJ0e30.=-_AZaz09+/\"{}";
	uint8_t buf[300], rnd[300];

	for (int round = 0; round < 20000; round++) {
		size_t len;

		assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
		len = rnd[0] % sizeof(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] =
			    round % 2 ? rnd[i] : (uint8_t)alphabet[rnd[i] % (sizeof(alphabet) - 1)];
		for (int s = 0; s < 2; s++) {
			struct json_doc *d = (struct json_doc *)&d;
			enum jwt_status st =
			    jwt_decode((const char *)buf, len, (const uint8_t *)SECRET,
				       s ? SECRET_LEN : 0, NOW, &d);

			assert_true(st <= JWT_OK && st >= JWT_EXPIRED);
			if (st != JWT_OK)
				assert_null(d);
			json_doc_free(d);
		}
	}
}

static void test_jwt_status_str(void **state)
{
	assert_string_equal(jwt_status_str(JWT_OK), "ok");
	assert_string_equal(jwt_status_str(JWT_MALFORMED), "malformed");
	assert_string_equal(jwt_status_str(JWT_BAD_SIGNATURE), "bad signature");
	assert_string_equal(jwt_status_str(JWT_UNSUPPORTED_ALG), "unsupported alg");
	assert_string_equal(jwt_status_str(JWT_EXPIRED), "expired");
	assert_string_equal(jwt_status_str((enum jwt_status)7), "unknown");
}

/* --- cookies --- */

static void test_cookie_get(void **state)
{
	struct {
		const char *header, *name, *value; /* value NULL: -ENOENT */
	} cases[] = {
	    {"a=1; b=2; c=\"x\"", "a", "1"},
	    {"a=1; b=2; c=\"x\"", "b", "2"},
	    {"a=1; b=2; c=\"x\"", "c", "x"},
	    {"a=1;b=2", "b", "2"},
	    {"  a = 1 ;\tb\t=\t2\t; ", "b", "2"},
	    {"a=1; a=2", "a", "1"}, /* first match wins */
	    {"A=1; a=2", "a", "2"}, /* names are case-sensitive */
	    {"ab=1; a=2", "a", "2"},
	    {"a=1", "ab", NULL},
	    {"xa=1", "a", NULL},
	    {"a; b=2", "a", NULL}, /* no "=": no name */
	    {"a; b=2", "b", "2"},
	    {"a=; b=2", "a", ""},
	    {"a=\"\"", "a", ""},
	    {"a=\"", "a", "\""}, /* a lone quote is a value */
	    {"a=\"x", "a", "\"x"},
	    {"a=x\"", "a", "x\""},
	    {"a=\"x y\"", "a", "x y"},
	    {"tok=eyJ.a=b.c==", "tok", "eyJ.a=b.c=="}, /* "=" inside the value */
	    {"a=1;;; ;b=2;", "b", "2"},
	    {"sid=abc", "sid", "abc"},
	    {"", "a", NULL},
	    {";;;", "a", NULL},
	    {"=1; a=2", "a", "2"},
	};
	char out[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = http_cookie_get(cases[i].header, cases[i].name, out, sizeof(out));

		if (!cases[i].value) {
			assert_int_equal(r, -ENOENT);
			assert_string_equal(out, "");
		} else {
			assert_int_equal(r, (int)strlen(cases[i].value));
			assert_string_equal(out, cases[i].value);
		}
	}
	assert_int_equal(http_cookie_get(NULL, "a", out, sizeof(out)), -ENOENT);
	assert_int_equal(http_cookie_get("=x", "", out, sizeof(out)), -EINVAL);
	assert_int_equal(http_cookie_get("a=1", NULL, out, sizeof(out)), -EINVAL);
}

static void test_cookie_nospace(void **state)
{
	char out[8];

	memset(out, 'z', sizeof(out));
	/* "1234567" and its NUL fill 8 bytes exactly. */
	assert_int_equal(http_cookie_get("s=1234567", "s", out, 8), 7);
	assert_string_equal(out, "1234567");
	/* One more and nothing is written but an empty string: no cut id. */
	assert_int_equal(http_cookie_get("s=12345678", "s", out, 8), -ENOSPC);
	assert_string_equal(out, "");
	/* Quotes do not count. */
	assert_int_equal(http_cookie_get("s=\"1234567\"", "s", out, 8), 7);
	assert_string_equal(out, "1234567");
	assert_int_equal(http_cookie_get("s=", "s", out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(http_cookie_get("s=1", "s", NULL, 0), -ENOSPC);
	assert_int_equal(http_cookie_get("s=1", "t", NULL, 0), -ENOENT);
}

/* --- addresses --- */

static void test_ip_anonymize(void **state)
{
	struct {
		const char *in, *out;
	} cases[] = {
	    {"203.0.113.7", "203.0.113.0"},
	    {"10.0.0.255", "10.0.0.0"},
	    {"0.0.0.0", "0.0.0.0"},
	    {"255.255.255.255", "255.255.255.0"},
	    {" 198.51.100.23\t", "198.51.100.0"},
	    {"2001:db8:1:2::5", "2001:db8:1::"},
	    {"2001:0DB8:ABCD:0012:0000:0000:0000:0001", "2001:db8:abcd::"},
	    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:ffff::"},
	    {"::1", "::"},
	    {"::", "::"},
	    {"fe80::1:2:3:4", "fe80::"},
	    {"::ffff:1.2.3.4", "::ffff:1.2.3.0"},
	    {"::FFFF:192.0.2.200", "::ffff:192.0.2.0"},
	    {"::ffff:c000:2c8", "::ffff:192.0.2.0"}, /* the same, written in hex */
	    {"0:0:0:0:0:ffff:203.0.113.9", "::ffff:203.0.113.0"},
	    {"", "-"},
	    {"   ", "-"},
	    {"abc", "-"},
	    {"1.2.3", "-"},
	    {"1.2.3.256", "-"},
	    {"1.2.3.4.5", "-"},
	    {"01.2.3.4", "-"},
	    {"1.2.3.4:8080", "-"},
	    {"1.2.3.4, 5.6.7.8", "-"},
	    {"[2001:db8::1]", "-"},
	    {"fe80::1%eth0", "-"},
	    {"2001:db8::1::2", "-"},
	    {"2001:db8:1:2:3:4:5:6:7", "-"},
	    {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "ffff:ffff:ffff::"},
	    {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555", "-"},
	    {"1.2.3.4                                                     x", "-"},
	};
	char out[INET6_ADDRSTRLEN];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 'z', sizeof(out));
		ip_anonymize(cases[i].in, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
	}
	ip_anonymize(NULL, out, sizeof(out));
	assert_string_equal(out, "-");
	/* Too small for "203.0.113.0" (12 bytes): "-", never a cut address. */
	ip_anonymize("203.0.113.7", out, 12);
	assert_string_equal(out, "203.0.113.0");
	ip_anonymize("203.0.113.7", out, 11);
	assert_string_equal(out, "-");
	out[0] = 'z';
	ip_anonymize("203.0.113.7", out, 1);
	assert_int_equal(out[0], '\0');
	out[0] = 'z';
	ip_anonymize("203.0.113.7", out, 0);
	assert_int_equal(out[0], 'z');
}

/* --- opt-out --- */

static void test_privacy_opted_out(void **state)
{
	assert_true(privacy_opted_out("1", NULL));
	assert_true(privacy_opted_out(NULL, "1"));
	assert_true(privacy_opted_out(" 1 ", NULL));
	assert_true(privacy_opted_out("\t1\r\n", NULL));
	assert_true(privacy_opted_out("0", "1"));
	assert_true(privacy_opted_out("1", "0"));
	assert_false(privacy_opted_out(NULL, NULL));
	assert_false(privacy_opted_out("0", "0"));
	assert_false(privacy_opted_out("", ""));
	assert_false(privacy_opted_out("11", NULL));
	assert_false(privacy_opted_out("1 1", NULL));
	assert_false(privacy_opted_out("yes", "true"));
	assert_false(privacy_opted_out("1;", NULL));
	assert_false(privacy_opted_out(NULL, "null"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pseudonym_salt_string),
	    cmocka_unit_test_setup_teardown(test_pseudonym_salt_file_created_and_reused,
					    setup_tmpdir, teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_pseudonym_salt_file_race, setup_tmpdir,
					    teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_pseudonym_salt_file_given, setup_tmpdir,
					    teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_pseudonym_salt_file_refused, setup_tmpdir,
					    teardown_tmpdir),
	    cmocka_unit_test_setup_teardown(test_pseudonym_env_salt_wins_over_file, setup_tmpdir,
					    teardown_tmpdir),
	    cmocka_unit_test(test_pseudonym_process_salt),
	    cmocka_unit_test(test_jwt_hs256_verified),
	    cmocka_unit_test(test_jwt_padding),
	    cmocka_unit_test(test_jwt_no_secret_reads_any_alg),
	    cmocka_unit_test(test_jwt_alg_refused_with_secret),
	    cmocka_unit_test(test_jwt_bad_signature),
	    cmocka_unit_test(test_jwt_every_mutation_refused),
	    cmocka_unit_test(test_jwt_expiry),
	    cmocka_unit_test(test_jwt_shapes),
	    cmocka_unit_test(test_jwt_size_cap),
	    cmocka_unit_test(test_jwt_hostile_bytes),
	    cmocka_unit_test(test_jwt_status_str),
	    cmocka_unit_test(test_cookie_get),
	    cmocka_unit_test(test_cookie_nospace),
	    cmocka_unit_test(test_ip_anonymize),
	    cmocka_unit_test(test_privacy_opted_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
