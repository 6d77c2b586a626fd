/* Talking to a profiling group endpoint: credentials, SigV4, HTTPS,
 * ConfigureAgent and PostAgentProfile, and the per-window reporter the
 * sampling session drives. */
#ifndef CGPROF_UPLOAD_H
#define CGPROF_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgprof/config.h"
#include "cgprof/profile.h"
#include "cgprof/spool.h"

/* What ConfigureAgent told us (defaults before the first reply). */
struct cg_agent_params {
	bool should_profile;
	uint32_t sampling_interval_ms;
	uint32_t reporting_interval_s;
	uint32_t min_reporting_s;
	uint64_t memory_limit_bytes;
	uint32_t max_stack_depth;
};

struct cg_uploader;

/* Errors a caller distinguishes (negative errno-style):
 *  -EAGAIN   network error, throttling or 5xx: retry later
 *  -EACCES   authentication/authorization/clock skew: configuration
 *  -EINVAL   validation error: configuration */
int uploader_new(const struct cg_config *c, struct cg_uploader **out);
void uploader_free(struct cg_uploader *u);
int uploader_configure_agent(struct cg_uploader *u, struct cg_agent_params *out);
/* PostAgentProfile of one batch, retrying with backoff and jitter. */
int uploader_post(struct cg_uploader *u, const struct cg_batch *b);

/* The session's side: one reporter per profiled process. */
struct cg_reporter;
/* NULL *out (and 0) when no profiling group is configured. */
int reporter_new(const struct cg_config *c, struct cg_reporter **out);
void reporter_free(struct cg_reporter *r);
/* Call at start and every reporting period: ConfigureAgent. */
int reporter_configure(struct cg_reporter *r, struct cg_agent_params *p);
/* End of a window: encode the profile (codeguru), then post it, or spool
 * it when it cannot be sent (or with no_upload). Empty or too-short
 * windows are not sent. */
int reporter_submit(struct cg_reporter *r, const struct cg_profile *p);

#endif
