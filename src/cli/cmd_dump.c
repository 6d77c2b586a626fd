/* `cgprof dump PID`: every thread's stack once, innermost frame first,
 * like a thread dump; with --subprocesses, every descendant's too. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cgprof/util.h"
#include "cli.h"
#include "runtimes.h"

/* Bounds the --subprocesses walk (a fork bomb is not dumped whole). */
#define DUMP_MAX_PROCS 256

struct dump_ctx {
	FILE *out;
	enum cg_runtime runtime;
};

/* The state as the runtime itself names it: a Java thread shows its
 * java.lang.Thread.State, a Python thread whether it is on CPU. */
static const char *dump_state(enum cg_runtime rt, enum cg_state st)
{
	if (rt == CG_RT_JAVA) {
		switch (st) {
		case CG_ST_RUNNING:
			return "RUNNABLE";
		case CG_ST_NATIVE:
			return "RUNNABLE, in native code";
		case CG_ST_IDLE:
			return "NEW, TERMINATED or unknown";
		default:
			return cg_state_name(st);
		}
	}
	switch (st) {
	case CG_ST_RUNNING:
		return "running";
	case CG_ST_IDLE:
		return "idle";
	default:
		return cg_state_name(st);
	}
}

static void print_thread(const struct cg_sample *s, void *arg)
{
	struct dump_ctx *d = arg;
	char label[1024];

	fprintf(d->out, "Thread %d \"%s\" (%s)\n", (int)s->tid, s->thread_name ? s->thread_name : "",
		dump_state(d->runtime, s->state));
	for (uint32_t i = 0; i < s->nframes; i++) {
		const struct cg_frame *f = &s->frames[i];
		cg_frame_label(label, sizeof(label), f->name, f->file, f->line);
		fprintf(d->out, "    %s\n", label);
	}
	if (s->truncated)
		fprintf(d->out, "    ... deeper frames cut at --max-depth\n");
	fputc('\n', d->out);
}

/* One process's section. 0 when dumped; -ENOENT (with cg_fail) when it
 * runs no runtime cgprof knows; other negative on failure. */
static int dump_process(const struct cli_opts *o, pid_t pid, FILE *out)
{
	struct target *t = NULL;
	const struct cg_sampler_ops *ops = NULL;
	void *priv = NULL;
	struct cg_sample_stats stats = {0};
	struct cg_sampler_opts so = {
		.nonblocking = o->nonblocking,
		.blocking = o->blocking,
		.idle = true, /* a thread dump shows every thread */
		.native = o->native,
		.max_depth = o->max_depth,
	};
	char cmd[512] = "";
	int r = target_open(pid, &t);
	if (r)
		goto out;
	r = runtime_probe(t, o->native, &ops);
	if (r == -ENOENT)
		r = runtime_explain_none(t);
	if (r)
		goto out;
	if ((r = ops->open(t, &so, &priv)))
		goto out;
	runtime_label(t, cmd, sizeof(cmd));
	fprintf(out, "Process %d: %s\n%s\n\n", (int)pid, cmd,
		ops->version ? ops->version(priv) : ops->name);
	struct dump_ctx d = {out, ops->runtime};
	r = ops->sample(priv, print_thread, &d, &stats);
	if (r > 0)
		r = 0;
	else if (r == 0)
		r = cg_fail(-ENOENT, "process %d has no %s threads", (int)pid, ops->name);
out:
	if (priv)
		ops->close(priv);
	target_close(t);
	return r;
}

/* pid and, with --subprocesses, its descendants, parents first. */
static int dump_pids(const struct cli_opts *o, pid_t pid, pid_t *pids, int max)
{
	int n = 0;
	pids[n++] = pid;
	for (int i = 0; o->subprocesses && i < n && n < max; i++) {
		int k = target_children(pids[i], pids + n, (size_t)(max - n));
		if (k > 0)
			n += k;
	}
	return n;
}

int cmd_dump(struct cli_opts *o)
{
	pid_t pid, pids[DUMP_MAX_PROCS];
	struct cli_output w = {0};
	int r, dumped = 0;

	if (cli_parse_pid(o->argv[0], &pid)) {
		fprintf(stderr, "cgprof: invalid PID '%s'\n", o->argv[0]);
		return CLI_EXIT_USAGE;
	}
	cg_log_set_level(o->verbose >= 2 ? CG_LOG_DEBUG : o->verbose ? CG_LOG_INFO : CG_LOG_WARN);
	if (cli_output_check(o->output ? o->output : "-")) {
		fprintf(stderr, "cgprof: %s\n", cg_lasterr());
		return CLI_EXIT_USAGE;
	}
	if ((r = cli_output_open(&w, o->output ? o->output : "-")))
		goto out;
	int n = dump_pids(o, pid, pids, DUMP_MAX_PROCS);
	int first = dump_process(o, pid, w.f);
	/* --subprocesses: the named process may be a shell or a launcher;
	 * descendants that are not Python or Java, or are gone already, are
	 * passed over. */
	if (first && (first != -ENOENT || !o->subprocesses)) {
		r = first;
		goto out;
	}
	char why[512];
	snprintf(why, sizeof(why), "%s", first ? cg_lasterr() : "");
	for (int i = 1; i < n; i++) {
		cg_clearerr();
		if (dump_process(o, pids[i], w.f) == 0)
			dumped++;
		else
			cg_debug("process %d not dumped: %s", (int)pids[i], cg_lasterr());
	}
	cg_clearerr();
	r = !first || dumped ? 0
			     : cg_fail(-ENOENT, "%s; none of its %d descendants is either", why, n - 1);
out:
	r = cli_output_close(&w, r);
	if (r) {
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
		return CLI_EXIT_ERROR;
	}
	return 0;
}
