/* native: ELF symbols of a real binary (also stripped, with its debug file
 * found by build-id, and broken), unwinding a paused child, and merging
 * native with Python frames on crafted stacks. */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"

static volatile unsigned long spin_sink;

/* Static on purpose: only .symtab (or the debug file) names them. */
__attribute__((noinline)) static void native_test_leaf(void)
{
	for (;;)
		spin_sink++;
}

__attribute__((noinline)) static void native_test_mid(void)
{
	native_test_leaf();
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void native_test_top(void)
{
	native_test_mid();
	__asm__ volatile("" ::: "memory");
}

static char self_path[4096];

static void find_self(void)
{
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	ck_assert_int_gt(n, 0);
	self_path[n] = '\0';
}

START_TEST(symtab_of_self)
{
	struct elfsym_table *tab;
	find_self();
	ck_assert_int_eq(elfsym_table_load(self_path, "/nonexistent", &tab), 0);
	ck_assert_uint_gt(elfsym_table_count(tab), 10);
	uint64_t a;
	ck_assert_int_eq(elfsym_table_addr(tab, "native_test_mid", &a), 0);
	uint64_t off = 99;
	const char *s = elfsym_table_find(tab, a, &off);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "native_test_mid");
	ck_assert_uint_eq(off, 0);
	s = elfsym_table_find(tab, a + 3, &off);
	ck_assert_str_eq(s, "native_test_mid");
	ck_assert_uint_eq(off, 3);
	/* below every symbol */
	ck_assert_ptr_null(elfsym_table_find(tab, 1, NULL));
	ck_assert_int_eq(elfsym_table_addr(tab, "no_such_symbol_here", &a), -ENOENT);
	ck_assert_uint_gt(strlen(elfsym_table_build_id(tab)), 2);
	elfsym_table_free(tab);
}
END_TEST

/* Data as well as functions, by name, with the load bias the caller needs:
 * what the Python and JVM discoveries ask of a file. */
int native_test_data_marker = 42;

START_TEST(values_of_self)
{
	static const char *const names[] = {"native_test_data_marker", "native_test_mid",
					    "no_such_symbol_here"};
	uint64_t vals[3];
	struct elfsym_want w = {.names = names, .n = 3, .vals = vals, .section = ".text"};
	find_self();
	ck_assert_int_eq(elfsym_file_values(self_path, &w), 0);
	ck_assert_uint_ne(vals[0], 0);
	ck_assert_uint_ne(vals[1], 0);
	ck_assert_uint_eq(vals[2], 0);
	ck_assert_uint_ne(w.section_addr, 0);
	ck_assert_uint_ne(w.first_load, UINT64_MAX);
	/* one load bias for both: where the file's first PT_LOAD landed */
	uint64_t bias = (uintptr_t)&native_test_data_marker - vals[0];
	ck_assert_uint_eq(bias % 4096, 0);
	ck_assert_uint_eq((uintptr_t)native_test_mid - vals[1], bias);
	w.section = NULL;
	ck_assert_int_eq(elfsym_file_values("/nonexistent/x", &w), -ENOENT);
	ck_assert_int_eq(elfsym_file_values("/proc/self/status", &w), -ENOEXEC);
}
END_TEST

