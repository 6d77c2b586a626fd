/* Unit tests for top's counts: own and total per function (recursion
 * counted once), the idle and thread filters, the last-N-seconds window,
 * the latest stack per thread, the sort orders and the counted caps. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../src/cli/top_stats.h"
#include "check_main.h"

#define SEC 1000000000ULL

static struct cg_sample mk(pid_t tid, enum cg_state st, const struct cg_frame *f, uint32_t n)
{
	struct cg_sample s = {.pid = 1, .tid = tid, .thread_name = tid == 1 ? "main" : "worker",
			      .state = st, .nframes = n, .frames = f};
	return s;
}

/* leaf first */
static const struct cg_frame hot_stack[] = {
	{"hot", "/app/m.py", 12, CG_FK_PYTHON},
	{"main", "/app/m.py", 40, CG_FK_PYTHON},
};
static const struct cg_frame cold_stack[] = {
	{"cold", "/app/m.py", 22, CG_FK_PYTHON},
	{"main", "/app/m.py", 41, CG_FK_PYTHON},
};
static const struct cg_frame rec_stack[] = {
	{"rec", "/app/m.py", 30, CG_FK_PYTHON},
	{"rec", "/app/m.py", 31, CG_FK_PYTHON},
	{"rec", "/app/m.py", 31, CG_FK_PYTHON},
	{"main", "/app/m.py", 42, CG_FK_PYTHON},
};
static const struct cg_frame wait_stack[] = {
	{"wait", "/lib/threading.py", 300, CG_FK_PYTHON},
};

static const struct top_row *find(const struct top_stats *st, const struct top_snapshot *s,
				  const char *func)
{
	for (uint32_t i = 0; i < s->nrows; i++) {
		const char *name, *file;
		int32_t line;
		top_stats_func(st, s->rows[i].func, &name, &file, &line);
		if (!strcmp(name, func))
			return &s->rows[i];
	}
	return NULL;
}

static void feed(struct top_stats *st, uint64_t t, int hot, int cold, int rec, int wait)
{
	struct cg_sample_stats ss = {0};
	for (int i = 0; i < hot; i++) {
		struct cg_sample s = mk(1, CG_ST_RUNNING, hot_stack, 2);
		top_stats_add(st, &s, t);
	}
	for (int i = 0; i < cold; i++) {
		struct cg_sample s = mk(1, CG_ST_RUNNING, cold_stack, 2);
		top_stats_add(st, &s, t);
	}
	for (int i = 0; i < rec; i++) {
		struct cg_sample s = mk(1, CG_ST_RUNNING, rec_stack, 4);
		top_stats_add(st, &s, t);
	}
	for (int i = 0; i < wait; i++) {
		struct cg_sample s = mk(2, CG_ST_IDLE, wait_stack, 1);
		top_stats_add(st, &s, t);
	}
	top_stats_round(st, &ss, t);
}

