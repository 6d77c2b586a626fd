/* Unit tests for the encoders over one known synthetic profile. With
 * CGPROF_ENCODE_OUT=DIR set, the suite also writes that profile in every
 * format into DIR for the independent readers of test_encoders.py. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/encode.h"
#include "cgprof/profile.h"
#include "check_main.h"

/* The known profile (root first):
 *   thread main (100);main (/app/job.py:40);work (/app/job.py:12);Job.crunch (/app/job.py:7)  x6 RUNNING
 *   thread main (100);main (/app/job.py:40);work (/app/job.py:12)                              x2 RUNNING, x1 IDLE
 *   thread main (100);main (/app/job.py:40);io_wait (/app/io.py:3);read (libc.so.6)            x3 IDLE
 *   thread io (101);<Truncated>;deep (/app/deep.py:99)                                          x2 RUNNING
 * 14 samples, 2 threads, rounds 7. */
static const struct cg_frame F_MAIN = {"main", "/app/job.py", 40, CG_FK_PYTHON};
static const struct cg_frame F_WORK = {"work", "/app/job.py", 12, CG_FK_PYTHON};
static const struct cg_frame F_CRUNCH = {"Job.crunch", "/app/job.py", 7, CG_FK_PYTHON};
static const struct cg_frame F_IOWAIT = {"io_wait", "/app/io.py", 3, CG_FK_PYTHON};
static const struct cg_frame F_READ = {"read", "libc.so.6", 0, CG_FK_NATIVE};
static const struct cg_frame F_DEEP = {"deep", "/app/deep.py", 99, CG_FK_PYTHON};

static void add_frames(struct cg_profile *p, pid_t tid, const char *tname, enum cg_state st,
		       bool trunc, bool rooted, int times, int n, va_list ap)
{
	struct cg_frame f[10];
	char troot[64];
	for (int i = 0; i < n; i++)
		f[i] = *va_arg(ap, const struct cg_frame *);
	if (rooted) {
		/* as the session roots a stack (--threads): the thread above
		 * everything, <Truncated> included */
		if (trunc)
			f[n++] = (struct cg_frame){.name = "<Truncated>", .kind = CG_FK_TRUNCATED};
		snprintf(troot, sizeof(troot), "thread %s (%d)", tname, (int)tid);
		f[n++] = (struct cg_frame){.name = troot, .kind = CG_FK_THREAD};
		trunc = false;
	}
	struct cg_sample s = {.pid = 99, .tid = tid, .thread_name = tname, .state = st,
			      .truncated = trunc, .nframes = (uint32_t)n, .frames = f};
	for (int i = 0; i < times; i++)
		ck_assert_int_eq(profile_add_sample(p, &s), 0);
}

static void add(struct cg_profile *p, pid_t tid, const char *tname, enum cg_state st, bool trunc,
		int times, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	add_frames(p, tid, tname, st, trunc, false, times, n, ap);
	va_end(ap);
}

/* A stack rooted at its thread. */
static void add_rooted(struct cg_profile *p, pid_t tid, const char *tname, enum cg_state st,
		       bool trunc, int times, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	add_frames(p, tid, tname, st, trunc, true, times, n, ap);
	va_end(ap);
}

static struct cg_profile *known_python(void)
{
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	ck_assert_ptr_nonnull(p);
	profile_set_window(p, 1700000000000ULL, 1700000060000ULL);
	profile_set_interval_ms(p, 10);
	profile_set_runtime_version(p, "CPython 3.12.1");
	add_rooted(p, 100, "main", CG_ST_RUNNING, false, 6, 3, &F_CRUNCH, &F_WORK, &F_MAIN);
	add_rooted(p, 100, "main", CG_ST_RUNNING, false, 2, 2, &F_WORK, &F_MAIN);
	add_rooted(p, 100, "main", CG_ST_IDLE, false, 1, 2, &F_WORK, &F_MAIN);
	add_rooted(p, 100, "main", CG_ST_IDLE, false, 3, 3, &F_READ, &F_IOWAIT, &F_MAIN);
	add_rooted(p, 101, "io", CG_ST_RUNNING, true, 2, 1, &F_DEEP);
	for (int i = 0; i < 7; i++)
		profile_add_round(p);
	profile_add_lost(p, CG_LOST_TORN, 1);
	profile_add_overhead_ms(p, 12.5);
	return p;
}

