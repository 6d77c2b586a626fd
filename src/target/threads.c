/* The target's threads: listing, run state and name from /proc, and the
 * short ptrace pause (seize, interrupt, detach) that makes a stack read
 * consistent. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/util.h"
#include "target_priv.h"

int target_threads(struct target *t, pid_t *tids, size_t max)
{
	char path[64];
	if (t->proc)
		return target_fake_threads(t->proc, tids, max);
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

int target_thread_count(struct target *t)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)t->pid);
	if (stat(path, &st))
		return errno == ENOENT ? -ESRCH : -errno;
	/* procfs counts a directory's "." and "..", plus one per thread */
	return st.st_nlink > 2 ? (int)(st.st_nlink - 2) : 0;
}

static int read_task_file(const struct target *t, pid_t tid, const char *name, char *buf, size_t n)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)t->pid, (int)tid, name);
	return cg_read_small_file(path, buf, n);
}

static void task_drop(struct target_task *e)
{
	if (e->stat_fd >= 0)
		close(e->stat_fd);
	if (e->sched_fd >= 0)
		close(e->sched_fd);
	target_sw_close(e);
	*e = (struct target_task){0};
}

/* The cache slot of tid: found, or claimed (a free slot near its home,
 * else the home slot's entry is dropped). */
static struct target_task *task_slot(struct target *t, pid_t tid)
{
	enum { PROBE = 4 };
	size_t home = (size_t)tid % TARGET_TASK_CACHE;
	struct target_task *free_slot = NULL;
	for (size_t i = 0; i < PROBE; i++) {
		struct target_task *e = &t->tasks[(home + i) % TARGET_TASK_CACHE];
		if (e->tid == tid)
			return e;
		if (!e->tid && !free_slot)
			free_slot = e;
	}
	struct target_task *e = free_slot ? free_slot : &t->tasks[home];
	/* More threads than slots: a slot's switch records would be opened
	 * and dropped round after round, so new threads go without (those
	 * that have them keep them). */
	if (e->tid && e->sw_fd >= 0 && !t->sw_refused)
		t->sw_refused = -ENOSPC;
	if (e->tid)
		task_drop(e);
	*e = (struct target_task){.tid = tid, .stat_fd = -1, .sched_fd = -1, .sw_fd = -1};
	return e;
}

void target_tasks_clear(struct target *t)
{
	for (size_t i = 0; i < TARGET_TASK_CACHE; i++)
		if (t->tasks[i].tid)
			task_drop(&t->tasks[i]);
}

/* The thread's stat line. The file stays open and is read again from
 * offset 0 (procfs renders it afresh); a thread that died makes the read
 * fail and the file is opened anew, so a reused tid is never mistaken
 * for the old thread. */
static int read_task_stat(struct target *t, pid_t tid, char *buf, size_t n)
{
	struct target_task *e = task_slot(t, tid);
	if (e->stat_fd >= 0) {
		ssize_t r = pread(e->stat_fd, buf, n - 1, 0);
		if (r > 0) {
			buf[r] = '\0';
			e->stat_ns = cg_now_ns();
			return (int)r;
		}
		/* the thread ended: whatever has its tid now is another */
		close(e->stat_fd);
		e->stat_fd = -1;
		e->comm_ns = 0;
		if (e->sched_fd >= 0)
			close(e->sched_fd);
		e->sched_fd = -1;
		e->cpu_ns = 0;
		e->cpu_seen_ns = 0;
		target_sw_close(e);
		e->sw_tried = false;
	}
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)t->pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* out of descriptors (many targets, many threads): give back
		 * what this cache holds and read this one without keeping it */
		target_tasks_clear(t);
		return read_task_file(t, tid, "stat", buf, n);
	}
	if (fd < 0) {
		task_drop(e);
		return -errno;
	}
	ssize_t r = pread(fd, buf, n - 1, 0);
	if (r <= 0) {
		close(fd);
		task_drop(e);
		return -EIO;
	}
	e->stat_fd = fd;
	e->stat_ns = cg_now_ns();
	buf[r] = '\0';
	return (int)r;
}

