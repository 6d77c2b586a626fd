/* One thread's stack at one instant, as every sampler reports it, and the
 * sampler interface the runtimes (python, jvm, native) implement. */
#ifndef CGPROF_SAMPLE_H
#define CGPROF_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct target;

enum cg_runtime {
	CG_RT_PYTHON = 0,
	CG_RT_JAVA,
	CG_RT_NATIVE,
};

/* Thread state at the sample. Python threads are RUNNING or IDLE (from the
 * OS); Java threads carry the JVM's state. */
enum cg_state {
	CG_ST_RUNNING = 0, /* on CPU; Java RUNNABLE */
	CG_ST_IDLE,        /* off CPU (Python); Java: unknown/other */
	CG_ST_BLOCKED,     /* Java: waiting for a monitor */
	CG_ST_WAITING,
	CG_ST_TIMED_WAITING,
	CG_ST_NATIVE,      /* Java thread in native code */
	CG_ST__COUNT
};
const char *cg_state_name(enum cg_state s); /* "RUNNING", "IDLE", ... */
/* How every output names a frame: "name (file:line)", "name (file)" or
 * "name". snprintf's contract: returns the full length, writes at most
 * n bytes (buf may be NULL when n is 0). */
int cg_frame_label(char *buf, size_t n, const char *name, const char *file, int32_t line);

enum cg_frame_kind {
	CG_FK_PYTHON = 0,
	CG_FK_NATIVE,
	CG_FK_JAVA,
	CG_FK_THREAD,    /* synthetic root: "thread NAME (TID)" */
	CG_FK_PROCESS,   /* synthetic root: "process PID (cmd)" */
	CG_FK_TRUNCATED, /* "<Truncated>": stack deeper than max depth */
	CG_FK_TASK,      /* synthetic root: "task NAME" (asyncio, --async) */
};

struct cg_frame {
	const char *name; /* Python: qualified function name; Java:
			     package.Class.method; native: symbol */
	const char *file; /* source path, or for native frames the object
			     (basename); NULL if unknown */
	int32_t line;     /* 0 if unknown */
	uint8_t kind;     /* enum cg_frame_kind */
};

/* Strings in a sample are owned by the sampler and valid only during the
 * callback; the profile interns what it keeps. */
struct cg_sample {
	pid_t pid;
	pid_t tid;
	const char *thread_name;
	enum cg_state state;
	bool truncated;             /* deeper than max depth: root side cut */
	uint32_t nframes;
	const struct cg_frame *frames; /* innermost (leaf) first */
};

/* Why a sample that should have been taken was not. */
enum cg_lost {
	CG_LOST_LATE = 0,   /* the sampler missed its tick */
	CG_LOST_TORN,       /* stack changed under a non-pausing read */
	CG_LOST_READ,       /* memory read failed (unmapped, bad pointer) */
	CG_LOST_GONE,       /* thread exited mid-sample */
	CG_LOST_PAUSE,      /* could not pause the thread */
	CG_LOST_MERGE,      /* native and Python stacks did not line up */
	CG_LOST_PARTIAL,    /* a walk that did not reach the thread's first frame */
	CG_LOST_FULL,       /* profile at capacity (counted in (truncated)) */
	CG_LOST__COUNT
};
const char *cg_lost_name(enum cg_lost r); /* "late", "torn", ... */

struct cg_sample_stats {
	uint64_t taken;          /* samples delivered to the callback */
	uint64_t lost[CG_LOST__COUNT];
};

struct cg_sampler_opts {
	bool nonblocking; /* never pause the target, even for --native */
	bool blocking;    /* pause a thread while its stack is read */
	bool idle;        /* also report threads that are not running */
	bool native;      /* unwind native frames too (libunwind) */
	bool native_pause; /* native stacks by pausing, not kernel samples */
	double rate_hz;   /* rounds per second; 0: a single round (dump) */
	bool async_tasks; /* --async: root event-loop stacks at their asyncio task */
	uint32_t max_depth;
};

typedef void (*cg_sample_fn)(const struct cg_sample *s, void *arg);

struct cg_heap_class; /* cgprof/profile.h */
/* A heap summary: n classes, largest first, and the totals over all. */
typedef void (*cg_heap_fn)(const struct cg_heap_class *c, size_t n, uint64_t total_instances,
			   uint64_t total_bytes, void *arg);

struct cg_sampler_ops {
	const char *name;
	enum cg_runtime runtime;
	/* 0 if this runtime is (now) present in the target, -ENOENT if not
	 * (yet), another negative code (with cg_fail) if it never will be,
	 * e.g. an unsupported version. Cheap enough to poll. */
	int (*probe)(struct target *t);
	int (*open)(struct target *t, const struct cg_sampler_opts *o, void **priv);
	/* One round: every thread's stack once, fn called per thread.
	 * Returns the number of threads seen, or negative (e.g. -ESRCH when
	 * the process is gone). Losses are counted into stats. */
	int (*sample)(void *priv, cg_sample_fn fn, void *arg, struct cg_sample_stats *stats);
	/* Human-readable runtime version, e.g. "CPython 3.12.1". */
	const char *(*version)(void *priv);
	void (*close)(void *priv);

	/* Optional hooks; NULL where the runtime has no such thing. */
	/* The rate to sample this runtime at, asked once after open(): its
	 * own default when the user gave none (asked false), else asked_hz,
	 * with one cg_warn() if that is more than the runtime bears. NULL:
	 * asked_hz as it is. */
	double (*rate)(double asked_hz, bool asked);
	/* --heap: a summary of t's heap (classes largest first) handed to fn,
	 * taken on the runtime's own terms (the JVM: a class histogram at a
	 * safepoint). 0, or negative with cg_fail(). NULL: none to record. */
	int (*heap)(struct target *t, cg_heap_fn fn, void *arg);
};

/* The samplers runtime_probe() chooses from (src/python, src/jvm,
 * src/native). */
extern const struct cg_sampler_ops python_sampler_ops;
extern const struct cg_sampler_ops jvm_sampler_ops;
extern const struct cg_sampler_ops native_sampler_ops;

/* One asyncio task as `dump --async` lists it (CPython 3.14+). */
struct cg_task {
	uint64_t id;                   /* the task object's address */
	const char *name;
	bool running;                  /* its coroutine runs on a thread now */
	pid_t tid;                     /* thread whose task list holds it; 0 unknown */
	uint32_t nframes;
	const struct cg_frame *frames; /* await chain, innermost first */
	const char *awaiting;          /* type of what the innermost coroutine awaits, or "" */
	uint64_t awaiting_id;          /* that object's address */
	uint32_t nawaited_by;
	const uint64_t *awaited_by;    /* ids of the tasks (or futures) that await it */
};
typedef void (*cg_task_fn)(const struct cg_task *t, void *arg);
/* Every asyncio task of a process opened with python_sampler_ops, fn
 * called per task. The number of tasks, or negative: -ENOTSUP (with
 * cg_fail) when the target has no asyncio debug offsets (before 3.14, or
 * asyncio not imported yet). */
int python_tasks(void *priv, cg_task_fn fn, void *arg);

#endif
