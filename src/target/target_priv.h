/* Internal state of a target shared by the src/target/ files; nothing
 * outside src/target/ sees it. */
#ifndef CGPROF_TARGET_PRIV_H
#define CGPROF_TARGET_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgprof/target.h"

#define TARGET_PAUSE_HIST 64 /* log2-ish buckets of pause time in us */

/* A test-only memory source: an image of a few regions at chosen
 * addresses, every other address unmapped (-EFAULT). Unit tests and the
 * fuzz harnesses feed the real walkers from it instead of a process. */
struct cg_fake_region {
	uint64_t base;
	const void *data;
	size_t len;
};

struct cg_fake_mem {
	const struct cg_fake_region *regions;
	size_t n;
};

/* A target whose target_read/target_readv/target_read_cstr serve reads
 * from *mem (borrowed: it and its regions must outlive the target). It
 * has no process: pid 0, and nothing else may be asked of it but
 * target_close(). */
int target_fake_memory(struct target **out, const struct cg_fake_mem *mem);

/* A test-only process: the facts a runtime's attach asks of a target (its
 * ids, caught signals, threads, command line, environment, directory),
 * chosen by the test, and the signals sent to it counted (src/target/
 * fake.c). The test keeps it alive and may change it between calls. */
struct cg_fake_thread {
	pid_t tid;
	const char *name;  /* comm */
	uint64_t age_ns;   /* how long it has run */
};

struct cg_fake_proc {
	pid_t pid;                 /* what target_pid() says; not a real process */
	struct target_ids ids;
	uint64_t caught;           /* bit sig - 1 set: it has a handler for sig */
	const char *root;          /* target_root(); "" for the real root */
	const char *cwd;           /* the directory target_cwd_open() opens */
	const char *argv, *environ; /* NUL-ended entries, as the kernel keeps them */
	size_t argv_len, environ_len;
	const struct cg_fake_thread *threads;
	size_t nthreads;
	bool gone;                 /* exited: -ESRCH everywhere, not alive */
	/* target_signal(): counted, then handed here (NULL: nothing happens),
	 * which may change the fake as the process would react. */
	unsigned signals;
	int last_signal;
	void (*on_signal)(struct cg_fake_proc *p, int sig);
	void *arg;
};

/* A target whose process facts come from *p (borrowed). Its memory reads
 * fail (-EFAULT); pause, perf and maps are not for it. */
int target_fake_process(struct target **out, struct cg_fake_proc *p);

/* The fake's side of each call a fake process answers. */
int target_fake_ids(const struct cg_fake_proc *p, struct target_ids *out);
int target_fake_catches(const struct cg_fake_proc *p, int sig);
int target_fake_threads(const struct cg_fake_proc *p, pid_t *tids, size_t max);
int target_fake_thread_name(const struct cg_fake_proc *p, pid_t tid, char *buf, size_t n);
int target_fake_thread_age(const struct cg_fake_proc *p, pid_t tid, uint64_t *ns);
int target_fake_text(const struct cg_fake_proc *p, const char *text, size_t len, char *buf,
		     size_t n);
int target_fake_cwd_open(const struct cg_fake_proc *p);
int target_fake_signal(struct cg_fake_proc *p, int sig);

/* /proc/PID/status (tid 0), /proc/PID/task/TID/status, or ours (pid 0)
 * into buf: its length, -ESRCH when gone, or -errno. */
int target_status_read(pid_t pid, pid_t tid, char *buf, size_t n);
/* The text after "Key:" and its blanks on its line of a status file (up
 * to the '\n'), or NULL. */
const char *target_status_value(const char *status, const char *key);

/* Per-thread state kept between samples: the open stat and schedstat
 * files (read again with pread, one system call instead of three), the
 * run time last seen, the name, re-read once a second, and the thread's
 * context-switch records. A slot with tid 0 is free. */
#define TARGET_TASK_CACHE 256
/* Longer than two scheduler ticks at any common HZ (250, 300, 1000). */
#define TARGET_TICK_SLACK_NS 10000000ULL
/* A thread's run time is read at most this often: the slack above is
 * what decides, a read a millisecond adds nothing but a system call. */
#define TARGET_RUNTIME_EVERY_NS 2000000ULL
/* How far before its start a round's instant may lie (its tick, when it
 * woke on time): more than our wake-up takes, less than a thread's stack
 * moves on in a way that matters. */
#define TARGET_TICK_BACK_NS 200000ULL
/* With switch records a thread's stat is read this often, for its end. */
#define TARGET_ALIVE_EVERY_NS 100000000ULL
struct target_task {
	pid_t tid;
	int stat_fd;       /* -1: not open */
	int sched_fd;      /* schedstat, -1: not open */
	uint64_t cpu_ns;   /* its run time when last asked */
	uint64_t cpu_seen_ns; /* when that run time was first seen; 0: never */
	uint64_t cpu_read_ns; /* when it was last read */
	uint64_t comm_ns;  /* when comm was read; 0: never */
	uint64_t stat_ns;  /* when stat was last read; 0: never */
	/* context-switch records (switches.c): the event, its ring */
	int sw_fd;         /* -1: not open */
	bool sw_tried;     /* opening it was tried for this thread */
	int8_t sw_init;    /* on a CPU when opened: 1, 0, -1 unknown */
	void *sw_mp;
	size_t sw_len;
	char comm[16];     /* TASK_COMM_LEN */
};

struct target {
	pid_t pid;
	bool is_child;
	bool exited;       /* child's exit status collected (maybe early) */
	int exit_status;
	char root[48];     /* "/proc/PID/root" */
	/* When it started, in clock ticks since boot (stat's field 22); 0:
	 * unknown. Another start time under the same PID is another process
	 * (the PID was reused after ours ended). */
	unsigned long long start_ticks;
	/* pause accounting */
	pid_t paused_tid;
	int paused_sig;    /* signal to re-deliver on resume */
	uint64_t pause_start_ns;
	uint64_t pause_count;
	double pause_total_us;
	uint64_t pause_hist[TARGET_PAUSE_HIST];
	const struct cg_fake_mem *fake; /* set: reads come from here, not pid */
	struct cg_fake_proc *proc;      /* set: process facts come from here */
	uint64_t fake_calls;            /* reads served from it, each one call */
	struct target_task tasks[TARGET_TASK_CACHE];
	uint64_t tick_ns;  /* the instant the round samples (target_tick) */
	int sw_refused;    /* switch records refused (-errno); 0: not so far */
};

/* A thread's context-switch records (switches.c). open: 0, or -errno
 * (a refusal is kept in t->sw_refused and not asked again). state: 1 on
 * a CPU now and at the round's tick (CLOCK_MONOTONIC ns), or stopped
 * since the tick by our own wake-up on our_cpu; 0 not; -2 no switch
 * recorded yet; -1 the records cannot say. */
int target_sw_open(struct target *t, struct target_task *e);
int target_sw_state(const struct target_task *e, uint64_t tick, uint64_t now, int our_cpu);
void target_sw_close(struct target_task *e);

/* How many reads (target_read, target_readv: one system call each on a
 * real target) a fake target has served: tests count system calls. */
static inline uint64_t target_fake_calls(const struct target *t) { return t->fake_calls; }

/* Close what the task cache holds (target_close). */
void target_tasks_clear(struct target *t);

#endif
