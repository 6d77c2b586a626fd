/* The native sampler for programs without a managed runtime: the kernel's
 * per-thread CPU-clock samples unwound and symbolized, or, where perf
 * events are refused, each thread paused in turn, unwound and resumed. */
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
/* The thread list is re-read when the thread count changes (one stat a
 * round), and at least this often, for an exit and a start between two
 * rounds. */
#define NATIVE_THREAD_SCAN_NS (200ULL * 1000000ULL)

struct native_sampler {
	struct target *t;
	struct native_ctx *ctx;
	struct cg_sampler_opts o;
	uint32_t depth;
	pid_t *tids;
	struct native_frame *nf;
	struct cg_frame *frames;
	char version[64];
	struct target_perf *perf; /* NULL: the pause fallback */
	int ntids;                /* threads at the last scan */
	uint64_t scanned_ns;
	/* the round being drained (perf callback) */
	cg_sample_fn fn;
	void *arg;
	struct cg_sample_stats *stats;
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
	target_perf_close(s->perf);
	native_close(s->ctx);
	free(s->tids);
	free(s->nf);
	free(s->frames);
	free(s);
}

/* The kernel's samples where they are allowed; else one warning naming
 * why, and pausing. 0, or negative when neither can work. */
static int open_perf(struct native_sampler *s, struct target *t, const struct cg_sampler_opts *o)
{
	if (o->native_pause || !(o->rate_hz > 0))
		return 0; /* asked for pauses, or one round (dump): a pause is exact */
	int n = target_threads(t, s->tids, NATIVE_MAX_THREADS);
	if (n <= 0)
		return n < 0 ? n : -ESRCH;
	s->ntids = n;
	int r = target_perf_open(t, o->rate_hz, 0, s->tids, (size_t)n, &s->perf);
	if (r == 0)
		cg_info("native stacks from perf CPU-clock samples (%s)",
			target_perf_with_kernel(s->perf) ? "user and kernel time"
							 : "user time only: kernel time not allowed");
	if (r == 0 || r == -ESRCH)
		return r;
	if (o->nonblocking)
		return cg_fail(-EINVAL, "%s; without perf events, native stacks need each thread "
					"paused: drop --nonblocking to use --native",
			       cg_lasterr());
	cg_warn("%s; native stacks fall back to pausing each thread (ptrace), which shifts "
		"samples toward system calls (see README, \"Native stacks\")",
		cg_lasterr());
	cg_clearerr();
	return 0;
}

static int native_sampler_open(struct target *t, const struct cg_sampler_opts *o, void **priv)
{
	int r = 0;
	if (o->nonblocking && (o->native_pause || !(o->rate_hz > 0)))
		return cg_fail(-EINVAL, "native stacks read by pausing each thread cannot be "
					"--nonblocking; drop --nonblocking to use --native");
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
	r = open_perf(s, t, o);
	if (r)
		goto out;
	s->scanned_ns = cg_now_ns();
	snprintf(s->version, sizeof(s->version), "native (libunwind, %s)",
		 !s->perf			      ? "ptrace pauses"
		 : target_perf_with_kernel(s->perf) ? "perf CPU-clock samples"
						      : "perf CPU-clock samples, user time");
out:
	if (r) {
		native_sampler_close(s);
		return r;
	}
	*priv = s;
	return 0;
}

static void emit(struct native_sampler *s, pid_t tid, enum target_thread_run run, uint32_t nf,
		 bool trunc, cg_sample_fn fn, void *arg, struct cg_sample_stats *stats)
{
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

/* One thread, paused for the read of its registers and stack. */
static void sample_paused(struct native_sampler *s, pid_t tid, enum target_thread_run run,
			  cg_sample_fn fn, void *arg, struct cg_sample_stats *stats)
{
	int r = target_pause(s->t, tid);
	if (r) {
		stats->lost[r == -ESRCH ? CG_LOST_GONE : CG_LOST_PAUSE]++;
		return;
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
		return;
	}
	emit(s, tid, run, nf, trunc, fn, arg, stats);
}

/* The thread list now, the unwinder told which threads are gone. The
 * number of threads, or negative (-ESRCH: none, the process is gone). */
static int list_threads(struct native_sampler *s)
{
	int n = target_threads(s->t, s->tids, NATIVE_MAX_THREADS);
	if (n < 0)
		return n;
	if (n == 0)
		return -ESRCH;
	native_round(s->ctx, s->tids, (size_t)n);
	return n;
}

static int sample_by_pausing(struct native_sampler *s, cg_sample_fn fn, void *arg,
			     struct cg_sample_stats *stats)
{
	int n = list_threads(s);
	if (n < 0)
		return n;
	int seen = 0;
	for (int i = 0; i < n; i++) {
		pid_t tid = s->tids[i];
		enum target_thread_run run = target_thread_state(s->t, tid);
		if (run == TARGET_THREAD_GONE)
			continue;
		seen++;
		if (run == TARGET_THREAD_IDLE && !s->o.idle)
			continue;
		sample_paused(s, tid, run, fn, arg, stats);
	}
	return seen;
}

static void on_perf_sample(const struct target_perf_sample *smp, void *arg)
{
	struct native_sampler *s = arg;
	uint32_t nf = 0;
	bool trunc = false;
	int r = native_unwind_sample(s->ctx, smp, s->nf, s->depth, &nf, &trunc);
	if (!r)
		r = native_symbolize(s->ctx, s->nf, &nf);
	if (r) {
		s->stats->lost[CG_LOST_READ]++;
		return;
	}
	emit(s, smp->tid, TARGET_THREAD_RUNNING, nf, trunc, s->fn, s->arg, s->stats);
}

/* What the kernel sampled since the last round. Threads are re-listed
 * when their number changes or every NATIVE_THREAD_SCAN_NS (new ones get
 * an event, so a new thread misses at most a round of samples; ended
 * ones give their last samples and are closed), or every round with
 * --idle, whose
 * sleeping threads have no CPU samples and are read by a pause: a
 * thread blocked in the kernel is where it waits, so pausing it shifts
 * nothing. */
static int sample_from_perf(struct native_sampler *s, cg_sample_fn fn, void *arg,
			    struct cg_sample_stats *stats)
{
	s->fn = fn;
	s->arg = arg;
	s->stats = stats;
	uint64_t now = cg_now_ns();
	bool idle = s->o.idle && !s->o.nonblocking;
	int count = idle ? 0 : target_thread_count(s->t);
	if (count == -ESRCH)
		return count;
	if (idle || count != s->ntids || now - s->scanned_ns >= NATIVE_THREAD_SCAN_NS) {
		int n = list_threads(s);
		if (n < 0)
			return n;
		int r = target_perf_sync(s->perf, s->tids, (size_t)n, on_perf_sample, s);
		if (r < 0)
			return r;
		s->ntids = n;
		s->scanned_ns = now;
	}
	uint64_t lost = 0;
	target_perf_drain(s->perf, on_perf_sample, s, &lost);
	stats->lost[CG_LOST_LATE] += lost;
	for (int i = 0; idle && i < s->ntids; i++) {
		pid_t tid = s->tids[i];
		if (target_thread_state(s->t, tid) == TARGET_THREAD_IDLE)
			sample_paused(s, tid, TARGET_THREAD_IDLE, fn, arg, stats);
	}
	return s->ntids;
}

static int native_sampler_sample(void *priv, cg_sample_fn fn, void *arg,
				 struct cg_sample_stats *stats)
{
	struct native_sampler *s = priv;
	return s->perf ? sample_from_perf(s, fn, arg, stats) : sample_by_pausing(s, fn, arg, stats);
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
