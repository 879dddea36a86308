// SPDX-License-Identifier: MIT
/*
 * The kube API's view of this node's pods: a list with fieldSelector=spec.nodeName, then a
 * watch from the list's resourceVersion (libcurl, the service account's token and CA), pods
 * parsed with json-c into a bounded table (max_pods entries, max_label_bytes of label text in
 * all), every pod or label that did not fit counted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "bizprobe/k8s.h"
#include "k8s_internal.h"

#define MAX_CONTAINERS_PER_POD 32
/* One watch event holds one pod object: a pod bigger than this is no pod (etcd's own limit for
 * an object is 1.5 MiB). */
#define MAX_EVENT_BYTES (4u << 20)
/* A whole PodList: max_pods pods of ~10-30 KiB each, with room. */
#define MAX_LIST_BYTES (64u << 20)
#define TOKEN_MAX      16384
#define BACKOFF_MAX_S  30

struct pod {
	struct k8s_pod_info info;
	size_t label_bytes;
	char cids[MAX_CONTAINERS_PER_POD][K8S_CONTAINER_ID_LEN + 1];
	size_t n_cids;
};

struct k8s_pod_cache {
	char *url_base; /* https://host:port */
	char *token_file;
	char *ca_file;
	char *node;
	unsigned max_pods;
	size_t max_label_bytes;
	unsigned watch_timeout_s;

	pthread_mutex_t lock;
	struct pod **pods; /* max_pods slots, n_pods used */
	size_t n_pods;
	char resource_version[128];
	struct k8s_pod_cache_stats st;

	pthread_t thread;
	bool running;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;
};

void k8s_pod_info_release(struct k8s_pod_info *p)
{
	if (!p)
		return;
	free(p->labels);
	free(p->label_buf);
	p->labels = NULL;
	p->label_buf = NULL;
	p->n_labels = 0;
}

const char *k8s_pod_info_label(const struct k8s_pod_info *p, const char *key)
{
	for (size_t i = 0; i < p->n_labels; i++)
		if (!strcmp(p->labels[i].key, key))
			return p->labels[i].value;
	return NULL;
}

static void pod_free(struct pod *p)
{
	if (!p)
		return;
	k8s_pod_info_release(&p->info);
	free(p);
}

static bool copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		return false;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
	return true;
}

