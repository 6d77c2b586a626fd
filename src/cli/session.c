/* The sampling session behind `run` and `attach`: find the runtime, sample
 * at the rate asked, follow subprocesses, forward signals, write the
 * profile and one summary line. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/config.h"
#include "cgprof/encode.h"
#include "cgprof/log.h"
#include "cgprof/profile.h"
#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cgprof/upload.h"
#include "cgprof/util.h"
#include "cli.h"
#include "runtimes.h"

/* Processes followed at once; one that ends gives its place back. */
#define SESSION_MAX_PROCS 64
#define SESSION_CHILD_SCAN_NS (200 * 1000000ULL)
#define SESSION_ALIVE_CHECK_NS (50 * 1000000ULL)
#define SESSION_RUN_PROBE_GIVEUP_NS (10 * 1000000000ULL)
#define SESSION_ATTACH_PROBE_NS (1000 * 1000000ULL)
/* After an exec: how often to look for the new program's runtime. */
#define SESSION_EXEC_PROBE_NS (20 * 1000000ULL)
/* How often a sampled process is checked for having exec'd (a read of its
 * AT_RANDOM bytes): not every round, a system call a round is a tenth of
 * a sample's cost. Samples read in between from a process that has just
 * exec'd fail their checks (other addresses) and count as lost. */
#define SESSION_EXEC_CHECK_NS (10 * 1000000ULL)
/* --heap without upload: how often to refresh the JVM heap summary (each
 * is a heap walk at a safepoint, so not often). */
#define SESSION_HEAP_EVERY_NS (10 * 1000000000ULL)

struct proc {
	struct target *t;
	const struct cg_sampler_ops *ops;
	void *priv;
	char cmd[96];     /* runtime_label(): program and script, no arguments */
	uint64_t seen_ns;  /* when we started watching it */
	uint64_t next_probe_ns; /* not a runtime yet: when to look again */
	uint64_t next_exec_ns;  /* when to check for an exec next */
	struct target_image image; /* the program the sampler was opened on */
	uint64_t cpu_ns;        /* its CPU time when last read */
	uint64_t cpu_win_ns;    /* ... when the current window began */
	uint64_t cpu_run_ns;    /* ... when we started watching it */
	bool dead;
	bool not_runtime;  /* probed long enough: not Python/Java */
	bool execd;        /* replaced its program while we watched */
};

/* Pauses of the processes sampled: merged per process, then over them. */
struct pause_tally {
	double mean_us, p99_us; /* p99: the worst process's */
	uint64_t count;
};

static void pause_tally_add(struct pause_tally *a, const struct target *t)
{
	double m, p;
	uint64_t c;
	target_pause_stats(t, &m, &p, &c);
	if (a->count + c)
		a->mean_us = (a->mean_us * (double)a->count + m * (double)c) / (double)(a->count + c);
	if (p > a->p99_us)
		a->p99_us = p;
	a->count += c;
}

struct session {
	const struct cli_opts *o;
	struct cg_config cfg;
	enum cg_runtime runtime;
	const struct cg_sampler_ops *runtime_ops; /* the sampler runtime came from */
	bool have_runtime;
	struct cg_profile *prof;   /* whole run, for the local file (or NULL) */
	struct cg_profile *win;    /* current reporting window (or NULL) */
	uint64_t win_start_ms;
	struct cg_reporter *rep;   /* NULL: no profiling group */
	struct cg_agent_params agent;
	double rate_hz;
	uint32_t max_depth;   /* --max-depth, else the config's max_depth */
	struct proc procs[SESSION_MAX_PROCS];
	int nprocs;
	bool procs_full_warned;
	/* What the processes that ended (their places given back) used:
	 * CPU since their window and run marks, and their pauses. */
	uint64_t gone_cpu_win_ns, gone_cpu_run_ns;
	struct pause_tally gone_pauses;
	struct cg_sample_stats stats;
	uint64_t truncated;
	/* Our copy: the sampler that named it may close long before the
	 * session ends (a child exits, the target execs). "" until found. */
	char runtime_version[96];
	/* Python's sys.path[0]: the CodeGuru module names are relative to
	 * it. "" when unknown. */
	char module_root[4096];
	struct cg_frame *frames; /* scratch: sample frames + synthetic roots */
	uint32_t frames_cap;
};

/* Signal state: set by the handler, read by the loop. */
static volatile sig_atomic_t sig_stop;     /* stop sampling now */
static volatile sig_atomic_t sig_tty_seen; /* a terminal signal arrived */
/* run: forward to this child (NULL before it exists and once it is
 * closed). target_signal() sends nothing once the child is reaped, so a
 * recycled PID is never signalled. */
static struct target *volatile sig_child;

