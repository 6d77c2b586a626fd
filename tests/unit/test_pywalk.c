/* The CPython frame walker over a fake target: a hand-built image of a
 * thread state, its frame chain, code objects and strings for one
 * version; the names come back leaf first, and a chain that loops ends
 * with -ELOOP instead of a stack of repeats. Also the fake memory itself. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "../../src/python/py_priv.h"
#include "../../src/target/target_priv.h"

#define BASE_TS 0x10000ULL
#define BASE_FRAMES 0x20000ULL
#define BASE_CODE 0x30000ULL
#define BASE_STR 0x40000ULL
#define BASE_BYTES 0x50000ULL
#define STRIDE 0x200

static uint8_t ts_img[0x400], frame_img[STRIDE * 4], code_img[STRIDE * 4], str_img[0x100 * 8],
	bytes_img[0x100];

static void put64(uint8_t *img, int32_t off, uint64_t v) { memcpy(img + off, &v, 8); }
static void put32(uint8_t *img, int32_t off, int32_t v) { memcpy(img + off, &v, 4); }

static uint64_t put_str(const struct py_layout *L, int k, const char *s)
{
	uint8_t *o = str_img + k * 0x100;
	put64(o, 0, 1); /* ob_refcnt: a live object */
	put64(o, L->unicode_length, strlen(s));
	put32(o, L->unicode_state, (1 << 2) | (1 << 5) | (1 << 6)); /* 1-byte, compact, ascii */
	memcpy(o + L->unicode_ascii_size, s, strlen(s));
	return BASE_STR + (uint64_t)k * 0x100;
}

/* Thread state at BASE_TS whose chain runs through names[0..n) (leaf
 * first); with loop, the last frame points back at the first. */
static void build(const struct py_layout *L, const char *const *names, int n, bool loop)
{
	memset(ts_img, 0, sizeof(ts_img));
	memset(frame_img, 0, sizeof(frame_img));
	memset(code_img, 0, sizeof(code_img));
	memset(str_img, 0, sizeof(str_img));
	memset(bytes_img, 0, sizeof(bytes_img));
	ck_assert_int_ge(L->tstate_cframe, 0); /* the 3.11 shape: via _PyCFrame */
	put64(ts_img, L->tstate_cframe, BASE_TS + 0x200);
	put64(ts_img, 0x200 + L->cframe_current_frame, BASE_FRAMES);
	uint64_t file = put_str(L, 0, "/srv/app.py");
	/* line table: one "no column" entry over 8 code units, line delta 0 */
	put64(bytes_img, L->bytes_size, 2);
	bytes_img[L->bytes_sval] = 0x80 | 13 << 3 | 7;
	bytes_img[L->bytes_sval + 1] = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *f = frame_img + i * STRIDE, *c = code_img + i * STRIDE;
		uint64_t code = BASE_CODE + (uint64_t)i * STRIDE;
		uint64_t back = i + 1 < n ? BASE_FRAMES + (uint64_t)(i + 1) * STRIDE
				: loop	  ? BASE_FRAMES
					  : 0;
		put64(c, 0, 1); /* ob_refcnt: a live code object */
		put64(f, L->frame_back, back);
		put64(f, L->frame_code, code);
		put64(f, L->frame_instr, code + (uint64_t)L->code_adaptive);
		uint64_t name = put_str(L, 1 + i, names[i]);
		put64(c, L->code_filename, file);
		put64(c, L->code_name, name);
		put64(c, L->code_qualname, name);
		put64(c, L->code_linetable, BASE_BYTES);
		put32(c, L->code_firstlineno, 100 + i);
	}
	/* the thread's first frame: where its eval loop began */
	if (!loop)
		frame_img[(n - 1) * STRIDE + L->frame_is_entry] = 1;
}

static const struct cg_fake_region regions[] = {
	{BASE_TS, ts_img, sizeof(ts_img)},	   {BASE_FRAMES, frame_img, sizeof(frame_img)},
	{BASE_CODE, code_img, sizeof(code_img)}, {BASE_STR, str_img, sizeof(str_img)},
	{BASE_BYTES, bytes_img, sizeof(bytes_img)},
};
static const struct cg_fake_mem mem = {regions, sizeof(regions) / sizeof(regions[0])};