static void copy_trunc(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

void k8s_workload_from_owner(const char *owner_kind, const char *owner_name,
			     const char *pod_template_hash, const char *pod_name, char *kind,
			     size_t kind_cap, char *name, size_t name_cap)
{
	const char *dash;
	size_t n;

	if (!owner_kind || !owner_name || !*owner_name) {
		copy_trunc(kind, kind_cap, "Pod", 3);
		copy_trunc(name, name_cap, pod_name ? pod_name : "",
			   pod_name ? strlen(pod_name) : 0);
		return;
	}
	n = strlen(owner_name);
	dash = strrchr(owner_name, '-');
	/* The Deployment controller names its ReplicaSets <deployment>-<pod-template-hash> and
	 * labels their pods with that hash: only a suffix equal to the label is stripped, so a
	 * ReplicaSet made by hand keeps its own name. */
	if (!strcmp(owner_kind, "ReplicaSet") && pod_template_hash && *pod_template_hash && dash &&
	    dash != owner_name && !strcmp(dash + 1, pod_template_hash)) {
		copy_trunc(kind, kind_cap, "Deployment", strlen("Deployment"));
		copy_trunc(name, name_cap, owner_name, (size_t)(dash - owner_name));
		return;
	}
	/* The CronJob controller names its Jobs <cronjob>-<scheduled time in minutes>. */
	if (!strcmp(owner_kind, "Job") && dash && dash != owner_name && all_digits(dash + 1)) {
		copy_trunc(kind, kind_cap, "CronJob", strlen("CronJob"));
		copy_trunc(name, name_cap, owner_name, (size_t)(dash - owner_name));
		return;
	}
	copy_trunc(kind, kind_cap, owner_kind, strlen(owner_kind));
	copy_trunc(name, name_cap, owner_name, n);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *jobj(json_object *o, const char *key, json_type t)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

/* "containerd://<id>", "cri-o://<id>", "docker://<id>": the id after "://". */
static void add_container_ids(struct pod *p, json_object *statuses)
{
	size_t n = statuses ? json_object_array_length(statuses) : 0;

	for (size_t i = 0; i < n && p->n_cids < MAX_CONTAINERS_PER_POD; i++) {
		const char *id = jstr(json_object_array_get_idx(statuses, i), "containerID");
		const char *sep = id ? strstr(id, "://") : NULL;

		if (sep && strlen(sep + 3) == K8S_CONTAINER_ID_LEN)
			memcpy(p->cids[p->n_cids++], sep + 3, K8S_CONTAINER_ID_LEN + 1);
	}
}

/* Labels within the cache's remaining budget; the rest are counted in *dropped. */
static int parse_labels(struct pod *p, json_object *labels, size_t budget, uint64_t *dropped)
{
	size_t n = labels ? (size_t)json_object_object_length(labels) : 0, need = 0, off = 0;

	if (!n)
		return 0;
	json_object_object_foreach(labels, k0, v0)
	{
		if (json_object_is_type(v0, json_type_string))
			need += strlen(k0) + 1 + strlen(json_object_get_string(v0)) + 1;
	}
	if (need > budget)
		need = budget;
	p->info.labels = calloc(n, sizeof(*p->info.labels));
	p->info.label_buf = need ? malloc(need) : NULL;
	if (!p->info.labels || (need && !p->info.label_buf))
		return -ENOMEM;
	json_object_object_foreach(labels, k, v)
	{
		const char *val;
		size_t kl, vl;

		if (!json_object_is_type(v, json_type_string)) {
			(*dropped)++;
			continue;
		}
		val = json_object_get_string(v);
		kl = strlen(k);
		vl = strlen(val);
		if (off + kl + vl + 2 > need) {
			(*dropped)++;
			continue;
		}
		memcpy(p->info.label_buf + off, k, kl + 1);
		memcpy(p->info.label_buf + off + kl + 1, val, vl + 1);
		p->info.labels[p->info.n_labels].key = p->info.label_buf + off;
		p->info.labels[p->info.n_labels].value = p->info.label_buf + off + kl + 1;
		p->info.n_labels++;
		off += kl + vl + 2;
	}
	p->label_bytes = off;
	return 0;
}

/* A pod object; NULL when it lacks what identifies a pod (uid, namespace, name). */
static struct pod *parse_pod(json_object *obj, size_t label_budget, uint64_t *labels_dropped)
{
	json_object *meta = jobj(obj, "metadata", json_type_object);
	json_object *status = jobj(obj, "status", json_type_object);
	json_object *owners = jobj(meta, "ownerReferences", json_type_array);
	const char *okind = NULL, *oname = NULL, *hash = NULL;
	struct pod *p;

	if (!meta)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (!jstr(meta, "uid") || !copy_str(p->info.uid, sizeof(p->info.uid), jstr(meta, "uid")) ||
	    !p->info.uid[0] ||
	    !copy_str(p->info.namespace_, sizeof(p->info.namespace_), jstr(meta, "namespace")) ||
	    !p->info.namespace_[0] ||
	    !copy_str(p->info.name, sizeof(p->info.name), jstr(meta, "name")) || !p->info.name[0])
		goto bad;
	if (parse_labels(p, jobj(meta, "labels", json_type_object), label_budget, labels_dropped))
		goto bad;
	for (size_t i = 0; owners && i < json_object_array_length(owners); i++) {
		json_object *o = json_object_array_get_idx(owners, i), *ctl;

		if (json_object_object_get_ex(o, "controller", &ctl) &&
		    json_object_get_boolean(ctl)) {
			okind = jstr(o, "kind");
			oname = jstr(o, "name");
			break;
		}
	}
	hash = k8s_pod_info_label(&p->info, "pod-template-hash");
	k8s_workload_from_owner(okind, oname, hash, p->info.name, p->info.workload_kind,
				sizeof(p->info.workload_kind), p->info.workload_name,
				sizeof(p->info.workload_name));
	add_container_ids(p, jobj(status, "containerStatuses", json_type_array));
	add_container_ids(p, jobj(status, "initContainerStatuses", json_type_array));
	add_container_ids(p, jobj(status, "ephemeralContainerStatuses", json_type_array));
	return p;
bad:
	pod_free(p);
	return NULL;
}

static ssize_t find_pod(struct k8s_pod_cache *c, const char *uid)
{
	for (size_t i = 0; i < c->n_pods; i++)
		if (!strcmp(c->pods[i]->info.uid, uid))
			return (ssize_t)i;
	return -1;
}

static void update_gauges(struct k8s_pod_cache *c)
{
	size_t bytes = 0;

	for (size_t i = 0; i < c->n_pods; i++)
		bytes += c->pods[i]->label_bytes;
	c->st.pods = (uint32_t)c->n_pods;
	c->st.label_bytes = bytes;
}

static json_object *parse_json(const char *json, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o;

	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, json, (int)len);
	if (o && json_tokener_get_parse_end(tok) < len) {
		/* Trailing bytes other than white space: not one JSON value. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
			if (json[i] != ' ' && json[i] != '\n' && json[i] != '\r' &&
			    json[i] != '\t') {
				json_object_put(o);
				o = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	return o;
}

int k8s_pod_cache_apply_list(struct k8s_pod_cache *c, const char *json, size_t len)
{
	json_object *root, *items;
	struct pod **fresh;
	size_t n = 0, bytes = 0, count;
	uint64_t dropped_pods = 0, dropped_labels = 0;
	const char *rv;

	if (len > MAX_LIST_BYTES || len > INT32_MAX)
		return -E2BIG;
	root = parse_json(json, len);
	if (!root)
		return -EINVAL;
	items = jobj(root, "items", json_type_array);
	if (!items || (jstr(root, "kind") && strcmp(jstr(root, "kind"), "PodList"))) {
		json_object_put(root);
		return -EINVAL;
	}
	fresh = calloc(c->max_pods, sizeof(*fresh));
	if (!fresh) {
		json_object_put(root);
		return -ENOMEM;
	}
	count = json_object_array_length(items);
	for (size_t i = 0; i < count; i++) {
		struct pod *p;

		if (n == c->max_pods) {
			dropped_pods++;
			continue;
		}
		p = parse_pod(json_object_array_get_idx(items, i), c->max_label_bytes - bytes,
			      &dropped_labels);
		if (!p)
			continue; /* not a pod: nothing to name a process by */
		fresh[n++] = p;
		bytes += p->label_bytes;
	}
	rv = jstr(jobj(root, "metadata", json_type_object), "resourceVersion");
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_pods; i++)
		pod_free(c->pods[i]);
	free(c->pods);
	c->pods = fresh;
	c->n_pods = n;
	copy_trunc(c->resource_version, sizeof(c->resource_version), rv ? rv : "",
		   rv ? strlen(rv) : 0);
	c->st.pods_dropped += dropped_pods;
	c->st.labels_dropped += dropped_labels;
	c->st.lists++;
	c->st.synced = true;
	update_gauges(c);
	pthread_mutex_unlock(&c->lock);
	json_object_put(root);
	return 0;
}