static void on_signal(int sig, siginfo_t *info, void *uctx)
{
	(void)uctx;
	if (sig_child) {
		/* A terminal's Ctrl-C already reached the child through the
		 * process group; a signal sent to cgprof by a process (kill,
		 * timeout, systemd) is forwarded so the child sees it once. */
		if (info->si_code == SI_USER || info->si_code == SI_QUEUE ||
		    info->si_code == SI_TKILL) {
			int saved = errno;
			target_signal(sig_child, sig);
			errno = saved;
			return;
		}
		/* A second terminal signal: the child is not ending; stop
		 * sampling and write what we have, then wait for it. */
		if (sig_tty_seen)
			sig_stop = 1;
		sig_tty_seen = 1;
		return;
	}
	sig_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sig_child = NULL;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The profiles open now: the whole run's (a local file) and the current
 * reporting window's, either of which may be absent. Fills ps, returns
 * how many; every sample, round and loss goes to each of them. */
#define SESSION_NPROFILES 2
static int session_each_profile(struct session *ss, struct cg_profile *ps[SESSION_NPROFILES])
{
	int n = 0;
	if (ss->prof)
		ps[n++] = ss->prof;
	if (ss->win)
		ps[n++] = ss->win;
	return n;
}

static void session_add(struct session *ss, const struct cg_sample *s)
{
	struct cg_profile *ps[SESSION_NPROFILES];
	for (int i = 0, n = session_each_profile(ss, ps); i < n; i++)
		profile_add_sample(ps[i], s);
}

static struct cg_profile *session_new_profile(struct session *ss)
{
	struct cg_profile_limits lim = {
		.max_depth = ss->max_depth + 3,
		.max_frames = CG_PROFILE_DEFAULT_MAX_FRAMES,
		.max_nodes = CG_PROFILE_DEFAULT_MAX_NODES,
	};
	struct cg_profile *p = profile_new(ss->runtime, &lim);
	if (!p)
		return NULL;
	profile_set_interval_ms(p, 1000.0 / ss->rate_hz);
	if (ss->runtime_version[0])
		profile_set_runtime_version(p, ss->runtime_version);
	if (ss->module_root[0])
		profile_add_module_root(p, ss->module_root);
	return p;
}

static void on_sample(const struct cg_sample *s, void *arg)
{
	struct session *ss = arg;
	struct cg_sample out = *s;
	uint32_t n = s->nframes;
	char troot[160], proot[160];

	if (ss->o->hooks) {
		ss->o->hooks->sample(ss->o->hooks->arg, s);
		return;
	}
	if (n > ss->max_depth) {
		/* A sampler that ignored max_depth: keep the leaf side. */
		n = ss->max_depth;
		out.truncated = true;
	}
	if (out.truncated)
		ss->truncated++;
	if (!ss->o->threads && !ss->o->subprocesses) {
		out.nframes = n;
		session_add(ss, &out);
		return;
	}
	/* Synthetic roots go above everything, <Truncated> included, so build
	 * the whole root side here: frames... [<Truncated>] [thread] [process]. */
	uint32_t k = 0;
	memcpy(ss->frames, s->frames, n * sizeof(*ss->frames));
	k = n;
	if (out.truncated)
		ss->frames[k++] = (struct cg_frame){.name = "<Truncated>", .kind = CG_FK_TRUNCATED};
	if (ss->o->threads) {
		snprintf(troot, sizeof(troot), "thread %s (%d)",
			 s->thread_name && s->thread_name[0] ? s->thread_name : "?", (int)s->tid);
		ss->frames[k++] = (struct cg_frame){.name = troot, .kind = CG_FK_THREAD};
	}
	if (ss->o->subprocesses) {
		const char *cmd = "";
		for (int i = 0; i < ss->nprocs; i++)
			if (target_pid(ss->procs[i].t) == s->pid)
				cmd = ss->procs[i].cmd;
		snprintf(proot, sizeof(proot), "process %d (%s)", (int)s->pid, cmd);
		ss->frames[k++] = (struct cg_frame){.name = proot, .kind = CG_FK_PROCESS};
	}
	out.frames = ss->frames;
	out.nframes = k;
	out.truncated = false;
	session_add(ss, &out);
}

static int proc_add(struct session *ss, struct target *t)
{
	if (ss->nprocs == SESSION_MAX_PROCS) {
		target_close(t);
		return -ENOSPC;
	}
	struct proc *p = &ss->procs[ss->nprocs++];
	memset(p, 0, sizeof(*p));
	p->t = t;
	p->seen_ns = cg_now_ns();
	if (target_cpu_ns(t, &p->cpu_ns) == 0)
		p->cpu_win_ns = p->cpu_run_ns = p->cpu_ns;
	runtime_label(t, p->cmd, sizeof(p->cmd));
	return 0;
}

/* Try to open the sampler of a process not yet opened. 0 when open,
 * -ENOENT when no runtime (yet), other negative: final. */
static int proc_try_open(struct session *ss, struct proc *p)
{
	const struct cg_sampler_ops *ops;
	struct cg_sampler_opts so = {
		.nonblocking = ss->o->nonblocking,
		.blocking = ss->o->blocking,
		.idle = ss->o->idle,
		.native = ss->o->native,
		.native_pause = ss->o->native_pause,
		.rate_hz = ss->rate_hz,
		.async_tasks = ss->o->async_tasks,
		.max_depth = ss->max_depth,
	};
	/* Taken before the probe: an exec after this is always noticed. A
	 * process caught inside an exec has an empty auxv (no AT_RANDOM)
	 * until the new program's stack is built: opened then, its image
	 * would be unknown, never seen to change, and the program it execs
	 * next (a launcher's chain: sh, unshare, chroot, env, python) would
	 * be sampled as the launcher. Look again on the next probe. */
	int ri = target_image_get(p->t, &p->image);
	if (ri) {
		memset(&p->image, 0, sizeof(p->image));
		if (ri == -ENOENT || ri == -EAGAIN || ri == -ESRCH)
			return target_alive(p->t) ? -ENOENT : -ESRCH;
	}
	int r = runtime_probe(p->t, ss->o->native, &ops);
	if (r)
		return r;
	r = ops->open(p->t, &so, &p->priv);
	if (r)
		return r;
	p->ops = ops;
	/* the program may have changed since fork (exec) */
	runtime_label(p->t, p->cmd, sizeof(p->cmd));
	if (!ss->have_runtime) {
		ss->have_runtime = true;
		ss->runtime = ops->runtime;
		ss->runtime_ops = ops;
		snprintf(ss->runtime_version, sizeof(ss->runtime_version), "%s",
			 ops->version ? ops->version(p->priv) : ops->name);
		/* A window opened before the runtime appeared (--subprocesses
		 * under a shell) is named now, not left "unknown". */
		if (ops->runtime != CG_RT_PYTHON ||
		    runtime_python_path0(p->t, ss->module_root, sizeof(ss->module_root)))
			ss->module_root[0] = '\0';
		struct cg_profile *ps[SESSION_NPROFILES];
		for (int i = 0, n = session_each_profile(ss, ps); i < n; i++) {
			profile_set_runtime_version(ps[i], ss->runtime_version);
			if (ss->module_root[0])
				profile_add_module_root(ps[i], ss->module_root);
		}
	}
	cg_info("profiling %s process %d (%s)", ops->name, (int)target_pid(p->t), p->cmd);
	return 0;
}

static void proc_close(struct proc *p)
{
	if (p->ops)
		p->ops->close(p->priv);
	p->ops = NULL;
	p->priv = NULL;
}

static uint64_t cpu_since(uint64_t now, uint64_t mark) { return now > mark ? now - mark : 0; }

/* A followed process (never the main one, procs[0]) has ended: give its
 * place back, so a launcher may run any number of children in turn and a
 * reused PID is a new process. What it used stays in the totals. */
static void proc_forget(struct session *ss, int i)
{
	struct proc *p = &ss->procs[i];
	/* a zombie not yet reaped still tells its CPU; an ended one keeps
	 * the last reading */
	target_cpu_ns(p->t, &p->cpu_ns);
	ss->gone_cpu_win_ns += cpu_since(p->cpu_ns, p->cpu_win_ns);
	ss->gone_cpu_run_ns += cpu_since(p->cpu_ns, p->cpu_run_ns);
	pause_tally_add(&ss->gone_pauses, p->t);
	proc_close(p);
	target_close(p->t);
	memmove(p, p + 1, (size_t)(ss->nprocs - i - 1) * sizeof(*p));
	ss->nprocs--;
}

static void forget_ended(struct session *ss)
{
	for (int i = ss->nprocs - 1; i >= 1; i--)
		if (ss->procs[i].dead || !target_alive(ss->procs[i].t))
			proc_forget(ss, i);
}

/* A process that exec'd runs another program: its sampler describes
 * memory that no longer exists. Close it and look for a runtime in the
 * new program as for a new process. One given up on (a shell, or a child
 * probed mid-exec, which fails oddly) is looked at again too: the new
 * program may be Python. */
static void proc_check_exec(struct proc *p, uint64_t now)
{
	if ((!p->ops && !p->not_runtime) || now < p->next_exec_ns)
		return;
	p->next_exec_ns = now + SESSION_EXEC_CHECK_NS;
	if (target_image_changed(p->t, &p->image) != 1)
		return;
	char exe[256] = "?";
	/* The command line may not be in place yet: the executable is. */
	target_exe(p->t, exe, sizeof(exe));
	/* Leaving a runtime is news; a native program (--native: a
	 * launcher's sh, env, chroot) exec'ing on is the launch going on */
	if (p->ops && p->ops->runtime != CG_RT_NATIVE)
		cg_warn("process %d executed a new program (%s); looking for its runtime again",
			(int)target_pid(p->t), exe);
	else if (p->ops)
		cg_info("process %d executed %s; looking for its runtime again",
			(int)target_pid(p->t), exe);
	else
		cg_debug("process %d executed %s; probing it again", (int)target_pid(p->t), exe);
	proc_close(p);
	p->execd = true;
	p->not_runtime = false;
	p->seen_ns = now;
	p->next_probe_ns = now;
}

/* --subprocesses: watch new descendants of every process we follow,
 * once the places of those that ended are free. */
static void scan_children(struct session *ss)
{
	forget_ended(ss);
	for (int i = 0; i < ss->nprocs; i++) {
		if (ss->procs[i].dead)
			continue;
		pid_t kids[64];
		int n = target_children(target_pid(ss->procs[i].t), kids, CG_ARRAY_LEN(kids));
		for (int k = 0; k < n; k++) {
			bool known = false;
			for (int j = 0; j < ss->nprocs && !known; j++)
				known = target_pid(ss->procs[j].t) == kids[k];
			if (known)
				continue;
			struct target *t;
			cg_clearerr();
			if (target_open(kids[k], &t) == 0 && proc_add(ss, t) == -ENOSPC &&
			    !ss->procs_full_warned) {
				cg_warn("%d processes followed at once: process %d and others "
					"started meanwhile are not", SESSION_MAX_PROCS, (int)kids[k]);
				ss->procs_full_warned = true;
			}
			cg_clearerr();
		}
	}
}

static void sleep_until(uint64_t deadline_ns)
{
	struct timespec ts = {(time_t)(deadline_ns / 1000000000ULL),
			      (long)(deadline_ns % 1000000000ULL)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !sig_stop)
		;
}

/* run: a launcher that is no runtime itself (a shell, timeout, sudo)
 * may start the program as its child rather than exec it: the first
 * descendant that turns out to be Python or Java is the one profiled
 * (the launcher stays the process whose exit ends the session). true
 * when one is open. */
static bool open_launched_child(struct session *ss)
{
	scan_children(ss);
	for (int i = 1; i < ss->nprocs; i++) {
		struct proc *c = &ss->procs[i];
		if (c->ops || c->dead)
			continue;
		int r = proc_try_open(ss, c);
		cg_clearerr();
		if (r == 0)
			return true;
		if (r == -ESRCH || !target_alive(c->t)) {
			/* a helper the launcher ran and reaped (a wrapper
			 * script forks many): its place is free again */
			proc_forget(ss, i);
			i--;
		}
	}
	return false;
}

/* Wait for the main target's runtime to appear (run) or check it is there
 * (attach). 0, or negative with cg_fail. */
static int find_runtime(struct session *ss, bool spawned)
{
	struct proc *p = &ss->procs[0];
	uint64_t start = cg_now_ns();
	uint64_t limit = spawned ? SESSION_RUN_PROBE_GIVEUP_NS : SESSION_ATTACH_PROBE_NS;
	/* --subprocesses: one look; the loop keeps probing every process. */
	if (ss->o->subprocesses)
		limit = 0;

	for (;;) {
		int r = proc_try_open(ss, p);
		if (r == 0)
			return 0;
		if (!target_alive(p->t))
			return cg_fail(-ESRCH, "process %d ended before its runtime could be found",
				       (int)target_pid(p->t));
		if (r != -ENOENT && r != -ESRCH)
			return r;
		cg_clearerr();
		if (spawned && !ss->o->subprocesses && open_launched_child(ss))
			return 0;
		if (sig_stop)
			return cg_fail(-EINTR, "interrupted before the first sample");
		if (cg_now_ns() - start > limit)
			return runtime_explain_none(p->t);
		usleep(spawned ? 1000 : 20000);
	}
}

static void default_output(char *buf, size_t n, pid_t pid, enum cg_format f)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y%m%d-%H%M%S", &tm);
	snprintf(buf, n, "cgprof-%d-%s%s", (int)pid, ts, encode_format_ext(f));
}

