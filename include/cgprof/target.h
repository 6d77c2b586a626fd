/* The profiled OS process: spawn or open it, read its memory, list and
 * pause its threads, read its maps. Nothing above this calls ptrace or
 * reads /proc directly. */
#ifndef CGPROF_TARGET_H
#define CGPROF_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
void target_maps_free(struct target_maps *m);
/* Does any mapping's path end with the given suffix / contain substr? */
const struct target_map *target_maps_find(const struct target_maps *m, const char *substr);

/* Thread ids of the target (from /proc/PID/task); up to max. Returns the
 * count, or negative. */
int target_threads(struct target *t, pid_t *tids, size_t max);
enum target_thread_run target_thread_state(struct target *t, pid_t tid);
/* OS thread name (comm); "" if unknown. */
int target_thread_name(struct target *t, pid_t tid, char *buf, size_t n);
/* The id thread tid has in the target's own (innermost) PID namespace,
 * as the program itself reports it. 0, -ESRCH, -ENOENT without NSpid. */
int target_thread_nstid(struct target *t, pid_t tid, pid_t *nstid);
/* Process command line, args joined by spaces (for messages only). */
int target_cmdline(struct target *t, char *buf, size_t n);
/* Process command line as the kernel keeps it: arguments each ended by a
 * NUL. Returns its length (cut at n), or negative. */
int target_argv(struct target *t, char *buf, size_t n);
/* Path of the executable (readlink /proc/PID/exe). */
int target_exe(struct target *t, char *buf, size_t n);

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

/* Is the process still alive (not a zombie)? */
bool target_alive(struct target *t);
/* For spawned children: reap without blocking (block=false) or wait.
 * Returns 1 and sets *status when it has exited, 0 if still running. */
int target_reap(struct target *t, bool block, int *status);
/* Send a signal (used only to forward the user's signals in `run`). */
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

#endif
