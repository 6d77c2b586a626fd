/* The asyncio task walker over a fake target: the _asyncio debug offsets
 * of real Debian builds parse and bad ones are refused; the well-formed
 * images of tests/fuzz/corpus/pyasync (seeds/pyasync_seeds.py: two tasks,
 * one awaiting the other, a chain two coroutines deep) give exactly
 * their tasks, names, chains and waiters; a list that loops gives none. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "../../src/python/py_priv.h"
#include "../../src/target/target_priv.h"

#define BASE(i) (0x100000ULL * ((uint64_t)(i) + 1))

static const char *corpus(void)
{
	const char *d = getenv("CGPROF_PYASYNC_CORPUS");
	return d ? d : "tests/fuzz/corpus/pyasync";
}

/* The .AsyncioDebug words of Debian's CPython 3.14.10 _asyncio module and
 * of its 3.15.2 interpreter (objcopy -O binary --only-section). */
static const uint64_t real314[13] = {168, 136, 96, 108, 109, 128, 152,
				     225864, 10880, 936, 864, 872, 880};
static const uint64_t real315[13] = {168, 136, 96, 108, 109, 128, 152,
				     226240, 10856, 1104, 1024, 1032, 1048};

START_TEST(offsets_parse_and_refuse)
{
	struct py_async_offsets o;
	ck_assert_int_eq(py_async_offsets_parse(real314, sizeof(real314), &o), 0);
	ck_assert_int_eq(o.task_coro, 128);
	ck_assert_int_eq(o.ts_tasks_head, 880);
	ck_assert_int_eq(py_async_offsets_parse(real315, sizeof(real315), &o), 0);
	ck_assert_int_eq(o.ts_running_task, 1032);
	ck_assert_int_eq(py_async_offsets_parse(real314, sizeof(real314) - 8, &o), -EINVAL);
	uint64_t bad[13];
	memcpy(bad, real314, sizeof(bad));
	bad[6] = 160; /* task_node + its two pointers past the task's size */
	ck_assert_int_eq(py_async_offsets_parse(bad, sizeof(bad), &o), -EINVAL);
	memcpy(bad, real314, sizeof(bad));
	bad[0] = 1u << 20; /* a task of a megabyte */
	ck_assert_int_eq(py_async_offsets_parse(bad, sizeof(bad), &o), -EINVAL);
	memcpy(bad, real314, sizeof(bad));
	bad[12] = 936; /* tasks_head outside the thread state */
	ck_assert_int_eq(py_async_offsets_parse(bad, sizeof(bad), &o), -EINVAL);
}
END_TEST

struct image {
	uint8_t *data;
	struct cg_fake_region reg[8];
	struct cg_fake_mem mem;
	int minor;
};

/* One seed in the harness's format: [version][len u16][bytes]... */
static void load(struct image *im, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", corpus(), name);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s: run tests/fuzz/seeds/pyasync_seeds.py", path);
	im->data = malloc(1 << 16);
	size_t n = fread(im->data, 1, 1 << 16, f);
	fclose(f);
	im->minor = 14 + (im->data[0] & 1);
	im->mem = (struct cg_fake_mem){im->reg, 0};
	for (size_t off = 1; im->mem.n < 8 && off + 2 <= n;) {
		size_t len = (size_t)(im->data[off] | im->data[off + 1] << 8);
		off += 2;
		ck_assert_uint_le(len, n - off);
		im->reg[im->mem.n] = (struct cg_fake_region){BASE(im->mem.n), im->data + off, len};
		im->mem.n++;
		off += len;
	}
}

struct seen {
	int samples, tasks;
	char text[2048];
};

static void on_sample(const struct cg_sample *s, void *arg)
{
	struct seen *sn = arg;
	size_t o = strlen(sn->text);
	/* root first, like collapsed stacks; the task root has no line */
	for (uint32_t i = s->nframes; i-- > 0;) {
		o += (size_t)snprintf(sn->text + o, sizeof(sn->text) - o, "%s%s",
				      i + 1 == s->nframes ? "" : ";", s->frames[i].name);
		if (s->frames[i].line)
			o += (size_t)snprintf(sn->text + o, sizeof(sn->text) - o, ":%d",
					      (int)s->frames[i].line);
	}
	snprintf(sn->text + o, sizeof(sn->text) - o, "\n");
	ck_assert_int_eq(s->frames[s->nframes - 1].kind, CG_FK_TASK);
	ck_assert_int_eq(s->state, CG_ST_IDLE);
	sn->samples++;
}

