/* The AWS credentials chain in the SDKs' order: environment, shared
 * credentials/config files, container endpoint, EC2 IMDSv2; cached and
 * refreshed before temporary credentials expire. Secrets are never logged. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cgprof/log.h"
#include "upload_priv.h"

/* Refresh temporary credentials this long before they expire, as the
 * SDKs do, so a request signed now is still valid when it arrives. */
#define CRED_REFRESH_MARGIN_S 300

struct cred_chain {
	pthread_mutex_t lock;
	struct cred cur;
	bool have;
};

void cred_clear(struct cred *c)
{
	if (c->token) {
		OPENSSL_cleanse(c->token, strlen(c->token));
		free(c->token);
	}
	OPENSSL_cleanse(c, sizeof(*c));
}

static int cred_copy(struct cred *dst, const struct cred *src)
{
	*dst = *src;
	dst->token = NULL;
	if (src->token && !(dst->token = strdup(src->token))) {
		cred_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

static bool env_true(const char *name)
{
	const char *v = getenv(name);
	return v && !strcasecmp(v, "true");
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int cred_set(struct cred *c, const char *ak, const char *sk, const char *token,
		    const char *source)
{
	if (strlen(ak) >= sizeof(c->access_key) || strlen(sk) >= sizeof(c->secret_key))
		return cg_fail(-EINVAL, "credentials from %s are malformed (key too long)", source);
	snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
	snprintf(c->secret_key, sizeof(c->secret_key), "%s", sk);
	snprintf(c->source, sizeof(c->source), "%s", source);
	if (token && *token && !(c->token = strdup(token)))
		return -ENOMEM;
	return 0;
}

/* ---- environment ---- */

static int from_env(struct cred *c)
{
	const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
	if (!ak || !sk)
		return -ENOENT;
	return cred_set(c, ak, sk, env("AWS_SESSION_TOKEN"), "environment");
}

/* ---- shared files ---- */

static const char *profile_name(void)
{
	const char *p = env("AWS_PROFILE");
	return p ? p : (env("AWS_DEFAULT_PROFILE") ? env("AWS_DEFAULT_PROFILE") : "default");
}

static void home_path(char *buf, size_t n, const char *envname, const char *rel)
{
	const char *p = env(envname), *home = env("HOME");
	if (p && p[0] == '~' && p[1] == '/' && home)
		snprintf(buf, n, "%s%s", home, p + 1);
	else if (p)
		snprintf(buf, n, "%s", p);
	else
		snprintf(buf, n, "%s/%s", home ? home : "", rel);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Look up keys in section `section` of an INI file. vals[i] gets a heap
 * copy or stays NULL. -ENOENT when the file or section is missing. */
static int ini_get(const char *path, const char *section, const char *const *keys,
		   char **vals, size_t nkeys, bool warn_mode)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	bool in = false, found = false;
	struct stat st;

	if (!f)
		return -ENOENT;
	if (warn_mode && fstat(fileno(f), &st) == 0 && (st.st_mode & 0044))
		cg_warn("%s is readable by group or others (mode %03o); it holds secrets: chmod 600 %s",
			path, (unsigned)(st.st_mode & 0777), path);
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line);
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (e)
				*e = '\0';
			in = !strcmp(trim(l + 1), section);
			found |= in;
			continue;
		}
		if (!in)
			continue;
		char *eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		for (size_t i = 0; i < nkeys; i++)
			if (!strcmp(k, keys[i]) && !vals[i])
				vals[i] = strdup(v);
	}
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return found ? 0 : -ENOENT;
}

static void free_vals(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (v[i]) {
			OPENSSL_cleanse(v[i], strlen(v[i]));
			free(v[i]);
		}
		v[i] = NULL;
	}
}

