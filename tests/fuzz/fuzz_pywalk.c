/* Fuzz the CPython frame walker (py_sample_thread: the sampler's own
 * frame-chain walk and naming) over random "target memory": the input is
 * decoded into a few regions at fixed addresses of a fake target, every
 * other address unmapped. It must end (bounded depth, loops detected),
 * never read outside what it was given, never crash.
 *
 * Input: [layout][max_depth-1][tstate offset, u16 LE] then up to 8
 * regions, each [length, u16 LE][bytes], region i at FUZZ_REGION_BASE(i). The
 * layout byte picks a row of py_layouts[], or past them one of
 * py_debug_maps[]: that version described by the _Py_DebugOffsets read
 * from the start of region 0. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "py_priv.h"
#include "target_priv.h"

#define PYFUZZ_MAX_REGIONS 8
/* What PyCode_Type's address is taken to be (3.13 checks f_executable). */
#define PYFUZZ_PYCODE_TYPE 0xc0de000ULL

/* CGPROF_FUZZ_VERBOSE=1: print what each walk found (to check seeds). */
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

	if (size < 4)
		return 0;
	unsigned pick = data[0] % (py_layouts_len + py_debug_maps_len);
	uint32_t max_depth = 1u + (data[1] & 127);
	uint64_t tstate = FUZZ_REGION_BASE(0) + (uint64_t)(data[2] | data[3] << 8);
	mem.n = fuzz_regions(data, size, 4, 2, reg, PYFUZZ_MAX_REGIONS);
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
	pi.pycode_type = PYFUZZ_PYCODE_TYPE;
	py_interp_set_layout(&pi, L);
	struct cg_sampler_opts o = {.nonblocking = true, .max_depth = max_depth};
	void *s;
	if (py_sampler_new(&pi, &o, &s) == 0) {
		/* twice: the second walk names frames from the code cache */
		for (int k = 0; k < 2; k++) {
			const struct cg_frame *f;
			bool truncated;
			int n = py_sample_thread(s, tstate, &f, &truncated);
			if (n > (int)max_depth)
				__builtin_trap();
			if (verbose)
				fprintf(stderr, "3.%d: %d frames%s\n", L->minor, n,
					truncated ? " (truncated)" : "");
			for (int i = 0; i < n; i++) {
				(void)strlen(f[i].name);
				(void)strlen(f[i].file);
				if (verbose)
					fprintf(stderr, "  %s (%s:%d)\n", f[i].name, f[i].file,
						f[i].line);
			}
		}
		python_sampler_ops.close(s);
	}
	target_close(t);
	return 0;
}
