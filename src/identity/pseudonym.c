// SPDX-License-Identifier: MIT
/*
 * Pseudonyms: HMAC-SHA256 of an identity value under a secret salt, hex. The salt is the secret
 * that keeps a pseudonym from being reversed by hashing every plausible id (emails, numeric
 * user ids), so it is read with the care of a private key: the file must be a regular file that
 * only its owner can access, and the bytes are wiped when the pseudonymizer is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bizprobe/identity.h"

#define PSEUDONYM_SALT_LEN 32	/* bytes of a salt made here: SHA-256's output size */
#define PSEUDONYM_SALT_MAX 4096 /* a longer salt file is surely the wrong file */
#define PSEUDONYM_MAC_LEN  32

struct pseudonymizer {
	/* Keyed once: every pseudonym duplicates this context instead of fetching HMAC and
	 * hashing the key again (OpenSSL 3.0's one-shot HMAC() does both per call). */
	EVP_MAC_CTX *keyed;
	EVP_MAC *mac;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Missing directories above path, made 0700: they hold only the salt. Existing ones are left as
 * they are; the salt file's own mode is what protects it. */
static int make_parents(const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path);
	int ret = 0;

	if (!dir) {
		set_err(err, errlen, "salt file %s: out of memory", path);
		return -ENOMEM;
	}
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST) {
			ret = -errno;
			set_err(err, errlen,
				"cannot create directory %s for salt file %s: %s; create it (mode "
				"0700) or choose another salt file",
				dir, path, strerror(errno));
			goto cleanup;
		}
		*p = '/';
	}
cleanup:
	free(dir);
	return ret;
}

/*
 * A new salt is written to a temporary file that is then linked to its name: the name either
 * does not exist or holds all 32 bytes, so a bizprobe that starts at the same moment, or after
 * a crash mid-write, never reads a short salt. link() fails with EEXIST when another process
 * won; *created tells the caller to read that one instead.
 */
static int create_salt(const char *path, uint8_t salt[PSEUDONYM_SALT_LEN], bool *created, char *err,
		       size_t errlen)
{
	size_t tmp_len = strlen(path) + sizeof(".XXXXXX");
	char *tmp = malloc(tmp_len);
	int fd = -1, ret;

	*created = false;
	if (!tmp) {
		set_err(err, errlen, "salt file %s: out of memory", path);
		return -ENOMEM;
	}
	snprintf(tmp, tmp_len, "%s.XXXXXX", path);
	ret = make_parents(path, err, errlen);
	if (ret)
		goto cleanup;
	/* mkostemp opens with O_CREAT|O_EXCL and mode 0600. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		set_err(err, errlen, "cannot create salt file %s: %s; make its directory writable",
			path, strerror(errno));
		goto cleanup;
	}
	if (RAND_bytes(salt, PSEUDONYM_SALT_LEN) != 1) {
		ret = -EIO;
		set_err(err, errlen, "salt file %s: no random bytes from OpenSSL", path);
		goto unlink_tmp;
	}
	/* fchmod: a umask such as 0377 would otherwise leave the owner unable to read it back.
	 * errno cleared: a short write sets none. */
	errno = 0;
	if (fchmod(fd, 0600) ||
	    write(fd, salt, PSEUDONYM_SALT_LEN) != (ssize_t)PSEUDONYM_SALT_LEN || fsync(fd)) {
		ret = errno ? -errno : -EIO;
		set_err(err, errlen, "cannot write salt file %s: %s", path, strerror(-ret));
		goto unlink_tmp;
	}
	if (link(tmp, path) == 0) {
		*created = true;
	} else if (errno != EEXIST) {
		ret = -errno;
		set_err(err, errlen, "cannot create salt file %s: %s", path, strerror(errno));
	}
unlink_tmp:
	unlink(tmp);
cleanup:
	if (fd >= 0)
		close(fd);
	free(tmp);
	if (!*created)
		explicit_bzero(salt, PSEUDONYM_SALT_LEN);
	return ret;
}

