/* CPython structure layouts as data: one generated row per minor version
 * (layouts.gen.c, from each CPython's headers), and for 3.13+ the map of
 * _Py_DebugOffsets that the target itself carries. */
#ifndef CGPROF_PY_LAYOUT_H
#define CGPROF_PY_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Every field is a byte offset (or size); -1 where the version has no such
 * field, so code branches on the data, not on version numbers. */
struct py_layout {
	int major, minor;
	int32_t runtime_interp_head;     /* _PyRuntimeState.interpreters.head */
	int32_t interp_tstate_head;      /* PyInterpreterState: first thread */
	int32_t tstate_next, tstate_interp;
	int32_t tstate_frame;            /* <=3.10: PyFrameObject *frame */
	int32_t tstate_cframe;           /* 3.11-3.12: _PyCFrame *cframe */
	int32_t tstate_current_frame;    /* 3.13+: _PyInterpreterFrame * */
	int32_t tstate_thread_id;        /* pthread_t */
	int32_t tstate_native_thread_id; /* 3.11+: the OS tid */
	int32_t cframe_current_frame;
	int32_t frame_back, frame_code;  /* f_back / previous; f_code / f_executable */
	int32_t frame_lasti;             /* <=3.10: int f_lasti */
	int32_t frame_instr;             /* 3.11+: prev_instr / instr_ptr */
	int32_t frame_owner;             /* 3.11+: char owner */
	int32_t frame_is_entry;          /* 3.11: bool is_entry */
	int32_t frame_size;
	int32_t code_filename, code_name, code_qualname, code_firstlineno;
	int32_t code_linetable;          /* co_lnotab (<=3.9) / co_linetable */
	int32_t code_adaptive;           /* 3.11+: first code unit, inline */
	int32_t unicode_state, unicode_length, unicode_ascii_size, unicode_compact_size;
	int32_t bytes_size, bytes_sval;
};

/* Offsets of the fields we use inside _Py_DebugOffsets (3.13 headers). */
struct py_debug_offsets_map {
	uint32_t version;
	uint32_t runtime_interp_head, interp_tstate_head;
	uint32_t tstate_next, tstate_interp, tstate_current_frame, tstate_thread_id,
		tstate_native_thread_id;
	uint32_t frame_back, frame_code, frame_instr, frame_owner, frame_size;
	uint32_t code_filename, code_name, code_qualname, code_linetable, code_firstlineno,
		code_adaptive;
	uint32_t unicode_state, unicode_length, unicode_ascii_size;
	uint32_t bytes_size, bytes_sval;
	uint32_t struct_size;
};

extern const struct py_layout py_layouts[];
extern const unsigned py_layouts_len;
extern const struct py_debug_offsets_map py_debug_map;

/* The table row for major.minor, or NULL. */
const struct py_layout *py_layout_find(int major, int minor);

/* Fill *out from the row for 3.13 overlaid with the values of the target's
 * _Py_DebugOffsets (raw bytes, len of them). 0, or -EINVAL when the cookie
 * or sizes do not check out. */
int py_layout_from_debug_offsets(const void *raw, size_t len, int minor, struct py_layout *out);

/* Line of the instruction at byte offset `addr` of a code object, from
 * its line table. kind: the table format. -1 when unknown. Pure functions
 * over untrusted bytes: every index is bounded by len. */
enum py_linetable_kind {
	PY_LNOTAB = 0,   /* 3.6-3.9: co_lnotab */
	PY_LINETABLE310, /* 3.10: co_linetable */
	PY_LOCATIONS,    /* 3.11+: co_linetable location table */
};
int py_line_for(enum py_linetable_kind kind, const uint8_t *tab, size_t len, int firstlineno,
		int addr);

#endif
