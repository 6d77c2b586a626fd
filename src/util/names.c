/* Printable names of the enums every layer shares (thread states, loss
 * reasons), kept in one place so all encoders agree. */
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
		"late", "torn", "read", "gone", "pause", "merge", "full",
	};
	return (unsigned)r < CG_LOST__COUNT ? names[r] : "other";
}