/* 0, -EINVAL (not an event), -ESTALE (the watch's resourceVersion is gone: list again). */
int k8s_pod_cache_apply_event(struct k8s_pod_cache *c, const char *json, size_t len)
{
	json_object *root, *obj;
	const char *type, *rv;
	struct pod *p = NULL;
	uint64_t dropped_labels = 0;
	ssize_t at;
	int rc = 0;

	if (len > MAX_EVENT_BYTES)
		return -E2BIG;
	root = parse_json(json, len);
	if (!root)
		return -EINVAL;
	type = jstr(root, "type");
	obj = jobj(root, "object", json_type_object);
	if (!type || !obj) {
		json_object_put(root);
		return -EINVAL;
	}
	if (!strcmp(type, "ERROR")) {
		json_object *code;

		/* A Status: 410 Gone when the resourceVersion was compacted away. */
		rc = json_object_object_get_ex(obj, "code", &code) &&
			     json_object_get_int(code) == 410
			 ? -ESTALE
			 : -EPROTO;
		json_object_put(root);
		return rc;
	}
	rv = jstr(jobj(obj, "metadata", json_type_object), "resourceVersion");
	pthread_mutex_lock(&c->lock);
	if (!strcmp(type, "BOOKMARK")) {
		/* Only the resourceVersion moves on. */
	} else if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		const char *uid = jstr(jobj(obj, "metadata", json_type_object), "uid");
		size_t held = 0, budget;

		at = uid ? find_pod(c, uid) : -1;
		for (size_t i = 0; i < c->n_pods; i++)
			if ((ssize_t)i != at)
				held += c->pods[i]->label_bytes;
		budget = held < c->max_label_bytes ? c->max_label_bytes - held : 0;
		p = parse_pod(obj, budget, &dropped_labels);
		if (!p) {
			rc = -EINVAL;
		} else if (at >= 0) {
			pod_free(c->pods[at]);
			c->pods[at] = p;
		} else if (c->n_pods < c->max_pods) {
			c->pods[c->n_pods++] = p;
		} else {
			c->st.pods_dropped++;
			pod_free(p);
		}
	} else if (!strcmp(type, "DELETED")) {
		const char *uid = jstr(jobj(obj, "metadata", json_type_object), "uid");

		at = uid ? find_pod(c, uid) : -1;
		if (at >= 0) {
			pod_free(c->pods[at]);
			c->pods[at] = c->pods[--c->n_pods];
		}
	} else {
		rc = -EINVAL;
	}
	if (!rc) {
		c->st.watch_events++;
		if (rv)
			copy_trunc(c->resource_version, sizeof(c->resource_version), rv,
				   strlen(rv));
	}
	c->st.labels_dropped += dropped_labels;
	update_gauges(c);
	pthread_mutex_unlock(&c->lock);
	json_object_put(root);
	return rc;
}

