/* The profiled OS process: spawn or open it, read its memory, list and
 * pause its threads, read its maps. Nothing above this calls ptrace or
 * reads /proc directly. */
#ifndef CGPROF_TARGET_H
#define CGPROF_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/uio.h>

struct target;

struct target_map {
	uint64_t start, end, offset;
	uint64_t inode;
	char perms[5];  /* "r-xp" */
	char *path;     /* as /proc/PID/maps shows it, "" if anonymous */
};

struct target_maps {
	struct target_map *map;
	size_t n;
};

enum target_thread_run {
	TARGET_THREAD_RUNNING = 0, /* R: on CPU or runnable */
	TARGET_THREAD_IDLE,        /* S, D, T, t...: not on CPU */
	TARGET_THREAD_GONE,
};

/* Start argv[0] (searched in PATH) as a child. The child runs at once;
 * samplers poll for their runtime to appear. */
int target_spawn(char *const argv[], struct target **out);
/* Open a running process for profiling. Checks existence and ptrace
 * permission up front and explains a refusal (other user, yama
 * ptrace_scope, CAP_SYS_PTRACE, seccomp/container) via cg_fail(). */
int target_open(pid_t pid, struct target **out);
/* Never signals, stops or kills the target: releases only our handles. */
void target_close(struct target *t);

pid_t target_pid(const struct target *t);
bool target_is_child(const struct target *t);
/* "/proc/PID/root": prefix for paths from the target's maps, so files are
 * read from the target's mount namespace (containers). */
const char *target_root(const struct target *t);
/* Resolve a path as the target sees it to one we can open; returns buf. */
const char *target_path(const struct target *t, const char *path, char *buf, size_t n);

/* Read exactly len bytes at addr. 0, or -EFAULT (unmapped/torn), -ESRCH
 * (gone), -EPERM. Never a partial success. */
int target_read(struct target *t, uint64_t addr, void *buf, size_t len);
/* Scatter read: remote[i] into local[i]; returns total bytes read, which
 * may be short, or a negative error. One system call for many pieces. */
ssize_t target_readv(struct target *t, const struct iovec *local, size_t nlocal,
		     const struct iovec *remote, size_t nremote);
/* Read a NUL-terminated string of at most n-1 bytes; 0 or negative. */
int target_read_cstr(struct target *t, uint64_t addr, char *buf, size_t n);

int target_maps_read(struct target *t, struct target_maps *out);
/* The same, its first pass over `first` (an open maps file it closes),
 * NULL to open one: a test's way into the read an exec races. */
int target_maps_read_from(struct target *t, struct target_maps *out, FILE *first);
void target_maps_free(struct target_maps *m);
/* Does any mapping's path end with the given suffix / contain substr? */
const struct target_map *target_maps_find(const struct target_maps *m, const char *substr);

/* Thread ids of the target (from /proc/PID/task); up to max. Returns the
 * count, or negative. */
int target_threads(struct target *t, pid_t *tids, size_t max);
/* How many threads the target has now, from one stat of /proc/PID/task
 * (its link count): a cheap test of whether the list changed. */
int target_thread_count(struct target *t);
enum target_thread_run target_thread_state(struct target *t, pid_t tid);
/* Was the thread on a CPU at the round's instant (target_tick)? RUNNING
 * only if so: a runnable thread waiting for a CPU is IDLE, as a CPU
 * profile must not count it. Answered from the kernel's context-switch
 * records of the thread (a perf event per thread, read without a system
 * call); where perf events are refused, from /proc: R, and some run time
 * within the last two scheduler ticks. */
enum target_thread_run target_thread_oncpu(struct target *t, pid_t tid);
/* The coming round, starting at now, samples the instant of its tick
 * (CLOCK_MONOTONIC ns, the deadline it slept to), before our own wake-up
 * could have preempted a thread of the target; a round that starts late,
 * shortly before it starts. */
void target_tick(struct target *t, uint64_t deadline_ns, uint64_t now);
/* OS thread name (comm); "" if unknown. */
int target_thread_name(struct target *t, pid_t tid, char *buf, size_t n);
/* The id thread tid has in the target's own (innermost) PID namespace,
 * as the program itself reports it. 0, -ESRCH, -ENOENT without NSpid. */
