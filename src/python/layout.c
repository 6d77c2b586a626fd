/* The layout in force for a CPython: the generated row of its minor
 * version, overlaid on 3.13+ with what the target's _Py_DebugOffsets says. */
#include <errno.h>
#include <string.h>

#include "layout.h"

const struct py_layout *py_layout_find(int major, int minor)
{
	for (unsigned i = 0; i < py_layouts_len; i++)
		if (py_layouts[i].major == major && py_layouts[i].minor == minor)
			return &py_layouts[i];
	return NULL;
}

const struct py_debug_offsets_map *py_debug_map_find(int minor)
{
	for (unsigned i = 0; i < py_debug_maps_len; i++)
		if (py_debug_maps[i].minor == minor)
			return &py_debug_maps[i];
	return NULL;
}

int py_layout_newest_minor(void)
{
	int m = 0;
	for (unsigned i = 0; i < py_layouts_len; i++)
		if (py_layouts[i].minor > m)
			m = py_layouts[i].minor;
	return m;
}

static uint64_t dbg_u64(const uint8_t *raw, size_t len, uint32_t off, int *bad)
{
	uint64_t v;
	if ((size_t)off + 8 > len) {
		*bad = 1;
		return 0;
	}
	memcpy(&v, raw + off, 8);
	return v;
}

/* One field per row: where it lives in struct py_layout and in the map. */
static const struct {
	size_t layout_off, map_off;
} dbg_fields[] = {
#define PY_FIELD(name, debug) \
	{offsetof(struct py_layout, name), offsetof(struct py_debug_offsets_map, name)},
	PY_LAYOUT_FIELDS(PY_FIELD)
#undef PY_FIELD
};

int py_layout_from_debug_offsets(const void *rawp, size_t len, int minor, struct py_layout *out,
				 struct py_debug_header *hdr)
{
	const uint8_t *raw = rawp;
	const struct py_debug_offsets_map *m = py_debug_map_find(minor);
	const struct py_layout *base = py_layout_find(3, minor);
	int bad = 0;

	if (!m || !base)
		return -ENOTSUP;
	if (len < m->struct_size || memcmp(raw, "xdebugpy", 8))
		return -EINVAL;
	*out = *base;
	if (hdr) {
		hdr->version = dbg_u64(raw, len, m->version, &bad);
		hdr->free_threaded = dbg_u64(raw, len, m->free_threaded, &bad);
	}
	for (size_t i = 0; i < sizeof(dbg_fields) / sizeof(dbg_fields[0]); i++) {
		uint32_t at;
		memcpy(&at, (const char *)m + dbg_fields[i].map_off, sizeof(at));
		if (!at)
			continue; /* this version does not describe it: the row's */
		/* Each value is an offset into (or size of) a small struct:
		 * anything huge means we are not reading what we think. */
		uint64_t v = dbg_u64(raw, len, at, &bad);
		if (v > 65536) {
			bad = 1;
			v = 0;
		}
		int32_t v32 = (int32_t)v;
		memcpy((char *)out + dbg_fields[i].layout_off, &v32, sizeof(v32));
	}
	/* Before 3.15 the struct has no compact-object size: it is the ASCII
	 * header plus utf8_length and utf8, whatever the build. */
	if (!m->unicode_compact_size)
		out->unicode_compact_size = out->unicode_ascii_size + 16;
	return bad ? -EINVAL : 0;
}
