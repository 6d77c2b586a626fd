/* A fake JVM image for the walker's unit tests and fuzz seeds: HotSpot's
 * exported tables with JDK 17's offsets and one thread's frames. */
#ifndef CGPROF_TEST_FAKEJVM_H
#define CGPROF_TEST_FAKEJVM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/util.h"
#include "../../src/jvm/jvm_walk.h"
#include "../../src/target/target_priv.h"

#ifndef FJ_CHECK
#define FJ_CHECK(x) ck_assert(x)
#endif

/* A miniature JVM in one region: the exported table symbols, tables with
 * JDK 17's offsets, a thread blocked in Java with two interpreted frames
 * over one compiled frame, and the methods, symbols and code heap they
 * point to. Everything at FJ_BASE + offset. */
#define FJ_BASE 0x100000ULL
#define FJ_SIZE 0x10000u
#define FJ(off) (FJ_BASE + (off))
/* Where the call stub's call returns, outside the image (not Java). */
#define FJ_CALL_STUB_RET 0xdead000ULL

struct fakejvm {
	uint8_t mem[FJ_SIZE];
	size_t nfields, ntypes, nconsts, str;
	struct cg_fake_region reg;
	struct cg_fake_mem fm;
};

static inline void fj_put64(struct fakejvm *j, uint64_t off, uint64_t v) { memcpy(j->mem + off, &v, 8); }
static inline void fj_put32(struct fakejvm *j, uint64_t off, uint32_t v) { memcpy(j->mem + off, &v, 4); }
static inline void fj_put16(struct fakejvm *j, uint64_t off, uint16_t v) { memcpy(j->mem + off, &v, 2); }

static inline uint64_t fj_str(struct fakejvm *j, const char *s)
{
	size_t n = strlen(s) + 1;
	FJ_CHECK(j->str + n < 0x2000);
	memcpy(j->mem + j->str, s, n);
	j->str += n;
	return FJ(j->str - n);
}

/* Field table: stride 48 (type, field, typestring, isStatic, offset, address). */
static inline void fj_field(struct fakejvm *j, const char *type, const char *field, int is_static, uint64_t v)
{
	uint64_t e = 0x400 + 48 * j->nfields++;
	FJ_CHECK(e + 96 <= 0x1000);
	fj_put64(j, e, fj_str(j, type));
	fj_put64(j, e + 8, fj_str(j, field));
	fj_put32(j, e + 24, (uint32_t)is_static);
	fj_put64(j, e + (is_static ? 40 : 32), v);
}

static inline void fj_type(struct fakejvm *j, const char *name, uint64_t size)
{
	uint64_t e = 0x1000 + 16 * j->ntypes++;
	fj_put64(j, e, fj_str(j, name));
	fj_put64(j, e + 8, size);
}

static inline void fj_const(struct fakejvm *j, const char *name, int32_t v)
{
	uint64_t e = 0x1100 + 16 * j->nconsts++;
	fj_put64(j, e, fj_str(j, name));
	fj_put32(j, e + 8, (uint32_t)v);
}

static inline void fj_syms(struct jvm_vms_syms *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i <= JVM_SYM_L_STRIDE; i++)
		s->addr[i] = FJ(8 * (uint64_t)i);
}

/* A Method at m with ConstMethod cm naming klass.name in file, 10
 * bytecodes and line table tab. */
static inline void fj_method(struct fakejvm *j, uint64_t m, uint64_t cm, uint16_t name_idx,
		      const uint8_t *tab, size_t ntab)
{
	fj_put64(j, m + 8, FJ(cm));
	fj_put64(j, cm + 8, FJ(0x4800));  /* _constants */
	fj_put16(j, cm + 0x1c, 1);        /* _flags: has a line table */
	fj_put16(j, cm + 0x20, 10);       /* _code_size */
	fj_put16(j, cm + 0x22, name_idx);
	memcpy(j->mem + cm + 48 + 10, tab, ntab);
}

static inline void fj_symbol(struct fakejvm *j, uint64_t at, const char *s)
{
	fj_put16(j, at + 4, (uint16_t)strlen(s));
	memcpy(j->mem + at + 6, s, strlen(s));
}