static void *open_walker(struct target **t, uint32_t max_depth)
{
	const struct py_layout *L = py_layout_find(3, 11);
	ck_assert_ptr_nonnull(L);
	ck_assert_int_eq(target_fake_memory(t, &mem), 0);
	struct py_interp pi;
	memset(&pi, 0, sizeof(pi));
	pi.t = *t;
	pi.major = 3;
	pi.minor = 11;
	py_interp_set_layout(&pi, L);
	struct cg_sampler_opts o = {.nonblocking = true, .max_depth = max_depth};
	void *s;
	ck_assert_int_eq(py_sampler_new(&pi, &o, &s), 0);
	return s;
}

START_TEST(walks_hand_built_chain)
{
	static const char *const names[] = {"leaf", "middle", "main"};
	build(py_layout_find(3, 11), names, 3, false);
	struct target *t;
	void *s = open_walker(&t, 64);
	const struct cg_frame *f;
	bool trunc;
	for (int round = 0; round < 2; round++) { /* second: from the code cache */
		ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), 3);
		ck_assert(!trunc);
		for (int i = 0; i < 3; i++) {
			ck_assert_str_eq(f[i].name, names[i]);
			ck_assert_str_eq(f[i].file, "/srv/app.py");
			ck_assert_int_eq(f[i].line, 100 + i);
		}
	}
	/* deeper than max_depth: the leaf side, marked truncated */
	python_sampler_ops.close(s);
	target_close(t);
	s = open_walker(&t, 2);
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), 2);
	ck_assert(trunc);
	ck_assert_str_eq(f[1].name, "middle");
	python_sampler_ops.close(s);
	target_close(t);
}
END_TEST

START_TEST(cyclic_chain_ends)
{
	static const char *const names[] = {"a", "b", "c"};
	const struct cg_frame *f;
	bool trunc;
	struct target *t;
	build(py_layout_find(3, 11), names, 3, true);
	void *s = open_walker(&t, 4096);
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), -ELOOP);
	/* a frame that is its own caller */
	put64(frame_img, py_layout_find(3, 11)->frame_back, BASE_FRAMES);
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), -ELOOP);
	python_sampler_ops.close(s);
	target_close(t);
}
END_TEST

/* A chain that does not end where a thread's stack ends is a frame caught
 * while being linked, never a stack: not rooted in an eval-loop entry, or
 * rooted in a generator's frame (which only runs when resumed from one). */
START_TEST(unrooted_chain_is_not_kept)
{
	static const char *const names[] = {"leaf", "gen"};
	const struct py_layout *L = py_layout_find(3, 11);
	const struct cg_frame *f;
	bool trunc;
	struct target *t;
	build(L, names, 2, false);
	void *s = open_walker(&t, 64);
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), 2);
	frame_img[STRIDE + L->frame_is_entry] = 0;
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), -ENOLINK);
	frame_img[STRIDE + L->frame_is_entry] = 1;
	put32(code_img + STRIDE, L->code_flags, 0x20); /* CO_GENERATOR */
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), -ENOLINK);
	/* cut at max_depth, the root is not seen: kept, marked truncated */
	python_sampler_ops.close(s);
	target_close(t);
	s = open_walker(&t, 1);
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), 1);
	ck_assert(trunc);
	python_sampler_ops.close(s);
	target_close(t);
}
END_TEST

/* _Py_DebugOffsets as a 3.minor target carries them, from the generated
 * row of that version. */
static size_t debug_image(uint8_t *img, size_t cap, int minor, uint64_t version,
			  uint64_t free_threaded)
{
	const struct py_debug_offsets_map *m = py_debug_map_find(minor);
	const struct py_layout *L = py_layout_find(3, minor);
	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(L);
	ck_assert_uint_le(m->struct_size, cap);
	memset(img, 0, cap);
	memcpy(img, "xdebugpy", 8);
	memcpy(img + m->version, &version, 8);
	memcpy(img + m->free_threaded, &free_threaded, 8);
#define PY_FIELD(name, debug)                                  \
	if (m->name) {                                         \
		uint64_t v_ = (uint64_t)(L->name < 0 ? 0 : L->name); \
		memcpy(img + m->name, &v_, 8);                 \
	}
	PY_LAYOUT_FIELDS(PY_FIELD)
#undef PY_FIELD
	return m->struct_size;
}

