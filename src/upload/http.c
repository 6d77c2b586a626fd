/* One HTTP(S) request through libcurl: verification always on, optional CA
 * file and public-key pin, TLS 1.2 minimum, timeouts, classified errors. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "cgprof/log.h"
#include "upload_priv.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

void http_response_free(struct http_response *r)
{
	cg_buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

/* Where on_body puts a reply and how much of it it keeps. */
struct body_sink {
	struct http_response *r;
	size_t max;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct body_sink *s = arg;
	/* A reply we parse is small: stop reading a runaway one at once
	 * (the status line is already in) rather than buffer it whole. */
	if (s->r->body.len + size * n > s->max) {
		s->r->truncated = true;
		return 0;
	}
	return cg_buf_append(&s->r->body, p, size * n) ? 0 : size * n;
}

static void header_value(const char *line, size_t skip, char *out, size_t n)
{
	const char *v = line + skip;
	while (*v == ' ' || *v == '\t')
		v++;
	snprintf(out, n, "%.*s", (int)(n - 1), v);
}

void http_parse_header(struct http_response *r, const char *p, size_t len)
{
	char line[512];
	size_t l = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, p, l);
	line[l] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	/* A new status line (after a 100 Continue, say) starts afresh. */
	if (!strncmp(line, "HTTP/", 5)) {
		r->error_type[0] = r->location[0] = '\0';
		r->retry_after_s = -1;
	} else if (!strncasecmp(line, "x-amzn-errortype:", 17)) {
		const char *v = line + 17;
		while (*v == ' ')
			v++;
		snprintf(r->error_type, sizeof(r->error_type), "%.*s", (int)strcspn(v, ":"), v);
	} else if (!strncasecmp(line, "date:", 5)) {
		time_t t = curl_getdate(line + 5, NULL);
		r->server_date = t > 0 ? t : 0;
	} else if (!strncasecmp(line, "location:", 9)) {
		header_value(line, 9, r->location, sizeof(r->location));
	} else if (!strncasecmp(line, "retry-after:", 12)) {
		char v[128];
		header_value(line, 12, v, sizeof(v));
		char *end;
		errno = 0;
		long long secs = strtoll(v, &end, 10);
		if (!errno && end != v && !*end && secs >= 0) {
			r->retry_after_s = secs > 86400 ? 86400 : (long)secs;
		} else {
			/* An HTTP date instead of seconds. */
			time_t t = curl_getdate(v, NULL);
			time_t now = time(NULL);
			/* A date years ahead means "much later": the same day's
			 * cap as the seconds form (the fuzzer found it unbounded). */
			if (t > 0)
				r->retry_after_s = t <= now ? 0 : t - now > 86400 ? 86400 : (long)(t - now);
		}
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	http_parse_header(arg, p, size * n);
	return size * n;
}

/* Give up when the caller's deadline passes or its abort flag is set:
 * a hung endpoint must not outlast the run that waits for it. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct http_opts *o = arg;
	if (o->abort_flag && *o->abort_flag)
		return 1;
	if (o->deadline_ms && (long)(cg_now_ns() / 1000000) >= o->deadline_ms)
		return 1;
	return 0;
}

/* What curl's own words leave unsaid about a failed verification: which
 * check failed (expired, not yet valid, unknown issuer, host name). */
static const char *verify_reason(CURL *h, CURLcode rc)
{
	long v = 0;
	if (rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
		return " (its public key does not match --pin-sha256)";
	if (curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &v) != CURLE_OK)
		v = 0;
	/* OpenSSL's X509_V_ERR_* numbers, stable since 0.9.x. */
	switch (v) {
	case 9: return " (the server's certificate is not yet valid; check the clock)";
	case 10: return " (the server's certificate has expired)";
	case 18: case 19: case 20: case 21: case 2:
		return " (unknown CA; see --ca-file)";
	case 62: case 64:
		return " (the certificate is for another host name)";
	default: break;
	}
	if (rc == CURLE_PEER_FAILED_VERIFICATION)
		return v ? "" : " (the certificate does not match the host name)";
	return "";
}

/* The proxy curl would use for url (the environment, as curl reads it),
 * so a connection failure can name it. */
static const char *proxy_for(const char *url, char *buf, size_t n)
{
	const char *np = getenv("NO_PROXY") ? getenv("NO_PROXY") : getenv("no_proxy");
	const char *p = getenv("https_proxy");
	if (!p || !*p)
		p = getenv("HTTPS_PROXY");
	if (!p || !*p)
		p = getenv("ALL_PROXY") ? getenv("ALL_PROXY") : getenv("all_proxy");
	if (!p || !*p)
		return NULL;
	if (np && *np) {
		/* Close enough for a message: the host appears in NO_PROXY. */
		const char *host = strstr(url, "://");
		host = host ? host + 3 : url;
		size_t hl = strcspn(host, ":/?#");
		for (const char *q = np; *q;) {
			size_t l = strcspn(q, ", ");
			if ((l == 1 && *q == '*') || (l == hl && !strncasecmp(q, host, hl)))
				return NULL;
			q += l;
			q += strspn(q, ", ");
		}
	}
	snprintf(buf, n, "%s", p);
	return buf;
}

/* The caller's headers, and two that curl adds by default blanked: the
 * signature does not cover them and the endpoint needs neither. */
