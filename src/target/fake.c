/* A process made of facts a test chooses (target_fake_process): what a
 * runtime's attach asks of a target, answered without a process. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target_priv.h"

/* No memory at all: every read of a fake process fails with -EFAULT. */
static const struct cg_fake_mem no_memory;

int target_fake_process(struct target **out, struct cg_fake_proc *p)
{
	struct target *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->pid = p->pid;
	t->fake = &no_memory;
	t->proc = p;
	snprintf(t->root, sizeof(t->root), "%s", p->root ? p->root : "");
	*out = t;
	return 0;
}

int target_fake_ids(const struct cg_fake_proc *p, struct target_ids *out)
{
	if (p->gone)
		return -ESRCH;
	*out = p->ids;
	return 0;
}

int target_fake_catches(const struct cg_fake_proc *p, int sig)
{
	if (p->gone)
		return -ESRCH;
	return p->caught & (1ULL << (sig - 1)) ? 1 : 0;
}

int target_fake_threads(const struct cg_fake_proc *p, pid_t *tids, size_t max)
{
	if (p->gone)
		return -ESRCH;
	size_t n = 0;
	for (; n < p->nthreads && n < max; n++)
		tids[n] = p->threads[n].tid;
	return (int)n;
}

static const struct cg_fake_thread *fake_thread(const struct cg_fake_proc *p, pid_t tid)
{
	for (size_t i = 0; !p->gone && i < p->nthreads; i++)
		if (p->threads[i].tid == tid)
			return &p->threads[i];
	return NULL;
}

int target_fake_thread_name(const struct cg_fake_proc *p, pid_t tid, char *buf, size_t n)
{
	const struct cg_fake_thread *th = fake_thread(p, tid);
	/* comm holds at most 15 bytes, as TASK_COMM_LEN keeps it */
	snprintf(buf, n, "%.15s", th && th->name ? th->name : "");
	return th ? 0 : -ESRCH;
}

int target_fake_thread_age(const struct cg_fake_proc *p, pid_t tid, uint64_t *ns)
{
	const struct cg_fake_thread *th = fake_thread(p, tid);
	if (!th)
		return -ESRCH;
	*ns = th->age_ns;
	return 0;
}

int target_fake_text(const struct cg_fake_proc *p, const char *text, size_t len, char *buf,
		     size_t n)
{
	if (p->gone)
		return -ESRCH;
	if (!n)
		return -EINVAL;
	size_t l = len < n - 1 ? len : n - 1;
	if (l)
		memcpy(buf, text, l);
	buf[l] = '\0';
	return (int)l;
}

int target_fake_cwd_open(const struct cg_fake_proc *p)
{
	if (p->gone || !p->cwd)
		return -ESRCH;
	int fd = open(p->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int target_fake_signal(struct cg_fake_proc *p, int sig)
{
	if (p->gone)
		return -ESRCH;
	p->signals++;
	p->last_signal = sig;
	if (p->on_signal)
		p->on_signal(p, sig);
	return 0;
}