START_TEST(debug_offsets_validate_and_refuse)
{
	static uint8_t img[4096];
	const struct cg_fake_region r[] = {{0x40000, img, sizeof(img)}};
	const struct cg_fake_mem m = {r, 1};
	struct py_interp pi;
	struct target *t;
	ck_assert_int_eq(target_fake_memory(&t, &m), 0);
	for (int minor = 13; minor <= 15; minor++) {
		memset(&pi, 0, sizeof(pi));
		pi.t = t;
		pi.major = 3;
		pi.minor = minor;
		pi.runtime = 0x40000;
		/* a point release never seen (3.minor.9) reads as its minor */
		debug_image(img, sizeof(img), minor, 0x030009f0 | (uint64_t)minor << 16, 0);
		ck_assert_int_eq(py_layout_for_target(&pi, t), 0);
		ck_assert_int_eq(pi.L.tstate_current_frame, py_layout_find(3, minor)->tstate_current_frame);
		/* free-threaded: refused by name, not read as garbage */
		cg_clearerr();
		debug_image(img, sizeof(img), minor, 0x030000f0 | (uint64_t)minor << 16, 1);
		ck_assert_int_eq(py_layout_for_target(&pi, t), -ENOTSUP);
		ck_assert_ptr_nonnull(strstr(cg_lasterr(), "free-threaded"));
		/* the offsets of another version: they do not validate */
		cg_clearerr();
		debug_image(img, sizeof(img), minor, 0x030c00f0, 0);
		ck_assert_int_eq(py_layout_for_target(&pi, t), -ENOTSUP);
		ck_assert_ptr_nonnull(strstr(cg_lasterr(), "do not validate"));
		cg_clearerr();
	}
	/* a newer CPython than cgprof knows is named with the range */
	pi.minor = py_layout_newest_minor() + 1;
	ck_assert_int_eq(py_version_supported(&pi, t), -ENOTSUP);
	char want[96];
	snprintf(want, sizeof(want), "CPython 3.%d, which is not supported yet; cgprof reads "
		 "CPython 3.6-3.%d", pi.minor, pi.minor - 1);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), want));
	cg_clearerr();
	target_close(t);
}
END_TEST

START_TEST(unmapped_pointer_is_efault)
{
	static const char *const names[] = {"leaf", "main"};
	const struct py_layout *L = py_layout_find(3, 11);
	const struct cg_frame *f;
	bool trunc;
	struct target *t;
	build(L, names, 2, false);
	put64(frame_img, L->frame_back, 0xdead0000); /* leaf's caller: nowhere */
	void *s = open_walker(&t, 64);
	ck_assert_int_eq(py_sample_thread(s, BASE_TS, &f, &trunc), -EFAULT);
	python_sampler_ops.close(s);
	target_close(t);
}
END_TEST

START_TEST(fake_memory_reads)
{
	static const uint8_t a[8] = "abcdefg", b[8] = "HIJKLMN";
	const struct cg_fake_region r[] = {{0x1000, a, 8}, {0x1008, b, 8}, {0x3000, a, 8}};
	const struct cg_fake_mem m = {r, 3};
	struct target *t;
	char buf[32];
	ck_assert_int_eq(target_fake_memory(&t, &m), 0);
	ck_assert_int_eq(target_pid(t), 0);
	ck_assert_int_eq(target_read(t, 0x1002, buf, 4), 0);
	ck_assert(!memcmp(buf, "cdef", 4));
	/* adjacent regions read as one, as adjacent mappings do */
	ck_assert_int_eq(target_read(t, 0x1006, buf, 4), 0);
	ck_assert(!memcmp(buf, "g\0HI", 4));
	ck_assert_int_eq(target_read(t, 0x100e, buf, 4), -EFAULT);
	ck_assert_int_eq(target_read(t, 0x2000, buf, 1), -EFAULT);
	ck_assert_int_eq(target_read(t, 0, buf, 1), -EFAULT);
	ck_assert_int_eq(target_read_cstr(t, 0x3000, buf, 8), 0);
	ck_assert_str_eq(buf, "abcdefg");
	/* scatter: stops short at the first unmapped byte */
	struct iovec l[2] = {{buf, 4}, {buf + 4, 8}};
	struct iovec rr[2] = {{(void *)0x1000, 4}, {(void *)0x100c, 8}};
	ck_assert_int_eq(target_readv(t, l, 2, rr, 2), 8);
	ck_assert(!memcmp(buf, "abcdLMN\0", 8));
	rr[0].iov_base = (void *)0x5000;
	ck_assert_int_eq(target_readv(t, l, 2, rr, 2), -EFAULT);
	target_close(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pywalk");
	TCase *tc = tcase_create("walk");
	tcase_add_test(tc, walks_hand_built_chain);
	tcase_add_test(tc, cyclic_chain_ends);
	tcase_add_test(tc, unrooted_chain_is_not_kept);
	tcase_add_test(tc, debug_offsets_validate_and_refuse);
	tcase_add_test(tc, unmapped_pointer_is_efault);
	tcase_add_test(tc, fake_memory_reads);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(suite)
