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

/* What ConfigureAgent told us (defaults before the first reply: profile,
 * sample at config rate_hz, report every reporting_interval, minimum
 * window min(60 s, reporting interval), 10% memory, config max_depth). */
struct cg_agent_params {
	bool should_profile;           /* false: stop sampling until told again */
	uint32_t sampling_interval_ms;
	uint32_t reporting_interval_s; /* length of a window */
	uint32_t min_reporting_s;      /* shorter windows are not sent */
	uint32_t memory_limit_percent; /* of physical memory */
	uint64_t memory_limit_bytes;   /* the same, in bytes */
	uint32_t max_stack_depth;
	uint32_t period_s;             /* call reporter_configure again after */
};

struct cg_uploader;

/* Errors a caller distinguishes (negative errno-style):
 *  -EAGAIN   network error, throttling or 5xx: retry later
 *  -EACCES   authentication/authorization/clock skew: configuration
 *  -EINVAL   validation error: configuration */
int uploader_new(const struct cg_config *c, struct cg_uploader **out);
void uploader_free(struct cg_uploader *u);
int uploader_configure_agent(struct cg_uploader *u, struct cg_agent_params *out);
/* PostAgentProfile of one batch (its own group and profile token),
 * retrying throttling/5xx/network errors with backoff and full jitter. */
int uploader_post(struct cg_uploader *u, const struct cg_batch *b);
/* spool_send_fn for spool_drain (arg: the struct cg_uploader *): 0 sent
 * (2xx; delete the batch), -EAGAIN retry later, -EACCES/-EINVAL
 * configuration or credentials wrong (keep the batch, stop draining). */
int uploader_send(const struct cg_batch *b, void *arg);
/* `cgprof upload`: open the config's spool and send every pending batch
 * (signed at send time). 0 all sent; -EAGAIN some left, retry later;
 * -EACCES/-EINVAL configuration or credentials wrong (cg_fail says which);
 * -ENOSYS no spool in this build. Counts go to sent/left/refused. */
int uploader_drain(const struct cg_config *c, unsigned *sent, unsigned *left, unsigned *refused);
/* The defaults above, from the config. */
void uploader_default_params(const struct cg_config *c, struct cg_agent_params *p);

/* The session's side: one reporter per profiled process. */
struct cg_reporter;
/* NULL *out (and 0) when no profiling group is configured. */
int reporter_new(const struct cg_config *c, struct cg_reporter **out);
void reporter_free(struct cg_reporter *r);
/* Call at start and every p->period_s: ConfigureAgent. *p always gets the
 * parameters in force (the last reply's, or the defaults); a failed call
 * returns its error and keeps them. */
int reporter_configure(struct cg_reporter *r, struct cg_agent_params *p);
/* End of a window: encode the profile (codeguru), then post it, or spool
 * it when it cannot be sent (or with no_upload). Empty or too-short
 * windows are not sent. */
int reporter_submit(struct cg_reporter *r, const struct cg_profile *p);
/* The same for a window already encoded (codeguru JSON) of the given
 * length and sample count; what reporter_submit does after encoding. */
int reporter_submit_encoded(struct cg_reporter *r, const void *body, size_t len,
			    uint64_t window_ms, uint64_t samples);

#endif