static int copy_out(const struct pod *p, struct k8s_pod_info *out)
{
	*out = p->info;
	out->labels = NULL;
	out->label_buf = NULL;
	out->n_labels = 0;
	if (!p->info.n_labels)
		return 0;
	out->label_buf = malloc(p->label_bytes);
	out->labels = calloc(p->info.n_labels, sizeof(*out->labels));
	if (!out->label_buf || !out->labels) {
		k8s_pod_info_release(out);
		return -ENOMEM;
	}
	memcpy(out->label_buf, p->info.label_buf, p->label_bytes);
	for (size_t i = 0; i < p->info.n_labels; i++) {
		out->labels[i].key = out->label_buf + (p->info.labels[i].key - p->info.label_buf);
		out->labels[i].value =
		    out->label_buf + (p->info.labels[i].value - p->info.label_buf);
	}
	out->n_labels = p->info.n_labels;
	return 0;
}

int k8s_pod_cache_lookup(struct k8s_pod_cache *c, const char *uid, struct k8s_pod_info *out)
{
	ssize_t at;
	int rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	at = find_pod(c, uid);
	if (at >= 0)
		rc = copy_out(c->pods[at], out);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int k8s_pod_cache_lookup_container(struct k8s_pod_cache *c, const char *container_id,
				   struct k8s_pod_info *out)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n_pods && rc == -ENOENT; i++)
		for (size_t k = 0; k < c->pods[i]->n_cids; k++)
			if (!strcmp(c->pods[i]->cids[k], container_id)) {
				rc = copy_out(c->pods[i], out);
				break;
			}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

size_t k8s_pod_cache_uids(struct k8s_pod_cache *c, char (*uids)[K8S_POD_UID_MAX + 1], size_t cap)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	for (n = 0; n < c->n_pods && n < cap; n++)
		memcpy(uids[n], c->pods[n]->info.uid, sizeof(uids[n]));
	pthread_mutex_unlock(&c->lock);
	return n;
}

