/* Profile -> bytes. Pure functions of the profile, one source file per
 * format under src/encode/. */
#ifndef CGPROF_ENCODE_H
#define CGPROF_ENCODE_H

#include <stdbool.h>
#include <stdio.h>

#include "cgprof/profile.h"

enum cg_format {
	CG_FMT_NONE = -1,
	CG_FMT_COLLAPSED = 0,
	CG_FMT_FLAMEGRAPH,
	CG_FMT_SPEEDSCOPE,
	CG_FMT_PPROF,
	CG_FMT_CODEGURU,
};

/* "collapsed", "flamegraph", ...; CG_FMT_NONE if unknown. */
enum cg_format encode_format_from_name(const char *name);
/* From a file name: .txt/.collapsed -> collapsed, .svg -> flamegraph,
 * .speedscope.json -> speedscope, .pb.gz/.pprof -> pprof, .json ->
 * codeguru (also .collapsed, .html, .speedscope, .pb). CG_FMT_NONE if the
 * extension says nothing. */
enum cg_format encode_format_from_path(const char *path);
const char *encode_format_name(enum cg_format f);
const char *encode_format_ext(enum cg_format f); /* ".svg", ... */

struct cg_encode_opts {
	const char *title;   /* flame graph title, speedscope name */
	bool include_idle;   /* idle/wait states count in cpu-style views */
	/* codeguru only; NULL for the defaults: agentInfo.type
	 * "CodeGuruProfiler-python"/"-java" by runtime, agentInfo.version
	 * CG_ENCODE_AGENT_VERSION, fleetInfo.id the host name, fleetInfo.type
	 * "UNKNOWN". */
	const char *agent_type;
	const char *agent_version;
	const char *fleet_instance_id;
	const char *fleet_type;
};
#define CG_ENCODE_AGENT_VERSION "1.2.4"

/* Write the profile in format f. 0 or negative (cg_fail explains). */
int encode_profile(enum cg_format f, const struct cg_profile *p,
		   const struct cg_encode_opts *o, FILE *out);

#endif