int target_thread_nstid(struct target *t, pid_t tid, pid_t *nstid);
/* How long thread tid has existed (from its start time in its stat, at
 * clock-tick resolution). 0, -ESRCH when gone. */
int target_thread_age_ns(struct target *t, pid_t tid, uint64_t *ns);

/* Who the process is: its ids as its own PID namespace sees it and its
 * effective user and group (what a peer check on a socket compares). */
struct target_ids {
	pid_t nspid; /* its pid in its innermost PID namespace (NSpid's last) */
	uid_t euid;
	gid_t egid;
};
/* 0, -ESRCH when gone, -EIO when its status does not say. On a kernel
 * without NSpid (before 4.1) nspid is the pid as we see it. */
int target_ids(struct target *t, struct target_ids *out);
/* Does the process have a handler for sig (SigCgt)? 1 yes, 0 no (the
 * default action, or ignored), -ESRCH when gone. */
int target_catches(struct target *t, int sig);

/* Process command line, args joined by spaces (for messages only). */
int target_cmdline(struct target *t, char *buf, size_t n);
/* Process command line as the kernel keeps it: arguments each ended by a
 * NUL. Returns its length (cut at n), or negative. */
int target_argv(struct target *t, char *buf, size_t n);
/* Its environment as the kernel keeps it (KEY=VALUE entries each ended
 * by a NUL, as it was at exec). Its length (cut at n-1, NUL-terminated),
 * or negative. */
int target_environ(struct target *t, char *buf, size_t n);
/* Path of the executable (readlink /proc/PID/exe). */
int target_exe(struct target *t, char *buf, size_t n);
/* Its current directory as it sees it (readlink /proc/PID/cwd). */
int target_cwd(struct target *t, char *buf, size_t n);
/* Its current directory, opened (O_PATH | O_DIRECTORY) through the
 * kernel's link, so it is found in any mount namespace and stays usable
 * after the process has gone. A descriptor, or -errno. */
int target_cwd_open(struct target *t);
/* Pin path (under target_root(), resolved now with our full rights) and
 * name it as any later identity of ours can use it (a connect() after a
 * seteuid to the target's user, who may not resolve target_root()):
 * name gets "/proc/self/fd/N". The descriptor to close after, or -errno. */
int target_path_pin(const char *path, char *name, size_t n);
/* CPU time the whole process has used (user + system, all threads), in
 * nanoseconds at clock-tick resolution. 0, -ESRCH when gone. */
int target_cpu_ns(struct target *t, uint64_t *ns);

/* Pause one thread (PTRACE_SEIZE + PTRACE_INTERRUPT) until resume
 * (PTRACE_DETACH). Signals that arrive meanwhile are re-delivered on
 * resume. If cgprof dies while a thread is paused the kernel detaches and
 * the thread runs on. Returns 0, -ESRCH if the thread is gone, -EPERM. */
int target_pause(struct target *t, pid_t tid);
int target_resume(struct target *t, pid_t tid);
/* Registers of a thread held by target_pause() (x86-64: r13 is HotSpot's
 * interpreter bytecode pointer). 0, -EINVAL if tid is not the paused
 * thread, -ESRCH, -ENOTSUP on other architectures. */
struct target_regs {
	uint64_t pc, sp, fp, r13;
};
int target_thread_regs(struct target *t, pid_t tid, struct target_regs *out);
/* Time spent paused, for the summary line (microseconds). */
void target_pause_stats(const struct target *t, double *mean_us, double *p99_us, uint64_t *count);

/* Is the process still alive (not a zombie)? false too once its PID
 * names another process (reused after ours ended: another start time);
 * target_cpu_ns() then fails with -ESRCH. */
bool target_alive(struct target *t);
/* For spawned children: reap without blocking (block=false) or wait.
 * Returns 1 and sets *status when it has exited, 0 if still running. */
int target_reap(struct target *t, bool block, int *status);
/* Send a signal: the user's, forwarded in `run`; a runtime's own trigger
 * (SIGQUIT starts a JVM's attach listener). 0, -ESRCH, -EPERM. */
int target_signal(struct target *t, int sig);

/* Which program image a process runs: the 16 random bytes the kernel
 * puts on a new stack at every execve (AT_RANDOM), fresh per exec even
 * when the same binary lands at the same addresses. */