void k8s_pod_cache_get_stats(struct k8s_pod_cache *c, struct k8s_pod_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}

/* ---- HTTP ---- */

static void count_error(struct k8s_pod_cache *c)
{
	pthread_mutex_lock(&c->lock);
	c->st.errors++;
	pthread_mutex_unlock(&c->lock);
}

struct body {
	char *buf;
	size_t len, cap, limit;
	struct k8s_pod_cache *c; /* watch: events applied line by line */
	int event_rc;		 /* the first failed event's */
	bool too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct body *b = ctx;
	size_t n = size * nmemb;

	if (b->len + n > b->limit) {
		b->too_big = true;
		return 0; /* ends the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *nb;

		while (cap < b->len + n + 1)
			cap *= 2;
		nb = realloc(b->buf, cap);
		if (!nb)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, data, n);
	b->len += n;
	if (b->c) {
		char *nl;

		/* A watch streams one JSON event a line. */
		while ((nl = memchr(b->buf, '\n', b->len))) {
			size_t ll = (size_t)(nl - b->buf);
			int rc = ll ? k8s_pod_cache_apply_event(b->c, b->buf, ll) : 0;

			memmove(b->buf, nl + 1, b->len - ll - 1);
			b->len -= ll + 1;
			if (rc == -ESTALE) {
				b->event_rc = rc;
				return 0; /* list again */
			}
			if (rc)
				count_error(b->c); /* a bad event: the next list repairs it */
		}
	}
	return n;
}

static int on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
	struct k8s_pod_cache *c = ctx;
	bool stop;

	pthread_mutex_lock(&c->stop_lock);
	stop = c->stop;
	pthread_mutex_unlock(&c->stop_lock);
	return stop;
}

static int read_token(const char *path, char *out, size_t cap, char *err, size_t err_len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		k8s_seterr(err, err_len, "%s: %s", path, strerror(errno));
		return -errno;
	}
	n = fread(out, 1, cap - 1, f);
	fclose(f);
	out[n] = '\0';
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
		out[--n] = '\0';
	if (!n || strpbrk(out, "\r\n")) {
		k8s_seterr(err, err_len, "%s: no token", path);
		return -EINVAL;
	}
	return 0;
}

/* GET url_base + path_query; 0 with the HTTP status in *status, or a negative errno. */
static int http_get(struct k8s_pod_cache *c, const char *path_query, struct body *b, long timeout_s,
		    long *status, char *err, size_t err_len)
{
	char token[TOKEN_MAX], auth[TOKEN_MAX + 32], url[2048];
	struct curl_slist *hdrs = NULL;
	CURL *h;
	CURLcode cr;
	int rc;

	rc = read_token(c->token_file, token, sizeof(token), err, err_len);
	if (rc)
		return rc;
	if (snprintf(url, sizeof(url), "%s%s", c->url_base, path_query) >= (int)sizeof(url)) {
		k8s_seterr(err, err_len, "URL too long");
		return -ENAMETOOLONG;
	}
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	explicit_bzero(token, sizeof(token));
	h = curl_easy_init();
	if (!h) {
		explicit_bzero(auth, sizeof(auth));
		k8s_seterr(err, err_len, "out of memory");
		return -ENOMEM;
	}
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	cr = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	explicit_bzero(auth, sizeof(auth));
	if (b->too_big) {
		k8s_seterr(err, err_len, "answer larger than %zu bytes", b->limit);
		return -E2BIG;
	}
	if (cr == CURLE_WRITE_ERROR && b->event_rc)
		return b->event_rc;
	if (cr != CURLE_OK && !(cr == CURLE_OPERATION_TIMEDOUT && b->c)) {
		k8s_seterr(err, err_len, "%s: %s", c->url_base, curl_easy_strerror(cr));
		return cr == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO;
	}
	return 0;
}