static const struct cg_frame J_RUN = {"java.lang.Thread.run", "Thread.java", 833, CG_FK_JAVA};
static const struct cg_frame J_WORK = {"com.example.Worker.work", "Worker.java", 21, CG_FK_JAVA};
static const struct cg_frame J_LOCK = {"com.example.Worker.lock", "Worker.java", 0, CG_FK_JAVA};
static const struct cg_frame J_SLEEP = {"java.lang.Thread.sleep", NULL, 0, CG_FK_JAVA};

static struct cg_profile *known_java(void)
{
	struct cg_profile *p = profile_new(CG_RT_JAVA, NULL);
	profile_set_window(p, 1700000000000ULL, 1700000010000ULL);
	profile_set_interval_ms(p, 50);
	profile_set_runtime_version(p, "OpenJDK 17.0.15");
	add(p, 200, "worker-1", CG_ST_RUNNING, false, 4, 2, &J_WORK, &J_RUN);
	add(p, 200, "worker-1", CG_ST_BLOCKED, false, 2, 3, &J_LOCK, &J_WORK, &J_RUN);
	add(p, 201, "worker-2", CG_ST_TIMED_WAITING, false, 3, 2, &J_SLEEP, &J_RUN);
	add(p, 201, "worker-2", CG_ST_NATIVE, false, 1, 2, &J_SLEEP, &J_RUN);
	for (int i = 0; i < 5; i++)
		profile_add_round(p);
	struct cg_heap_class hc[] = {{"[B", 1200, 4800000}, {"java.lang.String", 1100, 26400}};
	ck_assert_int_eq(profile_set_heap(p, hc, 2, 2300, 4826400, 1700000009000ULL), 0);
	return p;
}

/* The profile encoded in memory. */
static char *encode_str(enum cg_format f, const struct cg_profile *p, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);
	struct cg_encode_opts o = {.title = "known profile"};
	ck_assert_int_eq(encode_profile(f, p, &o, m), 0);
	fclose(m);
	if (len)
		*len = n;
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_collapsed)
{
	struct cg_profile *p = known_python();
	char *s = encode_str(CG_FMT_COLLAPSED, p, NULL);
	ck_assert_int_eq(count_lines(s), 4);
	ck_assert_ptr_nonnull(strstr(s, "thread main (100);main (/app/job.py:40);work (/app/job.py:12);"
					"Job.crunch (/app/job.py:7) 6\n"));
	ck_assert_ptr_nonnull(strstr(s, "thread main (100);main (/app/job.py:40);work (/app/job.py:12) 3\n"));
	ck_assert_ptr_nonnull(strstr(s, ";io_wait (/app/io.py:3);read (libc.so.6) 3\n"));
	ck_assert_ptr_nonnull(strstr(s, "thread io (101);<Truncated>;deep (/app/deep.py:99) 2\n"));
	free(s);
	profile_free(p);

	p = known_java();
	s = encode_str(CG_FMT_COLLAPSED, p, NULL);
	ck_assert_ptr_nonnull(strstr(s, "java.lang.Thread.run (Thread.java:833);"
					"com.example.Worker.work (Worker.java:21);"
					"com.example.Worker.lock (Worker.java) 2\n"));
	ck_assert_ptr_nonnull(strstr(s, "java.lang.Thread.run (Thread.java:833);java.lang.Thread.sleep 4\n"));
	free(s);
	profile_free(p);
}
END_TEST

