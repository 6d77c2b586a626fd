/* The public uploader: one agent (endpoint, credentials, retries) that
 * configures and posts batches, and the spool_send_fn `cgprof upload` uses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgprof/log.h"
#include "upload_priv.h"

/* Until the spool module links in, draining reports it is missing. */

struct cg_uploader {
	struct agent a;
};

void uploader_default_params(const struct cg_config *c, struct cg_agent_params *p)
{
	memset(p, 0, sizeof(*p));
	p->should_profile = true;
	p->sampling_interval_ms = c->rate_hz ? (1000 + c->rate_hz / 2) / c->rate_hz : 10;
	if (!p->sampling_interval_ms)
		p->sampling_interval_ms = 1;
	p->reporting_interval_s = c->reporting_interval_s ? c->reporting_interval_s : 300;
	/* The official agents' one minute, unless windows are shorter. */
	p->min_reporting_s = p->reporting_interval_s < 60 ? p->reporting_interval_s : 60;
	p->memory_limit_percent = 10;
	p->max_stack_depth = c->max_depth ? c->max_depth : 2048;
	p->period_s = p->reporting_interval_s;
}

int uploader_new(const struct cg_config *c, struct cg_uploader **out)
{
	struct cg_uploader *u = calloc(1, sizeof(*u));
	int r;
	*out = NULL;
	if (!u)
		return -ENOMEM;
	r = agent_init(&u->a, c);
	if (r) {
		free(u);
		return r;
	}
	*out = u;
	return 0;
}

void uploader_free(struct cg_uploader *u)
{
	if (!u)
		return;
	agent_fini(&u->a);
	free(u);
}

int uploader_configure_agent(struct cg_uploader *u, struct cg_agent_params *out)
{
	return agent_configure(&u->a, out);
}

int uploader_post(struct cg_uploader *u, const struct cg_batch *b)
{
	int r = agent_post_profile(&u->a, b->profiling_group, b->profile_token, b->content_type,
				   b->body, b->len);
	if (r == 0)
		cg_debug("batch %s posted to %s (%zu bytes)", b->id, b->profiling_group, b->len);
	return r;
}

int uploader_send(const struct cg_batch *b, void *arg)
{
	int r = uploader_post(arg, b);
	/* Anything not understood as configuration, or as this batch being
	 * refused, is worth another try. */
	if (r && r != -EACCES && r != -EINVAL && r != -EBADMSG)
		r = -EAGAIN;
	return r;
}

void uploader_set_configure_abort(struct cg_uploader *u, const volatile bool *flag)
{
	u->a.configure_abort = flag;
}

void uploader_set_retry(struct cg_uploader *u, unsigned attempts, unsigned base_ms,
			unsigned max_ms)
{
	u->a.retry.attempts = attempts ? attempts : 1;
	u->a.retry.base_ms = base_ms;
	u->a.retry.max_ms = max_ms;
}

/* Carries the first configuration error out of spool_drain, which only
 * sees the callback's return value. */
struct drain_ctx {
	struct cg_uploader *u;
	int fatal;
};

static int drain_send(const struct cg_batch *b, void *arg)
{
	struct drain_ctx *d = arg;
	int r = uploader_send(b, d->u);
	if ((r == -EACCES || r == -EINVAL) && !d->fatal)
		d->fatal = r;
	return r;
}

int uploader_drain(const struct cg_config *c, unsigned *sent, unsigned *left, unsigned *refused)
{
	struct cg_uploader *u = NULL;
	struct cg_spool *s = NULL;
	struct drain_ctx d = {0};
	unsigned ns = 0, nl = 0, nr = 0;
	int r;

	if ((r = uploader_new(c, &u)))
		goto out;
	/* A spool named that is not there was never written: a typo in
	 * spool_dir would drain an empty directory made for it, "0 sent"
	 * every night while the real one fills. The default one is made. */
	struct stat st;
	if (c->spool_dir && stat(c->spool_dir, &st) && errno == ENOENT) {
		r = cg_fail(-ENOENT, "spool %s does not exist: nothing was ever spooled there "
				     "(is spool_dir the one the profiler writes to?)",
			    c->spool_dir);
		goto out;
	}
	if ((r = spool_open(c, &s)))
		goto out;
	d.u = u;
	r = spool_drain(s, drain_send, &d, &ns, &nl, &nr);
	if (r >= 0)
		r = d.fatal ? d.fatal : (nl ? -EAGAIN : 0);
	if (r == -EAGAIN && !cg_lasterr()[0])
		cg_fail(-EAGAIN, "%u batch(es) left in the spool; will retry", nl);
out:
	if (s)
		spool_close(s);
	uploader_free(u);
	if (sent)
		*sent = ns;
	if (left)
		*left = nl;
	if (refused)
		*refused = nr;
	return r;
}