static int pods_query(struct k8s_pod_cache *c, char *out, size_t cap, bool watch)
{
	CURL *h = curl_easy_init();
	char sel[512], *esc;
	int n;

	if (!h)
		return -ENOMEM;
	snprintf(sel, sizeof(sel), "spec.nodeName=%s", c->node);
	esc = curl_easy_escape(h, sel, 0);
	if (!esc) {
		curl_easy_cleanup(h);
		return -ENOMEM;
	}
	if (watch)
		n = snprintf(out, cap,
			     "/api/v1/pods?fieldSelector=%s&watch=1&allowWatchBookmarks=true&"
			     "timeoutSeconds=%u&resourceVersion=%s",
			     esc, c->watch_timeout_s, c->resource_version);
	else
		n = snprintf(out, cap, "/api/v1/pods?fieldSelector=%s", esc);
	curl_free(esc);
	curl_easy_cleanup(h);
	return n < (int)cap ? 0 : -ENAMETOOLONG;
}

int k8s_pod_cache_sync(struct k8s_pod_cache *c, char *err, size_t err_len)
{
	struct body b = {.limit = MAX_LIST_BYTES};
	char q[1024];
	long status = 0;
	int rc = pods_query(c, q, sizeof(q), false);

	if (!rc)
		rc = http_get(c, q, &b, 60, &status, err, err_len);
	if (!rc && status != 200) {
		k8s_seterr(err, err_len, "GET %s: HTTP %ld", q, status);
		rc = status == 401 || status == 403 ? -EACCES : -EIO;
	}
	if (!rc) {
		rc = k8s_pod_cache_apply_list(c, b.buf ? b.buf : "", b.len);
		if (rc)
			k8s_seterr(err, err_len, "GET %s: not a PodList", q);
	}
	free(b.buf);
	if (rc)
		count_error(c);
	return rc;
}

/* One watch until the server ends it: 0 (watch again), or an error (list again). */
static int watch_once(struct k8s_pod_cache *c, char *err, size_t err_len)
{
	struct body b = {.limit = MAX_EVENT_BYTES, .c = c};
	char q[1024];
	long status = 0;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = pods_query(c, q, sizeof(q), true);
	pthread_mutex_unlock(&c->lock);
	if (!rc)
		rc = http_get(c, q, &b, (long)c->watch_timeout_s + 30, &status, err, err_len);
	if (!rc && status != 200) {
		k8s_seterr(err, err_len, "watch: HTTP %ld", status);
		rc = status == 410 ? -ESTALE : -EIO;
	}
	if (!rc && b.event_rc == -ESTALE)
		rc = -ESTALE;
	free(b.buf);
	/* 410 Gone is the API's ordinary way to say "list again", not a failure. */
	if (rc && rc != -ECANCELED && rc != -ESTALE)
		count_error(c);
	return rc;
}

/* Sleeps s seconds or until free; true when stopping. */
static bool wait_or_stop(struct k8s_pod_cache *c, unsigned s)
{
	struct timespec until;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += s;
	pthread_mutex_lock(&c->stop_lock);
	while (!c->stop && pthread_cond_timedwait(&c->stop_cond, &c->stop_lock, &until) == 0)
		;
	stop = c->stop;
	pthread_mutex_unlock(&c->stop_lock);
	return stop;
}

static void *cache_thread(void *arg)
{
	struct k8s_pod_cache *c = arg;
	unsigned backoff = 1;
	char err[512];

	while (!wait_or_stop(c, 0)) {
		if (k8s_pod_cache_sync(c, err, sizeof(err))) {
			fprintf(stderr, "bizprobe: kube API: %s (again in %u s)\n", err, backoff);
			if (wait_or_stop(c, backoff))
				break;
			backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
			continue;
		}
		backoff = 1;
		for (;;) {
			int rc = watch_once(c, err, sizeof(err));

			if (rc == -ECANCELED || wait_or_stop(c, 0))
				return NULL;
			if (rc == -ESTALE)
				break; /* history gone: list again at once */
			if (rc) {
				fprintf(stderr, "bizprobe: kube API watch: %s\n", err);
				if (wait_or_stop(c, 1))
					return NULL;
				break;
			}
		}
	}
	return NULL;
}