/* Through a temporary file and rename, so a reader never sees half a
 * profile and an old file is replaced only by a complete new one. */
static int write_output(struct session *ss, const char *path)
{
	struct cg_encode_opts eo = {.title = NULL, .include_idle = ss->o->idle};
	struct cli_output w;
	char title[256];
	snprintf(title, sizeof(title), "cgprof: %s", ss->procs[0].cmd);
	eo.title = title;

	int r = cli_output_open(&w, path);
	if (r)
		return r;
	return cli_output_close(&w, encode_profile(ss->o->format, ss->prof, &eo, w.f));
}

static void summary(struct session *ss, double elapsed_s, uint64_t rounds, const char *out)
{
	char lost[256] = "";
	uint64_t nlost = 0;
	size_t len = 0;
	for (int i = 0; i < CG_LOST__COUNT; i++) {
		uint64_t n = ss->stats.lost[i];
		if (!n)
			continue;
		nlost += n;
		len += (size_t)snprintf(lost + len, sizeof(lost) - len, "%s%llu %s",
					len ? ", " : "", (unsigned long long)n,
					cg_lost_name((enum cg_lost)i));
		if (len >= sizeof(lost))
			break;
	}
	struct pause_tally pt = ss->gone_pauses;
	for (int i = 0; i < ss->nprocs; i++)
		pause_tally_add(&pt, ss->procs[i].t);
	char pause[96] = "";
	if (pt.count)
		snprintf(pause, sizeof(pause), "; paused %llu times, %.0f us mean, %.0f us p99",
			 (unsigned long long)pt.count, pt.mean_us, pt.p99_us);
	char trunc[64] = "";
	if (ss->truncated)
		snprintf(trunc, sizeof(trunc), "; %llu stacks cut at --max-depth",
			 (unsigned long long)ss->truncated);
	fprintf(stderr,
		"cgprof: %llu samples in %.1f s, %.1f Hz achieved of %g Hz; %llu lost%s%s%s%s%s%s%s\n",
		(unsigned long long)ss->stats.taken, elapsed_s,
		elapsed_s > 0 ? (double)rounds / elapsed_s : 0.0, ss->rate_hz,
		(unsigned long long)nlost, nlost ? " (" : "", lost, nlost ? ")" : "", pause, trunc,
		out ? "; wrote " : "", out ? out : "");
}

