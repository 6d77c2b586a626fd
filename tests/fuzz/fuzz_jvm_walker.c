/* Fuzz the HotSpot walker from outside: the VMStructs tables, the layout
 * resolved from them, HotSpot's thread list, each thread's frames from
 * its anchor, method names and line tables, all over "target memory" the
 * input decodes into regions of a fake target. It must end (bounded
 * tables, lists, walks), never read outside what it was given, never
 * crash, and refuse tables that make no sense.
 *
 * Input: [flags] then up to 6 regions, each [length, u24 LE][bytes],
 * region i at JWFUZZ_BASE(i); region 0 sits where the fake JVM of
 * tests/unit/fakejvm.h puts its image, and the table symbols are taken to
 * be its first 19 words (as there). flags bit 0: also walk from each
 * thread's anchor "as if paused" (registers = anchor, not from_anchor);
 * bit 2: and once more with the last region as each walk's stack copy
 * (a perf sample's). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "jvm_walk.h"
#include "target_priv.h"

#define JWFUZZ_BASE(i) (0x100000ULL * ((uint64_t)(i) + 1))
#define JWFUZZ_MAX_REGIONS 6

static bool verbose;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	verbose = getenv("CGPROF_FUZZ_VERBOSE") != NULL;
	return 0;
}

/* copy: when set, a "perf sample's" stack copy at each thread's sp (the
 * walk reads frames inside it from there, deeper ones from memory). */
static void walk_all(struct jvm_walker *w, bool as_regs, const struct cg_fake_region *copy)
{
	static struct jvm_jthread th[64];
	static struct jvm_rawframe f[256];
	int n = jvm_walk_threads(w, th, 64);
	for (int i = 0; i < n; i++) {
		/* odd threads as the caller of native frames, even ones as a
		 * running leaf (its prologue and return path read from code) */
		struct jvm_regs r = {th[i].pc, th[i].sp, th[i].fp, th[i].fp,
				     copy ? copy->data : NULL, copy ? copy->len : 0, i & 1};
		enum jvm_walk_end end;
		int k = jvm_walk_stack(w, &r, !as_regs, f, 1 + (size_t)(i * 37) % 256, &end,
				       th[i].stack_base);
		if (k > 0 && end > JVM_END_LOST)
			abort(); /* an end the walker does not know */
		(void)jvm_methods_check(w, f, k > 0 ? (size_t)k : 0);
		for (int j = 0; j < k; j++) {
			const struct jvm_minfo *mi = jvm_method_info(w, f[j].method);
			if (!mi)
				continue;
			int32_t line = jvm_method_line(w, mi, jvm_frame_bci(mi, &f[j]));
			if (verbose)
				fprintf(stderr, "thread %d frame %d %s:%d\n", (int)th[i].tid, j, mi->name,
					(int)line);
		}
		(void)jvm_thread_reread(w, &th[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_fake_region reg[JWFUZZ_MAX_REGIONS];
	struct cg_fake_mem mem = {reg, 0};
	struct target *t = NULL;
	struct jvm_vms_syms s;
	struct jvm_vms v;
	struct jvm_layout L;
	struct jvm_walker w;

	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	mem.n = fuzz_regions(data, size, 1, 3, reg, JWFUZZ_MAX_REGIONS);
	if (target_fake_memory(&t, &mem))
		return 0;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i <= JVM_SYM_L_STRIDE; i++)
		s.addr[i] = JWFUZZ_BASE(0) + 8 * (uint64_t)i;
	int r = jvm_vms_read(t, &s, &v);
	if (r == 0 && jvm_layout_resolve(&v, &L) == 0) {
		jvm_walker_init(&w, t, &L);
		walk_all(&w, false, NULL);
		if (flags & 1)
			walk_all(&w, true, NULL);
		if ((flags & 4) && mem.n > 1)
			walk_all(&w, true, &reg[mem.n - 1]);
		jvm_walker_free(&w);
	}
	jvm_vms_free(&v);
	/* The line-table decoder on its own, over the last region's bytes. */
	if (mem.n) {
		const struct cg_fake_region *last = &reg[mem.n - 1];
		(void)jvm_linetable_encoding(last->data, last->len);
		(void)jvm_linetable_lookup(last->data, last->len, flags, flags & 2);
	}
	cg_clearerr();
	target_close(t);
	return 0;
}
