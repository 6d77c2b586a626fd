/* `cgprof dump PID`: every thread's stack once, innermost frame first,
 * like a thread dump; with --subprocesses, every descendant's too; with
 * --async, every asyncio task and its chain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

static void print_frames(FILE *out, const struct cg_frame *frames, uint32_t n)
{
	char label[1024];
	for (uint32_t i = 0; i < n; i++) {
		cg_frame_label(label, sizeof(label), frames[i].name, frames[i].file, frames[i].line);
		fprintf(out, "    %s\n", label);
	}
}

static void print_thread(const struct cg_sample *s, void *arg)
{
	struct dump_ctx *d = arg;

	/* a suspended task (--async): the task list below shows it */
	if (s->state == CG_ST_IDLE && s->nframes && s->frames[s->nframes - 1].kind == CG_FK_TASK)
		return;
	fprintf(d->out, "Thread %d \"%s\" (%s)\n", (int)s->tid, s->thread_name ? s->thread_name : "",
		dump_state(d->runtime, s->state));
	print_frames(d->out, s->frames, s->nframes);
	if (s->truncated)
		fprintf(d->out, "    ... deeper frames cut at --max-depth\n");
	fputc('\n', d->out);
}

/* dump --async: each task is printed as it is read; the names of the
 * tasks it awaits and that await it need every task, so the text of
 * each is kept until the last one is read. */
struct task_list {
	struct task_entry {
		uint64_t id, awaiting;
		char *name, *text;
		uint64_t *waiters;
		uint32_t nwaiters;
	} *v;
	size_t n, cap;
	int err;
};

static void collect_task(const struct cg_task *t, void *arg)
{
	struct task_list *l = arg;
	char *text = NULL;
	size_t len = 0;
	if (l->err)
		return;
	if (cg_grow(&l->v, &l->cap, l->n + 1, sizeof(*l->v), 16)) {
		l->err = -ENOMEM;
		return;
	}
	FILE *out = open_memstream(&text, &len);
	if (!out) {
		l->err = -ENOMEM;
		return;
	}
	fprintf(out, "Task \"%s\" (%s) thread %d\n", t->name, t->running ? "running" : "pending",
		(int)t->tid);
	print_frames(out, t->frames, t->nframes);
	if (t->awaiting_id)
		fprintf(out, "    awaiting %s at %#llx\n", t->awaiting[0] ? t->awaiting : "?",
			(unsigned long long)t->awaiting_id);
	fclose(out);
	struct task_entry *e = &l->v[l->n];
	*e = (struct task_entry){.id = t->id, .awaiting = t->awaiting_id, .text = text,
				 .name = strdup(t->name), .nwaiters = t->nawaited_by};
	e->waiters = calloc(t->nawaited_by + 1, sizeof(*e->waiters));
	if (!e->name || !e->waiters) {
		free(e->name);
		free(e->waiters);
		free(text);
		l->err = -ENOMEM;
		return;
	}
	memcpy(e->waiters, t->awaited_by, t->nawaited_by * sizeof(*e->waiters));
	l->n++;
}

static const char *task_name(const struct task_list *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].id == id)
			return l->v[i].name;
	return NULL;
}

static int dump_tasks(const struct cg_sampler_ops *ops, void *priv, FILE *out)
{
	struct task_list l = {0};
	int r = ops->runtime == CG_RT_PYTHON ? python_tasks(priv, collect_task, &l)
					     : cg_fail(-ENOTSUP, "--async: only Python has tasks");
	if (r >= 0 && l.err)
		r = l.err;
	if (r >= 0)
		fprintf(out, "asyncio tasks: %zu\n\n", l.n);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		struct task_entry *e = &l.v[i];
		fputs(e->text, out);
		const char *aw = e->awaiting ? task_name(&l, e->awaiting) : NULL;
		if (aw)
			fprintf(out, "    awaits task \"%s\"\n", aw);
		for (uint32_t k = 0; k < e->nwaiters; k++) {
			const char *w = task_name(&l, e->waiters[k]);
			if (w)
				fprintf(out, "    awaited by task \"%s\"\n", w);
			else
				fprintf(out, "    awaited by a future at %#llx\n",
					(unsigned long long)e->waiters[k]);
		}
		fputc('\n', out);
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].name);
		free(l.v[i].text);
		free(l.v[i].waiters);
	}
	free(l.v);
	return r < 0 ? r : 0;
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
		.async_tasks = o->async_tasks,
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
	/* before 3.14 the sampler said so once; the threads are the dump */
	if (!r && o->async_tasks) {
		r = dump_tasks(ops, priv, out);
		if (r == -ENOTSUP && ops->runtime == CG_RT_PYTHON)
			r = 0;
	}
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