static inline struct fakejvm *fakejvm_new(void)
{
	struct fakejvm *j = calloc(1, sizeof(*j));
	FJ_CHECK(j != NULL);
	j->str = 0x1300;
	/* table layout symbols */
	uint64_t lay[JVM_SYM__COUNT] = {
		[JVM_SYM_STRUCTS] = FJ(0x400), [JVM_SYM_S_TYPE] = 0, [JVM_SYM_S_FIELD] = 8,
		[JVM_SYM_S_STATIC] = 24, [JVM_SYM_S_OFFSET] = 32, [JVM_SYM_S_ADDRESS] = 40,
		[JVM_SYM_S_STRIDE] = 48, [JVM_SYM_TYPES] = FJ(0x1000), [JVM_SYM_T_NAME] = 0,
		[JVM_SYM_T_SIZE] = 8, [JVM_SYM_T_STRIDE] = 16, [JVM_SYM_INTS] = FJ(0x1100),
		[JVM_SYM_I_NAME] = 0, [JVM_SYM_I_VALUE] = 8, [JVM_SYM_I_STRIDE] = 16,
		[JVM_SYM_LONGS] = FJ(0x1200), [JVM_SYM_L_NAME] = 0, [JVM_SYM_L_VALUE] = 8,
		[JVM_SYM_L_STRIDE] = 16,
	};
	for (int i = 0; i <= JVM_SYM_L_STRIDE; i++)
		fj_put64(j, 8 * (uint64_t)i, lay[i]);

	static const struct { const char *t, *f; uint64_t off; } fields[] = {
		{"ThreadsList", "_length", 4}, {"ThreadsList", "_threads", 0x10},
		{"JavaThread", "_thread_state", 0x338}, {"JavaThread", "_osthread", 0x230},
		{"OSThread", "_thread_id", 0xd0}, {"OSThread", "_state", 0x10},
		{"JavaThread", "_anchor", 0x290}, {"JavaThread", "_stack_base", 0x250},
		{"JavaFrameAnchor", "_last_Java_sp", 0}, {"JavaFrameAnchor", "_last_Java_pc", 8},
		{"JavaFrameAnchor", "_last_Java_fp", 0x10}, {"Method", "_constMethod", 8},
		{"ConstMethod", "_constants", 8}, {"ConstMethod", "_name_index", 0x22},
		{"ConstMethod", "_signature_index", 0x24}, {"ConstMethod", "_code_size", 0x20},
		{"ConstMethod", "_flags", 0x1c}, {"ConstantPool", "_pool_holder", 0x18},
		{"ConstantPool", "_source_file_name_index", 0x36}, {"Klass", "_name", 0x18},
		{"Symbol", "_length", 4}, {"Symbol", "_body", 6},
		{"GrowableArrayBase", "_len", 0}, {"GrowableArray<int>", "_data", 8},
		{"CodeHeap", "_memory", 8}, {"CodeHeap", "_segmap", 0x78},
		{"CodeHeap", "_log2_segment_size", 0x100}, {"VirtualSpace", "_low_boundary", 0},
		{"VirtualSpace", "_high_boundary", 8}, {"VirtualSpace", "_low", 0x10},
		{"VirtualSpace", "_high", 0x18}, {"CodeBlob", "_name", 0x60},
		{"CodeBlob", "_frame_size", 0x1c}, {"CodeBlob", "_size", 0xc},
		{"CompiledMethod", "_method", 0x70}, {"StubQueue", "_stub_buffer", 8},
		{"StubQueue", "_buffer_limit", 0x14},
	};
	for (size_t i = 0; i < CG_ARRAY_LEN(fields); i++)
		fj_field(j, fields[i].t, fields[i].f, 0, fields[i].off);
	fj_field(j, "ThreadsSMRSupport", "_java_thread_list", 1, FJ(0x2000));
	fj_field(j, "CodeCache", "_heaps", 1, FJ(0x2008));
	fj_field(j, "AbstractInterpreter", "_code", 1, FJ(0x2010));
	fj_field(j, "StubRoutines", "_call_stub_return_address", 1, FJ(0x2018));
	fj_type(j, "ConstantPool", 72);
	fj_type(j, "ConstMethod", 48);
	fj_type(j, "HeapBlock", 16);
	fj_const(j, "ConstMethod::_has_linenumber_table", 1);
	fj_const(j, "_thread_blocked", 10);
	fj_const(j, "OBJECT_WAIT", 5);

	/* one thread, blocked in Object.wait-like state */
	fj_put64(j, 0x2000, FJ(0x2100));
	fj_put32(j, 0x2100 + 4, 1);
	fj_put64(j, 0x2100 + 0x10, FJ(0x2200));
	fj_put64(j, 0x2200, FJ(0x3000));
	fj_put32(j, 0x3000 + 0x338, 10);
	fj_put64(j, 0x3000 + 0x230, FJ(0x3800));
	fj_put64(j, 0x3000 + 0x250, FJ(0xD000));
	fj_put32(j, 0x3800 + 0xd0, 4242);
	fj_put32(j, 0x3800 + 0x10, 5);
	/* interpreter at 0x7000..0x7800, code heap 0x8000..0xA000 */
	fj_put64(j, 0x2010, FJ(0x5000));
	fj_put64(j, 0x5000 + 8, FJ(0x7000));
	fj_put32(j, 0x5000 + 0x14, 0x800);
	fj_put64(j, 0x2008, FJ(0x5100));
	fj_put32(j, 0x5100, 1);
	fj_put64(j, 0x5100 + 8, FJ(0x5180));
	fj_put64(j, 0x5180, FJ(0x5200));
	fj_put64(j, 0x5200 + 8 + 0, FJ(0x8000));
	fj_put64(j, 0x5200 + 8 + 8, FJ(0xA000));
	fj_put64(j, 0x5200 + 0x78 + 0x10, FJ(0x5400));
	fj_put32(j, 0x5200 + 0x100, 7);
	memset(j->mem + 0x5400, 0xff, 64);
	j->mem[0x5400 + 2] = 0; /* a blob at segment 2 spanning 2..4 */
	j->mem[0x5400 + 3] = 1;
	j->mem[0x5400 + 4] = 2;
	uint64_t blob = 0x8000 + 2 * 128 + 16;
	fj_put32(j, blob + 0xc, 0x180);
	fj_put32(j, blob + 0x1c, 4);
	fj_put64(j, blob + 0x60, fj_str(j, "nmethod"));
	fj_put64(j, blob + 0x70, FJ(0x4200));

	/* methods: lines (bci 0 -> 10, bci 4 -> 12) in JDK 17's encoding */
	static const uint8_t tab[] = {0xff, 0x00, 20, (4 << 3) | 2, 0};
	fj_method(j, 0x4000, 0x4400, 1, tab, sizeof(tab));
	fj_method(j, 0x4100, 0x4500, 2, tab, sizeof(tab));
	fj_method(j, 0x4200, 0x4600, 4, tab, sizeof(tab));
	fj_put64(j, 0x4800 + 0x18, FJ(0x4a00));
	fj_put16(j, 0x4800 + 0x36, 3);
	fj_put64(j, 0x4800 + 72 + 8 * 1, FJ(0x4c00));
	fj_put64(j, 0x4800 + 72 + 8 * 2, FJ(0x4c40));
	fj_put64(j, 0x4800 + 72 + 8 * 3, FJ(0x4c80));
	fj_put64(j, 0x4800 + 72 + 8 * 4, FJ(0x4cc0));
	fj_put64(j, 0x4a00 + 0x18, FJ(0x4d00));
	fj_symbol(j, 0x4c00, "leaf");
	fj_symbol(j, 0x4c40, "middle");
	fj_symbol(j, 0x4c80, "Split.java");
	fj_symbol(j, 0x4cc0, "hot");
	fj_symbol(j, 0x4d00, "pkg/Split");

	/* the stack: A (interpreted, bci 5) <- B (interpreted, bci 0) <- C
	 * (compiled, 4 words) <- out of Java */
	uint64_t S = 0xC000, fa = S + 0x100, fb = S + 0x200;
	fj_put64(j, 0x3000 + 0x290, FJ(S + 0x80));     /* anchor sp */
	fj_put64(j, 0x3000 + 0x290 + 8, FJ(0x7010));   /* anchor pc: interpreter */
	fj_put64(j, 0x3000 + 0x290 + 0x10, FJ(fa));    /* anchor fp */
	fj_put64(j, fa - 24, FJ(0x4000));
	fj_put64(j, fa - 64, FJ(0x4400 + 48 + 5));
	fj_put64(j, fa - 8, FJ(fa + 16));
	fj_put64(j, fa, FJ(fb));
	fj_put64(j, fa + 8, FJ(0x7100));
	fj_put64(j, fb - 24, FJ(0x4100));
	fj_put64(j, fb - 64, FJ(0x4500 + 48));
	fj_put64(j, fb - 8, FJ(fb + 16));
	fj_put64(j, fb, FJ(S + 0x300));
	fj_put64(j, fb + 8, FJ(blob + 0x150));
	fj_put64(j, fb + 16 + 32 - 8, FJ_CALL_STUB_RET); /* C's return: the call stub */
	fj_put64(j, 0x2018, FJ_CALL_STUB_RET);
	j->reg = (struct cg_fake_region){FJ_BASE, j->mem, FJ_SIZE};
	j->fm = (struct cg_fake_mem){&j->reg, 1};
	return j;
}

#endif
