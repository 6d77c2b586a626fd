/* Fuzz the asyncio task walker (src/python/asyncio.c) over random "target
 * memory": the task lists, names, await chains and awaited_by sets of a
 * fake CPython 3.14/3.15. It must end (every list and chain bounded),
 * never read outside what it was given, never crash.
 *
 * Input: [version] then up to 8 regions, each [length, u16 LE][bytes],
 * region i at FUZZ_REGION_BASE(i): 0 the _Py_DebugOffsets (pi.runtime), 1 the
 * _asyncio debug offsets, 2 the one thread state; the rest is what they
 * point to. The version byte picks 3.14 or 3.15 (its generated layout). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "py_priv.h"
#include "target_priv.h"

#define PYASYNC_MAX_REGIONS 8
#define PYASYNC_PYCODE_TYPE 0xc0de000ULL

static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	verbose = getenv("CGPROF_FUZZ_VERBOSE") != NULL;
	return 0;
}

static void on_sample(const struct cg_sample *s, void *arg)
{
	if (s->nframes < 1 || s->frames[s->nframes - 1].kind != CG_FK_TASK)
		__builtin_trap();
	for (uint32_t i = 0; i < s->nframes; i++) {
		(void)strlen(s->frames[i].name);
		if (verbose)
			fprintf(stderr, "  %s\n", s->frames[i].name);
	}
	(*(int *)arg)++;
}

static void on_task(const struct cg_task *t, void *arg)
{
	(void)strlen(t->name);
	(void)strlen(t->awaiting);
	for (uint32_t i = 0; i < t->nframes; i++)
		(void)strlen(t->frames[i].name);
	if (verbose)
		fprintf(stderr, "task %s: %u frames, %u waiters\n", t->name, t->nframes,
			t->nawaited_by);
	(*(int *)arg)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_fake_region reg[PYASYNC_MAX_REGIONS];
	struct cg_fake_mem mem = {reg, 0};

	if (size < 1)
		return 0;
	const struct py_layout *L = py_layout_find(3, 14 + (data[0] & 1));
	if (!L)
		return 0;
	mem.n = fuzz_regions(data, size, 1, 2, reg, PYASYNC_MAX_REGIONS);
	struct target *t;
	if (target_fake_memory(&t, &mem))
		return 0;
	struct py_interp pi;
	memset(&pi, 0, sizeof(pi));
	pi.t = t;
	pi.major = 3;
	pi.minor = L->minor;
	pi.runtime = FUZZ_REGION_BASE(0);
	pi.pycode_type = PYASYNC_PYCODE_TYPE;
	py_interp_set_layout(&pi, L);
	struct cg_sampler_opts o = {.nonblocking = true, .idle = true, .max_depth = 64};
	void *s;
	struct py_async *a = NULL;
	if (py_sampler_new(&pi, &o, &s))
		goto out;
	if (py_async_new_at(&pi, s, FUZZ_REGION_BASE(1), &a) == 0 && a) {
		struct cg_sample_stats st = {0};
		uint64_t tstate = FUZZ_REGION_BASE(2), interp = 0;
		int got = 0;
		py_read_interp(&pi, &interp);
		/* twice: the second round names from the caches */
		for (int k = 0; k < 2; k++) {
			py_async_round(a);
			py_async_note_thread(a, interp, tstate, 0);
			py_async_sample_suspended(a, on_sample, &got, &st);
			const struct cg_frame *f;
			bool truncated;
			int n = py_sample_thread(s, tstate, &f, &truncated);
			uint32_t cap;
			if (n > 0) {
				n = py_async_root(a, tstate, (struct cg_frame *)f, py_sampler_raw(s, &cap),
						  n, &truncated);
				if (n > (int)o.max_depth + 1)
					__builtin_trap();
			}
			py_async_tasks(a, on_task, &got);
		}
		if (verbose)
			fprintf(stderr, "%d samples and tasks\n", got);
		py_async_free(a);
	}
	python_sampler_ops.close(s);
out:
	target_close(t);
	return 0;
}
