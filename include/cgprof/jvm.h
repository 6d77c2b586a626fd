/* The JVM runtime: the HotSpot sampler (thread dumps over the dynamic-attach
 * socket) and the heap summary (class histogram without a full GC). */
#ifndef CGPROF_JVM_H
#define CGPROF_JVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgprof/sample.h"

struct target;

extern const struct cg_sampler_ops jvm_sampler_ops;

/* Default sampling rate for a JVM. Every sample is a thread dump, which
 * stops all Java threads at a safepoint, so the rate is bounded by the
 * target's slowdown (budget: 2%). Provisional; measurement pending. */
#define CG_JVM_DEFAULT_RATE_HZ 20
/* Above this the thread-dump mechanism cannot keep up on a small JVM (one
 * dump with its safepoint, transfer and parse takes a few milliseconds) and
 * the slowdown grows past several percent. */
#define CG_JVM_MAX_RATE_HZ 100

/* The rate to sample a JVM at: CG_JVM_DEFAULT_RATE_HZ when the user gave
 * none (asked == false), else asked_hz. When asked_hz is beyond what the
 * current mechanism gives, one cg_warn() says so (the rate is kept: the
 * session counts the ticks it misses as "late"). */
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
};

/* The live and not-yet-collected objects of the JVM target t by class,
 * from the attach command `inspectheap -all`, which does not force a full
 * GC. Attaches (and leaves the JVM running) on its own; 0 or negative with
 * cg_fail(). Free with jvm_heap_free(). */
int jvm_heap_histogram(struct target *t, struct jvm_heap *out);
void jvm_heap_free(struct jvm_heap *h);

/* Parse the text of an `inspectheap` reply (untrusted) into *out, sorted
 * largest first. Lines that do not parse are skipped; 0, -EINVAL when no
 * line parsed, -ENOMEM. */
int jvm_heap_parse(const char *text, size_t len, struct jvm_heap *out);

#endif