START_TEST(test_collapsed_no_separator_in_names)
{
	struct cg_profile *p = profile_new(CG_RT_NATIVE, NULL);
	struct cg_frame f = {"op;er\nator", NULL, 0, CG_FK_NATIVE};
	struct cg_sample smp = {.tid = 1, .nframes = 1, .frames = &f};
	profile_add_sample(p, &smp);
	char *s = encode_str(CG_FMT_COLLAPSED, p, NULL);
	ck_assert_str_eq(s, "op,er,ator 1\n");
	free(s);
	profile_free(p);
}
END_TEST

START_TEST(test_format_names)
{
	ck_assert_int_eq(encode_format_from_path("x.txt"), CG_FMT_COLLAPSED);
	ck_assert_int_eq(encode_format_from_path("x.collapsed"), CG_FMT_COLLAPSED);
	ck_assert_int_eq(encode_format_from_path("x.svg"), CG_FMT_FLAMEGRAPH);
	ck_assert_int_eq(encode_format_from_path("x.html"), CG_FMT_FLAMEGRAPH);
	ck_assert_int_eq(encode_format_from_path("a/x.speedscope.json"), CG_FMT_SPEEDSCOPE);
	ck_assert_int_eq(encode_format_from_path("x.speedscope"), CG_FMT_SPEEDSCOPE);
	ck_assert_int_eq(encode_format_from_path("x.pb.gz"), CG_FMT_PPROF);
	ck_assert_int_eq(encode_format_from_path("x.pprof"), CG_FMT_PPROF);
	ck_assert_int_eq(encode_format_from_path("x.pb"), CG_FMT_PPROF);
	ck_assert_int_eq(encode_format_from_path("x.json"), CG_FMT_CODEGURU);
	ck_assert_int_eq(encode_format_from_path("x.dat"), CG_FMT_NONE);
	ck_assert_int_eq(encode_format_from_path("json"), CG_FMT_NONE);
	for (int f = CG_FMT_COLLAPSED; f <= CG_FMT_CODEGURU; f++) {
		ck_assert_int_eq(encode_format_from_name(encode_format_name(f)), f);
		ck_assert_int_eq(encode_format_from_path(encode_format_ext(f)), f);
	}
	ck_assert_int_eq(encode_format_from_name("svg"), CG_FMT_NONE);
}
END_TEST

START_TEST(test_speedscope)
{
	struct cg_profile *p = known_python();
	char *s = encode_str(CG_FMT_SPEEDSCOPE, p, NULL);
	json_error_t err;
	json_t *j = json_loads(s, 0, &err);
	ck_assert_msg(j != NULL, "%s", err.text);
	ck_assert_str_eq(json_string_value(json_object_get(j, "$schema")),
			 "https://www.speedscope.app/file-format-schema.json");
	json_t *profs = json_object_get(j, "profiles");
	ck_assert_int_eq(json_array_size(profs), 2); /* one per thread */
	json_int_t total = 0;
	for (size_t i = 0; i < 2; i++) {
		json_t *w = json_object_get(json_array_get(profs, i), "weights");
		for (size_t k = 0; k < json_array_size(w); k++)
			total += json_integer_value(json_array_get(w, k));
	}
	ck_assert_int_eq(total, 14);
	json_decref(j);
	free(s);
	profile_free(p);
}
END_TEST

START_TEST(test_flamegraph)
{
	struct cg_profile *p = known_python();
	char *s = encode_str(CG_FMT_FLAMEGRAPH, p, NULL);
	ck_assert_ptr_nonnull(strstr(s, "<svg"));
	ck_assert_ptr_nonnull(strstr(s, "</svg>"));
	ck_assert_ptr_nonnull(strstr(s, "known profile"));
	ck_assert_ptr_nonnull(strstr(s, "data-l=\"Job.crunch (/app/job.py:7)\""));
	ck_assert_ptr_nonnull(strstr(s, "data-l=\"&lt;Truncated&gt;\""));
	ck_assert_ptr_null(strstr(s, "http://www.w3.org/1999/xlink\" href")); /* nothing fetched */
	free(s);
	profile_free(p);
	p = known_java();
	s = encode_str(CG_FMT_FLAMEGRAPH, p, NULL);
	ck_assert_ptr_nonnull(strstr(s, "JVM heap summary"));
	ck_assert_ptr_nonnull(strstr(s, "java.lang.String"));
	free(s);
	profile_free(p);
}
END_TEST