static int sh(const char *cmd)
{
	int r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

START_TEST(stripped_with_debug_file)
{
	char dir[] = "/tmp/cgprof-native-XXXXXX", cmd[16384], stripped[4200];
	struct elfsym_table *tab;
	uint64_t a;

	find_self();
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(stripped, sizeof(stripped), "%s/stripped", dir);
	snprintf(cmd, sizeof(cmd), "strip -o %s %s", stripped, self_path);
	if (sh(cmd) != 0) {
		fprintf(stderr, "SKIP stripped_with_debug_file: strip failed\n");
		return;
	}
	/* stripped: .symtab gone, the static function is unknown */
	ck_assert_int_eq(elfsym_table_load(stripped, dir, &tab), 0);
	ck_assert_int_eq(elfsym_table_addr(tab, "native_test_mid", &a), -ENOENT);
	char id[160];
	snprintf(id, sizeof(id), "%s", elfsym_table_build_id(tab));
	elfsym_table_free(tab);
	ck_assert_uint_gt(strlen(id), 2);

	/* the separate debug file by build-id brings it back */
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p %s/.build-id/%.2s && objcopy --only-keep-debug %s %s/.build-id/%.2s/%s.debug",
		 dir, id, self_path, dir, id, id + 2);
	ck_assert_int_eq(sh(cmd), 0);
	ck_assert_int_eq(elfsym_table_load(stripped, dir, &tab), 0);
	ck_assert_int_eq(elfsym_table_addr(tab, "native_test_mid", &a), 0);
	ck_assert_str_eq(elfsym_table_find(tab, a + 1, NULL), "native_test_mid");
	elfsym_table_free(tab);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	sh(cmd);
}
END_TEST

START_TEST(broken_elf_is_an_error_not_a_crash)
{
	char dir[] = "/tmp/cgprof-native-XXXXXX", path[256];
	struct elfsym_table *tab = NULL;
	find_self();
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/junk", dir);

	FILE *f = fopen(path, "w");
	fputs("not an ELF file at all\n", f);
	fclose(f);
	ck_assert_int_eq(elfsym_table_load(path, dir, &tab), -ENOEXEC);

	/* A real binary cut at every few KiB, and one with bytes flipped in its
	 * headers: load may fail or find fewer symbols, never crash. */
	FILE *in = fopen(self_path, "r");
	ck_assert_ptr_nonnull(in);
	static char img[8 << 20];
	size_t len = fread(img, 1, sizeof(img), in);
	fclose(in);
	for (size_t cut = 0; cut < len; cut += len / 37 + 1) {
		f = fopen(path, "w");
		fwrite(img, 1, cut, f);
		fclose(f);
		if (elfsym_table_load(path, dir, &tab) == 0)
			elfsym_table_free(tab);
	}
	unsigned int seed = 7;
	for (int round = 0; round < 50; round++) {
		static char bad[8 << 20];
		memcpy(bad, img, len);
		for (int k = 0; k < 16; k++) {
			size_t at = (size_t)rand_r(&seed) % (len < 4096 ? len : 4096);
			bad[at] = (char)rand_r(&seed);
		}
		/* and somewhere in the section headers at the end */
		for (int k = 0; k < 16; k++)
			bad[len - 1 - (size_t)rand_r(&seed) % 2048] = (char)rand_r(&seed);
		f = fopen(path, "w");
		fwrite(bad, 1, len, f);
		fclose(f);
		if (elfsym_table_load(path, dir, &tab) == 0)
			elfsym_table_free(tab);
	}
	unlink(path);
	rmdir(dir);
}
END_TEST

struct got {
	int calls;
	char leaf[64];
	enum cg_state state;
};

static void on_sample(const struct cg_sample *s, void *arg)
{
	struct got *g = arg;
	g->calls++;
	g->state = s->state;
	if (s->nframes)
		snprintf(g->leaf, sizeof(g->leaf), "%s", s->frames[0].name);
}

/* Addresses as the spinner sees them: it is a separate exec, so its
 * load addresses differ from ours. */
struct spinner_addrs {
	uint64_t mid, getppid, clone;
};

/* "test_native --child spin FD": report our addresses on FD, then spin in
 * native_test_top -> mid -> leaf until killed. */
static int child_main(int argc, char **argv)
{
	if (argc != 2 || strcmp(argv[0], "spin") != 0)
		return 2;
	int fd = atoi(argv[1]);
	struct spinner_addrs a = {(uintptr_t)native_test_mid, (uintptr_t)getppid, (uintptr_t)clone};
	if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
		return 3;
	close(fd);
	native_test_top();
	return 0;
}