/* The one-letter state of a stat line, or 0. */
static char stat_state(const char *buf)
{
	/* comm may contain ') ', so the state follows the last ')'. */
	const char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' ? rp[2] : 0;
}

enum target_thread_run target_thread_state(struct target *t, pid_t tid)
{
	char buf[512];
	if (tid <= 0 || read_task_stat(t, tid, buf, sizeof(buf)) <= 0)
		return TARGET_THREAD_GONE;
	switch (stat_state(buf)) {
	case 0:
		return TARGET_THREAD_GONE;
	case 'R':
		return TARGET_THREAD_RUNNING;
	case 'Z':
	case 'X':
		return TARGET_THREAD_GONE;
	default:
		return TARGET_THREAD_IDLE;
	}
}

/* The thread's run time in ns (the first field of schedstat, which the
 * kernel brings up to date at scheduler ticks and switches, not as it is
 * read), the file kept open. */
static int read_task_runtime(struct target *t, struct target_task *e, uint64_t *ns)
{
	char buf[96];
	if (e->sched_fd < 0) {
		char path[96];
		snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)t->pid,
			 (int)e->tid);
		e->sched_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (e->sched_fd < 0)
			return -errno;
	}
	ssize_t r = pread(e->sched_fd, buf, sizeof(buf) - 1, 0);
	if (r <= 0) {
		close(e->sched_fd);
		e->sched_fd = -1;
		return -ESRCH;
	}
	buf[r] = '\0';
	char *end;
	unsigned long long v = strtoull(buf, &end, 10);
	if (end == buf)
		return -EIO;
	*ns = v;
	return 0;
}

/* Is a runnable thread on a CPU now? The schedstat file's third field
 * counts its switches in, the status file's two ctxt_switches lines its
 * switches out: one more in than out, it is on one. 1, 0, or -1 when the
 * files cannot say. Asked once per thread, when its records start. */
static int oncpu_by_counts(struct target *t, pid_t tid)
{
	char buf[2048], path[96];
	if (target_status_read(t->pid, tid, buf, sizeof(buf)) <= 0)
		return -1;
	const char *v = target_status_value(buf, "voluntary_ctxt_switches");
	const char *nv = target_status_value(buf, "nonvoluntary_ctxt_switches");
	if (!v || !nv)
		return -1;
	unsigned long long out = strtoull(v, NULL, 10) + strtoull(nv, NULL, 10);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int)t->pid, (int)tid);
	if (cg_read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	unsigned long long run, delay, in;
	if (sscanf(buf, "%llu %llu %llu", &run, &delay, &in) != 3 || !in)
		return -1; /* schedstats off: all zeros */
	return in == out + 1 ? 1 : in == out ? 0 : -1;
}

/* Start a thread's switch records, and say where it is as they start. */
static void sw_start(struct target *t, struct target_task *e)
{
	char buf[512];
	e->sw_tried = true;
	e->sw_init = -1;
	if (target_sw_open(t, e))
		return;
	if (read_task_stat(t, e->tid, buf, sizeof(buf)) <= 0)
		return;
	char st = stat_state(buf);
	e->sw_init = st == 'R' ? (int8_t)oncpu_by_counts(t, e->tid) : st ? 0 : -1;
}

/* By run time: R with no run time for longer than the kernel's
 * accounting can hide is a thread that waited for a CPU all along. */
static enum target_thread_run oncpu_by_runtime(struct target *t, pid_t tid)
{
	enum target_thread_run run = target_thread_state(t, tid);
	if (run != TARGET_THREAD_RUNNING)
		return run;
	struct target_task *e = task_slot(t, tid);
	uint64_t ns = 0, now = cg_now_ns();
	if (e->cpu_seen_ns && now - e->cpu_read_ns < TARGET_RUNTIME_EVERY_NS)
		return now - e->cpu_seen_ns > TARGET_TICK_SLACK_NS ? TARGET_THREAD_IDLE
								  : TARGET_THREAD_RUNNING;
	if (read_task_runtime(t, e, &ns))
		return run; /* no schedstat (an old kernel, a container): R it is */
	e->cpu_read_ns = now;
	/* The kernel brings a running thread's run time up to date at each
	 * scheduler tick (4 ms at HZ=250) and at each switch, so an unchanged
	 * value within a couple of ticks says nothing. */
	if (!e->cpu_seen_ns || ns != e->cpu_ns) {
		e->cpu_ns = ns;
		e->cpu_seen_ns = now;
		return TARGET_THREAD_RUNNING;
	}
	return now - e->cpu_seen_ns > TARGET_TICK_SLACK_NS ? TARGET_THREAD_IDLE
							: TARGET_THREAD_RUNNING;
}

