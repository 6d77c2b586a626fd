/* Per-thread read plans (src/python/prefetch.c) over a fake target: a
 * walk's regions become the thread's plan, with those of the walks before
 * it for a while; the next sample fetches it in one call, copy A to walk,
 * the head words, copy B to verify against; a region whose memory went
 * leaves the plan at once, a thread gone quiet or a walk too wide for one
 * call keep none. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check_main.h"
#include "../../src/python/prefetch.h"
#include "../../src/target/target_priv.h"

#define STACK 0x100000ULL
#define CODE 0x200000ULL
#define TS 0x300000ULL

static uint8_t stack_img[8192], code_img[1024], ts_img[256];
static struct cg_fake_region regs[3];
static struct cg_fake_mem mem = {regs, 3};

static struct target *fake(void)
{
	struct target *t;
	for (size_t i = 0; i < sizeof(stack_img); i++)
		stack_img[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < sizeof(code_img); i++)
		code_img[i] = (uint8_t)(i * 13 + 1);
	uint64_t head = STACK + 0x800;
	memcpy(ts_img + 0x40, &head, 8);
	regs[0] = (struct cg_fake_region){STACK, stack_img, sizeof(stack_img)};
	regs[1] = (struct cg_fake_region){CODE, code_img, sizeof(code_img)};
	regs[2] = (struct cg_fake_region){TS, ts_img, sizeof(ts_img)};
	mem.n = 3;
	ck_assert_int_eq(target_fake_memory(&t, &mem), 0);
	return t;
}

/* What one walk reads: the head word, a run of frames, two code windows
 * (one twice, as a recursion does). */
static void walk_reads(struct py_prefetch *pf)
{
	py_pf_note(pf, TS + 0x40, 8, PY_PF_HEAD);
	py_pf_note(pf, STACK + 0x400, 0x1000, PY_PF_CHAIN);
	py_pf_note(pf, CODE + 0x40, 64, PY_PF_CODE);
	py_pf_note(pf, CODE + 0x40, 64, PY_PF_CODE);
	py_pf_note(pf, CODE + 0x100, 64, PY_PF_CODE);
}

/* A thread's first sample: no plan to fetch, one whole walk, its plan. */
static void first_walk(struct py_prefetch *pf)
{
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	walk_reads(pf);
	py_pf_done(pf, TS, true);
}