/* The spinner is this binary exec'd afresh, not a fork: under valgrind a
 * forked child would be a valgrind guest whose real registers and stack are
 * valgrind's, while an exec'd one runs natively. */
static pid_t spawn_spinner(struct spinner_addrs *addrs)
{
	int pfd[2];
	char fdarg[16];
	ck_assert_int_eq(pipe(pfd), 0);
	find_self();
	snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		/* a failed check ends the test before its kill: die with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		execl(self_path, "test_native", "--child", "spin", fdarg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], addrs, sizeof(*addrs)), sizeof(*addrs));
	close(pfd[0]);
	usleep(20000);
	return pid;
}

START_TEST(symbols_and_unwind_of_child)
{
	struct spinner_addrs addr;
	pid_t pid = spawn_spinner(&addr);
	struct target *t;
	ck_assert_int_eq(target_open(pid, &t), 0);

	struct elfsym_proc *p;
	struct elfsym_result res;
	ck_assert_int_eq(elfsym_proc_new(t, &p), 0);
	ck_assert_int_eq(elfsym_proc_refresh(p), 1);
	ck_assert_int_eq(elfsym_proc_refresh(p), 0); /* unchanged maps */
	ck_assert_int_eq(elfsym_lookup(p, addr.mid + 2, &res), 0);
	ck_assert_str_eq(res.sym, "native_test_mid");
	ck_assert_str_eq(res.object, "test_native");
	ck_assert_int_eq(elfsym_lookup(p, addr.getppid, &res), 0);
	ck_assert_ptr_nonnull(strstr(res.object, "libc"));
	ck_assert_int_eq(elfsym_lookup(p, 16, &res), -ENOENT);
	elfsym_proc_free(p);

	struct native_ctx *c;
	struct native_frame fr[64];
	uint32_t n = 0;
	bool trunc;
	ck_assert_int_eq(native_open(t, &c), 0);
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(target_pause(t, pid), 0);
		int r = native_unwind_thread(c, pid, fr, 64, &n, &trunc);
		target_resume(t, pid);
		ck_assert_int_eq(r, 0);
		ck_assert_uint_ge(n, 4);
		ck_assert_str_eq(fr[0].f.name, "native_test_leaf");
		ck_assert_str_eq(fr[1].f.name, "native_test_mid");
		ck_assert_str_eq(fr[2].f.name, "native_test_top");
		ck_assert_str_eq(fr[0].f.file, "test_native");
		ck_assert_int_eq(fr[0].f.kind, CG_FK_NATIVE);
		ck_assert(!trunc);
	}
	/* clone is a thread's root: the garbage "callers" past it go */
	struct native_frame g3[4] = {{.ip = addr.mid + 2, .flags = NATIVE_F_EXACT},
				     {.ip = addr.clone + 3}, {.ip = 16}, {.ip = 16}};
	n = 4;
	ck_assert_int_eq(native_symbolize(c, g3, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(g3[0].f.name, "native_test_mid");
	ck_assert_ptr_nonnull(strstr(g3[1].f.name, "clone")); /* clone or its alias __clone */
	/* unnamed frames are never a root: nothing is dropped */
	struct native_frame g2[2] = {{.ip = addr.mid + 2, .flags = NATIVE_F_EXACT}, {.ip = 16}};
	n = 2;
	ck_assert_int_eq(native_symbolize(c, g2, &n), 0);
	ck_assert_uint_eq(n, 2);

	/* bounded: two frames asked, more there */
	ck_assert_int_eq(target_pause(t, pid), 0);
	ck_assert_int_eq(native_unwind_thread(c, pid, fr, 2, &n, &trunc), 0);
	target_resume(t, pid);
	ck_assert_uint_eq(n, 2);
	ck_assert(trunc);
	native_close(c);

	/* the sampler end to end, and its refusal without pausing */
	void *priv;
	struct cg_sampler_opts so = {.nonblocking = true, .max_depth = 128};
	ck_assert_int_eq(native_sampler_ops.probe(t), 0);
	cg_clearerr();
	ck_assert_int_eq(native_sampler_ops.open(t, &so, &priv), -EINVAL);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "nonblocking"));
	so.nonblocking = false;
	ck_assert_int_eq(native_sampler_ops.open(t, &so, &priv), 0);
	struct cg_sample_stats st = {0};
	struct got g = {0};
	ck_assert_int_eq(native_sampler_ops.sample(priv, on_sample, &g, &st), 1);
	ck_assert_int_eq(g.calls, 1);
	ck_assert_str_eq(g.leaf, "native_test_leaf");
	ck_assert_int_eq(g.state, CG_ST_RUNNING);
	ck_assert_uint_eq(st.taken, 1);
	native_sampler_ops.close(priv);

	target_close(t);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