static void heap_into_profiles(const struct cg_heap_class *c, size_t n, uint64_t instances,
			       uint64_t bytes, void *arg)
{
	struct session *ss = arg;
	uint64_t now = cg_epoch_ms();
	struct cg_profile *ps[SESSION_NPROFILES];
	for (int i = 0, np = session_each_profile(ss, ps); i < np; i++)
		profile_set_heap(ps[i], c, n, instances, bytes, now);
}

/* --heap: the main process's heap summary, as its runtime takes it (a
 * JVM's class histogram, no full GC), into the profiles that are open;
 * the latest summary is the one a profile keeps. */
static void take_heap(struct session *ss)
{
	const struct cg_sampler_ops *ops = ss->procs[0].ops;
	if (!ops || !ops->heap)
		return;
	if (ops->heap(ss->procs[0].t, heap_into_profiles, ss)) {
		cg_warn("heap summary skipped: %s", cg_lasterr());
		cg_clearerr();
	}
}

/* End the current reporting window: hand it to the reporter (which posts
 * or spools it), then ask ConfigureAgent what to do next. */
/* Read each live process's CPU time; one that has ended keeps its last
 * reading (at most one liveness check old). */
static void session_read_cpu(struct session *ss)
{
	for (int i = 0; i < ss->nprocs; i++)
		if (!ss->procs[i].dead)
			target_cpu_ns(ss->procs[i].t, &ss->procs[i].cpu_ns);
}

