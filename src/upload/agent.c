/* The CodeGuru Profiler agent API over signed HTTPS: endpoint resolution,
 * retries with backoff and full jitter, error classification,
 * ConfigureAgent and PostAgentProfile. */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cgprof/log.h"
#include "upload_priv.h"

#define AGENT_SERVICE "codeguru-profiler"
/* Beyond this difference the endpoint refuses signatures (AWS allows
 * five minutes); used to word the error. */
#define AGENT_SKEW_LIMIT_S 300

char *agent_endpoint_url(const struct cg_config *c, const char *region)
{
	const char *e = c->endpoint && *c->endpoint ? c->endpoint : NULL, *from = "endpoint";
	char *url = NULL;
	if (!e && (e = getenv("AWS_ENDPOINT_URL_CODEGURUPROFILER")) && *e)
		from = "AWS_ENDPOINT_URL_CODEGURUPROFILER";
	if ((!e || !*e) && (e = getenv("AWS_ENDPOINT_URL")) && *e)
		from = "AWS_ENDPOINT_URL";
	if (e && *e) {
		/* Every source alike: a signed request, its session token and
		 * the profile never travel in clear text. */
		if (!config_valid_endpoint(e)) {
			cg_fail(-EINVAL, "%s %.200s: expected https://HOST[:PORT] (TLS is always on)",
				from, e);
			return NULL;
		}
		url = strdup(e);
	} else if (region && *region) {
		/* The region becomes part of the host name. */
		if (!config_valid_region(region)) {
			cg_fail(-EINVAL, "region '%.100s' is invalid: expected a name like us-east-1",
				region);
			return NULL;
		}
		if (asprintf(&url, "https://codeguru-profiler.%s.amazonaws.com%s", region,
			     strncmp(region, "cn-", 3) ? "" : ".cn") < 0)
			url = NULL;
	} else {
		cg_fail(-EINVAL, "no region: use --region or set AWS_REGION");
		return NULL;
	}
	if (url) {
		size_t n = strlen(url);
		while (n > 8 && url[n - 1] == '/')
			url[--n] = '\0';
	}
	return url;
}

/* Host header as botocore derives it: the URL's authority without a
 * default port. */
static char *host_of(const char *url)
{
	const char *h = url + 8; /* "https://", checked by agent_endpoint_url */
	size_t n = strcspn(h, "/?#");
	char *host = strndup(h, n);
	if (!host)
		return NULL;
	char *colon = strrchr(host, ':');
	if (colon && !strchr(colon, ']') && !strcmp(colon, ":443"))
		*colon = '\0';
	return host;
}

int agent_init(struct agent *a, const struct cg_config *c)
{
	char region[64] = "", host[256];
	int r = 0;

	memset(a, 0, sizeof(*a));
	if (c->region && *c->region)
		snprintf(region, sizeof(region), "%s", c->region);
	else
		cred_region(region, sizeof(region));
	if (!region[0])
		return cg_fail(-EINVAL, "no region: use --region, AWS_REGION or a profile's region");
	/* From the credentials files or AWS_REGION too: it signs and names
	 * the host, so it is checked whatever its source. */
	if (!config_valid_region(region))
		return cg_fail(-EINVAL, "region '%.100s' is invalid: expected a name like us-east-1",
			       region);
	if (c->profiling_group && !config_valid_group(c->profiling_group))
		return cg_fail(-EINVAL, "profiling group '%s': use 1-255 letters, digits, _ or -",
			       c->profiling_group);
	a->region = strdup(region);
	a->group = c->profiling_group ? strdup(c->profiling_group) : NULL;
	a->endpoint = agent_endpoint_url(c, region);
	if (!a->endpoint) {
		r = -EINVAL;
		goto out;
	}
	a->host = host_of(a->endpoint);
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		snprintf(host, sizeof(host), "unknown-host");
	host[sizeof(host) - 1] = '\0';
	a->fleet_id = strdup(host);
	if (!a->region || !a->host || !a->fleet_id || (c->profiling_group && !a->group)) {
		r = -ENOMEM;
		goto out;
	}
	a->http.ca_file = c->ca_file;
	a->http.pin_sha256 = c->pin_sha256;
	a->http.connect_timeout_ms = 5000;
	a->http.timeout_ms = 30000;
	a->retry.attempts = 4;
	a->retry.base_ms = 500;
	a->retry.max_ms = 20000;
	a->retry.retry_after_max_ms = 60000;
	/* A first window is minutes long; the agent call must end well
	 * before, whatever the endpoint does. */
	a->configure_budget_ms = 30000;
	r = cred_chain_new(&a->creds);
out:
	if (r)
		agent_fini(a);
	return r;
}