/* A child that dlopen()s a library after we first read its maps: the new
 * object is found after a refresh, the unchanged ones keep their tables. */
START_TEST(refresh_sees_dlopen_and_keeps_cache)
{
	char dir[] = "/tmp/cgprof-native-XXXXXX", src[256], lib[256], cmd[1024];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(src, sizeof(src), "%s/dl.c", dir);
	snprintf(lib, sizeof(lib), "%s/libcgdl.so", dir);
	FILE *f = fopen(src, "w");
	fputs("int cgtest_dl_func(int x) { return x * 3 + 1; }\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -o %s %s", lib, src);
	if (sh(cmd) != 0) {
		fprintf(stderr, "SKIP refresh_sees_dlopen_and_keeps_cache: no cc\n");
		return;
	}
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		signal(SIGTERM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		void *h = dlopen(lib, RTLD_NOW);
		void *fn = h ? dlsym(h, "cgtest_dl_func") : NULL;
		if (write(done[1], &fn, sizeof(fn)) != sizeof(fn))
			_exit(3);
		for (;;)
			pause();
	}
	struct target *t;
	struct elfsym_proc *p;
	struct elfsym_result res;
	ck_assert_int_eq(target_open(pid, &t), 0);
	ck_assert_int_eq(elfsym_proc_new(t, &p), 0);
	ck_assert_int_eq(elfsym_proc_refresh(p), 1);
	ck_assert_int_eq(elfsym_lookup(p, (uintptr_t)native_test_mid, &res), 0);
	const char *obj_before = res.object;

	ck_assert_int_eq(write(go[1], "x", 1), 1);
	void *fn = NULL;
	ck_assert_int_eq(read(done[0], &fn, sizeof(fn)), sizeof(fn));
	ck_assert_ptr_nonnull(fn);
	ck_assert_int_eq(elfsym_lookup(p, (uintptr_t)fn, &res), -ENOENT);
	ck_assert_int_eq(elfsym_proc_refresh(p), 1);
	ck_assert_int_eq(elfsym_lookup(p, (uintptr_t)fn + 1, &res), 0);
	ck_assert_str_eq(res.sym, "cgtest_dl_func");
	ck_assert_str_eq(res.object, "libcgdl.so");
	/* same object, same table: its strings did not move */
	ck_assert_int_eq(elfsym_lookup(p, (uintptr_t)native_test_mid, &res), 0);
	ck_assert_ptr_eq(res.object, obj_before);
	ck_assert_int_eq(elfsym_proc_refresh(p), 0);

	elfsym_proc_free(p);
	target_close(t);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(src);
	unlink(lib);
	rmdir(dir);
}
END_TEST

/* ---- merge on crafted stacks ---------------------------------------- */

static struct native_frame N(const char *name, uint32_t flags)
{
	return (struct native_frame){.f = {.name = name, .file = "x.so", .kind = CG_FK_NATIVE},
				     .flags = flags};
}
#define EVAL(n) N(n, NATIVE_F_EVAL)
#define PLUMB(n) N(n, NATIVE_F_PLUMBING)
#define C(n) N(n, 0)

