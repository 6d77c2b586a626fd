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

/* Per-thread /proc state kept between samples: the open stat and
 * schedstat files (read again with pread, one system call instead of
 * three), the run time last seen, and the name, re-read once a second. A
 * slot with tid 0 is free. */
#define TARGET_TASK_CACHE 64
/* Longer than two scheduler ticks at any common HZ (250, 300, 1000). */
#define TARGET_TICK_SLACK_NS 10000000ULL
/* A thread's run time is read at most this often: the slack above is
 * what decides, a read a millisecond adds nothing but a system call. */
#define TARGET_RUNTIME_EVERY_NS 2000000ULL
struct target_task {
	pid_t tid;
	int stat_fd;       /* -1: not open */
	int sched_fd;      /* schedstat, -1: not open */
	uint64_t cpu_ns;   /* its run time when last asked */
	uint64_t cpu_seen_ns; /* when that run time was first seen; 0: never */
	uint64_t cpu_read_ns; /* when it was last read */
	uint64_t comm_ns;  /* when comm was read; 0: never */
	char comm[16];     /* TASK_COMM_LEN */
};

struct target {
	pid_t pid;
	bool is_child;
	bool exited;       /* child's exit status collected (maybe early) */
	int exit_status;
	char root[48];     /* "/proc/PID/root" */
	/* pause accounting */
	pid_t paused_tid;
	int paused_sig;    /* signal to re-deliver on resume */
	uint64_t pause_start_ns;
	uint64_t pause_count;
	double pause_total_us;
	uint64_t pause_hist[TARGET_PAUSE_HIST];
	const struct cg_fake_mem *fake; /* set: reads come from here, not pid */
	uint64_t fake_calls;            /* reads served from it, each one call */
	struct target_task tasks[TARGET_TASK_CACHE];
};

/* How many reads (target_read, target_readv: one system call each on a
 * real target) a fake target has served: tests count system calls. */
static inline uint64_t target_fake_calls(const struct target *t) { return t->fake_calls; }

/* Close what the task cache holds (target_close). */
void target_tasks_clear(struct target *t);

#endif