static int http_headers(const char *const *headers, size_t nheaders, struct curl_slist **out)
{
	static const char *const blank[] = {"Expect:", "Accept:"};
	for (size_t i = 0; i < nheaders + CG_ARRAY_LEN(blank); i++) {
		const char *hdr = i < nheaders ? headers[i] : blank[i - nheaders];
		struct curl_slist *n = curl_slist_append(*out, hdr);
		if (!n)
			return -ENOMEM;
		*out = n;
	}
	return 0;
}

/* Where a request may go and whom it trusts: never a redirect, https
 * only (nothing signed goes out in clear text, whoever chose the URL),
 * peer and host verified, TLS 1.2 or newer, the CA file and pin given. */
static void http_setopt_tls(CURL *h, const struct http_opts *o)
{
	const char *ca = o && o->ca_file ? o->ca_file : getenv("AWS_CA_BUNDLE");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, o && o->local_http ? "http,https" : "https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (ca && *ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	if (o && o->pin_sha256 && *o->pin_sha256) {
		char pin[256];
		snprintf(pin, sizeof(pin), "%s%s",
			 strncmp(o->pin_sha256, "sha256//", 8) ? "sha256//" : "", o->pin_sha256);
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin); /* curl copies it */
	}
}

/* How long the request may take: its own timeouts, cut to the caller's
 * deadline, which with the abort flag a progress callback watches. 0, or
 * -EAGAIN when the deadline has passed already. */
static int http_setopt_time(CURL *h, const struct http_opts *o, const char *url)
{
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 o && o->connect_timeout_ms ? o->connect_timeout_ms : 5000L);
	long timeout = o && o->timeout_ms ? o->timeout_ms : 60000L;
	if (o && o->deadline_ms) {
		long left = o->deadline_ms - (long)(cg_now_ns() / 1000000);
		if (left <= 0)
			return cg_fail(-EAGAIN, "%s: no time left for the request", url);
		if (left < timeout)
			timeout = left;
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	if (o && (o->deadline_ms || o->abort_flag)) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)o);
	}
	return 0;
}

/* What curl_easy_perform's rc means for the caller: 0 with the status
 * (a 2xx whose body was cut is still an acceptance), or a classified
 * error: -EACCES a setup problem (TLS), -EINVAL refused, -EAGAIN passing. */
static int http_result(CURL *h, CURLcode rc, const struct http_opts *o, const char *url,
		       const char *errbuf, const struct body_sink *sink)
{
	struct http_response *resp = sink->r;
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	char proxy[256];
	const char *px;
	switch (rc) {
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		/* The status arrived before the oversized body: a 2xx is still
		 * an acceptance, and must never be taken for a failure. */
		if (!resp->truncated && rc == CURLE_WRITE_ERROR)
			return cg_fail(-ENOMEM, "%s: out of memory reading the reply", url);
		resp->truncated = true;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		if (resp->status < 100)
			return cg_fail(-EAGAIN, "%s: reply larger than %zu bytes", url, sink->max);
		cg_debug("%s: reply cut at %zu bytes (HTTP %ld)", url, sink->max, resp->status);
		/* fall through */
	case CURLE_OK:
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		return resp->body.data ? 0 : cg_buf_append(&resp->body, "", 0);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		return cg_fail(-EACCES, "%s: TLS verification refused the server: %s%s", url, why,
			       verify_reason(h, rc));
	case CURLE_UNSUPPORTED_PROTOCOL:
		return cg_fail(-EINVAL, "%s: refused: cgprof speaks https only (%s)", url, why);
	case CURLE_ABORTED_BY_CALLBACK:
		return cg_fail(-EAGAIN, "%s: gave up: %s", url,
			       o && o->abort_flag && *o->abort_flag ? "the run is ending"
								    : "out of time for this call");
	case CURLE_SSL_CONNECT_ERROR:
		/* An old server is a setup problem, not a passing one. */
		if (strstr(errbuf, "protocol version") || strstr(errbuf, "unsupported protocol"))
			return cg_fail(-EACCES, "%s: TLS handshake refused: %s (cgprof requires TLS "
						"1.2 or newer)", url, errbuf);
		/* fall through */
	default:
		/* Through a proxy, the failure may be the proxy's: name it. */
		px = proxy_for(url, proxy, sizeof(proxy));
		return cg_fail(-EAGAIN, "%s: %s%s%s%s", url, why, px ? " (through proxy " : "",
			       px ? px : "", px ? ")" : "");
	}
}

int http_request(const struct http_opts *o, const char *method, const char *url,
		 const char *const *headers, size_t nheaders, const void *body, size_t len,
		 struct http_response *resp)
{
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *h = NULL;
	int r = 0;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	struct body_sink sink = {resp, o && o->max_body > 0 ? (size_t)o->max_body : (4u << 20)};
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return cg_fail(-EIO, "libcurl initialisation failed");
	h = curl_easy_init();
	if (!h)
		return cg_fail(-ENOMEM, "libcurl: out of memory");
	if ((r = http_headers(headers, nheaders, &hl)))
		goto out;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "cgprof");
	http_setopt_tls(h, o);
	if ((r = http_setopt_time(h, o, url)))
		goto out;
	/* A bigger reply is cut off where the limit passes. */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)sink.max);
	if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
	r = http_result(h, curl_easy_perform(h), o, url, errbuf, &sink);
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (r)
		http_response_free(resp);
	return r;
}