/* Python frames as the sampler hands them over: frames plus entry marks. */
struct pyst {
	struct cg_frame f[8];
	bool entry[8];
	uint32_t n;
};

static struct pyst PY(const char *spec)
{
	/* "g! h f!": names, ! marks an entry frame */
	static char buf[8][32];
	struct pyst p = {.n = 0};
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%s", spec);
	for (char *save, *w = strtok_r(tmp, " ", &save); w && p.n < 8; w = strtok_r(NULL, " ", &save)) {
		size_t l = strlen(w);
		p.entry[p.n] = l && w[l - 1] == '!';
		if (p.entry[p.n])
			w[l - 1] = '\0';
		snprintf(buf[p.n], sizeof(buf[p.n]), "%s", w);
		p.f[p.n] = (struct cg_frame){.name = buf[p.n], .file = "a.py", .line = 1,
					     .kind = CG_FK_PYTHON};
		p.n++;
	}
	return p;
}

static void expect(const struct cg_frame *out, uint32_t n, const char *const *want, uint32_t nwant)
{
	ck_assert_uint_eq(n, nwant);
	for (uint32_t i = 0; i < n; i++)
		ck_assert_str_eq(out[i].name, want[i]);
}

START_TEST(merge_py310_every_frame_entry)
{
	/* leaf first: libc <- C ext <- call machinery <- eval(g) <- eval(f) <- main */
	struct native_frame nat[] = {
		C("memcpy"), C("burn_c"), PLUMB("cfunction_vectorcall_O"),
		EVAL("_PyEval_EvalFrameDefault"), PLUMB("_PyFunction_Vectorcall"),
		EVAL("_PyEval_EvalFrameDefault"), PLUMB("PyEval_EvalCode"), PLUMB("Py_BytesMain"),
		PLUMB("main"),
	};
	struct pyst py = PY("g! <module>!");
	struct cg_frame out[16];
	uint32_t n;
	bool trunc;
	ck_assert_int_eq(native_merge(nat, 9, py.f, py.entry, py.n, false, out, 16, &n, &trunc), 0);
	const char *want[] = {"memcpy", "burn_c", "g", "<module>"};
	expect(out, n, want, 4);
	ck_assert(!trunc);
	ck_assert_int_eq(out[2].kind, CG_FK_PYTHON);
	ck_assert_int_eq(out[1].kind, CG_FK_NATIVE);
}
END_TEST

START_TEST(merge_py311_groups_by_entry)
{
	/* One eval invocation runs f, g, h (3.11 inlines Python calls; f is
	 * its entry frame); h calls a C function that calls back into k. */
	struct native_frame nat[] = {
		C("lookdict"), EVAL("_PyEval_EvalFrameDefault"), PLUMB("_PyEval_Vector"),
		C("callback_c"), PLUMB("cfunction_call"), EVAL("_PyEval_EvalFrameDefault"),
		PLUMB("Py_RunMain"),
	};
	struct pyst py = PY("k! h g f!");
	struct cg_frame out[16];
	uint32_t n;
	bool trunc;
	ck_assert_int_eq(native_merge(nat, 7, py.f, py.entry, py.n, false, out, 16, &n, &trunc), 0);
	const char *want[] = {"lookdict", "k", "callback_c", "h", "g", "f"};
	expect(out, n, want, 6);
}
END_TEST

START_TEST(merge_wrapper_is_one_invocation)
{
	struct native_frame nat[] = {
		C("burn_c"), EVAL("_PyEval_EvalFrameDefault"), EVAL("PyEval_EvalFrameEx"),
		PLUMB("function_code_fastcall"), EVAL("_PyEval_EvalFrameDefault"),
		EVAL("PyEval_EvalFrameEx"),
	};
	struct pyst py = PY("g! f!");
	struct cg_frame out[16];
	uint32_t n;
	bool trunc;
	ck_assert_int_eq(native_merge(nat, 6, py.f, py.entry, py.n, false, out, 16, &n, &trunc), 0);
	const char *want[] = {"burn_c", "g", "f"};
	expect(out, n, want, 3);
}
END_TEST

