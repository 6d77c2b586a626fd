/* Printable names every layer shares (thread states, loss reasons, frame
 * labels), kept in one place so all outputs agree. */
#include <stdio.h>

#include "cgprof/sample.h"

const char *cg_state_name(enum cg_state s)
{
	static const char *const names[CG_ST__COUNT] = {
		"RUNNING", "IDLE", "BLOCKED", "WAITING", "TIMED_WAITING", "NATIVE",
	};
	return (unsigned)s < CG_ST__COUNT ? names[s] : "UNKNOWN";
}

const char *cg_lost_name(enum cg_lost r)
{
	static const char *const names[CG_LOST__COUNT] = {
		"late", "torn", "read", "gone", "pause", "merge", "partial", "full",
	};
	return (unsigned)r < CG_LOST__COUNT ? names[r] : "other";
}

int cg_frame_label(char *buf, size_t n, const char *name, const char *file, int32_t line)
{
	if (file && line > 0)
		return snprintf(buf, n, "%s (%s:%d)", name, file, (int)line);
	if (file)
		return snprintf(buf, n, "%s (%s)", name, file);
	return snprintf(buf, n, "%s", name);
}
