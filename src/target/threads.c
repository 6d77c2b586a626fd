/* The target's threads: listing, run state and name from /proc, and the
 * short ptrace pause (seize, interrupt, detach) that makes a stack read
 * consistent. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/util.h"
#include "target_priv.h"

int target_threads(struct target *t, pid_t *tids, size_t max)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)t->pid);
	DIR *d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		tids[n++] = (pid_t)atoi(e->d_name);
	}
	closedir(d);
	return (int)n;
}

static int read_task_file(const struct target *t, pid_t tid, const char *name, char *buf, size_t n)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)t->pid, (int)tid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -EIO;
	buf[r] = '\0';
	return (int)r;
}

enum target_thread_run target_thread_state(struct target *t, pid_t tid)
{
	char buf[512];
	if (read_task_file(t, tid, "stat", buf, sizeof(buf)) <= 0)
		return TARGET_THREAD_GONE;
	/* comm may contain ') ', so the state follows the last ')'. */
	char *rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ')
		return TARGET_THREAD_GONE;
	switch (rp[2]) {
	case 'R':
		return TARGET_THREAD_RUNNING;
	case 'Z':
	case 'X':
		return TARGET_THREAD_GONE;
	default:
		return TARGET_THREAD_IDLE;
	}
}

int target_thread_name(struct target *t, pid_t tid, char *buf, size_t n)
{
	int r = read_task_file(t, tid, "comm", buf, n);
	if (r < 0) {
		if (n)
			buf[0] = '\0';
		return r;
	}
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static void pause_account(struct target *t)
{
	double us = (double)(cg_now_ns() - t->pause_start_ns) / 1000.0;
	int b = 0;
	/* buckets of 2^(b/4) us: fine enough for a p99 within ~20% */
	while (b < TARGET_PAUSE_HIST - 1 && us > 1.0 * (1ULL << (b / 4)) * (1.0 + (b % 4) * 0.25))
		b++;
	t->pause_hist[b]++;
	t->pause_count++;
	t->pause_total_us += us;
}

int target_pause(struct target *t, pid_t tid)
{
	int st;

	if (t->paused_tid)
		return -EBUSY;
	t->pause_start_ns = cg_now_ns();
	if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
		return errno == ESRCH ? -ESRCH : errno == EPERM ? -EPERM : -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
		int err = errno;
		ptrace(PTRACE_DETACH, tid, 0, 0);
		return err == ESRCH ? -ESRCH : -err;
	}
	for (;;) {
		pid_t r = waitpid(tid, &st, __WALL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -ESRCH;
		}
		break;
	}
	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		/* The thread (or, for the leader, the process) ended while we held
		 * it. If it is our child's leader, keep its status for run. */
		if (t->is_child && tid == t->pid) {
			t->exited = true;
			t->exit_status = st;
		}
		return -ESRCH;
	}
	t->paused_tid = tid;
	t->paused_sig = 0;
	if (WIFSTOPPED(st) && (st >> 16) != PTRACE_EVENT_STOP) {
		/* A signal-delivery stop got in first: deliver it on resume. */
		t->paused_sig = WSTOPSIG(st);
	}
	return 0;
}

int target_resume(struct target *t, pid_t tid)
{
	if (t->paused_tid != tid)
		return -EINVAL;
	int sig = t->paused_sig;
	t->paused_tid = 0;
	t->paused_sig = 0;
	int r = ptrace(PTRACE_DETACH, tid, 0, (void *)(long)sig) < 0 ? -errno : 0;
	pause_account(t);
	return r;
}

void target_pause_stats(const struct target *t, double *mean_us, double *p99_us, uint64_t *count)
{
	*count = t->pause_count;
	*mean_us = t->pause_count ? t->pause_total_us / (double)t->pause_count : 0;
	*p99_us = 0;
	uint64_t want = t->pause_count - t->pause_count / 100, seen = 0;
	for (int b = 0; b < TARGET_PAUSE_HIST && t->pause_count; b++) {
		seen += t->pause_hist[b];
		if (seen >= want) {
			*p99_us = 1.0 * (1ULL << (b / 4)) * (1.0 + (b % 4) * 0.25);
			break;
		}
	}
}