int cred_from_files(struct cred *c)
{
	static const char *const keys[] = {"aws_access_key_id", "aws_secret_access_key",
					   "aws_session_token", "role_arn", "credential_process",
					   "sso_start_url", "sso_session"};
	enum { NKEYS = CG_ARRAY_LEN(keys) };
	char *v[NKEYS] = {NULL};
	char kpath[1024], cpath[1024] = "", section[300], source[64];
	const char *prof = profile_name();
	int r, found;

	home_path(kpath, sizeof(kpath), "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	found = ini_get(kpath, prof, keys, v, NKEYS, true) == 0;
	if (!v[0] || !v[1]) {
		free_vals(v, NKEYS);
		home_path(cpath, sizeof(cpath), "AWS_CONFIG_FILE", ".aws/config");
		snprintf(section, sizeof(section), strcmp(prof, "default") ? "profile %s" : "%s", prof);
		found |= ini_get(cpath, section, keys, v, NKEYS, false) == 0;
	}
	if (v[0] && v[1]) {
		struct stat st;
		if (stat(cpath, &st) == 0 && (st.st_mode & 0044) && strcmp(cpath, kpath) &&
		    found && (st.st_mode & 0777))
			cg_warn("%s is readable by group or others (mode %03o) and holds secrets: "
				"chmod 600 %s", cpath, (unsigned)(st.st_mode & 0777), cpath);
		snprintf(source, sizeof(source), "profile %.50s", prof);
		r = cred_set(c, v[0], v[1], v[2], source);
	} else if (v[3] || v[4] || v[5] || v[6]) {
		/* Saying so beats silently signing as some other identity. */
		r = cg_fail(-EINVAL,
			    "profile %s uses %s, which cgprof does not support: export "
			    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN instead "
			    "(e.g. from `aws configure export-credentials`)",
			    prof, v[3] ? "role_arn" : v[4] ? "credential_process" : "SSO");
	} else if (!found && env("AWS_PROFILE")) {
		r = cg_fail(-EINVAL, "AWS_PROFILE=%s: no such profile in %s or the config file",
			    prof, kpath);
	} else {
		r = -ENOENT;
	}
	free_vals(v, NKEYS);
	return r;
}

int cred_region(char *buf, size_t n)
{
	const char *r = env("AWS_REGION");
	if (!r)
		r = env("AWS_DEFAULT_REGION");
	if (r) {
		snprintf(buf, n, "%s", r);
		return 0;
	}
	static const char *const keys[] = {"region"};
	char *v[1] = {NULL};
	char path[1024], section[300];
	const char *prof = profile_name();
	home_path(path, sizeof(path), "AWS_CONFIG_FILE", ".aws/config");
	snprintf(section, sizeof(section), strcmp(prof, "default") ? "profile %s" : "%s", prof);
	ini_get(path, section, keys, v, 1, false);
	if (!v[0])
		return -ENOENT;
	snprintf(buf, n, "%s", v[0]);
	free(v[0]);
	return 0;
}

/* ---- container and instance metadata: JSON documents ---- */

static time_t parse_iso8601(const char *s)
{
	struct tm tm = {0};
	const char *e = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!e)
		return 0;
	return timegm(&tm);
}

static int from_json_doc(struct cred *c, const struct cg_buf *body, const char *source)
{
	json_error_t jerr;
	json_t *j = json_loadb(body->data, body->len, 0, &jerr);
	int r;
	if (!j)
		return cg_fail(-EPROTO, "%s: credentials reply is not JSON", source);
	const char *ak = json_string_value(json_object_get(j, "AccessKeyId"));
	const char *sk = json_string_value(json_object_get(j, "SecretAccessKey"));
	const char *tok = json_string_value(json_object_get(j, "Token"));
	const char *exp = json_string_value(json_object_get(j, "Expiration"));
	const char *code = json_string_value(json_object_get(j, "Code"));
	if (code && strcmp(code, "Success"))
		r = cg_fail(-EACCES, "%s: credentials not available (%s)", source, code);
	else if (!ak || !sk)
		r = cg_fail(-EPROTO, "%s: credentials reply lacks AccessKeyId/SecretAccessKey", source);
	else
		r = cred_set(c, ak, sk, tok, source);
	if (!r && exp)
		c->expiration = parse_iso8601(exp);
	json_decref(j);
	return r;
}