void agent_fini(struct agent *a)
{
	free(a->endpoint);
	free(a->host);
	free(a->region);
	free(a->group);
	free(a->fleet_id);
	cred_chain_free(a->creds);
	memset(a, 0, sizeof(*a));
}

static unsigned rand_below(unsigned n)
{
	unsigned x = 0;
	if (n == 0)
		return 0;
	if (RAND_bytes((unsigned char *)&x, sizeof(x)) != 1)
		x = (unsigned)rand();
	return x % n;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
static void backoff(const struct agent_retry *rt, unsigned attempt)
{
	unsigned long cap = rt->base_ms;
	for (unsigned i = 0; i < attempt && cap < rt->max_ms; i++)
		cap *= 2;
	if (cap > rt->max_ms)
		cap = rt->max_ms;
	sleep_ms(rand_below((unsigned)cap + 1));
}

/* The service's own words, from the JSON error body. */
static void error_message(const struct http_response *resp, char *type, size_t tn, char *msg,
			  size_t mn)
{
	json_t *j = json_loadb(resp->body.data ? resp->body.data : "", resp->body.len, 0, NULL);
	const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
	if (!m && j)
		m = json_string_value(json_object_get(j, "Message"));
	const char *t = j ? json_string_value(json_object_get(j, "__type")) : NULL;
	snprintf(type, tn, "%s", resp->error_type[0] ? resp->error_type : t ? t : "");
	/* "__type" may be "namespace#Name". */
	char *hash = strchr(type, '#');
	if (hash)
		memmove(type, hash + 1, strlen(hash));
	snprintf(msg, mn, "%s", m ? m : "");
	json_decref(j);
}

enum verdict { V_OK, V_RETRY, V_REFRESH, V_FATAL };

static enum verdict classify(struct agent *a, const struct http_response *resp,
			     const struct cred *cr, bool refreshed, int *err)
{
	char type[128], msg[512];
	long st = resp->status;

	if (st >= 200 && st < 300)
		return V_OK;
	error_message(resp, type, sizeof(type), msg, sizeof(msg));
	if (st == 429 || st >= 500 || !strcmp(type, "ThrottlingException")) {
		*err = -EAGAIN;
		cg_clearerr();
		cg_fail(-EAGAIN, "%s answered HTTP %ld %s%s%s", a->endpoint, st, type,
			msg[0] ? ": " : "", msg);
		return V_RETRY;
	}
	if ((!strcmp(type, "ExpiredTokenException") || !strcmp(type, "ExpiredToken")) && !refreshed)
		return V_REFRESH;
	if (st == 401 || st == 403) {
		long skew = resp->server_date ? (long)(time(NULL) - resp->server_date) : 0;
		*err = -EACCES;
		if (strstr(msg, "Signature expired") || strstr(msg, "not yet current") ||
		    !strcmp(type, "RequestTimeTooSkewed") || !strcmp(type, "RequestExpired") ||
		    labs(skew) > AGENT_SKEW_LIMIT_S)
			cg_fail(-EACCES,
				"%s refused the request: clock skew (this host is %+lds off the "
				"endpoint's clock%s%s); fix the system clock (NTP)",
				a->endpoint, skew, msg[0] ? "; " : "", msg);
		else
			cg_fail(-EACCES,
				"%s refused the credentials from %s (HTTP %ld %s%s%s): check the access "
				"key, secret and permissions (codeguru-profiler:ConfigureAgent, "
				"PostAgentProfile)",
				a->endpoint, cr->source, st, type, msg[0] ? ": " : "", msg);
		return V_FATAL;
	}
	*err = -EINVAL;
	if (st >= 300 && st < 400)
		cg_fail(-EINVAL, "%s answered HTTP %ld, a redirect%s%.200s; not followed (a signed "
				 "request never goes elsewhere): check --endpoint",
			a->endpoint, st, resp->location[0] ? " to " : "", resp->location);
	else if (st == 404 || !strcmp(type, "ResourceNotFoundException"))
		cg_fail(-EINVAL, "%s: profiling group not found in %s (HTTP %ld%s%s)", a->endpoint,
			a->region, st, msg[0] ? ": " : "", msg);
	else {
		/* Any other 4xx is about this request alone (its body, its
		 * token): the caller sets it aside and goes on. */
		*err = st >= 400 && st < 500 ? -EBADMSG : -EINVAL;
		cg_fail(*err, "%s rejected the request (HTTP %ld%s%s%s%s)", a->endpoint, st,
			type[0] ? " " : "", type, msg[0] ? ": " : "", msg);
	}
	return V_FATAL;
}

/* Before attempt number attempt: the endpoint's Retry-After, else a
 * backoff; no wait before the first one or right after a token refresh.
 * 0 to go on; 1 when out of time or told to stop (the last failure's
 * words stand); -EAGAIN when the endpoint asks for a wait beyond our
 * bounds (the work is left to a later run). */
static int agent_wait(struct agent *a, const struct http_opts *ho, unsigned attempt,
		      long retry_after, bool refresh)
{
	if (!attempt)
		return 0;
	long now_ms = (long)(cg_now_ns() / 1000000);
	if ((ho->deadline_ms && now_ms >= ho->deadline_ms) || (ho->abort_flag && *ho->abort_flag))
		return 1;
	if (refresh)
		return 0;
	if (retry_after < 0) {
		backoff(&a->retry, attempt - 1);
		return 0;
	}
	long ms = retry_after * 1000;
	long left = ho->deadline_ms ? ho->deadline_ms - now_ms : ms + 1;
	if (ms > (long)a->retry.retry_after_max_ms || ms >= left) {
		cg_clearerr();
		return cg_fail(-EAGAIN, "%s asked to retry after %ld s: left for later", a->endpoint,
			       retry_after);
	}
	sleep_ms((unsigned)ms);
	return 0;
}

/* One attempt: sign the request with cr and send it. http_request's
 * result; a failure to sign is never -EAGAIN. The signed headers are
 * wiped before they are freed. */
static int agent_send(struct agent *a, const struct http_opts *ho, const char *url,
		      const char *path, const char *query, const char *content_type,
		      const void *body, size_t len, const struct cred *cr,
		      struct http_response *resp)
{
	struct sigv4_result sig = {0};
	char amz[17], *hl[5] = {NULL};
	size_t nh = 0;
	sigv4_amz_date(time(NULL), amz);
	struct sigv4_header sh[] = {{"Host", a->host}, {"Content-Type", content_type}};
	struct sigv4_request rq = {.method = "POST", .path = path, .query = query,
				   .headers = sh, .nheaders = 2, .body = body,
				   .body_len = len, .region = a->region,
				   .service = AGENT_SERVICE, .amz_date = amz,
				   .access_key = cr->access_key, .secret_key = cr->secret_key,
				   .session_token = cr->token};
	int r = sigv4_sign(&rq, &sig);
	if (!r && (asprintf(&hl[nh++], "Content-Type: %s", content_type) < 0 ||
		   asprintf(&hl[nh++], "X-Amz-Date: %s", amz) < 0 ||
		   asprintf(&hl[nh++], "Authorization: %s", sig.authorization.data) < 0 ||
		   (cr->token && asprintf(&hl[nh++], "X-Amz-Security-Token: %s", cr->token) < 0)))
		r = -ENOMEM;
	if (!r)
		r = http_request(ho, "POST", url, (const char *const *)hl, nh, body, len, resp);
	for (size_t i = 0; i < nh; i++) {
		if (hl[i])
			memset(hl[i], 0, strlen(hl[i]));
		free(hl[i]);
	}
	sigv4_result_free(&sig);
	return r;
}

/* One signed call with retries. On 0, *resp holds the 2xx reply. */
static int agent_call(struct agent *a, const char *path, const char *query,
		      const char *content_type, const void *body, size_t len, long budget_ms,
		      bool abortable, struct http_response *resp)
{
	struct cg_buf url = {0};
	bool refreshed = false, force = false;
	long retry_after = -1;
	int r = -EAGAIN;
	struct http_opts ho = a->http;
	long now_ms = (long)(cg_now_ns() / 1000000);
	if (budget_ms > 0)
		ho.deadline_ms = now_ms + budget_ms;
	if (abortable)
		ho.abort_flag = a->configure_abort;

	memset(resp, 0, sizeof(*resp));
	if ((r = cg_buf_printf(&url, "%s%s%s%s", a->endpoint, path, query ? "?" : "",
			       query ? query : "")))
		return r;
	for (unsigned attempt = 0; attempt < a->retry.attempts; attempt++) {
		struct cred cr = {0};
		int err = -EAGAIN;
		enum verdict v = V_RETRY;

		int w = agent_wait(a, &ho, attempt, retry_after, force);
		if (w) {
			r = w < 0 ? w : r;
			goto out;
		}
		retry_after = -1;
		r = cred_chain_get(a->creds, force, &cr);
		force = false;
		if (r)
			goto out; /* cg_fail said why; no point retrying blind */
		r = agent_send(a, &ho, url.data, path, query, content_type, body, len, &cr, resp);
		if (r == 0) {
			v = classify(a, resp, &cr, refreshed, &err);
			if (v == V_RETRY)
				retry_after = resp->retry_after_s;
			r = v == V_OK ? 0 : err;
			if (v == V_REFRESH) {
				refreshed = force = true;
				attempt--; /* an expired token is not the server's fault */
			}
		} else if (r != -EAGAIN) {
			v = V_FATAL;
		}
		if (r == -EAGAIN)
			cg_debug("attempt %u/%u failed: %s", attempt + 1, a->retry.attempts,
				 cg_lasterr());
		cred_clear(&cr);
		if (v == V_OK || v == V_FATAL)
			goto out;
		http_response_free(resp);
		if (v == V_RETRY && attempt + 1 < a->retry.attempts)
			cg_clearerr(); /* only the last failure's words survive */
	}
out:
	if (r)
		http_response_free(resp);
	cg_buf_free(&url);
	return r;
}

/* A numeric string parameter divided by div; def (already in the target
 * unit) when absent or malformed. */
static uint32_t param_u32(json_t *params, const char *name, uint32_t def, uint32_t div)
{
	json_t *v = json_object_get(params, name);
	unsigned long long x;
	char *end;
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		x = (unsigned long long)json_integer_value(v);
	else if (json_is_string(v)) {
		errno = 0;
		x = strtoull(json_string_value(v), &end, 10);
		if (errno || *end || end == json_string_value(v))
			return def;
	} else
		return def;
	x /= div;
	return x > UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

int agent_parse_configuration(const char *text, size_t len, struct cg_agent_params *p)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, 0, &jerr);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return cg_fail(-EPROTO, "ConfigureAgent reply is not a JSON object");
	}
	/* The model makes `configuration` the payload (the body is the
	 * AgentConfiguration); accept it wrapped too. */
	json_t *c = json_object_get(j, "configuration");
	if (!json_is_object(c))
		c = j;
	json_t *sp = json_object_get(c, "shouldProfile");
	if (json_is_boolean(sp))
		p->should_profile = json_is_true(sp);
	json_t *period = json_object_get(c, "periodInSeconds");
	if (json_is_integer(period) && json_integer_value(period) > 0) {
		/* a day at most: a larger value would not fit, and means "rarely" */
		json_int_t v = json_integer_value(period);
		p->period_s = v > 86400 ? 86400 : (uint32_t)v;
	}
	json_t *ap = json_object_get(c, "agentParameters");
	if (json_is_object(ap)) {
		p->sampling_interval_ms =
			param_u32(ap, "SamplingIntervalInMilliseconds", p->sampling_interval_ms, 1);
		p->reporting_interval_s =
			param_u32(ap, "ReportingIntervalInMilliseconds", p->reporting_interval_s, 1000);
		p->min_reporting_s = param_u32(ap, "MinimumTimeForReportingInMilliseconds",
					       p->min_reporting_s, 1000);
		p->memory_limit_percent =
			param_u32(ap, "MemoryUsageLimitPercent", p->memory_limit_percent, 1);
		p->max_stack_depth = param_u32(ap, "MaxStackDepth", p->max_stack_depth, 1);
	}
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	if (pages > 0 && psz > 0 && p->memory_limit_percent)
		p->memory_limit_bytes = (uint64_t)pages * (uint64_t)psz / 100 * p->memory_limit_percent;
	/* Zero would spin the sampler or the reporter. */
	if (!p->sampling_interval_ms)
		p->sampling_interval_ms = 1;
	if (!p->reporting_interval_s)
		p->reporting_interval_s = 1;
	json_decref(j);
	return 0;
}