static void on_task(const struct cg_task *t, void *arg)
{
	struct seen *sn = arg;
	size_t o = strlen(sn->text);
	snprintf(sn->text + o, sizeof(sn->text) - o, "%s %s frames=%u waiters=%u%s\n", t->name,
		 t->running ? "running" : "pending", t->nframes, t->nawaited_by,
		 t->nawaited_by && t->awaited_by[0] == BASE(4) ? " (the first task)" : "");
	sn->tasks++;
}

static void walk(const char *seed, struct seen *sn, struct cg_sample_stats *st)
{
	struct image im;
	struct target *t;
	struct py_interp pi;
	void *s;
	struct py_async *a = NULL;
	uint64_t interp = 0;

	load(&im, seed);
	memset(sn, 0, sizeof(*sn));
	ck_assert_int_eq(target_fake_memory(&t, &im.mem), 0);
	memset(&pi, 0, sizeof(pi));
	pi.t = t;
	pi.major = 3;
	pi.minor = im.minor;
	pi.runtime = BASE(0);
	pi.pycode_type = 0xc0de000ULL;
	py_interp_set_layout(&pi, py_layout_find(3, im.minor));
	struct cg_sampler_opts o = {.nonblocking = true, .idle = true, .max_depth = 64};
	ck_assert_int_eq(py_sampler_new(&pi, &o, &s), 0);
	ck_assert_int_eq(py_async_new_at(&pi, s, BASE(1), &a), 0);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(py_read_interp(&pi, &interp), 0);
	py_async_round(a);
	py_async_note_thread(a, interp, BASE(2), 0);
	py_async_sample_suspended(a, on_sample, sn, st);
	py_async_tasks(a, on_task, sn);
	py_async_free(a);
	python_sampler_ops.close(s);
	target_close(t);
	free(im.data);
}

START_TEST(seed_tasks_chains_and_waiters)
{
	static const char *const seeds[] = {"seed-3.14", "seed-3.15"};
	for (int i = 0; i < 2; i++) {
		struct seen sn;
		struct cg_sample_stats st = {0};
		walk(seeds[i], &sn, &st);
		/* "sleeper" awaits, in its coroutine, a second coroutine (the
		 * code object is shared, at line 11); Task-7 sleeps in one */
		ck_assert_str_eq(sn.text, "task sleeper;sleeper:11;sleeper:11\n"
					  "task Task-7;sleeper:11\n"
					  "sleeper pending frames=2 waiters=0\n"
					  "Task-7 pending frames=1 waiters=1 (the first task)\n");
		ck_assert_int_eq(st.taken, 2);
		for (int k = 0; k < CG_LOST__COUNT; k++)
			ck_assert_int_eq(st.lost[k], 0);
	}
}
END_TEST

START_TEST(looping_list_yields_nothing)
{
	static const char *const seeds[] = {"seed-3.14-loop", "seed-3.15-loop"};
	for (int i = 0; i < 2; i++) {
		struct seen sn;
		struct cg_sample_stats st = {0};
		walk(seeds[i], &sn, &st);
		ck_assert_int_eq(sn.samples, 0);
		ck_assert_int_eq(sn.tasks, 0);
		ck_assert_int_eq(st.lost[CG_LOST_TORN], 1);
	}
}
END_TEST

/* The loop named "sleeper" running, but the thread's stack, read whole,
 * holds no frame of its coroutine: it yielded in between. The dump shows
 * its await chain, suspended, not the stack of whatever runs now. */
START_TEST(running_task_that_yielded_shows_its_chain)
{
	static const char *const seeds[] = {"seed-3.14-moved", "seed-3.15-moved"};
	for (int i = 0; i < 2; i++) {
		struct seen sn;
		struct cg_sample_stats st = {0};
		walk(seeds[i], &sn, &st);
		ck_assert_msg(strstr(sn.text, "sleeper pending frames=2 waiters=0\n") != NULL, "%s",
			      sn.text);
		ck_assert_msg(strstr(sn.text, "Task-7 pending frames=1 waiters=1") != NULL, "%s",
			      sn.text);
	}
}
END_TEST

static Suite *pyasync_suite(void)
{
	Suite *s = suite_create("pyasync");
	TCase *tc = tcase_create("core");
	cg_log_set_level(CG_LOG_ERROR);
	tcase_add_test(tc, offsets_parse_and_refuse);
	tcase_add_test(tc, seed_tasks_chains_and_waiters);
	tcase_add_test(tc, looping_list_yields_nothing);
	tcase_add_test(tc, running_task_that_yielded_shows_its_chain);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(pyasync_suite)
