/* Internal state of a target shared by the src/target/ files; nothing
 * outside src/target/ sees it. */
#ifndef CGPROF_TARGET_PRIV_H
#define CGPROF_TARGET_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgprof/target.h"

#define TARGET_PAUSE_HIST 64 /* log2-ish buckets of pause time in us */

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
};

#endif
