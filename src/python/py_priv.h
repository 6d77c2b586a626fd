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
/* The main interpreter's address. */
int py_read_interp(struct py_interp *pi, uint64_t *interp);

#endif