/* Reads an existing salt file into salt (PSEUDONYM_SALT_MAX bytes); -ENOENT when there is none. */
static int read_salt(const char *path, uint8_t *salt, size_t *salt_len, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO at the path must be refused below, not wait for a writer. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	size_t len = 0;
	struct stat st;
	int ret = 0;

	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			set_err(err, errlen, "cannot open salt file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		set_err(err, errlen, "cannot stat salt file %s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		set_err(err, errlen,
			"salt file %s is not a regular file; remove it or choose another path, and "
			"bizprobe creates one (mode 0600)",
			path);
		goto cleanup;
	}
	/* Group or other access of any kind: whoever reads the salt can reverse pseudonyms by
	 * hashing candidate ids, and whoever writes it can choose a salt they know. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		ret = -EPERM;
		set_err(
		    err, errlen,
		    "salt file %s is accessible by group or others (mode %04o); run chmod 600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto cleanup;
	}
	for (;;) {
		uint8_t chunk[512];
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			set_err(err, errlen, "cannot read salt file %s: %s", path, strerror(errno));
			goto cleanup;
		}
		if (n == 0)
			break;
		if (len + (size_t)n > PSEUDONYM_SALT_MAX) {
			explicit_bzero(chunk, sizeof(chunk));
			ret = -EFBIG;
			set_err(err, errlen,
				"salt file %s is larger than %d bytes; is it the right file?", path,
				PSEUDONYM_SALT_MAX);
			goto cleanup;
		}
		memcpy(salt + len, chunk, (size_t)n);
		explicit_bzero(chunk, sizeof(chunk));
		len += (size_t)n;
	}
	if (!len) {
		ret = -EINVAL;
		set_err(err, errlen,
			"salt file %s is empty; remove it and bizprobe creates a new one", path);
		goto cleanup;
	}
	*salt_len = len;
cleanup:
	close(fd);
	if (ret)
		explicit_bzero(salt, PSEUDONYM_SALT_MAX);
	return ret;
}

static int load_salt_file(const char *path, uint8_t *salt, size_t *salt_len, char *err,
			  size_t errlen)
{
	bool created = false;
	int ret;

	/* Twice at most: a file another process created between our open and our link. */
	for (int attempt = 0; attempt < 2; attempt++) {
		ret = read_salt(path, salt, salt_len, err, errlen);
		if (ret != -ENOENT)
			return ret;
		ret = create_salt(path, salt, &created, err, errlen);
		if (ret)
			return ret;
		if (created) {
			*salt_len = PSEUDONYM_SALT_LEN;
			return 0;
		}
	}
	/* open() says it is missing and link() that it exists: a dangling symlink, or a file that
	 * something keeps removing. */
	set_err(err, errlen,
		"salt file %s cannot be read or created (a dangling symlink?); remove it or point "
		"it at a regular file",
		path);
	return -ENOENT;
}

static int key_mac(struct pseudonymizer *p, const uint8_t *key, size_t key_len)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};

	p->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	p->keyed = p->mac ? EVP_MAC_CTX_new(p->mac) : NULL;
	if (!p->keyed || !EVP_MAC_init(p->keyed, key, key_len, params))
		return -EIO;
	return 0;
}

struct pseudonymizer *pseudonymizer_new(const char *salt, const char *salt_file, char *err,
					size_t errlen)
{
	struct pseudonymizer *p = calloc(1, sizeof(*p));
	uint8_t *key = malloc(PSEUDONYM_SALT_MAX);
	size_t key_len = 0;
	int ret = 0;

	set_err(err, errlen, "%s", "");
	if (!p || !key) {
		set_err(err, errlen, "pseudonymizer: out of memory");
		goto fail;
	}
	if (salt && *salt) {
		key_len = strlen(salt);
		/* Not copied here: the keyed context keeps what it needs and cleanses it when
		 * freed. */
		ret = key_mac(p, (const uint8_t *)salt, key_len);
	} else if (salt_file && *salt_file) {
		ret = load_salt_file(salt_file, key, &key_len, err, errlen);
		if (ret)
			goto fail;
		ret = key_mac(p, key, key_len);
	} else {
		key_len = PSEUDONYM_SALT_LEN;
		if (RAND_bytes(key, (int)key_len) != 1) {
			set_err(err, errlen, "pseudonymizer: no random bytes from OpenSSL");
			goto fail;
		}
		ret = key_mac(p, key, key_len);
	}
	if (ret) {
		set_err(err, errlen, "pseudonymizer: OpenSSL has no HMAC-SHA256");
		goto fail;
	}
	explicit_bzero(key, PSEUDONYM_SALT_MAX);
	free(key);
	return p;
fail:
	if (key)
		explicit_bzero(key, PSEUDONYM_SALT_MAX);
	free(key);
	pseudonymizer_free(p);
	return NULL;
}

void pseudonymizer_free(struct pseudonymizer *p)
{
	if (!p)
		return;
	/* EVP_MAC_CTX_free cleanses the HMAC state: the key and the pads derived from it. */
	EVP_MAC_CTX_free(p->keyed);
	EVP_MAC_free(p->mac);
	explicit_bzero(p, sizeof(*p));
	free(p);
}

void pseudonymize(const struct pseudonymizer *p, const char *id, size_t len,
		  char out[PSEUDONYM_LEN])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t mac[PSEUDONYM_MAC_LEN];
	EVP_MAC_CTX *ctx = p && p->keyed ? EVP_MAC_CTX_dup(p->keyed) : NULL;
	size_t outl = 0;

	out[0] = '\0';
	/* An empty string, never a partial or unkeyed digest, when OpenSSL fails (out of memory):
	 * callers can tell it from any pseudonym. */
	if (!ctx || (len && !EVP_MAC_update(ctx, (const unsigned char *)id, len)) ||
	    !EVP_MAC_final(ctx, mac, &outl, sizeof(mac)) || outl != sizeof(mac))
		goto cleanup;
	for (size_t i = 0; i < sizeof(mac); i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 0xf];
	}
	out[2 * sizeof(mac)] = '\0';
cleanup:
	explicit_bzero(mac, sizeof(mac));
	EVP_MAC_CTX_free(ctx);
}
