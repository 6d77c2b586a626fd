/* Fuzz the Python thread-name reader (py_tnames_refresh/get: sys.modules,
 * threading._active, ints, dicts, instance attributes, str) over random
 * "target memory", regions at fixed addresses, every other address
 * unmapped. It must end (bounded scans), never read outside what it was
 * given, never crash, and hand back NUL-terminated names.
 *
 * Input: [layout][flags][runtime offset, u16 LE][ident, u64 LE] then up
 * to 8 regions, each [length, u16 LE][bytes], region i at FUZZ_REGION_BASE(i).
 * The layout byte picks a row of py_layouts[], or past them one of
 * py_debug_maps[] read from the start of region 0 (as fuzz_pywalk).
 * flags bit 0: the type addresses are known (checked) or not; the
 * runtime is at region 0 + offset. Seeds: the images test_pythreads
 * builds (CGPROF_PYTHREADS_SEEDS=DIR build/tests/unit/test_pythreads). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "py_priv.h"
#include "target_priv.h"

#define PYFUZZ_MAX_REGIONS 8
/* The type addresses test_pythreads uses. */
#define T_DICT 0xd1c7000ULL
#define T_MODULE 0x30d0000ULL
#define T_LONG 0x10e0000ULL
#define T_STR 0x57e0000ULL

static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	verbose = getenv("CGPROF_FUZZ_VERBOSE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_fake_region reg[PYFUZZ_MAX_REGIONS];
	struct cg_fake_mem mem = {reg, 0};
	struct py_layout dbg;
	const struct py_layout *L;
	uint64_t ident;

	if (size < 12)
		return 0;
	unsigned pick = data[0] % (py_layouts_len + py_debug_maps_len);
	bool typed = data[1] & 1;
	uint64_t runtime = FUZZ_REGION_BASE(0) + (uint64_t)(data[2] | data[3] << 8);
	memcpy(&ident, data + 4, 8);
	mem.n = fuzz_regions(data, size, 12, 2, reg, PYFUZZ_MAX_REGIONS);
	if (pick < py_layouts_len) {
		L = &py_layouts[pick];
	} else {
		int minor = py_debug_maps[pick - py_layouts_len].minor;
		if (!mem.n ||
		    py_layout_from_debug_offsets(reg[0].data, reg[0].len, minor, &dbg, NULL))
			return 0;
		L = &dbg;
	}

	struct target *t;
	if (target_fake_memory(&t, &mem))
		return 0;
	struct py_interp pi;
	memset(&pi, 0, sizeof(pi));
	pi.t = t;
	pi.major = 3;
	pi.minor = L->minor;
	if (L->runtime_interp_head >= 0)
		pi.runtime = runtime;
	else
		pi.interp_head_var = runtime;
	if (typed)
		pi.types = (struct py_types){T_DICT, T_MODULE, T_LONG, T_STR};
	py_interp_set_layout(&pi, L);
	struct py_tnames *tn;
	if (py_tnames_new(&pi, &tn) == 0) {
		int n = py_tnames_refresh(tn);
		/* again: from the cached _active and interned keys */
		int n2 = py_tnames_refresh(tn);
		if (n > PY_TNAMES_MAX || n2 > PY_TNAMES_MAX)
			__builtin_trap();
		const char *name = py_tnames_get(tn, ident);
		if (name && strlen(name) >= PY_TNAME_MAX)
			__builtin_trap();
		if (verbose)
			fprintf(stderr, "3.%d: %d names; %#llx: %s\n", L->minor, n,
				(unsigned long long)ident, name ? name : "(none)");
		py_tnames_free(tn);
	}
	target_close(t);
	return 0;
}