/* CPU the followed processes used since their marks (CodeGuru's
 * cpuTimeInSeconds), those that ended included; with reset, the marks
 * move to now (a new window). */
static double session_cpu_s(struct session *ss, bool window, bool reset)
{
	uint64_t *gone = window ? &ss->gone_cpu_win_ns : &ss->gone_cpu_run_ns;
	uint64_t ns = *gone;
	if (reset)
		*gone = 0;
	for (int i = 0; i < ss->nprocs; i++) {
		struct proc *p = &ss->procs[i];
		uint64_t *mark = window ? &p->cpu_win_ns : &p->cpu_run_ns;
		ns += cpu_since(p->cpu_ns, *mark);
		if (reset)
			*mark = p->cpu_ns;
	}
	return (double)ns / 1e9;
}

static void window_rotate(struct session *ss, bool final)
{
	uint64_t now_ms = cg_epoch_ms();
	profile_set_window(ss->win, ss->win_start_ms, now_ms);
	session_read_cpu(ss);
	profile_set_cpu_time_s(ss->win, session_cpu_s(ss, true, true));
	int r = reporter_submit(ss->rep, ss->win);
	if (r)
		cg_warn("this window's profile was neither sent nor spooled: %s",
			cg_errmsg(r));
	cg_clearerr();
	profile_free(ss->win);
	ss->win = NULL;
	if (final)
		return;
	ss->win_start_ms = now_ms;
	ss->win = session_new_profile(ss);
	if (reporter_configure(ss->rep, &ss->agent))
		cg_clearerr(); /* keep the last parameters */
}

/* Uniform jitter of +-25% around the mean interval (xorshift64*): a fixed
 * period locks onto periodic workloads (200 Hz against a 10 ms cycle
 * samples the same two phases forever); jitter keeps the mean rate and
 * spreads the phases. */
static uint64_t jittered(uint64_t interval, uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	uint64_t r = (x * 0x2545F4914F6CDD1DULL) >> 11; /* 53 random bits */
	double u = (double)r / (double)(1ULL << 53);   /* [0, 1) */
	return (uint64_t)((double)interval * (0.75 + 0.5 * u));
}

/* The interval between rounds in force: ConfigureAgent's sampling
 * interval unless --rate was given. */
static uint64_t session_interval_ns(struct session *ss)
{
	if (ss->rep && !ss->o->rate_set && ss->agent.sampling_interval_ms)
		return (uint64_t)ss->agent.sampling_interval_ms * 1000000ULL;
	return (uint64_t)(1e9 / ss->rate_hz);
}

/* Where the sampling loop stands: every deadline it keeps, in
 * CLOCK_MONOTONIC nanoseconds (UINT64_MAX: never). */