struct target_image {
	uint64_t addr; /* 0: unknown */
	uint8_t random[16];
};
/* The image the process runs now. 0 or negative. */
int target_image_get(struct target *t, struct target_image *img);
/* 1 if the process has exec'd since img was taken, 0 if not, -ESRCH when
 * it is gone; an unknown img never counts as changed. */
int target_image_changed(struct target *t, const struct target_image *img);

/* Direct children of pid (scan of /proc); for --subprocesses. */
int target_children(pid_t pid, pid_t *out, size_t max);

/* ---- per-thread CPU-clock sampling (src/target/perf.c) -------------- */

/* The kernel samples each thread on its own CPU at a timer interrupt
 * (perf_event_open, a software CPU clock, one event per thread): user
 * registers and a copy of the user stack, taken without stopping the
 * thread, land in a ring buffer per thread that the sampling loop drains.
 * Unlike a ptrace pause, where a thread is comes from the sample instant. */
struct target_perf;

/* Registers, indexed by the kernel's perf register numbers of the
 * architecture (x86_64: PERF_REG_X86_AX = 0 ... IP = 8, R8 = 16 ...). */
#define TARGET_PERF_MAX_REGS 24

struct target_perf_sample {
	pid_t pid, tid;
	uint64_t time_ns;                     /* CLOCK_MONOTONIC */
	uint64_t ip, sp, fp;                  /* the same three, from regs */
	uint64_t regs[TARGET_PERF_MAX_REGS];  /* valid where regs_mask has the bit */
	uint64_t regs_mask;
	const uint8_t *stack;                 /* copy of [sp, sp + stack_len) */
	uint64_t stack_len;
};

/* Called for each sample drained; s and its stack bytes are valid only
 * during the call. */
typedef void (*target_perf_fn)(const struct target_perf_sample *s, void *arg);

/* Start sampling every listed thread of t at rate_hz samples per second
 * of its CPU time, copying up to stack_bytes of user stack (0: default,
 * 16 KiB). Kernel time is included when the system allows it (then a
 * sample taken in a system call has the user registers of its call
 * site), else user time only. Returns 0; -EACCES/-EPERM (perf events not
 * allowed: perf_event_paranoid, seccomp, no ptrace right), -ENOENT /
 * -ENOSYS / -EOPNOTSUPP (no such event or no perf support), -ESRCH, with
 * the reason via cg_fail(). tids NULL: every thread of t now.
 * For a walker of its own (the JVM's): open, then each round drain and,
 * every few hundred ms, rescan. */
int target_perf_open(struct target *t, double rate_hz, uint32_t stack_bytes,
		     const pid_t *tids, size_t ntids, struct target_perf **out);
/* Follow the thread list: open events for new threads, close those of
 * threads no longer listed (after draining them). Returns the number of
 * threads sampled. A thread that cannot be opened (gone meanwhile) is
 * skipped. */
int target_perf_sync(struct target_perf *p, const pid_t *tids, size_t ntids,
		     target_perf_fn fn, void *arg);
/* The same from the thread list as it is now (target_threads). */
int target_perf_rescan(struct target_perf *p, target_perf_fn fn, void *arg);
/* Hand every sample waiting in the ring buffers to fn, oldest first per
 * thread. *lost (may be NULL) is increased by the samples the kernel
 * dropped because a ring was full. Returns the number of samples. */
int target_perf_drain(struct target_perf *p, target_perf_fn fn, void *arg, uint64_t *lost);
/* Does perf sample this thread? */
bool target_perf_has(const struct target_perf *p, pid_t tid);
/* Whether kernel time is sampled (true) or only user time. */
bool target_perf_with_kernel(const struct target_perf *p);
void target_perf_close(struct target_perf *p);

/* Decode one PERF_RECORD_SAMPLE of the layout target_perf asks for (TID,
 * TIME, REGS_USER, STACK_USER), rec pointing at its perf_event_header and
 * len bytes long. 0, or -EINVAL for a record that does not fit. (Exposed
 * for the fuzz harness and unit tests.) */
int target_perf_parse_sample(const void *rec, size_t len, uint64_t regs_mask,
			     struct target_perf_sample *s);
/* The register mask target_perf asks for on this architecture (0: none
 * supported, target_perf_open fails with -EOPNOTSUPP). */
uint64_t target_perf_regs_mask(void);

#endif