int k8s_pod_cache_start(struct k8s_pod_cache *c)
{
	int rc = pthread_create(&c->thread, NULL, cache_thread, c);

	if (rc)
		return -rc;
	c->running = true;
	return 0;
}

struct k8s_pod_cache *k8s_pod_cache_new(const struct k8s_pod_cache_config *cfg, char *err,
					size_t err_len)
{
	struct k8s_pod_cache *c;
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *node = cfg->node_name ? cfg->node_name : getenv("NODE_NAME");
	char url[512];

	if (cfg->api_url) {
		if (strncmp(cfg->api_url, "https://", 8)) {
			k8s_seterr(err, err_len, "kube API URL %s: not https://", cfg->api_url);
			return NULL;
		}
		snprintf(url, sizeof(url), "%s", cfg->api_url);
	} else if (host && *host) {
		/* An IPv6 service address goes in brackets. */
		snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
			 host, port && *port ? port : "443");
	} else {
		k8s_seterr(err, err_len,
		       "no kube API: KUBERNETES_SERVICE_HOST is unset (not in a pod?)");
		return NULL;
	}
	if (!node || !*node || strlen(node) > K8S_NAME_MAX) {
		k8s_seterr(err, err_len,
		       "no node name: set NODE_NAME (the downward API's spec.nodeName)");
		return NULL;
	}
	/* Before any thread of ours: libcurl's global state is not thread-safe to set up. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	c = calloc(1, sizeof(*c));
	if (!c) {
		k8s_seterr(err, err_len, "out of memory");
		return NULL;
	}
	while (strlen(url) > 8 && url[strlen(url) - 1] == '/')
		url[strlen(url) - 1] = '\0';
	c->url_base = strdup(url);
	c->node = strdup(node);
	c->token_file = strdup(cfg->token_file ? cfg->token_file : K8S_DEFAULT_SA_DIR "/token");
	c->ca_file = strdup(cfg->ca_file ? cfg->ca_file : K8S_DEFAULT_SA_DIR "/ca.crt");
	c->max_pods = cfg->max_pods ? cfg->max_pods : K8S_DEFAULT_MAX_PODS;
	c->max_label_bytes =
	    cfg->max_label_bytes ? cfg->max_label_bytes : K8S_DEFAULT_MAX_LABEL_BYTES;
	c->watch_timeout_s = cfg->watch_timeout_s ? cfg->watch_timeout_s : 300;
	c->pods = calloc(c->max_pods, sizeof(*c->pods));
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->stop_lock, NULL);
	pthread_cond_init(&c->stop_cond, NULL);
	if (!c->url_base || !c->node || !c->token_file || !c->ca_file || !c->pods) {
		k8s_seterr(err, err_len, "out of memory");
		goto fail;
	}
	if (access(c->token_file, R_OK)) {
		k8s_seterr(err, err_len, "service account token %s: %s", c->token_file,
		       strerror(errno));
		goto fail;
	}
	if (access(c->ca_file, R_OK)) {
		k8s_seterr(err, err_len, "kube API CA %s: %s", c->ca_file, strerror(errno));
		goto fail;
	}
	return c;
fail:
	k8s_pod_cache_free(c);
	return NULL;
}

void k8s_pod_cache_free(struct k8s_pod_cache *c)
{
	if (!c)
		return;
	if (c->running) {
		pthread_mutex_lock(&c->stop_lock);
		c->stop = true;
		pthread_cond_broadcast(&c->stop_cond);
		pthread_mutex_unlock(&c->stop_lock);
		pthread_join(c->thread, NULL);
	}
	for (size_t i = 0; i < c->n_pods; i++)
		pod_free(c->pods[i]);
	free(c->pods);
	free(c->url_base);
	free(c->node);
	free(c->token_file);
	free(c->ca_file);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->stop_lock);
	pthread_cond_destroy(&c->stop_cond);
	free(c);
}
