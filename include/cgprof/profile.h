/* The runtime-agnostic profile of one reporting window: interned frames, a
 * call tree with self counts per thread state, and what was lost. Bounded:
 * beyond its limits samples land in a counted "(truncated)" node. */
#ifndef CGPROF_PROFILE_H
#define CGPROF_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgprof/sample.h"

struct cg_profile;

struct cg_profile_limits {
	uint32_t max_depth;  /* frames kept per sample (root side cut) */
	uint32_t max_frames; /* distinct frames interned */
	uint32_t max_nodes;  /* call-tree nodes (distinct stack prefixes) */
};
#define CG_PROFILE_DEFAULT_MAX_DEPTH 2048u
#define CG_PROFILE_DEFAULT_MAX_FRAMES 200000u
#define CG_PROFILE_DEFAULT_MAX_NODES 500000u

/* lim may be NULL for the defaults. */
struct cg_profile *profile_new(enum cg_runtime rt, const struct cg_profile_limits *lim);
void profile_free(struct cg_profile *p);

/* Window bounds, epoch milliseconds. */
void profile_set_window(struct cg_profile *p, uint64_t start_ms, uint64_t end_ms);
/* Interval between sampling rounds, milliseconds (for sample weights). */
void profile_set_interval_ms(struct cg_profile *p, double interval_ms);
/* e.g. "CPython 3.12.1" or "OpenJDK 17.0.15". Copied. */
void profile_set_runtime_version(struct cg_profile *p, const char *version);
/* with_threads: root every stack at a synthetic "thread NAME (TID)" frame. */
void profile_set_thread_roots(struct cg_profile *p, bool with_threads);

/* Add one sample (weight 1). Returns 0, or -ENOSPC when it went to the
 * "(truncated)" node because a limit was reached (still counted). */
int profile_add_sample(struct cg_profile *p, const struct cg_sample *s);
/* A sampling round happened (CodeGuru numTimesSampled). */
void profile_add_round(struct cg_profile *p);
void profile_add_lost(struct cg_profile *p, enum cg_lost reason, uint64_t n);
/* CPU time cgprof spent sampling this window, for agentOverhead. */
void profile_add_overhead_ms(struct cg_profile *p, double ms);

uint64_t profile_samples(const struct cg_profile *p); /* total added */
uint64_t profile_lost(const struct cg_profile *p, enum cg_lost reason);
uint64_t profile_rounds(const struct cg_profile *p);

#endif