int agent_configure(struct agent *a, struct cg_agent_params *p)
{
	struct http_response resp;
	struct cg_buf path = {0};
	json_t *body = json_pack("{s:s, s:{s:s}}", "fleetInstanceId", a->fleet_id, "metadata",
				 "ComputePlatform", "UNKNOWN");
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	int r = -ENOMEM;

	if (!text)
		goto out;
	if (!a->group) {
		r = cg_fail(-EINVAL, "no profiling group: use --profiling-group");
		goto out;
	}
	if ((r = cg_buf_printf(&path, "/profilingGroups/%s/configureAgent", a->group)))
		goto out;
	r = agent_call(a, path.data, NULL, "application/json", text, strlen(text),
		       a->configure_budget_ms, true, &resp);
	if (r)
		goto out;
	if (resp.truncated)
		r = cg_fail(-EAGAIN, "ConfigureAgent reply is larger than we read; ignored");
	else
		r = agent_parse_configuration(resp.body.data, resp.body.len, p);
	http_response_free(&resp);
out:
	free(text);
	json_decref(body);
	cg_buf_free(&path);
	return r;
}

int agent_post_profile(struct agent *a, const char *group, const char *token,
		       const char *content_type, const void *body, size_t len)
{
	struct http_response resp;
	struct cg_buf path = {0}, query = {0};
	int r;

	if (!group || !config_valid_group(group))
		return cg_fail(-EBADMSG, "batch has an invalid profiling group '%.300s'",
			       group ? group : "");
	if (!token || !config_valid_group(token) || strlen(token) > 64)
		return cg_fail(-EBADMSG, "batch has an invalid profile token");
	if ((r = cg_buf_printf(&path, "/profilingGroups/%s/agentProfile", group)) ||
	    (r = cg_buf_printf(&query, "profileToken=%s", token)))
		goto out;
	/* A 2xx is the acceptance whatever its body (agent_call reads at
	 * most a bounded, cut-short part of it): never post it again. */
	r = agent_call(a, path.data, query.data,
		       content_type && *content_type ? content_type : "application/json", body, len,
		       0, false, &resp);
	if (r == 0)
		http_response_free(&resp);
out:
	cg_buf_free(&path);
	cg_buf_free(&query);
	return r;
}