START_TEST(plan_learned_then_fetched_in_one_call)
{
	struct target *t = fake();
	struct py_prefetch *pf;
	uint64_t v;
	ck_assert_int_eq(py_pf_new(t, &pf), 0);
	/* no plan yet: nothing fetched, nothing read */
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	ck_assert_uint_eq(target_fake_calls(t), 0);
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x400, 8, PY_PF_CHAIN));
	ck_assert_int_eq(py_pf_after(pf, TS + 0x40, &v), -ENOENT);
	walk_reads(pf);
	py_pf_done(pf, TS, true);

	/* the next sample: the whole plan, and the head word, in one call */
	py_pf_round(pf);
	ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
	ck_assert_uint_eq(target_fake_calls(t), 1);
	const uint8_t *p = py_pf_get(pf, TS + 0x40, 8, PY_PF_HEAD);
	ck_assert_ptr_nonnull(p);
	memcpy(&v, p, 8);
	ck_assert_uint_eq(v, STACK + 0x800);
	/* a head word is not a frame, nor a frame a head word: each is
	 * served only from its own copy */
	ck_assert_ptr_null(py_pf_get(pf, TS + 0x40, 8, PY_PF_CHAIN));
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x800, 8, PY_PF_HEAD));
	p = py_pf_get(pf, STACK + 0x800, 32, PY_PF_CHAIN);
	ck_assert_ptr_nonnull(p);
	ck_assert(!memcmp(p, stack_img + 0x800, 32));
	/* a range that crosses the region's end, or lies outside it: not held */
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x1400 - 8, 16, PY_PF_CHAIN));
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x200, 8, PY_PF_CHAIN));
	/* code windows by exact address and no longer than read */
	p = py_pf_get(pf, CODE + 0x100, 64, PY_PF_CODE);
	ck_assert_ptr_nonnull(p);
	ck_assert(!memcmp(p, code_img + 0x100, 64));
	ck_assert_ptr_null(py_pf_get(pf, CODE + 0x100, 65, PY_PF_CODE));
	ck_assert_ptr_null(py_pf_get(pf, CODE + 0x108, 8, PY_PF_CODE));
	ck_assert_ptr_null(py_pf_get(pf, CODE + 0x200, 64, PY_PF_CODE));
	/* copy B holds the frames, not the head (read once, between the
	 * copies) nor code windows */
	ck_assert_int_eq(py_pf_after(pf, TS + 0x40, &v), -ENOENT);
	ck_assert_int_eq(py_pf_after(pf, STACK + 0x808, &v), 0);
	uint64_t want;
	memcpy(&want, stack_img + 0x808, 8);
	ck_assert_uint_eq(v, want);
	ck_assert_int_eq(py_pf_after(pf, CODE + 0x40, &v), -ENOENT);
	/* copy B is the memory as it was read, not as it is now */
	memset(stack_img + 0x808, 0xee, 8);
	ck_assert_int_eq(py_pf_after(pf, STACK + 0x808, &v), 0);
	ck_assert_uint_eq(v, want);
	ck_assert_uint_eq(target_fake_calls(t), 1);
	/* what was used is the plan again, first; what was not stays in it
	 * for the walks to come (a thread's stack moves among a few shapes) */
	py_pf_done(pf, TS, true);
	ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
	ck_assert_ptr_nonnull(py_pf_get(pf, CODE + 0x100, 64, PY_PF_CODE));
	ck_assert_ptr_nonnull(py_pf_get(pf, STACK + 0x400, 8, PY_PF_CHAIN));
	py_pf_done(pf, TS, true);
	/* ... but not for ever: 16 walks without it and the code window not
	 * used since is out */
	for (int i = 0; i < 16; i++) {
		ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
		ck_assert_ptr_nonnull(py_pf_get(pf, STACK + 0x400, 8, PY_PF_CHAIN));
		ck_assert_ptr_nonnull(py_pf_get(pf, CODE + 0x40, 64, PY_PF_CODE));
		py_pf_done(pf, TS, true);
	}
	ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
	ck_assert_ptr_null(py_pf_get(pf, CODE + 0x100, 64, PY_PF_CODE));
	ck_assert_ptr_nonnull(py_pf_get(pf, CODE + 0x40, 64, PY_PF_CODE));
	py_pf_done(pf, TS, true);
	/* another thread has no plan of this one's */
	ck_assert(!py_pf_fetch(pf, TS + 0x80, TS + 0xc0));
	py_pf_drop(pf);
	py_pf_free(pf);
	target_close(t);
}
END_TEST

START_TEST(moved_memory_is_not_served)
{
	struct target *t = fake();
	struct py_prefetch *pf;
	uint64_t v;
	ck_assert_int_eq(py_pf_new(t, &pf), 0);
	first_walk(pf);
	/* the data stack chunk is gone (freed, unmapped): the fetch stops at
	 * its piece, the first of the call; nothing after it is whole */
	regs[0].len = 0x800;
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	ck_assert_ptr_null(py_pf_get(pf, TS + 0x40, 8, PY_PF_HEAD));
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x400, 8, PY_PF_CHAIN));
	ck_assert_ptr_null(py_pf_get(pf, CODE + 0x100, 64, PY_PF_CODE));
	ck_assert_int_eq(py_pf_after(pf, STACK + 0x408, &v), -ENOENT);
	/* a walk that was not whole changes no plan, but the piece that
	 * failed has left it: the next call reads the rest */
	py_pf_done(pf, TS, false);
	ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
	ck_assert_ptr_nonnull(py_pf_get(pf, TS + 0x40, 8, PY_PF_HEAD));
	ck_assert_ptr_nonnull(py_pf_get(pf, CODE + 0x100, 64, PY_PF_CODE));
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x400, 8, PY_PF_CHAIN));
	py_pf_done(pf, TS, false);
	regs[0].len = sizeof(stack_img);
	py_pf_free(pf);
	target_close(t);
}
END_TEST