START_TEST(test_codeguru_runtime_version)
{
	struct cg_profile *p = known_java();
	profile_set_runtime_version(p, "OpenJDK 64-Bit Server VM 17.0.15+6-Debian-1deb12u1");
	char *s = encode_str(CG_FMT_CODEGURU, p, NULL);
	json_t *j = json_loads(s, 0, NULL);
	ck_assert_ptr_nonnull(j);
	json_t *md = json_object_get(j, "agentMetadata");
	ck_assert_str_eq(json_string_value(json_object_get(md, "runtimeVersion")),
			 "17.0.15+6-Debian-1deb12u1");
	ck_assert_int_eq(json_integer_value(json_object_get(md, "numTimesSampled")), 5);
	json_decref(j);
	free(s);
	profile_free(p);
}
END_TEST

START_TEST(test_deep_stack_every_format)
{
	/* 3000 frames with the default max_depth (2048): the leaf side is
	 * kept under a <Truncated> root, and every encoder copes with depth. */
	enum { DEPTH = 3000 };
	static struct cg_frame f[DEPTH];
	static char names[DEPTH][16];
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	for (int i = 0; i < DEPTH; i++) {
		snprintf(names[i], sizeof(names[i]), "rec%d", i);
		f[i] = (struct cg_frame){names[i], "/r.py", i + 1, CG_FK_PYTHON};
	}
	struct cg_sample smp = {.tid = 1, .nframes = DEPTH, .frames = f};
	ck_assert_int_eq(profile_add_sample(p, &smp), 0);
	ck_assert_uint_eq(profile_node_count(p), 1 + 1 + CG_PROFILE_DEFAULT_MAX_DEPTH);
	for (int fmt = CG_FMT_COLLAPSED; fmt <= CG_FMT_CODEGURU; fmt++) {
		char *s = encode_str(fmt, p, NULL);
		if (fmt == CG_FMT_COLLAPSED) {
			ck_assert_ptr_nonnull(strstr(s, "<Truncated>;rec2047 (/r.py:2048);"));
			ck_assert_ptr_nonnull(strstr(s, ";rec0 (/r.py:1) 1\n"));
		}
		free(s);
	}
	profile_free(p);
}
END_TEST

START_TEST(test_codeguru_merges_lines)
{
	/* One function sampled at two lines is one CodeGuru node with the
	 * line range, as the Python agent keys nodes by name. */
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	profile_add_module_root(p, "/srv/app");
	static const struct cg_frame top = {"main", "/srv/app/pkg/run.py", 5, CG_FK_PYTHON};
	static const struct cg_frame at3 = {"Loader.fetch", "/srv/app/pkg/io.py", 3, CG_FK_PYTHON};
	static const struct cg_frame at9 = {"Loader.fetch", "/srv/app/pkg/io.py", 9, CG_FK_PYTHON};
	add(p, 1, "t", CG_ST_RUNNING, false, 2, 2, &at3, &top);
	add(p, 1, "t", CG_ST_IDLE, false, 3, 2, &at9, &top);
	char *s = encode_str(CG_FMT_CODEGURU, p, NULL);
	json_t *j = json_loads(s, 0, NULL);
	ck_assert_ptr_nonnull(j);
	json_t *n = json_object_get(json_object_get(json_object_get(j, "callgraph"), "children"),
				    "pkg.run:main");
	ck_assert_ptr_nonnull(n);
	n = json_object_get(json_object_get(n, "children"), "pkg.io:Loader:fetch");
	ck_assert_ptr_nonnull(n);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(n, "counts"), "WALL_TIME")), 5);
	json_t *line = json_object_get(n, "line");
	ck_assert_int_eq(json_array_size(line), 2);
	ck_assert_int_eq(json_integer_value(json_array_get(line, 0)), 3);
	ck_assert_int_eq(json_integer_value(json_array_get(line, 1)), 9);
	json_decref(j);
	free(s);
	profile_free(p);
}
END_TEST

