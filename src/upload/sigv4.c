/* AWS Signature Version 4 for header-signed requests: canonical request,
 * string to sign, signing key and the Authorization header, as botocore. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "cgprof/log.h"
#include "upload_priv.h"

/* botocore leaves these out of the signature: proxies and clients rewrite
 * them. */
static const char *const unsigned_headers[] = {"expect", "user-agent", "x-amzn-trace-id",
					       "authorization"};

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(p, n, md);
	hex(md, sizeof(md), out);
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int len = 32;
	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &len))
		return cg_fail(-EIO, "sigv4: HMAC-SHA256 failed");
	return 0;
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int sigv4_uri_encode(struct cg_buf *b, const char *s, size_t n, bool keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int r = (unreserved(c) || (keep_slash && c == '/'))
				? cg_buf_append(b, &s[i], 1)
				: cg_buf_printf(b, "%%%02X", c);
		if (r)
			return r;
	}
	return 0;
}

/* RFC 3986 dot-segment removal plus collapsing empty segments, which is
 * what AWS services expect of non-S3 paths. */
static int normalize_path(const char *path, struct cg_buf *out)
{
	size_t n = strlen(path);
	const char **seg = calloc(n + 1, sizeof(*seg));
	size_t *segn = calloc(n + 1, sizeof(*segn));
	size_t nseg = 0;
	int r = -ENOMEM;

	if (!seg || !segn)
		goto out;
	for (const char *p = path; *p;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* skip */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (nseg)
				nseg--;
		} else {
			seg[nseg] = p;
			segn[nseg++] = len;
		}
		p += len + (e ? 1 : 0);
		if (!e)
			break;
	}
	r = cg_buf_append(out, "/", 1);
	for (size_t i = 0; !r && i < nseg; i++) {
		r = cg_buf_append(out, seg[i], segn[i]);
		if (!r && i + 1 < nseg)
			r = cg_buf_append(out, "/", 1);
	}
	if (!r && nseg && n && path[n - 1] == '/')
		r = cg_buf_append(out, "/", 1);
out:
	free(seg);
	free(segn);
	return r;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode then re-encode, so a query already in canonical form stays as
 * it is and anything else (raw UTF-8, spaces) gets its canonical form. */
static int canon_component(struct cg_buf *b, const char *s, size_t n)
{
	struct cg_buf raw = {0};
	int r = cg_buf_reserve(&raw, n);
	for (size_t i = 0; !r && i < n; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		r = cg_buf_append(&raw, &c, 1);
	}
	if (!r)
		r = sigv4_uri_encode(b, raw.data ? raw.data : "", raw.len, false);
	cg_buf_free(&raw);
	return r;
}

struct kv {
	char *k, *v;
};

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

static int canonical_query(const char *q, struct cg_buf *out)
{
	struct kv *kv = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	for (const char *p = q; p && *p;) {
		const char *e = strchr(p, '&');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len) {
			const char *eq = memchr(p, '=', len);
			size_t kl = eq ? (size_t)(eq - p) : len;
			struct cg_buf k = {0}, v = {0};
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				struct kv *nk = realloc(kv, cap * sizeof(*kv));
				if (!nk) {
					r = -ENOMEM;
					goto out;
				}
				kv = nk;
			}
			r = canon_component(&k, p, kl);
			if (!r)
				r = eq ? canon_component(&v, eq + 1, len - kl - 1)
				       : cg_buf_append(&v, "", 0);
			if (!r && !k.data)
				r = cg_buf_append(&k, "", 0);
			if (!r && !v.data)
				r = cg_buf_append(&v, "", 0);
			if (r) {
				cg_buf_free(&k);
				cg_buf_free(&v);
				goto out;
			}
			kv[n].k = k.data;
			kv[n++].v = v.data;
		}
		if (!e)
			break;
		p = e + 1;
	}
	if (n)
		qsort(kv, n, sizeof(*kv), kv_cmp);
	for (size_t i = 0; !r && i < n; i++)
		r = cg_buf_printf(out, "%s%s=%s", i ? "&" : "", kv[i].k, kv[i].v);
out:
	for (size_t i = 0; i < n; i++) {
		free(kv[i].k);
		free(kv[i].v);
	}
	free(kv);
	return r;
}

struct hdr {
	char *name;      /* lower case */
	struct cg_buf value; /* trimmed, inner runs of blanks collapsed */
	size_t order;
};