struct loop {
	uint64_t start, start_ms;
	uint64_t interval;  /* mean time between rounds */
	uint64_t next;      /* next round is due */
	uint64_t end;       /* --duration */
	uint64_t win_end;   /* the reporting window closes */
	uint64_t next_heap; /* --heap: next class histogram */
	uint64_t last_alive, last_scan;
	uint64_t cpu;       /* our CPU time when the last round ended */
	uint64_t rng;       /* jitter state */
	uint64_t rounds;
};

static uint64_t reporting_ns(const struct session *ss)
{
	return (uint64_t)ss->agent.reporting_interval_s * 1000000000ULL;
}

static void loop_init(struct session *ss, struct loop *lp)
{
	memset(lp, 0, sizeof(*lp));
	lp->interval = session_interval_ns(ss);
	lp->start = lp->next = lp->last_alive = lp->last_scan = cg_now_ns();
	lp->start_ms = cg_epoch_ms();
	lp->cpu = cg_cpu_ns();
	lp->end = ss->o->duration_s > 0 ? lp->start + (uint64_t)(ss->o->duration_s * 1e9)
					 : UINT64_MAX;
	lp->win_end = UINT64_MAX;
	lp->next_heap = ss->o->heap && ss->runtime_ops && ss->runtime_ops->heap ? lp->start
										    : UINT64_MAX;
	lp->rng = lp->start ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
	if (ss->rep) {
		ss->win_start_ms = lp->start_ms;
		lp->win_end = lp->start + reporting_ns(ss);
	}
}

/* What is due besides sampling: heap summaries, the end of a reporting
 * window, the main target's liveness, new children. false: the main
 * target has ended. */
static bool loop_housekeeping(struct session *ss, struct loop *lp, uint64_t now)
{
	if (now >= lp->next_heap) {
		take_heap(ss);
		lp->next_heap = cg_now_ns() + (ss->rep ? reporting_ns(ss) : SESSION_HEAP_EVERY_NS);
	}
	if (now >= lp->win_end) {
		window_rotate(ss, false);
		lp->win_end = now + reporting_ns(ss);
		lp->interval = session_interval_ns(ss);
		lp->next = now;
	}
	if (now >= lp->last_alive + SESSION_ALIVE_CHECK_NS) {
		lp->last_alive = now;
		session_read_cpu(ss);
		if (!target_alive(ss->procs[0].t))
			return false;
	}
	if (ss->o->subprocesses && now >= lp->last_scan + SESSION_CHILD_SCAN_NS) {
		lp->last_scan = now;
		scan_children(ss);
	}
	return true;
}

/* A process with no sampler yet: look for its runtime when due. 0 when
 * its sampler is open; *main_gone when the main target exec'd into a
 * program with nothing to sample. */
static int proc_probe_due(struct session *ss, struct proc *p, uint64_t now, bool *main_gone)
{
	if (p->not_runtime || now < p->next_probe_ns)
		return -EAGAIN;
	p->next_probe_ns = now + (p->execd ? SESSION_EXEC_PROBE_NS : SESSION_CHILD_SCAN_NS);
	int r = proc_try_open(ss, p);
	cg_clearerr();
	/* a child caught in its exec has no maps for an instant: not gone */
	if (r == -ESRCH && target_alive(p->t))
		r = -ENOENT;
	/* now is the round's clock, read before this round's scan found p:
	 * a child added by it was seen after now, not 584 years before */
	uint64_t watched = now > p->seen_ns ? now - p->seen_ns : 0;
	if (r == -ENOENT && watched > SESSION_RUN_PROBE_GIVEUP_NS)
		p->not_runtime = true;
	else if (r && r != -ENOENT && !p->execd)
		p->not_runtime = true; /* mid-exec errors pass */
	if (p->not_runtime && p->execd && p == &ss->procs[0]) {
		/* Nothing left to sample in the main target: end as if it
		 * had exited (run still waits for it). */
		char exe[256] = "?";
		target_exe(p->t, exe, sizeof(exe));
		cg_warn("process %d now runs %s, without Python or Java; sampling ends",
			(int)target_pid(p->t), exe);
		*main_gone = true;
	}
	return r;
}

/* One round: every followed process sampled once, the round and our CPU
 * since the last one (CodeGuru's agentOverhead: the round, and what was
 * done between rounds) counted; one clock read a round. false: the main
 * target is gone. */
static bool sample_round(struct session *ss, struct loop *lp, uint64_t now)
{
	bool main_gone = false;
	for (int i = 0; i < ss->nprocs; i++) {
		struct proc *p = &ss->procs[i];
		if (p->dead)
			continue;
		proc_check_exec(p, now);
		if (!p->ops && proc_probe_due(ss, p, now, &main_gone))
			continue;
		/* where each thread was at the tick, not after our wake-up,
		 * which may have preempted one (on our CPU) an instant ago */
		target_tick(p->t, lp->next, now);
		int r = p->ops->sample(p->priv, on_sample, ss, &ss->stats);
		if (r == -ESRCH || (r < 0 && !target_alive(p->t))) {
			cg_debug("process %d: gone (%s)", (int)target_pid(p->t), strerror(-r));
			p->dead = true;
			proc_close(p);
			if (i == 0)
				main_gone = true;
		}
	}
	uint64_t cpu = cg_cpu_ns();
	double ms = (double)(cpu - lp->cpu) / 1e6;
	lp->cpu = cpu;
	struct cg_profile *ps[SESSION_NPROFILES];
	for (int i = 0, n = session_each_profile(ss, ps); i < n; i++) {
		profile_add_round(ps[i]);
		profile_add_overhead_ms(ps[i], ms);
	}
	lp->rounds++;
	/* cgprof top: its view reads the round's counts; it may end it */
	if (ss->o->hooks && !ss->o->hooks->round(ss->o->hooks->arg, &ss->stats))
		return false;
	return !main_gone;
}

