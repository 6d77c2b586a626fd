/* Unit tests for the profile model: interning, the call tree and its self
 * counts per state, truncation, thread roots, and the counted caps. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgprof/profile.h"
#include "check_main.h"

static struct cg_sample mk(pid_t tid, enum cg_state st, const struct cg_frame *f, uint32_t n)
{
	struct cg_sample s = {.pid = 1, .tid = tid, .thread_name = "main", .state = st,
			      .nframes = n, .frames = f};
	return s;
}

/* Frames leaf first, like the samplers deliver them. */
static const struct cg_frame stack_abc[] = {
	{"c", "/app/m.py", 30, CG_FK_PYTHON},
	{"b", "/app/m.py", 20, CG_FK_PYTHON},
	{"a", "/app/m.py", 10, CG_FK_PYTHON},
};

struct collect {
	char lines[16][256];
	uint64_t counts[16];
	int n;
};

static int collect_fn(const struct cg_profile *p, uint32_t node, const uint32_t *frames,
		      uint32_t depth, void *arg)
{
	struct collect *c = arg;
	char *l = c->lines[c->n];
	l[0] = '\0';
	for (uint32_t i = 0; i < depth; i++) {
		strcat(l, i ? ";" : "");
		strcat(l, profile_frame(p, frames[i])->name);
	}
	c->counts[c->n++] = profile_node_total(p, node, true);
	return 0;
}

static uint64_t sum_of(struct collect *c, const char *line)
{
	uint64_t n = 0;
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->lines[i], line))
			n += c->counts[i];
	return n;
}

static uint64_t count_of(struct collect *c, const char *line)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->lines[i], line))
			return c->counts[i];
	return 0;
}

START_TEST(test_tree_and_states)
{
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	ck_assert_ptr_nonnull(p);
	struct cg_sample s = mk(7, CG_ST_RUNNING, stack_abc, 3);
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	s.state = CG_ST_IDLE;
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	s = mk(8, CG_ST_RUNNING, stack_abc + 1, 2); /* a;b */
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	ck_assert_uint_eq(profile_samples(p), 4);
	ck_assert_uint_eq(profile_thread_count(p), 2);

	struct collect c = {0};
	ck_assert_int_eq(profile_walk_stacks(p, collect_fn, &c), 0);
	ck_assert_int_eq(c.n, 2);
	ck_assert_uint_eq(count_of(&c, "a;b;c"), 3);
	ck_assert_uint_eq(count_of(&c, "a;b"), 1);

	/* Root -> a -> b -> c: 4 nodes; per-state self counts on c. */
	ck_assert_uint_eq(profile_node_count(p), 4);
	for (uint32_t i = 0; i < profile_node_count(p); i++) {
		const struct cg_profile_node *n = profile_node(p, i);
		if (n->frame != CG_PROFILE_NONE && !strcmp(profile_frame(p, n->frame)->name, "c")) {
			ck_assert_uint_eq(profile_node_self(p, i)[CG_ST_RUNNING], 2);
			ck_assert_uint_eq(profile_node_self(p, i)[CG_ST_IDLE], 1);
			ck_assert_uint_eq(profile_node_total(p, i, false), 2);
		}
	}
	profile_free(p);
}
END_TEST

START_TEST(test_interning)
{
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	char name[8], file[16];
	uint32_t before = profile_frame_count(p);
	/* The same content from different buffers is one frame and one string. */
	for (int i = 0; i < 100; i++) {
		strcpy(name, "f");
		strcpy(file, "/x.py");
		struct cg_frame f = {name, file, 3, CG_FK_PYTHON};
		struct cg_sample s = mk(1, CG_ST_RUNNING, &f, 1);
		ck_assert_int_eq(profile_add_sample(p, &s), 0);
	}
	ck_assert_uint_eq(profile_frame_count(p), before + 1);
	/* Different line or kind: a different frame, the strings shared. */
	struct cg_frame f2[] = {{"f", "/x.py", 4, CG_FK_PYTHON}, {"f", "/x.py", 3, CG_FK_NATIVE},
				{"f", NULL, 3, CG_FK_PYTHON}};
	for (int i = 0; i < 3; i++) {
		struct cg_sample s = mk(1, CG_ST_RUNNING, &f2[i], 1);
		ck_assert_int_eq(profile_add_sample(p, &s), 0);
	}
	ck_assert_uint_eq(profile_frame_count(p), before + 4);
	const struct cg_profile_frame *a = profile_frame(p, before), *b = profile_frame(p, before + 1);
	ck_assert_ptr_eq(a->name, b->name);
	ck_assert_ptr_eq(a->file, b->file);
	ck_assert_ptr_null(profile_frame(p, before + 3)->file);
	profile_free(p);
}
END_TEST