START_TEST(test_empty_profile)
{
	/* A window with no samples still encodes in every format. */
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	for (int f = CG_FMT_COLLAPSED; f <= CG_FMT_CODEGURU; f++) {
		size_t n = 0;
		char *s = encode_str(f, p, &n);
		if (f == CG_FMT_COLLAPSED)
			ck_assert_uint_eq(n, 0);
		else
			ck_assert_uint_gt(n, 0);
		if (f == CG_FMT_SPEEDSCOPE || f == CG_FMT_CODEGURU) {
			json_error_t err;
			json_t *j = json_loads(s, 0, &err);
			ck_assert_msg(j != NULL, "%s: %s", encode_format_name(f), err.text);
			json_decref(j);
		}
		free(s);
	}
	profile_free(p);
}
END_TEST

START_TEST(test_bad_utf8_stays_valid)
{
	/* Names from the target are untrusted bytes; JSON must stay valid. */
	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	struct cg_frame f = {"caf\xc3\xa9_\xff\xfe\"q\"", "/a/\x80" "b.py", 1, CG_FK_PYTHON};
	struct cg_sample smp = {.tid = 1, .nframes = 1, .frames = &f};
	profile_add_sample(p, &smp);
	for (int fmt = CG_FMT_SPEEDSCOPE; fmt <= CG_FMT_CODEGURU; fmt += CG_FMT_CODEGURU - CG_FMT_SPEEDSCOPE) {
		char *s = encode_str(fmt, p, NULL);
		json_error_t err;
		json_t *j = json_loads(s, 0, &err);
		ck_assert_msg(j != NULL, "%s: %s", encode_format_name(fmt), err.text);
		ck_assert_ptr_nonnull(strstr(s, "caf\xc3\xa9"));
		json_decref(j);
		free(s);
	}
	profile_free(p);
}
END_TEST

/* Not a test of its own: the files for the independent readers. */
START_TEST(test_write_files)
{
	const char *dir = getenv("CGPROF_ENCODE_OUT");
	if (!dir || !*dir)
		return;
	struct {
		const char *name;
		struct cg_profile *(*make)(void);
	} profs[] = {{"python", known_python}, {"java", known_java}};
	for (size_t k = 0; k < 2; k++) {
		struct cg_profile *p = profs[k].make();
		for (int f = CG_FMT_COLLAPSED; f <= CG_FMT_CODEGURU; f++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s%s", dir, profs[k].name, encode_format_ext(f));
			FILE *out = fopen(path, "w");
			ck_assert_msg(out != NULL, "cannot write %s", path);
			struct cg_encode_opts o = {.title = "known profile"};
			ck_assert_int_eq(encode_profile(f, p, &o, out), 0);
			ck_assert_int_eq(fclose(out), 0);
		}
		profile_free(p);
	}
}
END_TEST

static Suite *encode_suite(void)
{
	Suite *s = suite_create("encode");
	TCase *tc = tcase_create("formats");
	tcase_add_test(tc, test_collapsed);
	tcase_add_test(tc, test_collapsed_no_separator_in_names);
	tcase_add_test(tc, test_format_names);
	tcase_add_test(tc, test_speedscope);
	tcase_add_test(tc, test_flamegraph);
	tcase_add_test(tc, test_codeguru_runtime_version);
	tcase_add_test(tc, test_deep_stack_every_format);
	tcase_add_test(tc, test_codeguru_merges_lines);
	tcase_add_test(tc, test_empty_profile);
	tcase_add_test(tc, test_bad_utf8_stays_valid);
	tcase_add_test(tc, test_write_files);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(encode_suite)
