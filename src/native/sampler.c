/* The native sampler for programs without a managed runtime: each thread
 * paused in turn, its stack unwound and symbolized, then resumed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cgprof/util.h"

#define NATIVE_MAX_THREADS 4096
#define NATIVE_DEFAULT_DEPTH 2048

struct native_sampler {
	struct target *t;
	struct native_ctx *ctx;
	struct cg_sampler_opts o;
	uint32_t depth;
	pid_t *tids;
	struct native_frame *nf;
	struct cg_frame *frames;
	char version[64];
};

static int native_probe(struct target *t)
{
	(void)t;
	return 0; /* any process has native code */
}

static void native_sampler_close(void *priv)
{
	struct native_sampler *s = priv;
	if (!s)
		return;
	native_close(s->ctx);
	free(s->tids);
	free(s->nf);
	free(s->frames);
	free(s);
}

static int native_sampler_open(struct target *t, const struct cg_sampler_opts *o, void **priv)
{
	int r = 0;
	if (o->nonblocking)
		return cg_fail(-EINVAL, "native stacks need each thread paused while its registers "
					"and stack are read; drop --nonblocking to use --native");
	struct native_sampler *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->t = t;
	s->o = *o;
	s->depth = o->max_depth ? o->max_depth : NATIVE_DEFAULT_DEPTH;
	s->tids = calloc(NATIVE_MAX_THREADS, sizeof(*s->tids));
	s->nf = calloc(s->depth, sizeof(*s->nf));
	s->frames = calloc(s->depth, sizeof(*s->frames));
	if (!s->tids || !s->nf || !s->frames) {
		r = -ENOMEM;
		goto out;
	}
	r = native_open(t, &s->ctx);
	if (r)
		goto out;
	snprintf(s->version, sizeof(s->version), "native (libunwind)");
out:
	if (r) {
		native_sampler_close(s);
		return r;
	}
	*priv = s;
	return 0;
}

static int native_sampler_sample(void *priv, cg_sample_fn fn, void *arg,
				 struct cg_sample_stats *stats)
{
	struct native_sampler *s = priv;
	int n = target_threads(s->t, s->tids, NATIVE_MAX_THREADS);
	if (n < 0)
		return n;
	if (n == 0)
		return -ESRCH;
	native_round(s->ctx, s->tids, (size_t)n);
	int seen = 0;
	for (int i = 0; i < n; i++) {
		pid_t tid = s->tids[i];
		enum target_thread_run run = target_thread_state(s->t, tid);
		if (run == TARGET_THREAD_GONE)
			continue;
		seen++;
		if (run == TARGET_THREAD_IDLE && !s->o.idle)
			continue;
		int r = target_pause(s->t, tid);
		if (r) {
			stats->lost[r == -ESRCH ? CG_LOST_GONE : CG_LOST_PAUSE]++;
			continue;
		}
		uint32_t nf = 0;
		bool trunc = false;
		r = native_unwind_ips(s->ctx, tid, s->nf, s->depth, &nf, &trunc);
		target_resume(s->t, tid);
		/* names are looked up with the thread running again */
		if (!r)
			r = native_symbolize(s->ctx, s->nf, &nf);
		if (r) {
			stats->lost[r == -ESRCH ? CG_LOST_GONE : CG_LOST_READ]++;
			continue;
		}
		for (uint32_t k = 0; k < nf; k++)
			s->frames[k] = s->nf[k].f;
		char name[64] = "";
		target_thread_name(s->t, tid, name, sizeof(name));
		struct cg_sample smp = {
			.pid = target_pid(s->t),
			.tid = tid,
			.thread_name = name,
			.state = run == TARGET_THREAD_RUNNING ? CG_ST_RUNNING : CG_ST_IDLE,
			.truncated = trunc,
			.nframes = nf,
			.frames = s->frames,
		};
		fn(&smp, arg);
		stats->taken++;
	}
	return seen;
}

static const char *native_sampler_version(void *priv)
{
	struct native_sampler *s = priv;
	return s->version;
}

const struct cg_sampler_ops native_sampler_ops = {
	.name = "native",
	.runtime = CG_RT_NATIVE,
	.probe = native_probe,
	.open = native_sampler_open,
	.sample = native_sampler_sample,
	.version = native_sampler_version,
	.close = native_sampler_close,
};