static int hdr_cmp(const void *a, const void *b)
{
	const struct hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int trimall(struct cg_buf *b, const char *v)
{
	int r = cg_buf_append(b, "", 0);
	bool pending_space = false;
	for (const char *p = v; !r && *p; p++) {
		if (isspace((unsigned char)*p)) {
			pending_space = b->len > 0;
			continue;
		}
		if (pending_space)
			r = cg_buf_append(b, " ", 1);
		pending_space = false;
		if (!r)
			r = cg_buf_append(b, p, 1);
	}
	return r;
}

static bool is_unsigned(const char *lname)
{
	for (size_t i = 0; i < CG_ARRAY_LEN(unsigned_headers); i++)
		if (!strcmp(lname, unsigned_headers[i]))
			return true;
	return false;
}

/* The headers to sign: the caller's, then the ones signing adds, names
 * lower-cased, values trimmed, sorted (stable for repeats) into h. */
static int collect_headers(const struct sigv4_request *rq, const char *payload_hash,
			   struct hdr *h, size_t *nh)
{
	*nh = 0;
	for (size_t i = 0; i < rq->nheaders + 3; i++) {
		const char *name, *value;
		if (i < rq->nheaders) {
			name = rq->headers[i].name;
			value = rq->headers[i].value;
		} else if (i == rq->nheaders) {
			name = "x-amz-date", value = rq->amz_date;
		} else if (i == rq->nheaders + 1) {
			if (!rq->session_token)
				continue;
			name = "x-amz-security-token", value = rq->session_token;
		} else {
			if (!rq->content_sha256_header)
				continue;
			name = "x-amz-content-sha256", value = payload_hash;
		}
		char *lname = strdup(name);
		if (!lname)
			return -ENOMEM;
		for (char *p = lname; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (is_unsigned(lname)) {
			free(lname);
			continue;
		}
		h[*nh].name = lname;
		h[*nh].order = i;
		int r = trimall(&h[(*nh)++].value, value);
		if (r)
			return r;
	}
	qsort(h, *nh, sizeof(*h), hdr_cmp);
	return 0;
}

/* The canonical request into out->canonical, and the signed-header list. */
static int canonical_request(const struct sigv4_request *rq, const struct hdr *h, size_t nh,
			     struct sigv4_result *out)
{
	struct cg_buf *cr = &out->canonical, path = {0};
	int r = normalize_path(rq->path && rq->path[0] ? rq->path : "/", &path);
	if (r || (r = cg_buf_printf(cr, "%s\n", rq->method)) ||
	    (r = sigv4_uri_encode(cr, path.data, path.len, true)) ||
	    (r = cg_buf_append(cr, "\n", 1)) || (r = canonical_query(rq->query, cr)) ||
	    (r = cg_buf_append(cr, "\n", 1)))
		goto out;
	for (size_t i = 0; i < nh; i++) {
		bool same = i > 0 && !strcmp(h[i].name, h[i - 1].name);
		/* Repeated headers: one line, values joined by commas in the
		 * order they were given. */
		if (same)
			r = cg_buf_printf(cr, ",%s", h[i].value.data);
		else
			r = cg_buf_printf(cr, "%s%s:%s", i ? "\n" : "", h[i].name, h[i].value.data);
		if (!r && !same)
			r = cg_buf_printf(&out->signed_headers, "%s%s", i ? ";" : "", h[i].name);
		if (r)
			goto out;
	}
	r = cg_buf_printf(cr, "\n\n%s\n%s", out->signed_headers.data, out->payload_hash);
out:
	cg_buf_free(&path);
	return r;
}

/* String to sign, the signing key (an HMAC chain from "AWS4" + secret)
 * and the signature with it; day is the date's YYYYMMDD. */
static int sign_canonical(const struct sigv4_request *rq, const char *day,
			  struct sigv4_result *out)
{
	unsigned char k[32], k2[32];
	char crhash[65];
	struct cg_buf key = {0};
	sha256_hex(out->canonical.data, out->canonical.len, crhash);
	int r = cg_buf_printf(&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s",
			      rq->amz_date, day, rq->region, rq->service, crhash);
	if (r || (r = cg_buf_printf(&key, "AWS4%s", rq->secret_key)) ||
	    (r = hmac(key.data, key.len, day, k)) || (r = hmac(k, 32, rq->region, k2)) ||
	    (r = hmac(k2, 32, rq->service, k)) || (r = hmac(k, 32, "aws4_request", k2)) ||
	    (r = hmac(k2, 32, out->string_to_sign.data, k)))
		goto out;
	hex(k, 32, out->signature);
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	if (key.data)
		OPENSSL_cleanse(key.data, key.len);
	cg_buf_free(&key);
	return r;
}

int sigv4_sign(const struct sigv4_request *rq, struct sigv4_result *out)
{
	size_t nh = 0;
	struct hdr *h = calloc(rq->nheaders + 3, sizeof(*h));
	char day[9];
	int r = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!h)
		goto out;
	if (!rq->amz_date || strlen(rq->amz_date) != 16 || !rq->access_key || !rq->secret_key) {
		r = cg_fail(-EINVAL, "sigv4: missing date or credentials");
		goto out;
	}
	sha256_hex(rq->body ? rq->body : "", rq->body ? rq->body_len : 0, out->payload_hash);
	memcpy(day, rq->amz_date, 8);
	day[8] = '\0';
	if ((r = collect_headers(rq, out->payload_hash, h, &nh)) ||
	    (r = canonical_request(rq, h, nh, out)) || (r = sign_canonical(rq, day, out)))
		goto out;
	r = cg_buf_printf(&out->authorization,
			  "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
			  "Signature=%s",
			  rq->access_key, day, rq->region, rq->service, out->signed_headers.data,
			  out->signature);
out:
	for (size_t i = 0; h && i < nh; i++) {
		free(h[i].name);
		cg_buf_free(&h[i].value);
	}
	free(h);
	if (r)
		sigv4_result_free(out);
	return r;
}

void sigv4_result_free(struct sigv4_result *r)
{
	cg_buf_free(&r->canonical);
	cg_buf_free(&r->string_to_sign);
	cg_buf_free(&r->authorization);
	cg_buf_free(&r->signed_headers);
}
