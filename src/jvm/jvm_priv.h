/* Internal pieces of the JVM runtime shared by the src/jvm/ files (and the
 * unit tests): the HotSpot attach client and the thread-dump parser. */
#ifndef CGPROF_JVM_PRIV_H
#define CGPROF_JVM_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgprof/jvm.h"
#include "cgprof/sample.h"
#include "cgprof/util.h"

struct target;

/* Replies are untrusted and bounded: a thread dump of a few thousand
 * threads fits well inside these. */
#define JVM_MAX_REPLY (64u << 20)
#define JVM_MAX_THREADS 16384u
#define JVM_MAX_FRAMES_PER_THREAD 65536u
#define JVM_MAX_FRAMES_TOTAL (1u << 20) /* 24 MiB of frames at most */

/* Timeouts (milliseconds). CGPROF_JVM_TIMEOUT_MS overrides the request
 * timeouts (tests use it to keep a hung JVM short). */
#define JVM_START_TIMEOUT_MS 5000   /* SIGQUIT until the socket appears */
#define JVM_DUMP_TIMEOUT_MS 3000    /* one thread dump */
#define JVM_HEAP_TIMEOUT_MS 60000   /* a class histogram walks the heap */

/* Where and as whom to talk to one JVM. */
struct jvm_attach {
	struct target *t;  /* NULL: requests only (unit tests); ready and start need it */
	pid_t pid;         /* as we see it */
	pid_t nspid;       /* as the JVM sees itself (its PID namespace) */
	uid_t uid;         /* the JVM's effective ids (peer check) */
	gid_t gid;
	char root[64];     /* target_root(): the JVM's mount namespace */
	char sock[128];    /* root + "/tmp/.java_pid<nspid>" */
};

/* Fill a from the target: its ids (target_ids: namespaced pid, effective
 * uid and gid) and where its socket is. */
int jvm_attach_init(struct target *t, struct jvm_attach *a);
/* Is the JVM far enough in its start-up that a SIGQUIT is handled (not
 * fatal)? 0 yes, -ENOENT not yet, other negative (cg_fail) never: dynamic
 * attach disabled. */
int jvm_attach_ready(struct jvm_attach *a);
/* Make sure the attach listener runs (trigger it with .attach_pid +
 * SIGQUIT if its socket is not there yet). Leaves no .attach_pid file. */
int jvm_attach_start(struct jvm_attach *a);
/* One request: cmd with up to three arguments (NULL = empty). On 0, *status
 * is the JVM's result code and out holds the text after the status line
 * (NUL-terminated, out->len excludes the NUL). Negative with cg_fail() when
 * the JVM could not be reached or did not answer within timeout_ms. */
int jvm_attach_request(struct jvm_attach *a, const char *cmd, const char *const args[3],
		       int timeout_ms, int *status, struct cg_buf *out);
/* The bytes a JVM answered a request with (untrusted), as
 * jvm_attach_request() reads them: "<code>\n<output>". 0 with *status and
 * out as there, -EPROTO when there is no status line, -ENOMEM. */
int jvm_attach_parse_reply(const char *data, size_t len, int *status, struct cg_buf *out);
/* The long counter `want` (e.g. "sun.rt.createVmEndTime") in the bytes of
 * a HotSpot perf data file (untrusted): 0 and *val, or -ENOENT. */
int jvm_perf_long(const char *buf, size_t n, const char *want, int64_t *val);
/* Java feature release from the VM line of a thread dump ("OpenJDK 64-Bit
 * Server VM 17.0.15+6" -> 17, JDK 8's "25.202-b08" -> 8); 0 if unknown. */
int jvm_major_version(const char *vm);
/* Timeout for a request kind, with the CGPROF_JVM_TIMEOUT_MS override. */
int jvm_timeout_ms(int dflt);

/* One Java thread of a parsed thread dump. Strings point into the dump's
 * text (parsed in place). */
struct jvm_thread {
	const char *name;
	pid_t nid;             /* OS thread id in the JVM's PID namespace */
	enum cg_state state;
	bool truncated;        /* more frames than max_depth */
	uint32_t first, nframes; /* range in jvm_dump.frames, leaf first */
};

struct jvm_dump {
	char vm[128];          /* "OpenJDK 64-Bit Server VM 17.0.15+6..." */
	struct jvm_thread *threads;
	size_t nthreads, threads_cap;
	struct cg_frame *frames;
	size_t nframes, frames_cap;
};

/* Parse jstack-style text (text[len] must be '\0'; modified in place)
 * into d, reusing d's arrays. Only threads with a java.lang.Thread.State
 * line and at least one Java frame are kept (JVM-internal threads have
 * neither). At most max_depth frames per thread (0: no limit beyond
 * JVM_MAX_FRAMES_PER_THREAD). 0, or -ENOMEM. Malformed lines are skipped. */
int jvm_dump_parse(char *text, size_t len, uint32_t max_depth, struct jvm_dump *d);
void jvm_dump_free(struct jvm_dump *d);

#endif
