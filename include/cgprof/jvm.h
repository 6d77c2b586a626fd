/* The JVM runtime: the HotSpot sampler (VMStructs walker, thread dumps over
 * the dynamic-attach socket as fallback) and the heap summary. */
#ifndef CGPROF_JVM_H
#define CGPROF_JVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "cgprof/sample.h"

struct cg_buf;
struct target;

extern const struct cg_sampler_ops jvm_sampler_ops;

/* Default sampling rates for a JVM sampled with thread dumps (the
 * fallback). Every sample is a thread dump: two or
 * three safepoints (PrintThreads, PrintJNI on 17, FindDeadlocks) that stop
 * every Java thread, ~0.4 ms together (median) on JDK 17 but ~1.1 ms on
 * JDK 25, whose PrintThreads costs four times more. Measured on
 * examples/java/Demo.java (two CPU-bound workers, 2 cores), throughput with
 * sampling vs without, interleaved 5 s runs, slowdown by session mean and
 * median (examples/java/measure_overhead.py):
 *   OpenJDK 17.0.15 (2 sessions, 6 + 8 runs):  10 Hz 0.7%,  20 Hz 0.7-1.4%,
 *       30 Hz 1.5-2.6%,  50 Hz 2.7-3.4%,  100 Hz 6.4%  (ceiling ~210 Hz)
 *   Temurin 25.0.3 (3 sessions, 4-6 runs):  5 Hz 1.7-3.9% (noisy),
 *       10 Hz 2.0-2.7%,  20 Hz 3.9-4.2%,  50 Hz 8.4-8.5%
 * and with a sampled and an unsampled Demo side by side (5 pairs, which
 * cancels the load of the shared machine but overstates: the unsampled
 * one gets the cores the paused one leaves): JDK 17 at 20 Hz 1.4-1.6%,
 * JDK 25 at 5 Hz 2.4-3.2%, at 10 Hz 1.9-3.2%.
 * So JDK 17 and older get 20 Hz, the highest rate under the 2% budget in
 * every session. Newer JVMs (18-24 unmeasured, treated like 25) and a JVM
 * whose version is not known get 5 Hz, the cautious choice: on the shared
 * test machine JDK 25's slowdown at 5-10 Hz could not be told apart from
 * noise of +-3%; re-measure on a quiet one. cgprof's own cost is ~60 us of
 * CPU per dump. */
/* With the VMStructs walker (the default where the JVM's tables check
 * out) a sample stops at most the one thread it reads, never the JVM. */
#define CG_JVM_WALKER_RATE_HZ 100
#define CG_JVM_WALKER_MAX_RATE_HZ 1000
#define CG_JVM_DEFAULT_RATE_HZ 5
#define CG_JVM_DEFAULT_RATE_HZ_JDK17 20
/* Beyond these the slowdown passes ~3%: --rate above them draws a warning
 * (dumps cannot keep up at all much beyond 200 Hz). */
#define CG_JVM_MAX_RATE_HZ 10
#define CG_JVM_MAX_RATE_HZ_JDK17 50

/* The rate to sample a JVM at: its default when the user gave none (asked
 * == false), else asked_hz. When asked_hz is beyond what the mechanism
 * gives without slowing the JVM down, one cg_warn() says so (the rate is
 * kept; ticks the session misses count as "late"). Call it after
 * jvm_sampler_ops.open(): the defaults depend on the version of the JVM
 * opened last (before any, the cautious CG_JVM_DEFAULT_RATE_HZ). */
double jvm_sampler_rate(double asked_hz, bool asked);

/* One class of the heap histogram. */
struct jvm_heap_entry {
	char *name;          /* as the JVM prints it: "java.lang.String", "[B" */
	uint64_t instances;
	uint64_t bytes;
};

struct jvm_heap {
	struct jvm_heap_entry *entries; /* largest (bytes) first */
	size_t n;
	uint64_t total_instances, total_bytes;
	uint64_t time_ms;    /* epoch ms when taken (0 if only parsed) */
};

/* The live and not-yet-collected objects of the JVM target t by class,
 * from the attach command `inspectheap -all`, which does not force a full
 * GC. Attaches (and leaves the JVM running) on its own; 0 or negative with
 * cg_fail(). Free with jvm_heap_free(). */
int jvm_heap_histogram(struct target *t, struct jvm_heap *out);
void jvm_heap_free(struct jvm_heap *h);
/* jvm_sampler_ops.heap: the histogram's largest CG_PROFILE_HEAP_MAX
 * classes handed to fn (valid during the call). 0 or negative. */
int jvm_heap_summary(struct target *t, cg_heap_fn fn, void *arg);

/* The histogram as one JSON object, appended to out (for `cgprof heap
 * --format json` and for heap summaries stored beside a profile):
 *   {"pid": P, "time_ms": T, "total_instances": N, "total_bytes": B,
 *    "classes_total": C, "classes": [{"class": "[B", "instances": N,
 *    "bytes": B}, ...]}
 * pid 0 leaves "pid" out; top 0 lists every class, else the top largest.
 * 0 or -ENOMEM. */
int jvm_heap_to_json(const struct jvm_heap *h, pid_t pid, size_t top, struct cg_buf *out);

/* Parse the text of an `inspectheap` reply (untrusted) into *out, sorted
 * largest first. Lines that do not parse are skipped; 0, -EINVAL when no
 * line parsed, -ENOMEM. */
int jvm_heap_parse(const char *text, size_t len, struct jvm_heap *out);

#endif