START_TEST(test_truncation)
{
	struct cg_profile_limits lim = {.max_depth = 2};
	struct cg_profile *p = profile_new(CG_RT_PYTHON, &lim);
	struct cg_sample s = mk(1, CG_ST_RUNNING, stack_abc, 3);
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	/* A sampler that cut the root side itself. */
	s = mk(1, CG_ST_RUNNING, stack_abc, 1);
	s.truncated = true;
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	struct collect c = {0};
	profile_walk_stacks(p, collect_fn, &c);
	ck_assert_uint_eq(count_of(&c, "<Truncated>;b;c"), 1);
	ck_assert_uint_eq(count_of(&c, "<Truncated>;c"), 1);
	ck_assert_uint_eq(profile_lost(p, CG_LOST_FULL), 0);
	profile_free(p);
}
END_TEST

START_TEST(test_caps_counted)
{
	struct cg_profile_limits lim = {.max_depth = 100, .max_frames = 5, .max_nodes = 4};
	struct cg_profile *p = profile_new(CG_RT_PYTHON, &lim);
	char names[50][16];
	int full = 0;
	for (int i = 0; i < 50; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		struct cg_frame f = {names[i], "/y.py", i, CG_FK_PYTHON};
		struct cg_sample s = mk(1, CG_ST_RUNNING, &f, 1);
		int r = profile_add_sample(p, &s);
		ck_assert(r == 0 || r == -ENOSPC);
		full += r == -ENOSPC;
	}
	ck_assert_int_gt(full, 0);
	ck_assert_uint_eq(profile_lost(p, CG_LOST_FULL), (uint64_t)full);
	ck_assert_uint_eq(profile_samples(p), 50);
	ck_assert_uint_le(profile_node_count(p), 5); /* 4 + the "(truncated)" node */
	struct collect c = {0};
	profile_walk_stacks(p, collect_fn, &c);
	ck_assert_uint_eq(count_of(&c, "(truncated)"), (uint64_t)full);
	uint64_t sum = 0;
	for (int i = 0; i < c.n; i++)
		sum += c.counts[i];
	ck_assert_uint_eq(sum, 50); /* nothing silently lost */
	profile_free(p);
}
END_TEST

START_TEST(test_repeat_stack_same_buffers)
{
	/* A thread sampled twice in a row at the same place takes the quick
	 * path; the sampler's buffers may hold other text the next time. */
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	char leaf[16] = "f", file[16] = "/m.py";
	struct cg_frame fr[] = {{leaf, file, 1, CG_FK_PYTHON}, {"main", "/m.py", 9, CG_FK_PYTHON}};
	struct cg_sample s = mk(5, CG_ST_RUNNING, fr, 2);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(profile_add_sample(p, &s), 0);
	strcpy(leaf, "g");
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	strcpy(file, "/n.py");
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	fr[0].line = 2;
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	s.nframes = 1; /* only the leaf: a stack of its own */
	ck_assert_int_eq(profile_add_sample(p, &s), 0);
	struct collect c = {0};
	profile_walk_stacks(p, collect_fn, &c);
	ck_assert_uint_eq(count_of(&c, "main;f"), 3);
	ck_assert_uint_eq(sum_of(&c, "main;g"), 3); /* /m.py:1, /n.py:1, /n.py:2 */
	ck_assert_uint_eq(count_of(&c, "g"), 1);
	ck_assert_int_eq(c.n, 5);
	profile_free(p);
}
END_TEST

START_TEST(test_metadata_and_heap)
{
	struct cg_profile *p = profile_new(CG_RT_JAVA, NULL);
	profile_set_window(p, 1000, 61000);
	profile_set_interval_ms(p, 10);
	profile_set_runtime_version(p, "OpenJDK 17.0.15");
	profile_add_round(p);
	profile_add_round(p);
	profile_add_lost(p, CG_LOST_TORN, 3);
	profile_add_overhead_ms(p, 1.5);
	ck_assert_uint_eq(profile_rounds(p), 2);
	ck_assert_uint_eq(profile_lost(p, CG_LOST_TORN), 3);
	ck_assert_uint_eq(profile_start_ms(p), 1000);
	ck_assert_uint_eq(profile_end_ms(p), 61000);
	ck_assert_str_eq(profile_runtime_version(p), "OpenJDK 17.0.15");
	ck_assert_ptr_null(profile_heap(p));
	struct cg_heap_class hc[] = {{"[B", 10, 4096}, {"java.lang.String", 5, 120}};
	ck_assert_int_eq(profile_set_heap(p, hc, 2, 15, 4216, 5), 0);
	ck_assert_uint_eq(profile_heap(p)->n, 2);
	ck_assert_str_eq(profile_heap(p)->classes[1].name, "java.lang.String");
	profile_free(p);
}
END_TEST

static Suite *profile_suite(void)
{
	Suite *s = suite_create("profile");
	TCase *tc = tcase_create("model");
	tcase_add_test(tc, test_tree_and_states);
	tcase_add_test(tc, test_interning);
	tcase_add_test(tc, test_truncation);
	tcase_add_test(tc, test_caps_counted);
	tcase_add_test(tc, test_repeat_stack_same_buffers);
	tcase_add_test(tc, test_metadata_and_heap);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(profile_suite)
