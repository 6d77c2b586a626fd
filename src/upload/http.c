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

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct cg_buf *b = arg;
	/* A reply we parse is small; refuse to buffer a runaway one. */
	if (b->len + size * n > (4u << 20))
		return 0;
	return cg_buf_append(b, p, size * n) ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct http_response *r = arg;
	size_t len = size * n;
	char line[512];
	size_t l = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, p, l);
	line[l] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncasecmp(line, "x-amzn-errortype:", 17)) {
		const char *v = line + 17;
		while (*v == ' ')
			v++;
		snprintf(r->error_type, sizeof(r->error_type), "%.*s", (int)strcspn(v, ":"), v);
	} else if (!strncasecmp(line, "date:", 5)) {
		time_t t = curl_getdate(line + 5, NULL);
		r->server_date = t > 0 ? t : 0;
	}
	return len;
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
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return cg_fail(-EIO, "libcurl initialisation failed");
	h = curl_easy_init();
	if (!h)
		return cg_fail(-ENOMEM, "libcurl: out of memory");
	for (size_t i = 0; i < nheaders; i++) {
		struct curl_slist *n = curl_slist_append(hl, headers[i]);
		if (!n) {
			r = -ENOMEM;
			goto out;
		}
		hl = n;
	}
	/* curl adds these by default; the signature does not cover them and
	 * the endpoint needs neither. */
	hl = curl_slist_append(hl, "Expect:");
	hl = curl_slist_append(hl, "Accept:");
	if (!hl) {
		r = -ENOMEM;
		goto out;
	}

	const char *ca = o && o->ca_file ? o->ca_file : getenv("AWS_CA_BUNDLE");
	if (ca && !*ca)
		ca = NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "cgprof");
	/* Never follow redirects: a signed request must not wander. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	if (o && o->pin_sha256 && *o->pin_sha256) {
		char pin[256];
		snprintf(pin, sizeof(pin), "%s%s",
			 strncmp(o->pin_sha256, "sha256//", 8) ? "sha256//" : "", o->pin_sha256);
		curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, pin);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o && o->connect_timeout_ms ? o->connect_timeout_ms : 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o && o->timeout_ms ? o->timeout_ms : 60000L);
	if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);

	CURLcode rc = curl_easy_perform(h);
	switch (rc) {
	case CURLE_OK:
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
		if (!resp->body.data)
			r = cg_buf_append(&resp->body, "", 0);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		r = cg_fail(-EACCES, "%s: TLS verification refused the server: %s%s", url,
			    errbuf[0] ? errbuf : curl_easy_strerror(rc),
			    rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH
				    ? " (its public key does not match --pin-sha256)"
				    : rc == CURLE_PEER_FAILED_VERIFICATION
					      ? " (unknown CA or wrong host name; see --ca-file)"
					      : "");
		break;
	case CURLE_SSL_CONNECT_ERROR:
		/* An old server is a setup problem, not a passing one. */
		if (strstr(errbuf, "protocol version") || strstr(errbuf, "unsupported protocol")) {
			r = cg_fail(-EACCES, "%s: TLS handshake refused: %s (cgprof requires TLS 1.2 or newer)",
				    url, errbuf);
			break;
		}
		/* fall through */
	default:
		r = cg_fail(-EAGAIN, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		break;
	}
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(h);
	if (r)
		http_response_free(resp);
	return r;
}
