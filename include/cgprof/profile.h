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

/* Directories of the target's sys.path (Python): the CodeGuru encoder
 * strips the longest matching one from a file to form the module path, as
 * the official agent does. Copied; 0 or -ENOMEM. */
int profile_add_module_root(struct cg_profile *p, const char *dir);
/* CPU time the target used in this window (CodeGuru cpuTimeInSeconds);
 * unknown (and left out) until set. */
void profile_set_cpu_time_s(struct cg_profile *p, double seconds);
/* Bytes this profile holds (CodeGuru agentOverhead.memory_usage_mb). */
size_t profile_memory_bytes(const struct cg_profile *p);

/* Distinct thread ids seen in this window. */
uint64_t profile_thread_count(const struct cg_profile *p); /* distinct tids */

/* ---- Read-only view for the encoders (src/encode/). ---- */

#define CG_PROFILE_NONE UINT32_MAX

/* An interned frame: strings live as long as the profile. */
struct cg_profile_frame {
	const char *name;
	const char *file; /* NULL if unknown */
	int32_t line;     /* 0 if unknown */
	uint8_t kind;     /* enum cg_frame_kind */
};

/* A call-tree node: one distinct stack prefix. Node 0 is the root, which
 * has no frame. Its self counts (samples whose leaf it is) are kept apart,
 * since most nodes have none: see profile_node_self(). */
struct cg_profile_node {
	uint32_t parent;  /* CG_PROFILE_NONE for the root */
	uint32_t frame;   /* index for profile_frame(); NONE for the root */
	uint32_t child;   /* first child, or CG_PROFILE_NONE */
	uint32_t sibling; /* next child of the same parent, or NONE */
	uint32_t counts;  /* private: where the self counts are, or NONE */
};

enum cg_runtime profile_runtime(const struct cg_profile *p);
uint64_t profile_start_ms(const struct cg_profile *p);
uint64_t profile_end_ms(const struct cg_profile *p);
double profile_interval_ms(const struct cg_profile *p);
const char *profile_runtime_version(const struct cg_profile *p); /* or NULL */
double profile_overhead_ms(const struct cg_profile *p);
double profile_cpu_time_s(const struct cg_profile *p); /* negative: unknown */
size_t profile_module_root_count(const struct cg_profile *p);
const char *profile_module_root(const struct cg_profile *p, size_t i);

uint32_t profile_node_count(const struct cg_profile *p);
const struct cg_profile_node *profile_node(const struct cg_profile *p, uint32_t i);
uint32_t profile_frame_count(const struct cg_profile *p);
const struct cg_profile_frame *profile_frame(const struct cg_profile *p, uint32_t i);
/* Self counts of a node, CG_ST__COUNT of them indexed by enum cg_state
 * (all zero for a node no sample ended in). */
const uint32_t *profile_node_self(const struct cg_profile *p, uint32_t node);
/* Sum of the self counts over the states; over the on-CPU states only when
 * include_idle is false (RUNNING and NATIVE count as on-CPU). */
uint64_t profile_node_total(const struct cg_profile *p, uint32_t node, bool include_idle);
bool profile_state_on_cpu(enum cg_state s);

/* Call fn for every node with samples, with its stack root first
 * (frames[0] is the outermost, frames[depth-1] the node's own frame).
 * Depth-first, children newest first. Returns 0, -ENOMEM, or the
 * first nonzero value fn returned. */
typedef int (*profile_stack_fn)(const struct cg_profile *p, uint32_t node,
				const uint32_t *frames, uint32_t depth, void *arg);
int profile_walk_stacks(const struct cg_profile *p, profile_stack_fn fn, void *arg);
/* The same over the subtree of node top (top included, frames[0] its
 * frame); top 0 is the whole tree. */
int profile_walk_subtree(const struct cg_profile *p, uint32_t top, profile_stack_fn fn, void *arg);

/* ---- JVM heap summary: travels with the window's profile. ---- */

struct cg_heap_class {
	const char *name; /* as the JVM prints it: "java.lang.String", "[B" */
	uint64_t instances;
	uint64_t bytes;
};
struct cg_profile_heap {
	struct cg_heap_class *classes; /* largest first, at most
					  CG_PROFILE_HEAP_MAX */
	size_t n;
	uint64_t total_instances, total_bytes; /* over all classes */
	uint64_t taken_ms;                     /* epoch ms */
};
#define CG_PROFILE_HEAP_MAX 100u
/* Copy the first CG_PROFILE_HEAP_MAX classes (pass them largest first).
 * Replaces an earlier summary. 0 or -ENOMEM. */
int profile_set_heap(struct cg_profile *p, const struct cg_heap_class *c, size_t n,
		     uint64_t total_instances, uint64_t total_bytes, uint64_t taken_ms);
const struct cg_profile_heap *profile_heap(const struct cg_profile *p); /* or NULL */

#endif
