/* Pieces of src/upload/ shared between its files and its unit tests:
 * SigV4 signing, the credentials chain, the HTTPS client, the agent API. */
#ifndef CGPROF_UPLOAD_PRIV_H
#define CGPROF_UPLOAD_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cgprof/upload.h"
#include "cgprof/util.h"

/* ---- sigv4.c ---- */

struct sigv4_header {
	const char *name;
	const char *value;
};

struct sigv4_request {
	const char *method;
	const char *path;  /* as on the request line, without the query */
	const char *query; /* after '?' as on the request line, or NULL */
	const struct sigv4_header *headers; /* Host included; not x-amz-date */
	size_t nheaders;
	const void *body;
	size_t body_len;
	const char *region;
	const char *service;
	const char *amz_date; /* YYYYMMDDTHHMMSSZ */
	const char *access_key;
	const char *secret_key;
	const char *session_token;    /* NULL for long-term keys */
	bool content_sha256_header;   /* add x-amz-content-sha256 (S3-style) */
};

struct sigv4_result {
	char payload_hash[65];
	char signature[65];
	struct cg_buf canonical;      /* canonical request */
	struct cg_buf string_to_sign;
	struct cg_buf authorization;  /* Authorization header value */
	struct cg_buf signed_headers;
};

/* "20150830T123600Z" for t. */
void sigv4_amz_date(time_t t, char out[17]);
int sigv4_sign(const struct sigv4_request *rq, struct sigv4_result *out);
void sigv4_result_free(struct sigv4_result *r);
/* RFC 3986 unreserved kept, everything else %XX; keep_slash for paths. */
int sigv4_uri_encode(struct cg_buf *b, const char *s, size_t n, bool keep_slash);

/* ---- credentials.c ---- */

struct cred {
	char access_key[128];
	char secret_key[128];
	char *token;        /* NULL or heap */
	time_t expiration;  /* 0: does not expire */
	char source[64];    /* "environment", "profile default", ... no secret */
};
void cred_clear(struct cred *c); /* wipes the secret */

struct cred_chain;
int cred_chain_new(struct cred_chain **out);
void cred_chain_free(struct cred_chain *ch);
/* Current credentials (copied into *out), refreshed when temporary ones
 * expire within five minutes or force_refresh is set. -ENOENT (with
 * cg_fail) when no source has any. */
int cred_chain_get(struct cred_chain *ch, bool force_refresh, struct cred *out);
/* Region from AWS_REGION, AWS_DEFAULT_REGION, then the profile's config.
 * -ENOENT if none. */
int cred_region(char *buf, size_t n);
/* The shared-files step of the chain alone: the profile ($AWS_PROFILE or
 * "default") from $AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then
 * $AWS_CONFIG_FILE (~/.aws/config). 0, -ENOENT when they do not say, or
 * another negative with cg_fail(). Tests and the fuzzer call it directly. */
int cred_from_files(struct cred *c);

/* ---- http.c ---- */

struct http_opts {
	const char *ca_file;    /* NULL: AWS_CA_BUNDLE, else system store */
	const char *pin_sha256; /* base64 of the public key's SHA-256 */
	long connect_timeout_ms;
	long timeout_ms;
	/* Plain http allowed: only the credential endpoints set it (the
	 * container agent and instance metadata, link-local or loopback,
	 * as the SDKs speak to them). Everything signed is https only. */
	bool local_http;
	long max_body;          /* reply bytes kept; 0: 4 MiB */
	long deadline_ms;       /* CLOCK_MONOTONIC ms the request must end by; 0: none */
	const volatile bool *abort_flag; /* set: give up the transfer now */
};

struct http_response {
	long status;
	struct cg_buf body;
	char error_type[128]; /* x-amzn-ErrorType, before any ':' */
	time_t server_date;   /* from Date:, 0 if absent */
	long retry_after_s;   /* Retry-After: in seconds, -1 if absent */
	char location[256];   /* Location: of a redirect, as sent */
	bool truncated;       /* the body was longer than max_body: cut short */
};
void http_response_free(struct http_response *r);
/* One reply header line (untrusted, not NUL-terminated, any length) into
 * r: x-amzn-ErrorType, Date, Location, Retry-After. A status line resets
 * what the previous reply set. */
void http_parse_header(struct http_response *r, const char *line, size_t len);

/* One request. 0 when a response arrived (any status); -EAGAIN for
 * network errors and timeouts; -EACCES when TLS verification failed
 * (unknown CA, wrong host, pin mismatch); cg_fail explains. headers are
 * "Name: value" lines. */
int http_request(const struct http_opts *o, const char *method, const char *url,
		 const char *const *headers, size_t nheaders, const void *body, size_t len,
		 struct http_response *resp);

/* ---- agent.c ---- */

/* Retry knobs; tests shrink them. */
struct agent_retry {
	unsigned attempts;     /* total tries per call */
	unsigned base_ms;      /* first backoff cap */
	unsigned max_ms;       /* backoff cap */
	unsigned retry_after_max_ms; /* longest Retry-After waited for; longer: later run */
};

struct agent {
	char *endpoint;        /* scheme://host[:port], no trailing slash */
	char *host;            /* Host header value */
	char *region;
	char *group;
	char *fleet_id;
	struct http_opts http;
	struct agent_retry retry;
	struct cred_chain *creds;
	bool auth_reported;    /* a 403 was already explained once */
	long configure_budget_ms; /* total time for one ConfigureAgent, retries included */
	const volatile bool *configure_abort; /* set: abandon a ConfigureAgent in flight */
};

int agent_init(struct agent *a, const struct cg_config *c);
void agent_fini(struct agent *a);
/* Parse a ConfigureAgent reply into p (fields absent keep their value). */
int agent_parse_configuration(const char *json, size_t len, struct cg_agent_params *p);
int agent_configure(struct agent *a, struct cg_agent_params *p);
/* PostAgentProfile. 0 accepted (a 2xx, whatever its body); -EAGAIN retry
 * later; -EACCES/-EINVAL configuration wrong for every batch; -EBADMSG
 * this batch refused (a 4xx on it, or an invalid group or token in it):
 * cg_fail holds the endpoint's reason. */
int agent_post_profile(struct agent *a, const char *group, const char *token,
		       const char *content_type, const void *body, size_t len);
/* The endpoint URL in force for a config (heap), or NULL with cg_fail. */
char *agent_endpoint_url(const struct cg_config *c, const char *region);

/* ---- uploader.c / reporter.c ---- */

/* Tests shrink the retry schedule (attempts, first cap, max cap). */
void uploader_set_retry(struct cg_uploader *u, unsigned attempts, unsigned base_ms,
			unsigned max_ms);
/* Set *flag (from another thread) to abandon a ConfigureAgent in flight:
 * the reporter does at the end of a run, so a hung endpoint cannot hold
 * the exit. Posts are never abandoned. */
void uploader_set_configure_abort(struct cg_uploader *u, const volatile bool *flag);
/* ConfigureAgent now, waiting for the reply (tests and tools; the session
 * uses reporter_configure, which never waits). */
int reporter_configure_sync(struct cg_reporter *r, struct cg_agent_params *p);
/* A fresh random (version 4) UUID, lower case. */
void reporter_uuid(char out[37]);
/* The reporter's uploader (NULL with no_upload), for tests. */
struct cg_uploader *reporter_uploader(struct cg_reporter *r);

#endif