START_TEST(test_own_total_and_filters)
{
	struct top_stats *st;
	ck_assert_int_eq(top_stats_new(10, 0, &st), 0);
	feed(st, 100, 30, 10, 10, 50);
	struct top_view v = {.thread = -1, .sort = TOP_SORT_OWN};
	struct top_snapshot s;
	ck_assert_int_eq(top_stats_snapshot(st, &v, SEC / 2, &s), 0);
	ck_assert_uint_eq(s.samples, 50); /* on CPU only */
	ck_assert_uint_eq(s.all_states, 100);
	ck_assert_uint_eq(s.oncpu, 50);
	ck_assert_uint_eq(s.threads, 2);
	ck_assert_uint_eq(find(st, &s, "hot")->own, 30);
	ck_assert_uint_eq(find(st, &s, "main")->own, 0);
	ck_assert_uint_eq(find(st, &s, "main")->total, 50);
	/* three rec frames in one sample: one total, one own */
	ck_assert_uint_eq(find(st, &s, "rec")->total, 10);
	ck_assert_uint_eq(find(st, &s, "rec")->own, 10);
	ck_assert_ptr_null(find(st, &s, "wait"));
	/* sorted by own, then total; function ids break ties */
	const char *name, *file;
	int32_t line;
	top_stats_func(st, s.rows[0].func, &name, &file, &line);
	ck_assert_str_eq(name, "hot");
	ck_assert_str_eq(file, "/app/m.py");
	ck_assert_int_eq(line, 12);
	top_snapshot_free(&s);

	v.idle = true;
	ck_assert_int_eq(top_stats_snapshot(st, &v, SEC / 2, &s), 0);
	ck_assert_uint_eq(s.samples, 100);
	ck_assert_uint_eq(find(st, &s, "wait")->own, 50);
	top_snapshot_free(&s);

	/* thread slot 1 is the worker (seen second) */
	char label[64];
	ck_assert_uint_eq(top_stats_thread_count(st), 2);
	top_stats_thread_label(st, 1, label, sizeof(label));
	ck_assert_str_eq(label, "worker (2)");
	v.thread = 1;
	ck_assert_int_eq(top_stats_snapshot(st, &v, SEC / 2, &s), 0);
	ck_assert_uint_eq(s.samples, 50);
	ck_assert_uint_eq(s.nrows, 1);
	ck_assert_ptr_null(find(st, &s, "hot"));
	top_snapshot_free(&s);
	v.idle = false;
	ck_assert_int_eq(top_stats_snapshot(st, &v, SEC / 2, &s), 0);
	ck_assert_uint_eq(s.samples, 0);
	ck_assert_uint_eq(s.nrows, 0);
	top_snapshot_free(&s);

	/* the latest stack of each thread, lines as sampled */
	uint32_t funcs[8];
	int32_t lines[8];
	enum cg_state state;
	bool trunc;
	ck_assert_int_eq(top_stats_stack(st, 0, true, funcs, lines, 8, &state, &trunc), 4);
	ck_assert_int_eq(state, CG_ST_RUNNING);
	ck_assert(!trunc);
	top_stats_func_label(st, funcs[1], lines[1], false, label, sizeof(label));
	ck_assert_str_eq(label, "rec (/app/m.py:31)");
	top_stats_func_label(st, funcs[1], lines[1], true, label, sizeof(label));
	ck_assert_str_eq(label, "rec (m.py:31)");
	ck_assert_int_eq(top_stats_stack(st, 5, true, funcs, lines, 8, &state, &trunc), -ENOENT);
	/* the worker was only ever idle: no stack while idle is hidden */
	ck_assert_int_eq(top_stats_stack(st, 1, true, funcs, lines, 8, &state, &trunc), 1);
	ck_assert_int_eq(state, CG_ST_IDLE);
	ck_assert_int_eq(top_stats_stack(st, 1, false, funcs, lines, 8, &state, &trunc), -ENOENT);
	/* a thread caught off CPU: its latest stack says so, its latest on
	 * CPU is the one before */
	struct cg_sample off = mk(1, CG_ST_IDLE, wait_stack, 1);
	top_stats_add(st, &off, SEC / 2);
	ck_assert_int_eq(top_stats_stack(st, 0, true, funcs, lines, 8, &state, &trunc), 1);
	ck_assert_int_eq(state, CG_ST_IDLE);
	ck_assert_int_eq(top_stats_stack(st, 0, false, funcs, lines, 8, &state, &trunc), 4);
	ck_assert_int_eq(state, CG_ST_RUNNING);
	top_stats_free(st);
}
END_TEST

START_TEST(test_window)
{
	struct top_stats *st;
	ck_assert_int_eq(top_stats_new(3, 0, &st), 0);
	/* second 0: 100 hot; seconds 5, 6, 7: 10 cold each */
	feed(st, 0, 100, 0, 0, 0);
	for (int sec = 5; sec <= 7; sec++)
		feed(st, (uint64_t)sec * SEC + 1, 0, 10, 0, 0);
	struct top_view v = {.thread = -1, .window = true, .sort = TOP_SORT_TOTAL};
	struct top_snapshot s;
	ck_assert_int_eq(top_stats_snapshot(st, &v, 7 * SEC + SEC / 2, &s), 0);
	ck_assert_uint_eq(s.samples, 30);
	ck_assert_uint_eq(s.rounds, 3);
	ck_assert_ptr_null(find(st, &s, "hot"));
	ck_assert_uint_eq(find(st, &s, "cold")->own, 30);
	ck_assert(s.span_s > 2.4 && s.span_s < 2.6);
	top_snapshot_free(&s);
	v.window = false;
	ck_assert_int_eq(top_stats_snapshot(st, &v, 7 * SEC + SEC / 2, &s), 0);
	ck_assert_uint_eq(s.samples, 130);
	ck_assert_uint_eq(s.rounds, 4);
	ck_assert_uint_eq(find(st, &s, "hot")->own, 100);
	top_snapshot_free(&s);
	/* a gap longer than the window empties it */
	feed(st, 20 * SEC, 0, 0, 0, 0);
	v.window = true;
	ck_assert_int_eq(top_stats_snapshot(st, &v, 20 * SEC, &s), 0);
	ck_assert_uint_eq(s.samples, 0);
	ck_assert_uint_eq(s.nrows, 0);
	top_snapshot_free(&s);
	top_stats_free(st);
}
END_TEST

