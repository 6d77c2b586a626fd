/* The counts behind `cgprof top`: per thread and function own and total
 * samples since the start and per second, written by the sampling thread
 * without locks and read by the drawing thread as snapshots. */
#ifndef CGPROF_CLI_TOP_STATS_H
#define CGPROF_CLI_TOP_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cgprof/sample.h"

/* Fixed capacities: the sampling side never allocates beyond its
 * interning of a new function name. What does not fit is counted. */
#define TOP_MAX_FUNCS 8192u   /* distinct (function, file) pairs */
#define TOP_MAX_THREADS 1024u /* distinct (pid, tid) pairs */
#define TOP_MAX_ENTRIES 32768u /* (thread, idle, function) cells; 2^n */
#define TOP_STACK_MAX 256u    /* frames kept of a thread's current stack */
#define TOP_WINDOW_MAX 60u    /* longest "last N seconds" view */

struct top_stats;

/* window_s: length of the "last N seconds" view (1..TOP_WINDOW_MAX).
 * 0 or -ENOMEM / -EINVAL. */
int top_stats_new(unsigned window_s, uint64_t start_ns, struct top_stats **out);
void top_stats_free(struct top_stats *st);

/* ---- The sampling thread only. ---- */
void top_stats_add(struct top_stats *st, const struct cg_sample *s, uint64_t now_ns);
/* One round done; stats are the session's running totals. */
void top_stats_round(struct top_stats *st, const struct cg_sample_stats *ss, uint64_t now_ns);

/* ---- Any thread. ---- */

enum top_sort {
	TOP_SORT_OWN = 0,
	TOP_SORT_TOTAL,
	TOP_SORT_OWN_TIME,
	TOP_SORT_TOTAL_TIME,
	TOP_SORT_NAME,
	TOP_SORT__COUNT
};

struct top_view {
	int thread;     /* a thread slot, or -1 for every thread */
	bool idle;      /* count samples of threads off CPU too */
	bool window;    /* the last window_s seconds, not since the start */
	bool idle_sampled; /* the sampler reports idle threads (--idle) */
	enum top_sort sort;
};

struct top_row {
	uint32_t func;
	uint64_t own, total; /* samples */
};

struct top_snapshot {
	struct top_row *rows; /* sorted; nrows of them */
	uint32_t nrows;
	uint64_t samples;     /* in the view: the 100% of the shares */
	uint64_t oncpu;       /* of those over every state, the on-CPU ones */
	uint64_t all_states;  /* samples in the view's span/thread, idle or not */
	uint64_t rounds;      /* rounds in the view's span */
	double span_s;        /* seconds the view covers */
	double sec_per_round; /* to turn sample counts into time */
	uint64_t taken, lost, dropped; /* since the start */
	uint32_t threads;     /* threads seen in the span */
	bool threads_more;    /* and more, beyond the table */
};

/* Fill snap (rows allocated; free with top_snapshot_free). 0 or -ENOMEM. */
int top_stats_snapshot(const struct top_stats *st, const struct top_view *v, uint64_t now_ns,
		       struct top_snapshot *snap);
void top_snapshot_free(struct top_snapshot *snap);

/* Function id -> its name, file (or NULL) and lowest line seen (0). */
void top_stats_func(const struct top_stats *st, uint32_t func, const char **name,
		    const char **file, int32_t *line);
/* Thread slots in use, and each one's label "NAME (TID)" as the rest of
 * cgprof names threads; the last slot, once full, "(other threads)". */
uint32_t top_stats_thread_count(const struct top_stats *st);
void top_stats_thread_label(const struct top_stats *st, uint32_t slot, char *buf, size_t n);

/* A thread's most recent stack (idle false: its most recent on CPU, what
 * a view without idle samples is made of), leaf first: up to max frames
 * as func ids and their lines; *state its state then. Returns the number
 * of frames, or -ENOENT if that thread has no such stack yet. */
int top_stats_stack(const struct top_stats *st, uint32_t slot, bool idle, uint32_t *funcs,
		    int32_t *lines, uint32_t max, enum cg_state *state, bool *truncated);

/* "function (file:line)" into buf; the file's base name only when short. */
void top_stats_func_label(const struct top_stats *st, uint32_t func, int32_t line, bool short_file,
			  char *buf, size_t n);

/* The lines both the screen and --once show, so scripts read what a
 * person sees: the counts line, the column titles, and one row. */
void top_format_counts(const struct top_snapshot *snap, const struct top_view *v, double rate_hz,
		       char *buf, size_t n);
void top_format_titles(enum top_sort sort, char *buf, size_t n);
void top_format_row(const struct top_stats *st, const struct top_snapshot *snap,
		    const struct top_row *r, bool short_file, char *buf, size_t n);

#endif