START_TEST(merge_stripped_interpreter)
{
	/* Debian's python3.11: static helpers have no names. Unknown frames of
	 * the interpreter are dropped between Python and an extension and
	 * root-ward of the eval loop, kept at the leaf (its own work). */
	struct native_frame nat[] = {
		N("0x1234", NATIVE_F_UNKNOWN), C("burn_c"), N("0x547bb7", NATIVE_F_UNKNOWN),
		PLUMB("_PyObject_MakeTpCall"), EVAL("_PyEval_EvalFrameDefault"),
		N("0x647d96", NATIVE_F_UNKNOWN), PLUMB("_start"),
	};
	nat[0].f.file = "libc.so.6";
	nat[1].f.file = "ext.so";
	struct pyst py = PY("caller!");
	struct cg_frame out[16];
	uint32_t n;
	bool trunc;
	ck_assert_int_eq(native_merge(nat, 7, py.f, py.entry, py.n, false, out, 16, &n, &trunc), 0);
	const char *want[] = {"0x1234", "burn_c", "caller"};
	expect(out, n, want, 3);

	struct native_frame leaf[] = {
		N("0xaaaa", NATIVE_F_UNKNOWN), C("PyLong_FromLong"), EVAL("_PyEval_EvalFrameDefault"),
		N("0xbbbb", NATIVE_F_UNKNOWN),
	};
	ck_assert_int_eq(native_merge(leaf, 4, py.f, py.entry, py.n, false, out, 16, &n, &trunc), 0);
	const char *want2[] = {"0xaaaa", "PyLong_FromLong", "caller"};
	expect(out, n, want2, 3);
}
END_TEST

