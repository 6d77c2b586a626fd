/* `cgprof dump PID`: every thread's stack once, innermost frame first,
 * like a thread dump; with --async, every asyncio task and its chain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cli.h"
#include "runtimes.h"

static void print_frames(FILE *out, const struct cg_frame *frames, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct cg_frame *f = &frames[i];
		if (f->file && f->line > 0)
			fprintf(out, "    %s (%s:%d)\n", f->name, f->file, (int)f->line);
		else if (f->file)
			fprintf(out, "    %s (%s)\n", f->name, f->file);
		else
			fprintf(out, "    %s\n", f->name);
	}
}

static void print_thread(const struct cg_sample *s, void *arg)
{
	FILE *out = arg;
	const char *state;
	/* a suspended task (--async): the task list below shows it */
	if (s->state == CG_ST_IDLE && s->nframes && s->frames[s->nframes - 1].kind == CG_FK_TASK)
		return;
	switch (s->state) {
	case CG_ST_RUNNING:
		state = "running";
		break;
	case CG_ST_IDLE:
		state = "idle";
		break;
	default:
		state = cg_state_name(s->state);
	}
	fprintf(out, "Thread %d \"%s\" (%s)\n", (int)s->tid, s->thread_name ? s->thread_name : "",
		state);
	print_frames(out, s->frames, s->nframes);
	if (s->truncated)
		fprintf(out, "    ... deeper frames cut at --max-depth\n");
	fputc('\n', out);
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
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct task_entry *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->err = -ENOMEM;
			return;
		}
		l->v = v;
		l->cap = cap;
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

static int dump_tasks(const struct cg_sampler_ops *ops, void *priv)
{
	struct task_list l = {0};
	int r = ops->runtime == CG_RT_PYTHON ? python_tasks(priv, collect_task, &l)
					     : cg_fail(-ENOTSUP, "--async: only Python has tasks");
	if (r >= 0 && l.err)
		r = l.err;
	if (r >= 0)
		printf("asyncio tasks: %zu\n\n", l.n);
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		struct task_entry *e = &l.v[i];
		fputs(e->text, stdout);
		const char *aw = e->awaiting ? task_name(&l, e->awaiting) : NULL;
		if (aw)
			printf("    awaits task \"%s\"\n", aw);
		for (uint32_t k = 0; k < e->nwaiters; k++) {
			const char *w = task_name(&l, e->waiters[k]);
			if (w)
				printf("    awaited by task \"%s\"\n", w);
			else
				printf("    awaited by a future at %#llx\n",
				       (unsigned long long)e->waiters[k]);
		}
		putchar('\n');
	}
	for (size_t i = 0; i < l.n; i++) {
		free(l.v[i].name);
		free(l.v[i].text);
		free(l.v[i].waiters);
	}
	free(l.v);
	return r < 0 ? r : 0;
}

int cmd_dump(struct cli_opts *o)
{
	struct target *t = NULL;
	const struct cg_sampler_ops *ops = NULL;
	void *priv = NULL;
	struct cg_sample_stats stats = {0};
	struct cg_sampler_opts so = {
		.nonblocking = o->nonblocking,
		.blocking = o->blocking,
		.idle = true,
		.native = o->native,
		.async_tasks = o->async_tasks,
		.max_depth = o->max_depth,
	};
	pid_t pid;
	int r;

	if (cli_parse_pid(o->argv[0], &pid)) {
		fprintf(stderr, "cgprof: invalid PID '%s'\n", o->argv[0]);
		return CLI_EXIT_USAGE;
	}
	cg_log_set_level(o->verbose >= 2 ? CG_LOG_DEBUG : o->verbose ? CG_LOG_INFO : CG_LOG_WARN);
	r = target_open(pid, &t);
	if (r)
		goto out;
	r = runtime_probe(t, o->native, &ops);
	if (r == -ENOENT)
		r = runtime_explain_none(t);
	if (r)
		goto out;
	r = ops->open(t, &so, &priv);
	if (r)
		goto out;
	char cmd[512] = "";
	runtime_label(t, cmd, sizeof(cmd));
	printf("Process %d: %s\n%s\n\n", (int)pid, cmd, ops->version ? ops->version(priv) : ops->name);
	r = ops->sample(priv, print_thread, stdout, &stats);
	if (r > 0)
		r = 0;
	else if (r == 0)
		r = cg_fail(-ENOENT, "process %d has no %s threads", (int)pid, ops->name);
	/* before 3.14 the sampler said so once; the threads are the dump */
	if (!r && o->async_tasks) {
		r = dump_tasks(ops, priv);
		if (r == -ENOTSUP && ops->runtime == CG_RT_PYTHON)
			r = 0;
	}
out:
	if (priv)
		ops->close(priv);
	target_close(t);
	if (r) {
		fprintf(stderr, "cgprof: %s\n", cg_lasterr()[0] ? cg_lasterr() : strerror(-r));
		return CLI_EXIT_ERROR;
	}
	return 0;
}