START_TEST(test_sort_and_format)
{
	struct top_stats *st;
	ck_assert_int_eq(top_stats_new(10, 0, &st), 0);
	feed(st, 0, 30, 10, 0, 0);
	struct top_view v = {.thread = -1, .sort = TOP_SORT_NAME};
	struct top_snapshot s;
	const char *a, *b, *file;
	int32_t line;
	ck_assert_int_eq(top_stats_snapshot(st, &v, SEC, &s), 0);
	ck_assert_uint_eq(s.nrows, 3);
	for (uint32_t i = 1; i < s.nrows; i++) {
		top_stats_func(st, s.rows[i - 1].func, &a, &file, &line);
		top_stats_func(st, s.rows[i].func, &b, &file, &line);
		ck_assert_int_lt(strcmp(a, b), 0);
	}
	top_snapshot_free(&s);
	v.sort = TOP_SORT_TOTAL;
	ck_assert_int_eq(top_stats_snapshot(st, &v, SEC, &s), 0);
	top_stats_func(st, s.rows[0].func, &a, &file, &line);
	ck_assert_str_eq(a, "main");
	char buf[256];
	top_format_row(st, &s, &s.rows[1], false, buf, sizeof(buf));
	/* 30 of 40 samples, one round in 1 s: 30 s of thread time */
	ck_assert_str_eq(buf, "   75.0    75.0     30.00     30.00  hot (/app/m.py:12)");
	top_format_counts(&s, &v, 100, buf, sizeof(buf));
	ck_assert_str_eq(buf, "samples 40 in 1.0 s, 1.0 Hz of 100, lost 0, threads 1");
	v.idle_sampled = true;
	top_format_counts(&s, &v, 100, buf, sizeof(buf));
	ck_assert_str_eq(buf, "samples 40 in 1.0 s, 1.0 Hz of 100, lost 0, threads 1, on CPU 100%");
	top_format_titles(TOP_SORT_TOTAL, buf, sizeof(buf));
	ck_assert_str_eq(buf, "   OWN% *TOTAL%    OWN(s)  TOTAL(s)  FUNCTION");
	top_snapshot_free(&s);
	top_stats_free(st);
}
END_TEST

START_TEST(test_caps_counted)
{
	struct top_stats *st;
	char name[32];
	ck_assert_int_eq(top_stats_new(1, 0, &st), 0);
	/* more functions than the table: the rest go to id 0 */
	for (unsigned i = 0; i < TOP_MAX_FUNCS + 100; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		struct cg_frame f = {name, NULL, 0, CG_FK_NATIVE};
		struct cg_sample s = mk(1, CG_ST_RUNNING, &f, 1);
		top_stats_add(st, &s, 0);
	}
	/* more threads than slots: the last slot gathers them */
	for (int t = 0; t < (int)TOP_MAX_THREADS + 10; t++) {
		struct cg_sample s = mk(100 + t, CG_ST_RUNNING, hot_stack, 2);
		top_stats_add(st, &s, 0);
	}
	ck_assert_uint_eq(top_stats_thread_count(st), TOP_MAX_THREADS);
	char label[64];
	top_stats_thread_label(st, TOP_MAX_THREADS - 1, label, sizeof(label));
	ck_assert_str_eq(label, "(other threads)");
	struct top_view v = {.thread = -1, .sort = TOP_SORT_OWN};
	struct top_snapshot s;
	ck_assert_int_eq(top_stats_snapshot(st, &v, 0, &s), 0);
	uint64_t own = 0;
	for (uint32_t i = 0; i < s.nrows; i++)
		own += s.rows[i].own;
	/* every sample is somewhere: in a row or counted as dropped */
	ck_assert_uint_eq(own + s.dropped, TOP_MAX_FUNCS + 100 + TOP_MAX_THREADS + 10);
	ck_assert_ptr_nonnull(find(st, &s, "(other functions)"));
	ck_assert(s.threads_more);
	top_snapshot_free(&s);
	top_stats_free(st);
}
END_TEST

START_TEST(test_bad_window)
{
	struct top_stats *st;
	ck_assert_int_eq(top_stats_new(0, 0, &st), -EINVAL);
	ck_assert_int_eq(top_stats_new(TOP_WINDOW_MAX + 1, 0, &st), -EINVAL);
}
END_TEST

static Suite *top_suite(void)
{
	Suite *s = suite_create("top_stats");
	TCase *tc = tcase_create("counts");
	tcase_add_test(tc, test_own_total_and_filters);
	tcase_add_test(tc, test_window);
	tcase_add_test(tc, test_sort_and_format);
	tcase_add_test(tc, test_caps_counted);
	tcase_add_test(tc, test_bad_window);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(top_suite)
