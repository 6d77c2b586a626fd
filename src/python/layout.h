/* CPython structure layouts as data: one generated row per minor version
 * (layouts.gen.c, from each CPython's headers), and for 3.13+ the maps of
 * _Py_DebugOffsets that the target itself carries. */
#ifndef CGPROF_PY_LAYOUT_H
#define CGPROF_PY_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "layout_fields.h"

/* Every field is a byte offset (or size); -1 where the version has no such
 * field, so code branches on the data, not on version numbers. The
 * fields are those of layout_fields.h. */
struct py_layout {
	int major, minor;
#define PY_FIELD(name, debug) int32_t name;
	PY_LAYOUT_FIELDS(PY_FIELD)
#undef PY_FIELD
};

/* Where each field sits inside one minor version's _Py_DebugOffsets
 * (its struct grows with every release); 0 where that version's struct
 * has no such member (offset 0 is the cookie). */
struct py_debug_offsets_map {
	int minor;
	uint32_t struct_size, version, free_threaded;
#define PY_FIELD(name, debug) uint32_t name;
	PY_LAYOUT_FIELDS(PY_FIELD)
#undef PY_FIELD
};

extern const struct py_layout py_layouts[];
extern const unsigned py_layouts_len;
extern const struct py_debug_offsets_map py_debug_maps[];
extern const unsigned py_debug_maps_len;

/* The table row for major.minor, or NULL. */
const struct py_layout *py_layout_find(int major, int minor);
/* The _Py_DebugOffsets map of 3.minor, or NULL when cgprof does not know
 * that version's struct. */
const struct py_debug_offsets_map *py_debug_map_find(int minor);
/* The newest minor version cgprof can read. */
int py_layout_newest_minor(void);

/* What a target's _Py_DebugOffsets says of itself. */
struct py_debug_header {
	uint64_t version;      /* PY_VERSION_HEX */
	uint64_t free_threaded;
};

/* Fill *out from the generated row for 3.minor overlaid with the values
 * of the target's _Py_DebugOffsets (raw bytes, len of them, read with the
 * map of 3.minor). 0; -EINVAL when the cookie, a size or an offset does
 * not check out; -ENOTSUP when cgprof has no map for 3.minor. hdr, if
 * not NULL, receives the version and free-threading words. */
int py_layout_from_debug_offsets(const void *raw, size_t len, int minor, struct py_layout *out,
				 struct py_debug_header *hdr);

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
