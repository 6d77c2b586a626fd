/* State shared by the CPython sampler's files: the interpreter found in a
 * target, and the caches the walker keeps. */
#ifndef CGPROF_PY_PRIV_H
#define CGPROF_PY_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "cgprof/sample.h"
#include "cgprof/util.h"
#include "layout.h"

struct target;

struct py_interp {
	struct target *t;
	int major, minor, micro;
	char version[32];
	char object[512];       /* libpython or the executable */
	struct py_layout L;
	enum py_linetable_kind lt_kind;
	int lasti_scale;        /* f_lasti units -> bytes */
	uint64_t runtime;       /* &_PyRuntime (3.7+) */
	uint64_t interp_head_var; /* &interp_head (3.6) */
	uint64_t tstate_current;  /* &_PyThreadState_Current (3.6) */
	uint64_t pycode_type;     /* &PyCode_Type */
};

/* 0 when CPython is present and initialised (pi filled); -ENOENT when not
 * (yet); -ENOTSUP (with cg_fail) when it never will be usable. */
int py_discover(struct target *t, struct py_interp *pi);
/* 0 when CPython pi->major.pi->minor is one cgprof reads; else -ENOTSUP
 * with a message that names it and the range. */
int py_version_supported(const struct py_interp *pi, struct target *t);
/* pi->L for pi->minor: on 3.13+ from the _Py_DebugOffsets at pi->runtime
 * (refused, naming why, when they do not validate or describe a
 * free-threaded build), else the generated row. 0 or -ENOTSUP. */
int py_layout_for_target(struct py_interp *pi, struct target *t);
/* Take layout L (a table row, or one built from _Py_DebugOffsets) and
 * what follows from it: the line-table format and f_lasti's unit. */
void py_interp_set_layout(struct py_interp *pi, const struct py_layout *L);
/* The main interpreter's address. */
int py_read_interp(struct py_interp *pi, uint64_t *interp);

/* The sampler over an interpreter already described (py_discover() does
 * it for a real process; tests and the fuzzer fill pi by hand over a fake
 * memory target). Close with python_sampler_ops.close. */
int py_sampler_new(const struct py_interp *pi, const struct cg_sampler_opts *o, void **priv);
/* The frames of the thread whose PyThreadState is at tstate, leaf first,
 * exactly as a sample reads and names them (no pausing, no native
 * merge). The number of frames (*frames valid until the next call), or
 * negative: -EFAULT unreadable, -ELOOP a chain that loops, -EINVAL bad
 * object. */
int py_sample_thread(void *priv, uint64_t tstate, const struct cg_frame **frames,
		     bool *truncated);

#endif