/* Sleep to the next (jittered) tick; when we are behind, the ticks we
 * missed are counted as lost, not made up for. */
static void loop_wait(struct session *ss, struct loop *lp)
{
	lp->next += jittered(lp->interval, &lp->rng);
	uint64_t now = cg_now_ns();
	if (now < lp->next) {
		uint64_t until = lp->next < lp->end ? lp->next : lp->end;
		sleep_until(until < lp->win_end ? until : lp->win_end);
		return;
	}
	if (now - lp->next < lp->interval)
		return;
	uint64_t missed = (now - lp->next) / lp->interval;
	ss->stats.lost[CG_LOST_LATE] += missed;
	struct cg_profile *ps[SESSION_NPROFILES];
	for (int i = 0, n = session_each_profile(ss, ps); i < n; i++)
		profile_add_lost(ps[i], CG_LOST_LATE, missed);
	lp->next += missed * lp->interval;
}

/* Sample until the main target ends, the duration passes or we are told to
 * stop. Returns 0 or negative (cg_fail). */
static int sample_loop(struct session *ss, uint64_t *rounds_out, double *elapsed_out)
{
	struct loop lp;
	loop_init(ss, &lp);
	while (!sig_stop) {
		uint64_t now = cg_now_ns();
		if (now >= lp.end || !loop_housekeeping(ss, &lp, now))
			break;
		/* shouldProfile=false: stay attached, take no samples, ask again
		 * at the next reporting period. */
		bool sampling = !ss->rep || ss->agent.should_profile;
		if (sampling && !sample_round(ss, &lp, now))
			break;
		loop_wait(ss, &lp);
	}
	/* A last summary at the end, while the JVM is still there. */
	if (lp.next_heap != UINT64_MAX && target_alive(ss->procs[0].t))
		take_heap(ss);
	*rounds_out = lp.rounds;
	*elapsed_out = (double)(cg_now_ns() - lp.start) / 1e9;
	if (ss->prof) {
		profile_set_window(ss->prof, lp.start_ms, cg_epoch_ms());
		session_read_cpu(ss);
		profile_set_cpu_time_s(ss->prof, session_cpu_s(ss, false, false));
	}
	if (ss->win)
		window_rotate(ss, true);
	return 0;
}

/* Settings: config files, environment, then our options. A bad value is a
 * usage error, reported before anything is started. */
static int session_setup(struct session *ss, const struct cli_opts *o)
{
	memset(ss, 0, sizeof(*ss));
	ss->o = o;
	enum cg_log_level lvl =
		o->verbose >= 2 ? CG_LOG_DEBUG : o->verbose ? CG_LOG_INFO : CG_LOG_WARN;
	cg_log_set_level(lvl);
	/* Our sleeps end on time: the default 50 us of timer slack is half a
	 * tick at 10 kHz. Only cgprof's own thread is affected. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (cli_load_config(o, &ss->cfg))
		return CLI_EXIT_USAGE;
	if (ss->cfg.syslog)
		cg_log_init("cgprof", lvl, 1);
	ss->rate_hz = o->rate_set || !ss->cfg.rate_hz ? o->rate_hz : ss->cfg.rate_hz;
	ss->max_depth = o->max_depth_set ? o->max_depth : ss->cfg.max_depth;
	ss->frames_cap = ss->max_depth + 3;
	ss->frames = calloc(ss->frames_cap, sizeof(*ss->frames));
	if (!ss->frames)
		return CLI_EXIT_ERROR;
	int r = reporter_new(&ss->cfg, &ss->rep);
	if (r) {
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
		return CLI_EXIT_USAGE;
	}
	/* Where the profile goes is checked now, not after the whole run:
	 * the default name is made later, in the current directory. */
	if (o->output || !ss->rep) {
		char def[512];
		default_output(def, sizeof(def), 0, o->format);
		if (cli_output_check(o->output ? o->output : def)) {
			fprintf(stderr, "cgprof: %s%s\n", cg_lasterr(),
				o->output ? "" : " (the default is the current directory; give -o FILE)");
			return CLI_EXIT_USAGE;
		}
	}
	return 0;
}

static void session_teardown(struct session *ss)
{
	for (int i = 0; i < ss->nprocs; i++) {
		proc_close(&ss->procs[i]);
		target_close(ss->procs[i].t);
	}
	reporter_free(ss->rep);
	profile_free(ss->prof);
	profile_free(ss->win);
	free(ss->frames);
	config_free(&ss->cfg);
}