/* The SDKs accept a full URI over plain HTTP only to the container
 * agent's link-local addresses or loopback. */
static bool full_uri_allowed(const char *uri)
{
	if (!strncmp(uri, "https://", 8))
		return true;
	if (strncmp(uri, "http://", 7))
		return false;
	const char *h = uri + 7;
	char host[256];
	size_t n;
	if (*h == '[') {
		n = strcspn(h + 1, "]");
		snprintf(host, sizeof(host), "%.*s", (int)n, h + 1);
	} else {
		n = strcspn(h, ":/");
		snprintf(host, sizeof(host), "%.*s", (int)n, h);
	}
	struct in_addr a4;
	if (!strcmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "169.254.170.2") ||
	    !strcmp(host, "169.254.170.23") || !strcasecmp(host, "fd00:ec2::23"))
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

static int from_container(struct cred *c)
{
	const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tokfile = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	struct http_opts o = {.connect_timeout_ms = 2000, .timeout_ms = 5000, .local_http = true};
	struct http_response resp;
	struct cg_buf url = {0}, hdr = {0};
	const char *hdrs[1];
	size_t nh = 0;
	int r;

	if (!rel && !full)
		return -ENOENT;
	if (rel)
		r = cg_buf_printf(&url, "http://169.254.170.2%s", rel);
	else if (!full_uri_allowed(full))
		return cg_fail(-EINVAL,
			       "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback/"
			       "container-agent address");
	else
		r = cg_buf_printf(&url, "%s", full);
	if (r)
		goto out;
	if (tokfile) {
		FILE *f = fopen(tokfile, "r");
		char tok[4096];
		if (!f) {
			r = cg_fail(-errno, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE %s",
				    tokfile);
			goto out;
		}
		size_t n = fread(tok, 1, sizeof(tok) - 1, f);
		fclose(f);
		tok[n] = '\0';
		r = cg_buf_printf(&hdr, "Authorization: %s", trim(tok));
		OPENSSL_cleanse(tok, sizeof(tok));
		nh = 1;
	} else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
		r = cg_buf_printf(&hdr, "Authorization: %s", env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
		nh = 1;
	}
	if (r)
		goto out;
	hdrs[0] = hdr.data;
	if ((r = http_request(&o, "GET", url.data, hdrs, nh, NULL, 0, &resp)))
		goto out;
	if (resp.status != 200)
		r = cg_fail(resp.status == 401 || resp.status == 403 ? -EACCES : -EAGAIN,
			    "container credentials endpoint answered HTTP %ld", resp.status);
	else
		r = from_json_doc(c, &resp.body, "container endpoint");
	http_response_free(&resp);
out:
	if (hdr.data)
		OPENSSL_cleanse(hdr.data, hdr.len);
	cg_buf_free(&hdr);
	cg_buf_free(&url);
	return r;
}