/* The frames of a walk, leaf first: the leaf a region of its own, the
 * callers under it in a chunk one run, a frame far away its own. */
START_TEST(frames_kept_as_the_walk_used_them)
{
	struct target *t = fake();
	struct py_prefetch *pf;
	ck_assert_int_eq(py_pf_new(t, &pf), 0);
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	py_pf_note(pf, TS + 0x40, 8, PY_PF_HEAD);
	py_pf_note(pf, STACK + 0x1000, 64, PY_PF_LEAF);
	py_pf_note(pf, STACK + 0xf00, 64, PY_PF_CHAIN);
	py_pf_note(pf, STACK + 0xe00, 64, PY_PF_CHAIN);
	py_pf_note(pf, STACK + 0xe00, 64, PY_PF_CHAIN); /* again: nothing new */
	py_pf_note(pf, STACK + 0x100, 64, PY_PF_CHAIN); /* 3 KiB under: apart */
	py_pf_done(pf, TS, true);
	ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
	/* the run holds the bytes between its frames, not the leaf's */
	ck_assert_ptr_nonnull(py_pf_get(pf, STACK + 0xe40, 0xc0, PY_PF_CHAIN));
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0xe40, 0x1c0, PY_PF_CHAIN));
	ck_assert_ptr_nonnull(py_pf_get(pf, STACK + 0x1000, 64, PY_PF_CHAIN));
	/* nothing between the run and the frame apart, nor past the leaf */
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x800, 8, PY_PF_CHAIN));
	ck_assert_ptr_nonnull(py_pf_get(pf, STACK + 0x100, 64, PY_PF_CHAIN));
	ck_assert_ptr_null(py_pf_get(pf, STACK + 0x1040, 8, PY_PF_CHAIN));
	py_pf_done(pf, TS, true);
	py_pf_free(pf);
	target_close(t);
}
END_TEST

START_TEST(quiet_threads_and_wide_walks_keep_no_plan)
{
	struct target *t = fake();
	struct py_prefetch *pf;
	ck_assert_int_eq(py_pf_new(t, &pf), 0);
	first_walk(pf);
	/* a thread not sampled for 1024 rounds (idle, or gone) loses its plan */
	for (int i = 0; i < 1024; i++)
		py_pf_round(pf);
	ck_assert(py_pf_fetch(pf, TS, TS + 0x40));
	py_pf_done(pf, TS, true);
	for (int i = 0; i < 1025; i++)
		py_pf_round(pf);
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	/* a walk over more separate frames than one call can read twice
	 * (<= 3.10 heap frames, 300 of them far apart) keeps no plan */
	for (uint64_t i = 0; i < 300; i++)
		py_pf_note(pf, STACK + 4096 * i, 8, PY_PF_CHAIN);
	py_pf_done(pf, TS, true);
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	/* nor one of more bytes than the buffer holds twice */
	for (uint64_t i = 0; i < 8; i++)
		py_pf_note(pf, STACK + 0x10000 * i, 16384, PY_PF_CHAIN);
	py_pf_done(pf, TS, true);
	ck_assert(!py_pf_fetch(pf, TS, TS + 0x40));
	py_pf_free(pf);
	target_close(t);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pyprefetch");
	TCase *tc = tcase_create("plans");
	tcase_add_test(tc, plan_learned_then_fetched_in_one_call);
	tcase_add_test(tc, moved_memory_is_not_served);
	tcase_add_test(tc, frames_kept_as_the_walk_used_them);
	tcase_add_test(tc, quiet_threads_and_wide_walks_keep_no_plan);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(suite)