/* With hooks (top): the samples go to them only; nothing is written,
 * uploaded or summarized. */
static int session_watch(struct session *ss)
{
	const struct cli_hooks *h = ss->o->hooks;
	uint64_t rounds = 0;
	double elapsed = 0;
	reporter_free(ss->rep);
	ss->rep = NULL;
	int r = h->start(h->arg, target_pid(ss->procs[0].t), ss->procs[0].cmd,
			 ss->runtime_version, ss->rate_hz);
	if (r)
		return r;
	r = sample_loop(ss, &rounds, &elapsed);
	h->finish(h->arg);
	return r;
}

/* Shared tail of run and attach: find the runtime, sample, write,
 * summarize. */
static int session_profile(struct session *ss, bool spawned)
{
	char outbuf[512];
	const char *out = ss->o->output;
	uint64_t rounds = 0;
	double elapsed = 0;
	pid_t pid = target_pid(ss->procs[0].t);

	/* With --subprocesses the command may be a shell or a launcher whose
	 * children run Python: it need not be a runtime itself. */
	int r = find_runtime(ss, spawned);
	if (r == -ENOENT && ss->o->subprocesses) {
		cg_clearerr();
		r = 0;
	}
	if (r)
		return r;
	const struct cg_sampler_ops *ops = ss->runtime_ops;
	if (ss->o->heap && ops && !ops->heap)
		cg_warn("--heap: process %d runs %s, which has no heap summary; none is recorded",
			(int)pid, ops->name);
	/* Some runtimes cost more a sample (a JVM's safepoints): their own
	 * default rate, and a warning for a higher one asked. */
	if (ops && ops->rate)
		ss->rate_hz = ops->rate(ss->rate_hz, ss->o->rate_set || ss->cfg.rate_hz);
	if (ss->o->hooks)
		return session_watch(ss);
	/* A local file unless the profile goes to a profiling group only. */
	bool local = out || !ss->rep;
	if (local && !(ss->prof = session_new_profile(ss)))
		return -ENOMEM;
	if (ss->rep) {
		if (reporter_configure(ss->rep, &ss->agent)) {
			cg_warn("%s; profiling with default parameters",
				cg_lasterr()[0] ? cg_lasterr() : "ConfigureAgent failed");
			cg_clearerr();
		}
		if (!(ss->win = session_new_profile(ss)))
			return -ENOMEM;
	}
	r = sample_loop(ss, &rounds, &elapsed);
	for (int i = 0; i < ss->nprocs; i++)
		proc_close(&ss->procs[i]);
	/* Samples the profile had no room for are losses too. */
	if (ss->prof)
		ss->stats.lost[CG_LOST_FULL] += profile_lost(ss->prof, CG_LOST_FULL);
	if (r)
		return r;
	if (local && !out) {
		default_output(outbuf, sizeof(outbuf), pid, ss->o->format);
		out = outbuf;
	}
	if (local)
		r = write_output(ss, out);
	if (!ss->o->quiet)
		summary(ss, elapsed, rounds,
			r || !local ? NULL : (strcmp(out, "-") ? out : "stdout"));
	return r;
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return CLI_EXIT_ERROR;
}

int cmd_run(struct cli_opts *o)
{
	struct session ss;
	struct target *t = NULL;
	int status = 0, r;

	r = session_setup(&ss, o);
	if (r) {
		session_teardown(&ss);
		return r;
	}
	/* Handlers first, so a signal during start-up is forwarded too; the
	 * child resets them to default before exec. */
	install_signals();
	r = target_spawn(o->argv, &t);
	if (r) {
		fprintf(stderr, "cgprof: %s\n", cg_lasterr());
		session_teardown(&ss);
		return r == -ENOENT || r == -EACCES ? CLI_EXIT_NOEXEC : CLI_EXIT_ERROR;
	}
	sig_child = t;
	proc_add(&ss, t);
	r = session_profile(&ss, true);
	if (r)
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
	/* Whatever happened to the profile, the child runs to its end and we
	 * exit with its status. */
	while (target_reap(t, true, &status) != 1)
		;
	sig_child = NULL; /* before t is freed: the handler reads it */
	session_teardown(&ss);
	return exit_code_of(status);
}

int cmd_attach(struct cli_opts *o)
{
	struct session ss;
	struct target *t;
	pid_t pid;

	if (cli_parse_pid(o->argv[0], &pid)) {
		fprintf(stderr, "cgprof: invalid PID '%s'\n", o->argv[0]);
		return CLI_EXIT_USAGE;
	}
	int r = session_setup(&ss, o);
	if (r) {
		session_teardown(&ss);
		return r;
	}
	install_signals();
	r = target_open(pid, &t);
	if (!r) {
		proc_add(&ss, t);
		r = session_profile(&ss, false);
	}
	if (r)
		fprintf(stderr, "cgprof: %s\n", cg_errmsg(r));
	session_teardown(&ss);
	return r ? CLI_EXIT_ERROR : 0;
}