static int from_imds(struct cred *c)
{
	const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	/* Metadata answers in well under a second or not at all; the SDKs'
	 * one-second timeouts keep a laptop from hanging here. */
	struct http_opts o = {.connect_timeout_ms = 1000, .timeout_ms = 2000, .local_http = true};
	struct http_response resp = {0};
	struct cg_buf url = {0}, tokhdr = {0};
	char role[256];
	const char *h[1];
	int r;

	if (env_true("AWS_EC2_METADATA_DISABLED"))
		return -ENOENT;
	if (!base)
		base = "http://169.254.169.254";
	size_t bl = strlen(base);
	while (bl && base[bl - 1] == '/')
		bl--;

	h[0] = "X-aws-ec2-metadata-token-ttl-seconds: 21600";
	if ((r = cg_buf_printf(&url, "%.*s/latest/api/token", (int)bl, base)))
		goto out;
	if ((r = http_request(&o, "PUT", url.data, h, 1, NULL, 0, &resp)))
		goto out;
	if (resp.status != 200 || !resp.body.len) {
		r = cg_fail(-ENOENT, "instance metadata refused an IMDSv2 token (HTTP %ld)", resp.status);
		goto out;
	}
	if ((r = cg_buf_printf(&tokhdr, "X-aws-ec2-metadata-token: %s", trim(resp.body.data))))
		goto out;
	http_response_free(&resp);
	h[0] = tokhdr.data;

	url.len = 0;
	if ((r = cg_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)bl,
			       base)) ||
	    (r = http_request(&o, "GET", url.data, h, 1, NULL, 0, &resp)))
		goto out;
	if (resp.status != 200) {
		r = cg_fail(-ENOENT, "instance metadata: no IAM role attached (HTTP %ld)", resp.status);
		goto out;
	}
	snprintf(role, sizeof(role), "%.*s", (int)strcspn(resp.body.data, "\r\n"), resp.body.data);
	http_response_free(&resp);
	if (!role[0] || strchr(role, '/')) {
		r = cg_fail(-EPROTO, "instance metadata: bad role name");
		goto out;
	}
	url.len = 0;
	if ((r = cg_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/%s", (int)bl,
			       base, role)) ||
	    (r = http_request(&o, "GET", url.data, h, 1, NULL, 0, &resp)))
		goto out;
	if (resp.status != 200)
		r = cg_fail(-EAGAIN, "instance metadata credentials: HTTP %ld", resp.status);
	else
		r = from_json_doc(c, &resp.body, "instance metadata");
out:
	http_response_free(&resp);
	if (tokhdr.data)
		OPENSSL_cleanse(tokhdr.data, tokhdr.len);
	cg_buf_free(&tokhdr);
	cg_buf_free(&url);
	return r;
}

int cred_chain_new(struct cred_chain **out)
{
	struct cred_chain *ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	pthread_mutex_init(&ch->lock, NULL);
	*out = ch;
	return 0;
}

void cred_chain_free(struct cred_chain *ch)
{
	if (!ch)
		return;
	cred_clear(&ch->cur);
	pthread_mutex_destroy(&ch->lock);
	free(ch);
}

static int resolve(struct cred *c)
{
	static int (*const sources[])(struct cred *) = {from_env, cred_from_files, from_container,
							from_imds};
	for (size_t i = 0; i < CG_ARRAY_LEN(sources); i++) {
		memset(c, 0, sizeof(*c));
		int r = sources[i](c);
		if (r == 0) {
			cg_debug("credentials from %s", c->source);
			return 0;
		}
		cred_clear(c);
		/* A source that is configured but failing is the answer: do
		 * not silently fall through to a different identity. */
		if (r != -ENOENT)
			return r;
	}
	return cg_fail(-ENOENT,
		       "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
		       "AWS_PROFILE (~/.aws/credentials), or run with a container/instance role");
}

int cred_chain_get(struct cred_chain *ch, bool force_refresh, struct cred *out)
{
	int r = 0;
	pthread_mutex_lock(&ch->lock);
	time_t now = time(NULL);
	if (!ch->have || force_refresh ||
	    (ch->cur.expiration && ch->cur.expiration - now < CRED_REFRESH_MARGIN_S)) {
		struct cred fresh;
		r = resolve(&fresh);
		if (r == 0) {
			cred_clear(&ch->cur);
			ch->cur = fresh;
			ch->have = true;
		} else if (ch->have && (!ch->cur.expiration || ch->cur.expiration > now)) {
			/* Refresh failed but what we hold still works. */
			cg_warn("credentials refresh failed; using the current ones until they expire");
			r = 0;
		}
	}
	if (r == 0)
		r = cred_copy(out, &ch->cur);
	pthread_mutex_unlock(&ch->lock);
	return r;
}