void target_tick(struct target *t, uint64_t deadline_ns, uint64_t now)
{
	/* A round that starts late samples a little before it starts, never
	 * further back than our wake-up could have preempted a thread. */
	uint64_t tick = deadline_ns < now ? deadline_ns : now;
	t->tick_ns = now - tick > TARGET_TICK_BACK_NS ? now - TARGET_TICK_BACK_NS : tick;
}

/* What the records say: 1, 0, or -1. */
static int sw_answer(const struct target *t, const struct target_task *e, uint64_t now)
{
	uint64_t tick = t->tick_ns && t->tick_ns <= now ? t->tick_ns : now;
	int on = target_sw_state(e, tick, now, sched_getcpu());
	return on == -2 ? e->sw_init : on;
}

enum target_thread_run target_thread_oncpu(struct target *t, pid_t tid)
{
	if (tid <= 0 || t->proc || t->fake)
		return target_thread_state(t, tid);
	struct target_task *e = task_slot(t, tid);
	uint64_t now = cg_now_ns();
	if (!e->sw_tried)
		sw_start(t, e);
	int on = -1;
	if (e->sw_mp) {
		/* The records answer without a system call; stat is read now
		 * and then only to learn that the thread ended (its last
		 * record may be a switch in) or that its tid is another's. */
		if (now - e->stat_ns >= TARGET_ALIVE_EVERY_NS &&
		    target_thread_state(t, tid) == TARGET_THREAD_GONE)
			return TARGET_THREAD_GONE;
		if (e->sw_mp) /* not closed by a reused tid */
			on = sw_answer(t, e, now);
	}
	if (on >= 0)
		return on ? TARGET_THREAD_RUNNING : TARGET_THREAD_IDLE;
	return oncpu_by_runtime(t, tid);
}

int target_thread_name(struct target *t, pid_t tid, char *buf, size_t n)
{
	if (tid <= 0) {
		if (n)
			buf[0] = '\0';
		return -ESRCH;
	}
	if (t->proc)
		return target_fake_thread_name(t->proc, tid, buf, n);
	/* Names change rarely (pthread_setname_np): re-read once a second. */
	struct target_task *e = task_slot(t, tid);
	uint64_t now = cg_now_ns();
	if (e->comm_ns && now - e->comm_ns < 1000000000ULL && n) {
		snprintf(buf, n, "%s", e->comm);
		return 0;
	}
	int r = read_task_file(t, tid, "comm", buf, n);
	if (r >= 0) {
		char *nl = strchr(buf, '\n');
		if (nl)
			*nl = '\0';
		snprintf(e->comm, sizeof(e->comm), "%s", buf);
		e->comm_ns = now;
	}
	if (r < 0) {
		if (n)
			buf[0] = '\0';
		return r;
	}
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int target_thread_age_ns(struct target *t, pid_t tid, uint64_t *ns)
{
	char buf[1024];
	unsigned long long start;
	struct timespec now;
	if (t->proc)
		return target_fake_thread_age(t->proc, tid, ns);
	if (tid <= 0 || read_task_file(t, tid, "stat", buf, sizeof(buf)) <= 0)
		return -ESRCH;
	/* starttime, field 22, in clock ticks since boot; the name before it
	 * may hold spaces and parentheses, so count from the last ')'. */
	const char *p = strrchr(buf, ')');
	for (int field = 2; p && *p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return -EIO;
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t start_ns = start * (1000000000ULL / (unsigned long long)(hz > 0 ? hz : 100));
	/* the clock the kernel counts starttime on (time namespaces alike) */
	clock_gettime(CLOCK_BOOTTIME, &now);
	uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	*ns = now_ns > start_ns ? now_ns - start_ns : 0;
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