START_TEST(merge_mismatch_is_refused)
{
	struct cg_frame out[16];
	uint32_t n = 77;
	bool trunc;
	/* two eval frames, one Python group */
	struct native_frame nat[] = {EVAL("_PyEval_EvalFrameDefault"), PLUMB("x"),
				     EVAL("_PyEval_EvalFrameDefault")};
	struct pyst one = PY("f!");
	ck_assert_int_eq(native_merge(nat, 3, one.f, one.entry, one.n, false, out, 16, &n, &trunc), -EPROTO);
	ck_assert_uint_eq(n, 0);
	/* one eval frame, two groups */
	struct pyst two = PY("g! f!");
	ck_assert_int_eq(native_merge(nat, 1, two.f, two.entry, two.n, false, out, 16, &n, &trunc), -EPROTO);
	/* last group never reaches an entry frame */
	struct pyst open_group = PY("g");
	ck_assert_int_eq(native_merge(nat, 1, open_group.f, open_group.entry, open_group.n, false, out, 16,
				      &n, &trunc),
			 -EPROTO);
	/* Python frames but no eval frame at all */
	struct native_frame plain[] = {C("a"), C("b")};
	ck_assert_int_eq(native_merge(plain, 2, one.f, one.entry, one.n, false, out, 16, &n, &trunc),
			 -EPROTO);
	/* no Python at all: native frames minus plumbing */
	ck_assert_int_eq(native_merge(plain, 2, NULL, NULL, 0, false, out, 16, &n, &trunc), 0);
	ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(merge_truncates_root_side)
{
	struct native_frame nat[] = {C("a"), C("b"), EVAL("_PyEval_EvalFrameDefault"), C("c")};
	struct pyst py = PY("p1 p2!");
	struct cg_frame out[3];
	uint32_t n;
	bool trunc;
	ck_assert_int_eq(native_merge(nat, 4, py.f, py.entry, py.n, false, out, 3, &n, &trunc), 0);
	const char *want[] = {"a", "b", "p1"};
	expect(out, n, want, 3);
	ck_assert(trunc);
}
END_TEST

START_TEST(merge_cut_walks_end_the_stack)
{
	struct cg_frame out[16];
	uint32_t n;
	bool trunc;
	/* Python walk cut at max depth: 3 eval frames, groups for 1.5 */
	struct native_frame nat[] = {
		C("burn_c"), EVAL("_PyEval_EvalFrameDefault"), PLUMB("_PyEval_Vector"), C("cb"),
		EVAL("_PyEval_EvalFrameDefault"), PLUMB("x"), EVAL("_PyEval_EvalFrameDefault"),
	};
	struct pyst py = PY("a! b c");
	ck_assert_int_eq(native_merge(nat, 7, py.f, py.entry, py.n, false, out, 16, &n, &trunc),
			 -EPROTO);
	ck_assert_int_eq(native_merge(nat, 7, py.f, py.entry, py.n, true, out, 16, &n, &trunc), 0);
	const char *want[] = {"burn_c", "a", "cb", "b", "c"};
	expect(out, n, want, 5);
	ck_assert(trunc);
	/* native walk cut: Python frames left over */
	struct pyst more = PY("a! b! c!");
	ck_assert_int_eq(native_merge(nat, 2, more.f, more.entry, more.n, true, out, 16, &n, &trunc),
			 0);
	const char *want2[] = {"burn_c", "a"};
	expect(out, n, want2, 2);
	ck_assert(trunc);
}
END_TEST

START_TEST(eval_and_plumbing_names)
{
	ck_assert(native_is_eval_frame("_PyEval_EvalFrameDefault"));
	ck_assert(native_is_eval_frame("_PyEval_EvalFrameDefault.cold"));
	ck_assert(native_is_eval_frame("PyEval_EvalFrameEx"));
	ck_assert(!native_is_eval_frame("_PyEval_EvalFrameDefaultX"));
	ck_assert(!native_is_eval_frame("_PyEval_Vector"));
	ck_assert(!native_is_eval_frame(NULL));
	ck_assert(native_is_plumbing_frame("_PyEval_Vector"));
	ck_assert(native_is_plumbing_frame("cfunction_vectorcall_FASTCALL_KEYWORDS"));
	ck_assert(native_is_plumbing_frame("_PyObject_MakeTpCall"));
	ck_assert(native_is_plumbing_frame("start_thread"));
	ck_assert(native_is_plumbing_frame("__clone3")); /* a worker's root, as _start is main's */
	ck_assert(native_is_plumbing_frame("__clone"));
	ck_assert(native_is_plumbing_frame("_start"));
	ck_assert(!native_is_plumbing_frame("lookdict_unicode"));
	ck_assert(!native_is_plumbing_frame("burn_c"));
	ck_assert(!native_is_plumbing_frame("mainloop"));
}
END_TEST

static Suite *native_suite(void)
{
	Suite *s = suite_create("native");
	TCase *tc = tcase_create("elf");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, symtab_of_self);
	tcase_add_test(tc, values_of_self);
	tcase_add_test(tc, stripped_with_debug_file);
	tcase_add_test(tc, broken_elf_is_an_error_not_a_crash);
	tcase_add_test(tc, symbols_and_unwind_of_child);
	tcase_add_test(tc, refresh_sees_dlopen_and_keeps_cache);
	suite_add_tcase(s, tc);
	tc = tcase_create("merge");
	tcase_add_test(tc, merge_py310_every_frame_entry);
	tcase_add_test(tc, merge_py311_groups_by_entry);
	tcase_add_test(tc, merge_wrapper_is_one_invocation);
	tcase_add_test(tc, merge_stripped_interpreter);
	tcase_add_test(tc, merge_mismatch_is_refused);
	tcase_add_test(tc, merge_truncates_root_side);
	tcase_add_test(tc, merge_cut_walks_end_the_stack);
	tcase_add_test(tc, eval_and_plumbing_names);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN_CHILD(native_suite, child_main)
