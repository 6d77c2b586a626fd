/* `cgprof dump PID`: every thread's stack once, innermost frame first,
 * like a thread dump. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cli.h"
#include "runtimes.h"

static void print_thread(const struct cg_sample *s, void *arg)
{
	FILE *out = arg;
	const char *state;
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
	for (uint32_t i = 0; i < s->nframes; i++) {
		const struct cg_frame *f = &s->frames[i];
		if (f->file && f->line > 0)
			fprintf(out, "    %s (%s:%d)\n", f->name, f->file, (int)f->line);
		else if (f->file)
			fprintf(out, "    %s (%s)\n", f->name, f->file);
		else
			fprintf(out, "    %s\n", f->name);
	}
	if (s->truncated)
		fprintf(out, "    ... deeper frames cut at --max-depth\n");
	fputc('\n', out);
}

int cmd_dump(struct cli_opts *o)
{
	struct target *t = NULL;
	const struct cg_sampler_ops *ops = NULL;
	void *priv = NULL;
	struct cg_sample_stats stats = {0};
	struct cg_sampler_opts so = {
		.nonblocking = o->nonblocking,
		.idle = true,
		.native = o->native,
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
