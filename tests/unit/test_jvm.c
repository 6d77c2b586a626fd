/* jvm: the thread-dump and class-histogram parsers (real JDK 17 and 25
 * text, then malformed and mutated input), the attach request against
 * fake listeners, and the VMStructs reader and stack walker over a fake
 * JVM image (good, then hostile tables and frames). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_main.h"
#include "cgprof/jvm.h"
#include "cgprof/log.h"
#include "../../src/jvm/jvm_priv.h"
#include "../../src/jvm/jvm_walk.h"
#include "../../src/target/target_priv.h"
#include "fakejvm.h"

static const char dump17[] =
	"2026-11-25 01:42:01\n"
	"Full thread dump OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):\n"
	"\n"
	"Threads class SMR info:\n"
	"_java_thread_list=0x00007fcbf80023f0, length=15, elements={\n"
	"0x00007fcc88017ea0, 0x00007fcc880f8390\n"
	"}\n"
	"\n"
	"\"main\" #1 prio=5 os_prio=0 cpu=1392.99ms elapsed=1.42s tid=0x00007fcc88017ea0 nid=0x290a runnable  [0x00007fcc8eb1e000]\n"
	"   java.lang.Thread.State: RUNNABLE\n"
	"\tat Split.spin(Split.java:24)\n"
	"\tat Split.alpha(Split.java:31)\n"
	"\tat Split.main(Split.java:88)\n"
	"\n"
	"\"Reference Handler\" #2 daemon prio=10 os_prio=0 cpu=0.11ms elapsed=1.40s tid=0x00007fcc880f8390 nid=0x2911 waiting on condition  [0x00007fcc64eea000]\n"
	"   java.lang.Thread.State: RUNNABLE\n"
	"\tat java.lang.ref.Reference.waitForReferencePendingList(java.base@17.0.15/Native Method)\n"
	"\tat java.lang.ref.Reference.processPendingReferences(java.base@17.0.15/Reference.java:253)\n"
	"\n"
	"\"Signal Dispatcher\" #4 daemon prio=9 os_prio=0 cpu=0.23ms elapsed=1.40s tid=0x00007fcc88101200 nid=0x2913 runnable  [0x0000000000000000]\n"
	"   java.lang.Thread.State: RUNNABLE\n"
	"\n"
	"\"holder\" #14 daemon prio=5 os_prio=0 cpu=0.27ms elapsed=1.41s tid=0x00007fcc8812a7e0 nid=0x291c waiting on condition  [0x00007fcc5c7fd000]\n"
	"   java.lang.Thread.State: TIMED_WAITING (sleeping)\n"
	"\tat java.lang.Thread.sleep(java.base@17.0.15/Native Method)\n"
	"\tat Split.holdLock(Split.java:53)\n"
	"\t- locked <0x000000069ec181b0> (a java.lang.Object)\n"
	"\tat Split$$Lambda$1/0x00007fcc08000400.run(Unknown Source)\n"
	"\tat java.lang.Thread.run(java.base@17.0.15/Thread.java:840)\n"
	"\n"
	"\"blocked\" #15 daemon prio=5 os_prio=0 cpu=0.12ms elapsed=1.41s tid=0x00007fcc8812baf0 nid=0x291d waiting for monitor entry  [0x00007fcc5c6fd000]\n"
	"   java.lang.Thread.State: BLOCKED (on object monitor)\n"
	"\tat Split.blockedHere(Split.java:37)\n"
	"\t- waiting to lock <0x000000069ec181b0> (a java.lang.Object)\n"
	"\tat com.example.App.run(app//App.java:12)\n"
	"\n"
	"\"say \"hi\" \\o/\" #16 prio=5 os_prio=0 cpu=0.08ms elapsed=1.42s tid=0x00007fcc8812cbc0 nid=0x291e in Object.wait()  [0x00007fcc5c5fd000]\n"
	"   java.lang.Thread.State: WAITING (on object monitor)\n"
	"\tat java.lang.Object.wait(java.base@17.0.15/Native Method)\n"
	"\t- waiting on <0x000000069ec181c0> (a java.lang.Object)\n"
	"\tat Split.waitHere(Split.java:44)\n"
	"\n"
	"\"VM Thread\" os_prio=0 cpu=0.63ms elapsed=1.43s tid=0x00007fd9500affe0 nid=0x2910 runnable  \n"
	"\n"
	"\"GC Thread#0\" os_prio=0 cpu=0.06ms elapsed=1.44s tid=0x00007fd950057710 nid=0x290b runnable  \n"
	"JNI global refs: 6, weak refs: 0\n";

static const char dump25[] =
	"Full thread dump OpenJDK 64-Bit Server VM (25.0.3+9-LTS mixed mode, sharing):\r\n"
	"\r\n"
	"\"main\" #3 [10550] prio=5 os_prio=0 cpu=1416.39ms elapsed=1.44s tid=0x00007fd95002a810 nid=10550 runnable  [0x00007fd957b1d000]\r\n"
	"   java.lang.Thread.State: RUNNABLE\r\n"
	"\tat Split.beta(Split.java:33)\r\n"
	"\tat Split.main(Split.java:90)\r\n"
	"\r\n"
	"\"waiter\" #23 [10570] daemon prio=5 os_prio=0 cpu=0.08ms elapsed=1.42s tid=0x00007fd9500e0280 nid=10570 in Object.wait()  [0x00007fd954828000]\r\n"
	"   java.lang.Thread.State: WAITING (on object monitor)\r\n"
	"\tat java.lang.Object.wait0(java.base@25.0.3/Native Method)\r\n"
	"\tat java.lang.Object.wait(java.base@25.0.3/Object.java:389)\r\n"
	"\tat Split.waitHere(Split.java:44)\r\n"
	"\tat Split$$Lambda/0x0000000038040a70.run(Unknown Source)\r\n"
	"\tat java.lang.Thread.run(java.base@25.0.3/Thread.java:1474)"; /* no final newline */

static struct jvm_dump parse(const char *text, uint32_t max_depth, char **copy)
{
	struct jvm_dump d = {0};
	size_t len = strlen(text);
	*copy = malloc(len + 1);
	memcpy(*copy, text, len + 1);
	ck_assert_int_eq(jvm_dump_parse(*copy, len, max_depth, &d), 0);
	return d;
}

static const struct cg_frame *frame(const struct jvm_dump *d, size_t t, uint32_t i)
{
	ck_assert_uint_lt(i, d->threads[t].nframes);
	return &d->frames[d->threads[t].first + i];
}

START_TEST(dump_jdk17)
{
	char *text;
	struct jvm_dump d = parse(dump17, 0, &text);
	ck_assert_str_eq(d.vm, "OpenJDK 64-Bit Server VM 17.0.15+6-Debian-1deb12u1");
	/* Signal Dispatcher (no frames), VM Thread, GC Thread: skipped */
	ck_assert_uint_eq(d.nthreads, 5);

	ck_assert_str_eq(d.threads[0].name, "main");
	ck_assert_int_eq(d.threads[0].nid, 0x290a);
	ck_assert_int_eq(d.threads[0].state, CG_ST_RUNNING);
	ck_assert_uint_eq(d.threads[0].nframes, 3);
	ck_assert_str_eq(frame(&d, 0, 0)->name, "Split.spin");
	ck_assert_str_eq(frame(&d, 0, 0)->file, "Split.java");
	ck_assert_int_eq(frame(&d, 0, 0)->line, 24);
	ck_assert_int_eq(frame(&d, 0, 0)->kind, CG_FK_JAVA);
	ck_assert_str_eq(frame(&d, 0, 2)->name, "Split.main");

	/* RUNNABLE in a native method is NATIVE; module prefix stripped */
	ck_assert_str_eq(d.threads[1].name, "Reference Handler");
	ck_assert_int_eq(d.threads[1].state, CG_ST_NATIVE);
	ck_assert_ptr_null(frame(&d, 1, 0)->file);
	ck_assert_int_eq(frame(&d, 1, 0)->line, 0);
	ck_assert_str_eq(frame(&d, 1, 1)->file, "Reference.java");
	ck_assert_int_eq(frame(&d, 1, 1)->line, 253);

	ck_assert_str_eq(d.threads[2].name, "holder");
	ck_assert_int_eq(d.threads[2].state, CG_ST_TIMED_WAITING);
	ck_assert_uint_eq(d.threads[2].nframes, 4); /* "- locked" is no frame */
	/* a hidden class's address is dropped so runs aggregate */
	ck_assert_str_eq(frame(&d, 2, 2)->name, "Split$$Lambda$1.run");
	ck_assert_ptr_null(frame(&d, 2, 2)->file);

	ck_assert_int_eq(d.threads[3].state, CG_ST_BLOCKED);
	ck_assert_str_eq(frame(&d, 3, 0)->name, "Split.blockedHere");
	ck_assert_str_eq(frame(&d, 3, 1)->file, "App.java"); /* "app//App.java" */

	ck_assert_str_eq(d.threads[4].name, "say \"hi\" \\o/");
	ck_assert_int_eq(d.threads[4].state, CG_ST_WAITING);
	ck_assert_str_eq(frame(&d, 4, 1)->name, "Split.waitHere");
	jvm_dump_free(&d);
	free(text);
}
END_TEST

START_TEST(dump_jdk25_crlf_unterminated)
{
	char *text;
	struct jvm_dump d = parse(dump25, 0, &text);
	ck_assert_str_eq(d.vm, "OpenJDK 64-Bit Server VM 25.0.3+9-LTS");
	ck_assert_uint_eq(d.nthreads, 2);
	ck_assert_int_eq(d.threads[0].nid, 10550);
	ck_assert_str_eq(frame(&d, 0, 0)->name, "Split.beta");
	ck_assert_int_eq(frame(&d, 0, 0)->line, 33);
	ck_assert_int_eq(d.threads[1].state, CG_ST_WAITING);
	ck_assert_uint_eq(d.threads[1].nframes, 5);
	ck_assert_str_eq(frame(&d, 1, 3)->name, "Split$$Lambda.run");
	ck_assert_str_eq(frame(&d, 1, 4)->name, "java.lang.Thread.run");
	ck_assert_int_eq(frame(&d, 1, 4)->line, 1474);
	jvm_dump_free(&d);
	free(text);
}
END_TEST

START_TEST(dump_max_depth)
{
	char *text;
	struct jvm_dump d = parse(dump17, 2, &text);
	ck_assert_uint_eq(d.threads[0].nframes, 2);
	ck_assert(d.threads[0].truncated);
	ck_assert_str_eq(frame(&d, 0, 0)->name, "Split.spin"); /* leaf side kept */
	ck_assert_uint_eq(d.threads[3].nframes, 2);
	ck_assert(!d.threads[3].truncated);
	/* reuse of the arrays for a second dump */
	free(text);
	text = malloc(sizeof(dump25));
	memcpy(text, dump25, sizeof(dump25));
	ck_assert_int_eq(jvm_dump_parse(text, strlen(text), 0, &d), 0);
	ck_assert_uint_eq(d.nthreads, 2);
	jvm_dump_free(&d);
	free(text);
}
END_TEST

START_TEST(dump_malformed)
{
	static const char *const bad[] = {
		"",
		"\n\n\n",
		"\"",
		"\"unterminated name #1 nid=0x1\n   java.lang.Thread.State: RUNNABLE\n\tat a.b(c:1)\n",
		"\"t\" nid=0xzz\n   java.lang.Thread.State: RUNNABLE\n\tat x(\n\tat (y.java:1)\n\tat z)y(\n",
		"\"t\" nid=-5\n   java.lang.Thread.State: SOMETHING_NEW\n\tat a.b(F.java:99999999999999)\n",
		"\"t\" nid=0x1\n\tat a.b(F.java:1)\n", /* frames before any state */
		"   java.lang.Thread.State: RUNNABLE\n\tat orphan.frame(F.java:1)\n",
		"Full thread dump \n\"t\"\n   java.lang.Thread.State: \n\tat a.b(:)\n",
		"Full thread dump (((((:\n",
	};
	for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++) {
		struct jvm_dump d = {0};
		char *text = strdup(bad[i]);
		ck_assert_int_eq(jvm_dump_parse(text, strlen(text), 0, &d), 0);
		for (size_t t = 0; t < d.nthreads; t++) {
			ck_assert_ptr_nonnull(d.threads[t].name);
			ck_assert_uint_le(d.threads[t].first + d.threads[t].nframes, d.nframes);
		}
		if (i == 5) {
			ck_assert_uint_eq(d.nthreads, 1);
			ck_assert_int_eq(d.threads[0].nid, 0);
			ck_assert_int_eq(d.threads[0].state, CG_ST_IDLE);
			ck_assert_int_eq(d.frames[0].line, 0);
		}
		if (i == 6 || i == 7)
			ck_assert_uint_eq(d.nthreads, 0);
		jvm_dump_free(&d);
		free(text);
	}
	/* embedded NULs */
	char nul[] = "\"a\0b\" nid=0x1\n   java.lang.Thread.State: RUNNABLE\n\tat a\0.b(F.java:1)\n";
	struct jvm_dump d = {0};
	ck_assert_int_eq(jvm_dump_parse(nul, sizeof(nul) - 1, 0, &d), 0);
	jvm_dump_free(&d);
}
END_TEST

/* Deterministic mutations of real text: bytes flipped, lines cut. The
 * parser must neither crash nor point outside its arrays (run under
 * `make asan` too). */
START_TEST(dump_mutated)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	size_t len = strlen(dump17);
	char *text = malloc(len + 1);
	struct jvm_dump d = {0};
	for (int round = 0; round < 3000; round++) {
		memcpy(text, dump17, len + 1);
		size_t n = len;
		for (int k = 0; k < 8; k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			size_t at = (size_t)(seed >> 33) % len;
			static const char junk[] = "\"\n\t()/:# at \0x";
			text[at] = junk[(seed >> 20) % (sizeof(junk) - 1)];
		}
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		if (round % 3 == 0)
			n = (size_t)(seed >> 33) % len; /* cut anywhere */
		text[n] = '\0';
		ck_assert_int_eq(jvm_dump_parse(text, n, (uint32_t)(round % 5), &d), 0);
		for (size_t t = 0; t < d.nthreads; t++) {
			ck_assert_uint_le(d.threads[t].first + d.threads[t].nframes, d.nframes);
			for (uint32_t f = 0; f < d.threads[t].nframes; f++)
				ck_assert_ptr_nonnull(d.frames[d.threads[t].first + f].name);
		}
	}
	jvm_dump_free(&d);
	free(text);
}
END_TEST

static const char histo[] =
	" num     #instances         #bytes  class name (module)\n"
	"-------------------------------------------------------\n"
	"   1:          1139        4209712  [I (java.base@17.0.15)\n"
	"   2:          8280         431344  [B (java.base@17.0.15)\n"
	"   3:         12345         197520  Split$Marker\n"
	"   4:          7816         431344  java.lang.String (java.base@17.0.15)\n"
	"   5:             1             16  [Ljava.lang.Object;\n"
	"Total         29581        5269936\n";

START_TEST(heap_parse)
{
	struct jvm_heap h;
	ck_assert_int_eq(jvm_heap_parse(histo, strlen(histo), &h), 0);
	ck_assert_uint_eq(h.n, 5);
	ck_assert_str_eq(h.entries[0].name, "[I");
	/* equal bytes: more instances first */
	ck_assert_str_eq(h.entries[1].name, "[B");
	ck_assert_str_eq(h.entries[2].name, "java.lang.String");
	ck_assert_str_eq(h.entries[3].name, "Split$Marker");
	ck_assert_uint_eq(h.entries[3].instances, 12345);
	ck_assert_uint_eq(h.entries[3].bytes, 197520);
	ck_assert_str_eq(h.entries[4].name, "[Ljava.lang.Object;");
	ck_assert_uint_eq(h.total_instances, 29581);
	ck_assert_uint_eq(h.total_bytes, 5269936);

	struct cg_buf b = {0};
	ck_assert_int_eq(jvm_heap_to_json(&h, 42, 2, &b), 0);
	json_error_t err;
	json_t *j = json_loads(b.data, 0, &err);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "pid")), 42);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "classes_total")), 5);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "total_bytes")), 5269936);
	json_t *cls = json_object_get(j, "classes");
	ck_assert_uint_eq(json_array_size(cls), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(cls, 0), "class")), "[I");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(cls, 1), "instances")), 8280);
	ck_assert_ptr_null(json_object_get(j, "time_ms")); /* parsed, not taken */
	json_decref(j);
	cg_buf_free(&b);
	jvm_heap_free(&h);
}
END_TEST

START_TEST(heap_malformed)
{
	struct jvm_heap h;
	static const char *const bad[] = {
		"",
		"Invalid argument to inspectheap operation: -x\n",
		"   1:\n   2: 5\n   3: 5 6\n   4: 5 6 \n",
		"   1: 99999999999999999999999 1 X\n",
		"Total\n",
	};
	for (size_t i = 0; i < CG_ARRAY_LEN(bad); i++)
		ck_assert_int_eq(jvm_heap_parse(bad[i], strlen(bad[i]), &h), -EINVAL);
	/* no Total line: summed; no trailing newline; junk between */
	const char *ok = "garbage\n 1: 3 30 A\nxx\n 2: 2 20 B";
	ck_assert_int_eq(jvm_heap_parse(ok, strlen(ok), &h), 0);
	ck_assert_uint_eq(h.n, 2);
	ck_assert_uint_eq(h.total_instances, 5);
	ck_assert_uint_eq(h.total_bytes, 50);
	jvm_heap_free(&h);
	/* length bounds the parse, not a NUL */
	ck_assert_int_eq(jvm_heap_parse(ok, 5, &h), -EINVAL);
}
END_TEST

/* A little-endian perf data file: prologue, then entries. */
static size_t perf_entry(char *b, size_t off, const char *name, char type, int64_t v)
{
	size_t nlen = strlen(name) + 1, name_off = 20, data_off = (20 + nlen + 7) & ~(size_t)7;
	int32_t len = (int32_t)(data_off + 8), no = (int32_t)name_off, vec = 0,
		dof = (int32_t)data_off;
	memcpy(b + off, &len, 4);
	memcpy(b + off + 4, &no, 4);
	memcpy(b + off + 8, &vec, 4);
	b[off + 12] = type;
	memcpy(b + off + 16, &dof, 4);
	memcpy(b + off + name_off, name, nlen);
	memcpy(b + off + data_off, &v, 8);
	return off + (size_t)len;
}

START_TEST(perf_data)
{
	static char b[4096];
	int64_t v = -1;
	memset(b, 0, sizeof(b));
	memcpy(b, "\xca\xfe\xc0\xc0", 4);
	b[4] = 1; /* little endian */
	int32_t first = 32, count = 3;
	memcpy(b + 24, &first, 4);
	memcpy(b + 28, &count, 4);
	size_t off = perf_entry(b, 32, "sun.rt.createVmBeginTime", 'J', 111);
	off = perf_entry(b, off, "sun.rt.createVmEndTimeX", 'J', 5);
	size_t end_at = off;
	off = perf_entry(b, off, "sun.rt.createVmEndTime", 'J', 1795572331194LL);
	ck_assert_int_eq(jvm_perf_long(b, off, "sun.rt.createVmEndTime", &v), 0);
	ck_assert(v == 1795572331194LL);
	ck_assert_int_eq(jvm_perf_long(b, off, "sun.rt.createVmBeginTime", &v), 0);
	ck_assert(v == 111);
	ck_assert_int_eq(jvm_perf_long(b, off, "sun.rt.nope", &v), -ENOENT);
	/* cut anywhere inside the last entry: not found, no overread */
	for (size_t n = 0; n < off; n++) {
		int r = jvm_perf_long(b, n, "sun.rt.createVmEndTime", &v);
		ck_assert_int_eq(r, -ENOENT);
	}
	/* lies in the entry header */
	int32_t bad = 1 << 30;
	memcpy(b + end_at, &bad, 4);
	ck_assert_int_eq(jvm_perf_long(b, off, "sun.rt.createVmEndTime", &v), -ENOENT);
	bad = 0;
	memcpy(b + end_at, &bad, 4);
	ck_assert_int_eq(jvm_perf_long(b, off, "sun.rt.createVmEndTime", &v), -ENOENT);
	memcpy(b, "\xca\xfe\xc0\xc1", 4);
	ck_assert_int_eq(jvm_perf_long(b, off, "sun.rt.createVmBeginTime", &v), -ENOENT);
}
END_TEST

/* ---- attach requests against fake listeners ---- */

enum fake_mode { FAKE_ANSWER, FAKE_CLOSE, FAKE_SILENT };

struct fake {
	int lfd;
	enum fake_mode mode;
	char got[256];
	ssize_t ngot;
};

static void *fake_serve(void *arg)
{
	struct fake *f = arg;
	int c = accept(f->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	if (f->mode == FAKE_CLOSE) {
		/* as HotSpot does for a peer of the wrong uid/gid */
		close(c);
		return NULL;
	}
	/* like HotSpot: read until the version, command and 3 args are in */
	int nuls = 0;
	f->ngot = 0;
	while (nuls < 5 && f->ngot < (ssize_t)sizeof(f->got)) {
		ssize_t n = recv(c, f->got + f->ngot, sizeof(f->got) - (size_t)f->ngot, 0);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			nuls += f->got[f->ngot + i] == '\0';
		f->ngot += n;
	}
	if (f->mode == FAKE_ANSWER) {
		static const char reply[] = "0\nline one\nline two\n";
		if (send(c, reply, sizeof(reply) - 1, MSG_NOSIGNAL) < 0)
			f->ngot = -1;
	} else {
		usleep(600 * 1000);
	}
	close(c);
	return NULL;
}

static void fake_attach(struct jvm_attach *a, struct fake *f, enum fake_mode mode, char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	memset(a, 0, sizeof(*a));
	memset(f, 0, sizeof(*f));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	a->pid = getpid();
	a->nspid = getpid();
	a->uid = geteuid();
	a->gid = getegid();
	snprintf(a->sock, sizeof(a->sock), "%s/.java_pid%d", dir, (int)a->nspid);
	ck_assert_uint_lt(strlen(a->sock), sizeof(sa.sun_path));
	memcpy(sa.sun_path, a->sock, strlen(a->sock) + 1);
	f->mode = mode;
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(f->lfd, 0);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 4), 0);
}

static void fake_done(struct jvm_attach *a, struct fake *f, pthread_t th, char *dir)
{
	pthread_join(th, NULL);
	close(f->lfd);
	unlink(a->sock);
	rmdir(dir);
}

START_TEST(attach_request_reply)
{
	struct jvm_attach a;
	struct fake f;
	pthread_t th;
	char dir[] = "/tmp/cgprof-jvm-XXXXXX";
	struct cg_buf out = {0};
	int status = -1;
	const char *const args[3] = {"-all", NULL, NULL};

	fake_attach(&a, &f, FAKE_ANSWER, dir);
	/* already "started": the socket exists, no signal is sent */
	ck_assert_int_eq(jvm_attach_start(&a), 0);
	pthread_create(&th, NULL, fake_serve, &f);
	ck_assert_int_eq(jvm_attach_request(&a, "inspectheap", args, 2000, &status, &out), 0);
	fake_done(&a, &f, th, dir);
	ck_assert_int_eq(status, 0);
	ck_assert_str_eq(out.data, "line one\nline two\n");
	static const char want[] = "1\0inspectheap\0-all\0\0\0";
	ck_assert_int_eq(f.ngot, sizeof(want) - 1);
	ck_assert(!memcmp(f.got, want, sizeof(want) - 1));
	cg_buf_free(&out);
}
END_TEST

START_TEST(attach_refused_no_sigpipe)
{
	struct jvm_attach a;
	struct fake f;
	pthread_t th;
	char dir[] = "/tmp/cgprof-jvm-XXXXXX";
	struct cg_buf out = {0};
	int status = -1;

	signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this test */
	fake_attach(&a, &f, FAKE_CLOSE, dir);
	pthread_create(&th, NULL, fake_serve, &f);
	cg_clearerr();
	int r = jvm_attach_request(&a, "threaddump", NULL, 2000, &status, &out);
	fake_done(&a, &f, th, dir);
	ck_assert_int_eq(r, -EPERM);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "accepts only its own user"));
	ck_assert_ptr_null(strchr(cg_lasterr(), '\n'));
	cg_buf_free(&out);
}
END_TEST

START_TEST(attach_timeout)
{
	struct jvm_attach a;
	struct fake f;
	pthread_t th;
	char dir[] = "/tmp/cgprof-jvm-XXXXXX";
	struct cg_buf out = {0};
	int status = -1;

	fake_attach(&a, &f, FAKE_SILENT, dir);
	pthread_create(&th, NULL, fake_serve, &f);
	cg_clearerr();
	uint64_t t0 = cg_now_ns();
	int r = jvm_attach_request(&a, "threaddump", NULL, 200, &status, &out);
	uint64_t ms = (cg_now_ns() - t0) / 1000000;
	fake_done(&a, &f, th, dir);
	ck_assert_int_eq(r, -ETIMEDOUT);
	ck_assert_uint_ge(ms, 190);
	ck_assert_uint_lt(ms, 550);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "did not answer 'threaddump' within 200 ms"));
	cg_buf_free(&out);
}
END_TEST

/* A JVM that stopped accepting: its backlog fills and connect() would
 * block for good; the request must give up at its deadline. */
START_TEST(attach_backlog_full)
{
	struct jvm_attach a;
	struct fake f;
	char dir[] = "/tmp/cgprof-jvm-XXXXXX";
	struct cg_buf out = {0};
	int status = -1, fill[4], nfill = 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	fake_attach(&a, &f, FAKE_SILENT, dir);
	ck_assert_int_eq(listen(f.lfd, 0), 0);
	memcpy(sa.sun_path, a.sock, strlen(a.sock) + 1);
	for (int i = 0; i < 4; i++) {
		fill[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(fill[i], (struct sockaddr *)&sa, sizeof(sa)) == 0)
			nfill++;
	}
	ck_assert_int_ge(nfill, 1);
	ck_assert_int_lt(nfill, 4); /* the backlog is full now */
	cg_clearerr();
	uint64_t t0 = cg_now_ns();
	int r = jvm_attach_request(&a, "threaddump", NULL, 300, &status, &out);
	uint64_t ms = (cg_now_ns() - t0) / 1000000;
	ck_assert_int_eq(r, -ETIMEDOUT);
	ck_assert_uint_lt(ms, 1000);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "does not accept"));
	for (int i = 0; i < 4; i++)
		close(fill[i]);
	close(f.lfd);
	unlink(a.sock);
	rmdir(dir);
	cg_buf_free(&out);
}
END_TEST

/* ---- readiness and the SIGQUIT trigger against a fake process ---- */

/* A JVM as the target boundary shows it: ids in its own namespace, its
 * threads, what it catches; its files under a temporary root. */
struct fake_jvm {
	struct cg_fake_proc p;
	struct cg_fake_thread th[3];
	char root[32], cwd[64];
	struct target *t;
	int listener;      /* the socket the "JVM" opened on SIGQUIT */
	bool saw_trigger;  /* .attach_pid<nspid> was in its cwd at the signal */
};

static void fake_jvm_on_quit(struct cg_fake_proc *p, int sig)
{
	struct fake_jvm *j = p->arg;
	char path[128];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(path, sizeof(path), "%s/.attach_pid%d", j->cwd, (int)p->ids.nspid);
	j->saw_trigger = sig == SIGQUIT && access(path, F_OK) == 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/tmp/.java_pid%d", j->root,
		 (int)p->ids.nspid);
	j->listener = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(j->listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(j->listener, 1), 0);
}

static void fake_jvm_new(struct fake_jvm *j, uint64_t dispatcher_age_ns)
{
	char path[96];
	memset(j, 0, sizeof(*j));
	snprintf(j->root, sizeof(j->root), "/tmp/cgprof-fj-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(j->root));
	snprintf(path, sizeof(path), "%s/tmp", j->root);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(j->cwd, sizeof(j->cwd), "%s/work", j->root);
	ck_assert_int_eq(mkdir(j->cwd, 0700), 0);
	j->th[0] = (struct cg_fake_thread){4242, "java", 5000000000ULL};
	j->th[1] = (struct cg_fake_thread){4250, "Signal Dispatcher", dispatcher_age_ns};
	j->th[2] = (struct cg_fake_thread){4251, "C2 CompilerThre", 1000000000ULL};
	static const char argv[] = "java\0-Xmx64m\0Demo\0";
	j->p = (struct cg_fake_proc){
		.pid = 4242, /* as we see it; the JVM calls itself 7 */
		.ids = {.nspid = 7, .euid = geteuid(), .egid = getegid()},
		.caught = 1ULL << (SIGQUIT - 1),
		.root = j->root, .cwd = j->cwd,
		.argv = argv, .argv_len = sizeof(argv) - 1,
		.environ = "HOME=/\0", .environ_len = 7,
		.threads = j->th, .nthreads = 3,
		.on_signal = fake_jvm_on_quit, .arg = j,
	};
	j->listener = -1;
	ck_assert_int_eq(target_fake_process(&j->t, &j->p), 0);
}

static void fake_jvm_free(struct fake_jvm *j)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/tmp/.java_pid%d", j->root, (int)j->p.ids.nspid);
	unlink(path);
	if (j->listener >= 0)
		close(j->listener);
	snprintf(path, sizeof(path), "%s/tmp", j->root);
	rmdir(path);
	rmdir(j->cwd);
	rmdir(j->root);
	target_close(j->t);
}

START_TEST(attach_init_takes_the_jvms_own_ids)
{
	struct fake_jvm j;
	struct jvm_attach a;
	char want[128];
	fake_jvm_new(&j, 1000000000ULL);
	ck_assert_int_eq(jvm_attach_init(j.t, &a), 0);
	ck_assert_int_eq(a.pid, 4242);
	ck_assert_int_eq(a.nspid, 7);
	ck_assert_int_eq(a.uid, geteuid());
	snprintf(want, sizeof(want), "%s/tmp/.java_pid7", j.root);
	ck_assert_str_eq(a.sock, want);
	j.p.gone = true;
	cg_clearerr();
	ck_assert_int_eq(jvm_attach_init(j.t, &a), -ESRCH);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "is gone"));
	fake_jvm_free(&j);
}
END_TEST

START_TEST(attach_ready_waits_for_the_dispatcher)
{
	struct fake_jvm j;
	struct jvm_attach a;
	fake_jvm_new(&j, 100000000ULL); /* 0.1 s old, no perf data */
	ck_assert_int_eq(jvm_attach_init(j.t, &a), 0);
	ck_assert_int_eq(jvm_attach_ready(&a), -ENOENT);
	j.th[1].age_ns = 400000000ULL;
	ck_assert_int_eq(jvm_attach_ready(&a), 0);
	/* SIGQUIT not caught yet: its default action would kill the JVM */
	j.p.caught = 0;
	ck_assert_int_eq(jvm_attach_ready(&a), -ENOENT);
	j.p.caught = 1ULL << (SIGQUIT - 1);
	/* no Signal Dispatcher thread yet */
	j.p.nthreads = 1;
	ck_assert_int_eq(jvm_attach_ready(&a), -ENOENT);
	j.p.nthreads = 3;
	ck_assert_int_eq(j.p.signals, 0); /* readiness never signals */
	j.p.gone = true;
	ck_assert_int_eq(jvm_attach_ready(&a), -ESRCH);
	fake_jvm_free(&j);
}
END_TEST

START_TEST(attach_ready_refuses_disabled_attach)
{
	struct fake_jvm j;
	struct jvm_attach a;
	static const char env[] = "HOME=/\0JAVA_TOOL_OPTIONS=-XX:+DisableAttachMechanism\0";
	static const char argv[] = "java\0-XX:+DisableAttachMechanism\0Demo\0";
	static const char argv_last[] = "java\0-XX:+DisableAttachMechanism\0"
					"-XX:-DisableAttachMechanism\0Demo\0";
	fake_jvm_new(&j, 1000000000ULL);
	ck_assert_int_eq(jvm_attach_init(j.t, &a), 0);
	j.p.environ = env;
	j.p.environ_len = sizeof(env) - 1;
	cg_clearerr();
	ck_assert_int_eq(jvm_attach_ready(&a), -EPERM);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "DisableAttachMechanism"));
	j.p.environ = "";
	j.p.environ_len = 0;
	j.p.argv = argv;
	j.p.argv_len = sizeof(argv) - 1;
	ck_assert_int_eq(jvm_attach_ready(&a), -EPERM);
	j.p.argv = argv_last; /* the last mention wins */
	j.p.argv_len = sizeof(argv_last) - 1;
	ck_assert_int_eq(jvm_attach_ready(&a), 0);
	fake_jvm_free(&j);
}
END_TEST

START_TEST(attach_start_signals_once_and_cleans_up)
{
	struct fake_jvm j;
	struct jvm_attach a;
	char trigger[128];
	fake_jvm_new(&j, 1000000000ULL);
	ck_assert_int_eq(jvm_attach_init(j.t, &a), 0);
	ck_assert_int_eq(jvm_attach_start(&a), 0);
	ck_assert_int_eq(j.p.signals, 1);
	ck_assert_int_eq(j.p.last_signal, SIGQUIT);
	ck_assert(j.saw_trigger);
	snprintf(trigger, sizeof(trigger), "%s/.attach_pid7", j.cwd);
	ck_assert_int_ne(access(trigger, F_OK), 0); /* removed again */
	/* the listener is up now: no second signal */
	ck_assert_int_eq(jvm_attach_start(&a), 0);
	ck_assert_int_eq(j.p.signals, 1);
	fake_jvm_free(&j);
}
END_TEST

static void fake_jvm_exits(struct cg_fake_proc *p, int sig) { p->gone = true; }

START_TEST(attach_start_gives_up)
{
	struct fake_jvm j;
	struct jvm_attach a;
	char trigger[128];
	fake_jvm_new(&j, 1000000000ULL);
	ck_assert_int_eq(jvm_attach_init(j.t, &a), 0);
	snprintf(trigger, sizeof(trigger), "%s/.attach_pid7", j.cwd);
	/* a JVM that never opens its listener: the deadline */
	j.p.on_signal = NULL;
	setenv("CGPROF_JVM_TIMEOUT_MS", "100", 1);
	cg_clearerr();
	uint64_t t0 = cg_now_ns();
	ck_assert_int_eq(jvm_attach_start(&a), -ETIMEDOUT);
	ck_assert_uint_lt((cg_now_ns() - t0) / 1000000, 1000);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "did not start its attach listener"));
	ck_assert_int_ne(access(trigger, F_OK), 0);
	/* one that exits on the signal: said at once, the file removed */
	j.p.on_signal = fake_jvm_exits;
	cg_clearerr();
	ck_assert_int_eq(jvm_attach_start(&a), -ESRCH);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "exited while cgprof attached"));
	ck_assert_int_ne(access(trigger, F_OK), 0);
	unsetenv("CGPROF_JVM_TIMEOUT_MS");
	j.p.gone = false;
	fake_jvm_free(&j);
}
END_TEST

START_TEST(rate_default_and_warning)
{
	/* no JVM opened yet: the default of the first mechanism, the walker */
	ck_assert(jvm_sampler_rate(5, false) == CG_JVM_WALKER_RATE_HZ);
	ck_assert(jvm_sampler_rate(5, true) == 5);
	ck_assert(jvm_sampler_rate(5000, true) == 5000); /* kept, with a warning */
	ck_assert(CG_JVM_DEFAULT_RATE_HZ <= CG_JVM_DEFAULT_RATE_HZ_JDK17);
	ck_assert_int_eq(jvm_major_version("OpenJDK 64-Bit Server VM 17.0.15+6-Debian-1deb12u1"), 17);
	ck_assert_int_eq(jvm_major_version("OpenJDK 64-Bit Server VM 25.0.3+9-LTS"), 25);
	ck_assert_int_eq(jvm_major_version("Java HotSpot(TM) 64-Bit Server VM 25.202-b08"), 8);
	ck_assert_int_eq(jvm_major_version("OpenJDK 64-Bit Server VM 21+35"), 21);
	ck_assert_int_eq(jvm_major_version("HotSpot JVM"), 0);
	ck_assert_int_eq(jvm_major_version(""), 0);
}
END_TEST


/* ---- the VMStructs walker over a fake JVM image ---------------------- */

/* The field name of the VMStructs entry at image offset e. */
static const char *field_name(const struct fakejvm *j, uint64_t e)
{
	uint64_t p;
	memcpy(&p, j->mem + e + 8, 8);
	return (const char *)j->mem + (p - FJ_BASE);
}

/* The tables read anew resolve to no walker, the refusal naming what. */
static void assert_refused(struct target *t, const struct jvm_vms_syms *s, const char *what)
{
	struct jvm_vms v;
	struct jvm_layout L;
	ck_assert_int_eq(jvm_vms_read(t, s, &v), 0);
	cg_clearerr();
	ck_assert_int_eq(jvm_layout_resolve(&v, &L), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), what));
	cg_clearerr();
	jvm_vms_free(&v);
}

/* A walker over the fake JVM: its tables read and resolved. */
static void open_walker(struct fakejvm *j, struct target **t, struct jvm_layout *L,
			struct jvm_walker *w)
{
	struct jvm_vms_syms s;
	struct jvm_vms v;
	fj_syms(&s);
	ck_assert_int_eq(target_fake_memory(t, &j->fm), 0);
	ck_assert_int_eq(jvm_vms_read(*t, &s, &v), 0);
	ck_assert_int_eq(jvm_layout_resolve(&v, L), 0);
	jvm_vms_free(&v);
	jvm_walker_init(w, *t, L);
}

START_TEST(vmstructs_read_and_resolve)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_vms_syms s;
	struct jvm_vms v;
	struct jvm_layout L;
	uint64_t x;
	int64_t c;
	fj_syms(&s);
	ck_assert_int_eq(target_fake_memory(&t, &j->fm), 0);
	ck_assert_int_eq(jvm_vms_read(t, &s, &v), 0);
	ck_assert_uint_eq(v.nfields, 41);
	ck_assert_int_eq(jvm_vms_offset(&v, "JavaThread", "_anchor", &x), 0);
	ck_assert_uint_eq(x, 0x290);
	ck_assert_int_eq(jvm_vms_static(&v, "CodeCache", "_heaps", &x), 0);
	ck_assert_uint_eq(x, FJ(0x2008));
	ck_assert_int_eq(jvm_vms_offset(&v, "CodeCache", "_heaps", &x), -ENOENT); /* static only */
	ck_assert_int_eq(jvm_vms_size(&v, "ConstMethod", &x), 0);
	ck_assert_uint_eq(x, 48);
	ck_assert_int_eq(jvm_vms_const(&v, "OBJECT_WAIT", &c), 0);
	ck_assert_int_eq(c, 5);
	ck_assert_int_eq(jvm_layout_resolve(&v, &L), 0);
	ck_assert(L.has_threads && L.has_anchor && L.has_names && L.has_lines && L.has_code);
	/* the image describes no PcDesc: inlining is off, and said to be */
	ck_assert(!L.has_scopes);
	ck_assert_str_eq(L.missing, "PcDesc::_pc_offset, PcDesc::_scope_decode_offset, PcDesc, "
				    "nmethod::_scopes_pcs_offset, nmethod scope data");
	jvm_vms_free(&v);

	/* a missing field switches off only its capability, and says so */
	uint64_t e = 0x400 + 48 * 32; /* CodeBlob::_frame_size */
	ck_assert_str_eq(field_name(j, e), "_frame_size");
	fj_put64(j, e + 8, fj_str(j, "_frame_size_renamed"));
	ck_assert_int_eq(jvm_vms_read(t, &s, &v), 0);
	ck_assert_int_eq(jvm_layout_resolve(&v, &L), 0);
	ck_assert(L.has_threads && L.has_names && !L.has_code);
	ck_assert_ptr_nonnull(strstr(L.missing, "CodeBlob::_frame_size"));
	jvm_vms_free(&v);
	/* without the anchor the walker cannot work: refused with the reason */
	fj_put64(j, 0x400 + 48 * 6 + 8, fj_str(j, "_anchor_renamed"));
	assert_refused(t, &s, "JavaThread::_anchor");
	target_close(t);
	free(j);
}
END_TEST

START_TEST(vmstructs_hostile_tables)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_vms_syms s;
	struct jvm_vms v;
	fj_syms(&s);
	ck_assert_int_eq(target_fake_memory(&t, &j->fm), 0);
	/* a stride beyond any real entry */
	fj_put64(j, 8 * JVM_SYM_S_STRIDE, 4096);
	ck_assert_int_eq(jvm_vms_read(t, &s, &v), -EPROTO);
	jvm_vms_free(&v);
	/* a field offset outside the entry */
	fj_put64(j, 8 * JVM_SYM_S_STRIDE, 48);
	fj_put64(j, 8 * JVM_SYM_S_OFFSET, 60);
	ck_assert_int_eq(jvm_vms_read(t, &s, &v), -EPROTO);
	jvm_vms_free(&v);
	fj_put64(j, 8 * JVM_SYM_S_OFFSET, 32);
	/* a name pointing nowhere */
	fj_put64(j, 0x400 + 8, 0xbad0000);
	ck_assert_int_eq(jvm_vms_read(t, &s, &v), -EPROTO);
	jvm_vms_free(&v);
	/* no terminator before the table runs off the mapped image */
	fj_put64(j, 0x400 + 8, fj_str(j, "x"));
	fj_put64(j, 8 * JVM_SYM_STRUCTS, FJ(FJ_SIZE - 48 * 3));
	for (int i = 0; i < 3; i++)
		fj_put64(j, FJ_SIZE - 48 * 3 + 48 * (uint64_t)i, FJ(0x1300));
	ck_assert_int_lt(jvm_vms_read(t, &s, &v), 0);
	jvm_vms_free(&v);
	cg_clearerr();
	target_close(t);
	free(j);
}
END_TEST

/* ConstMethod fields the walker reads from its copy of the header must lie
 * inside it: a table placing one past the end is refused by name (fuzz
 * finding: a u2 read at 255 of a 128-byte copy). */
START_TEST(layout_constmethod_fields_inside)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_vms_syms s;
	struct jvm_vms v;
	struct jvm_layout L;
	uint64_t x;
	const uint64_t name_idx = 0x400 + 48 * 13, flags = 0x400 + 48 * 16;
	fj_syms(&s);
	ck_assert_int_eq(target_fake_memory(&t, &j->fm), 0);
	ck_assert_str_eq(field_name(j, name_idx), "_name_index");
	ck_assert_str_eq(field_name(j, flags), "_flags");
	/* _flags past the 48-byte ConstMethod: names stay, lines go */
	fj_put64(j, flags + 32, 47);
	ck_assert_int_eq(jvm_vms_read(t, &s, &v), 0);
	ck_assert_int_eq(jvm_vms_size(&v, "ConstMethod", &x), 0);
	ck_assert_uint_eq(x, 48);
	ck_assert_int_eq(jvm_layout_resolve(&v, &L), 0);
	ck_assert(L.has_names && !L.has_lines);
	ck_assert_ptr_nonnull(strstr(L.missing, "ConstMethod::_flags"));
	jvm_vms_free(&v);
	fj_put64(j, flags + 32, 0x1c);
	/* _name_index at 255: the walker cannot name a method, refused */
	fj_put64(j, name_idx + 32, 255);
	assert_refused(t, &s, "ConstMethod::_name_index");
	target_close(t);
	free(j);
}
END_TEST

START_TEST(walker_threads_and_frames)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_layout L;
	struct jvm_walker w;
	struct jvm_jthread th[4];
	struct jvm_rawframe f[8];
	enum jvm_walk_end end;
	open_walker(j, &t, &L, &w);
	ck_assert_uint_eq(w.nheaps, 1);
	ck_assert_int_eq(jvm_walk_threads(&w, th, 4), 1);
	ck_assert_int_eq(th[0].tid, 4242);
	ck_assert_int_eq(th[0].ts, JVM_TS_BLOCKED);
	ck_assert_int_eq(th[0].state, CG_ST_WAITING);
	ck_assert_uint_eq(th[0].sp, FJ(0xC080));

	struct jvm_regs r = {th[0].pc, th[0].sp, th[0].fp, 0, NULL, 0, false};
	int n = jvm_walk_stack(&w, &r, true, f, 8, &end, th[0].stack_base);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(end, JVM_END_ENTRY); /* at the call stub's return */
	const char *want[] = {"pkg.Split.leaf", "pkg.Split.middle", "pkg.Split.hot"};
	const int32_t lines[] = {12, 10, 0};
	for (int i = 0; i < 3; i++) {
		const struct jvm_minfo *mi = jvm_method_info(&w, f[i].method);
		ck_assert_ptr_nonnull(mi);
		ck_assert_str_eq(mi->name, want[i]);
		ck_assert_str_eq(mi->file, "Split.java");
		ck_assert_int_eq(f[i].compiled, i == 2);
		ck_assert_int_eq(jvm_method_line(&w, mi, jvm_frame_bci(mi, &f[i])), lines[i]);
	}
	/* the depth bound cuts from the root side and says so */
	ck_assert_int_eq(jvm_walk_stack(&w, &r, true, f, 2, &end, th[0].stack_base), 2);
	ck_assert_int_eq(end, JVM_END_DEPTH);
	/* a frame that links to itself ends the walk instead of looping */
	fj_put64(j, 0xC200, FJ(0xC200));
	fj_put64(j, 0xC200 + 8, FJ(0x7100));
	n = jvm_walk_stack(&w, &r, true, f, 8, &end, th[0].stack_base);
	ck_assert_int_ge(n, 1);
	ck_assert_int_le(n, 3);
	ck_assert_int_eq(end, JVM_END_LOST); /* not whole: never kept */
	/* a Method* that points nowhere is not named (and not cached) */
	ck_assert_ptr_null(jvm_method_info(&w, 0xbad0000));
	jvm_walker_free(&w);
	target_close(t);
	free(j);
}
END_TEST

/* A class unload frees a Method* and a new method may take its address:
 * a cached name is believed only while the words it was read through
 * are the same, checked for a whole walk in one read. */
START_TEST(method_cache_revalidated)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_layout L;
	struct jvm_walker w;
	open_walker(j, &t, &L, &w);
	struct jvm_rawframe f[3] = {{FJ(0x4000), 0, -1, 0}, {FJ(0x4100), 0, -1, 0},
				    {FJ(0x4000), 0, -1, 0}};
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4000))->name, "pkg.Split.leaf");
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4100))->name, "pkg.Split.middle");

	/* unchanged: one system call checks the whole walk, nothing re-read */
	uint64_t calls = target_fake_calls(t);
	ck_assert_int_eq(jvm_methods_check(&w, f, 3), 0);
	ck_assert_uint_eq(target_fake_calls(t) - calls, 1);
	calls = target_fake_calls(t);
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4000))->name, "pkg.Split.leaf");
	ck_assert_uint_eq(target_fake_calls(t), calls);

	/* the Method at 0x4000 freed, a new one there with its own
	 * ConstMethod naming "hot" */
	fj_method(j, 0x4000, 0x4700, 4, (const uint8_t[]){0}, 1);
	ck_assert_int_eq(jvm_methods_check(&w, f, 3), 1);
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4000))->name, "pkg.Split.hot");
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4100))->name, "pkg.Split.middle");

	/* the same ConstMethod address reused with another name index */
	fj_put16(j, 0x4700 + 0x22, 2);
	ck_assert_int_eq(jvm_methods_check(&w, f, 3), 1);
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4000))->name, "pkg.Split.middle");

	/* its constant pool's holder changed: another class now */
	fj_put64(j, 0x4800 + 0x18, FJ(0x4a80));
	fj_put64(j, 0x4a80 + 0x18, FJ(0x4d40));
	fj_symbol(j, 0x4d40, "pkg/Other");
	ck_assert_int_eq(jvm_methods_check(&w, f, 3), 2);
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4100))->name, "pkg.Other.middle");

	/* a new round with nothing checked yet: a lookup checks on its
	 * own, and freed memory that no longer names is not named */
	fj_put64(j, 0x4100 + 8, 0xbad0000);
	ck_assert_int_eq(jvm_methods_check(&w, f, 0), 0);
	ck_assert_ptr_null(jvm_method_info(&w, FJ(0x4100)));
	ck_assert_ptr_null(jvm_method_info(&w, FJ(0x4100)));
	fj_put64(j, 0x4100 + 8, FJ(0x4500)); /* and a good one later is */
	ck_assert_str_eq(jvm_method_info(&w, FJ(0x4100))->name, "pkg.Other.middle");
	jvm_walker_free(&w);
	target_close(t);
	free(j);
}
END_TEST

/* A perf sample's walk: registers and a copy of the stack taken at the
 * sample; the thread has run on since, so frames inside the copy are
 * read from it, deeper ones from memory, and only a whole walk counts. */
START_TEST(walker_stack_copy)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_layout L;
	struct jvm_walker w;
	struct jvm_rawframe f[8];
	enum jvm_walk_end end;
	open_walker(j, &t, &L, &w);
	ck_assert_uint_eq(w.call_stub_ret, FJ_CALL_STUB_RET);
	const uint64_t sp = 0xC080, bcp = FJ(0x4400 + 48 + 5);
	uint8_t copy[0x300];
	memcpy(copy, j->mem + sp, sizeof(copy));
	/* the thread ran on: its frames in memory are gone */
	memset(j->mem + sp, 0x5a, sizeof(copy));
	struct jvm_regs live = {FJ(0x7010), FJ(sp), FJ(0xC100), bcp, NULL, 0, false};
	int n = jvm_walk_stack(&w, &live, false, f, 8, &end, FJ(0xD000));
	ck_assert(n <= 0 || end == JVM_END_LOST);
	struct jvm_regs r = live;
	r.stack = copy;
	r.stack_len = sizeof(copy);
	n = jvm_walk_stack(&w, &r, false, f, 8, &end, FJ(0xD000));
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(end, JVM_END_ENTRY);
	ck_assert_uint_eq(f[0].method, FJ(0x4000));
	ck_assert_uint_eq(f[0].bcp, bcp); /* the leaf's bcp from its register */
	ck_assert_uint_eq(f[1].method, FJ(0x4100));
	ck_assert_uint_eq(f[2].method, FJ(0x4200));
	/* a copy of the leaf frame only: the callers are read from memory,
	 * here as they were (put back), and the walk is whole */
	memcpy(j->mem + sp + 0x100, copy + 0x100, sizeof(copy) - 0x100);
	r.stack_len = 0x100;
	ck_assert_int_eq(jvm_walk_stack(&w, &r, false, f, 8, &end, FJ(0xD000)), 3);
	ck_assert_int_eq(end, JVM_END_ENTRY);
	/* ... but where the deeper frames moved meanwhile, it is not */
	fj_put64(j, 0xC200 + 8, FJ(0x9f00)); /* B's return: no blob */
	n = jvm_walk_stack(&w, &r, false, f, 8, &end, FJ(0xD000));
	ck_assert_int_eq(end, JVM_END_LOST);
	/* a leaf caught before its interpreter frame is built (fp still its
	 * caller's, the slots below sp) is no walk */
	struct jvm_regs early = {FJ(0x7010), FJ(0xC100 - 16), FJ(0xC100), 0, copy, sizeof(copy), false};
	n = jvm_walk_stack(&w, &early, false, f, 8, &end, FJ(0xD000));
	ck_assert_int_lt(n, 0);
	jvm_walker_free(&w);
	target_close(t);
	free(j);
}
END_TEST

/* HotSpot's x86-64 prologues and return paths, as a running leaf may be
 * caught in them; anything else is a frame whose size holds. */
START_TEST(leaf_shapes)
{
	static const struct {
		uint8_t code[24];
		size_t n;
		enum jvm_leaf_shape want;
	} cases[] = {
		{{0xc3}, 1, JVM_LEAF_RET_AT_SP},
		/* C2's return poll after pop rbp: cmp rsp, [r15+d32]; ja; ret */
		{{0x49, 0x3b, 0xa7, 0x48, 0x03, 0, 0, 0x0f, 0x87, 1, 0, 0, 0, 0xc3}, 14,
		 JVM_LEAF_RET_AT_SP},
		{{0x49, 0x3b, 0x67, 0x48, 0x77, 0x01, 0xc3}, 7, JVM_LEAF_RET_AT_SP},
		{{0x0f, 0x87, 1, 0, 0, 0, 0xc3}, 7, JVM_LEAF_RET_AT_SP},
		{{0xc5, 0xf8, 0x77, 0xc3}, 4, JVM_LEAF_RET_AT_SP},
		/* a native wrapper after leave: pending exception? jne; ret */
		{{0x49, 0x81, 0x7f, 0x08, 0, 0, 0, 0, 0x0f, 0x85, 1, 0, 0, 0, 0xc3}, 15,
		 JVM_LEAF_RET_AT_SP},
		{{0x49, 0x83, 0xbf, 0x08, 0x01, 0, 0, 0, 0x75, 0x01, 0xc3}, 11, JVM_LEAF_RET_AT_SP},
		{{0x5d, 0x49, 0x3b, 0xa7, 0x48, 0x03, 0, 0}, 8, JVM_LEAF_RBP_AT_SP},
		{{0xc9, 0xc3}, 2, JVM_LEAF_VIA_RBP},
		/* the prologue: stack bang, push rbp, sub rsp / mov rbp, rsp */
		{{0x89, 0x84, 0x24, 0, 0xc0, 0xfe, 0xff, 0x55, 0x48, 0x83, 0xec, 0x20}, 12,
		 JVM_LEAF_RET_AT_SP},
		{{0x55, 0x48, 0x83, 0xec, 0x20}, 5, JVM_LEAF_RET_AT_SP},
		{{0x55, 0x48, 0x89, 0xe5}, 4, JVM_LEAF_RET_AT_SP},
		{{0x48, 0x81, 0xec, 0, 1, 0, 0}, 7, JVM_LEAF_RBP_AT_SP},
		{{0x48, 0x8b, 0xec}, 3, JVM_LEAF_RBP_AT_SP},
		/* inside a whole frame */
		{{0x48, 0x83, 0xc4, 0x20, 0x5d, 0xc3}, 6, JVM_LEAF_BUILT}, /* add rsp: still whole */
		{{0x0f, 0x87, 1, 0, 0, 0, 0x48, 0x8b, 0x06}, 9, JVM_LEAF_BUILT}, /* a branch in the body */
		{{0x49, 0x3b, 0xa7, 0x48, 0x03, 0, 0, 0x0f, 0x87, 1, 0, 0, 0, 0x8b}, 14, JVM_LEAF_BUILT},
		{{0x55, 0x8b}, 2, JVM_LEAF_BUILT},
		{{0x89, 0x84, 0x24, 0, 0xc0, 0xfe, 0xff, 0x8b}, 8, JVM_LEAF_BUILT},
		{{0}, 1, JVM_LEAF_BUILT},
		{{0xc3}, 0, JVM_LEAF_BUILT}, /* nothing read */
		/* cut short: a prefix of an instruction is no instruction */
		{{0x49, 0x3b, 0xa7, 0x48}, 4, JVM_LEAF_BUILT},
	};
	for (size_t i = 0; i < CG_ARRAY_LEN(cases); i++)
		ck_assert_msg(jvm_leaf_shape(cases[i].code, cases[i].n) == cases[i].want, "case %zu", i);
}
END_TEST

/* A running leaf caught in its compiled frame's prologue or return path:
 * the frame size would climb past the frame's caller; the code at pc
 * says how much of the frame is on the stack. */
START_TEST(walker_partial_leaf)
{
	struct fakejvm *j = fakejvm_new();
	struct target *t;
	struct jvm_layout L;
	struct jvm_walker w;
	struct jvm_rawframe f[8];
	enum jvm_walk_end end;
	open_walker(j, &t, &L, &w);
	/* C (compiled, 4 words at fb + 16, its return the call stub's) */
	const uint64_t blob = 0x8110, code = blob + 0x100, fb = 0xC200;
	const uint64_t ret_slot = fb + 16 + 32 - 8;
	fj_put64(j, ret_slot - 8, FJ(0xC300)); /* the caller's rbp, pushed */
	static const uint8_t ret[] = {0xc3};
	static const uint8_t sub[] = {0x48, 0x83, 0xec, 0x10};
	static const uint8_t leave[] = {0xc9, 0xc3};
	static const struct {
		const uint8_t *code;
		size_t n;
		uint64_t sp, fp;
	} at[] = {
		{ret, sizeof(ret), ret_slot, 0xC300},       /* frame gone: [sp] returns */
		{sub, sizeof(sub), ret_slot - 8, 0xC100},   /* only rbp pushed */
		{leave, sizeof(leave), fb + 16, ret_slot - 8}, /* rbp the frame's base */
	};
	for (size_t i = 0; i < CG_ARRAY_LEN(at); i++) {
		memset(j->mem + code, 0, 24);
		memcpy(j->mem + code, at[i].code, at[i].n);
		struct jvm_regs r = {FJ(code), FJ(at[i].sp), FJ(at[i].fp), 0, NULL, 0, false};
		int n = jvm_walk_stack(&w, &r, false, f, 8, &end, FJ(0xD000));
		ck_assert_msg(n == 1 && end == JVM_END_ENTRY, "case %zu: %d frames, end %d", i, n, end);
		ck_assert_uint_eq(f[0].method, FJ(0x4200));
		ck_assert_int_eq(f[0].compiled, 1);
		/* a return address of the same code (the caller of native
		 * frames) stands in a whole frame: no shape is read, and
		 * where sp is not the frame's (all but at leave, whose sp
		 * still is) its size climbs past the caller */
		r.caller = true;
		n = jvm_walk_stack(&w, &r, false, f, 8, &end, FJ(0xD000));
		if (at[i].code != leave)
			ck_assert_msg(end == JVM_END_LOST, "case %zu as a caller: end %d", i, end);
	}
	/* in the body, with the frame whole, the frame size holds */
	memset(j->mem + code, 0, 24);
	struct jvm_regs whole = {FJ(code), FJ(fb + 16), FJ(0xC100), 0, NULL, 0, false};
	ck_assert_int_eq(jvm_walk_stack(&w, &whole, false, f, 8, &end, FJ(0xD000)), 1);
	ck_assert_int_eq(end, JVM_END_ENTRY);
	/* and read as a popped frame it would not be whole */
	struct jvm_regs wrong = whole;
	wrong.sp = FJ(ret_slot - 16);
	(void)jvm_walk_stack(&w, &wrong, false, f, 8, &end, FJ(0xD000));
	ck_assert_int_eq(end, JVM_END_LOST);
	jvm_walker_free(&w);
	target_close(t);
	free(j);
}
END_TEST

START_TEST(linetable_encodings)
{
	/* (bci 0, line 10), (bci 4, line 12) */
	/* JDK 17: bytes below 192 stand for themselves */
	static const uint8_t t17[] = {0xff, 0x00, 20, (4 << 3) | 2, 0};
	/* JDK 20+: UNSIGNED5 adds one to every byte */
	static const uint8_t t21[] = {0xff, 0x01, 21, (4 << 3) | 2, 0};
	ck_assert_int_eq(jvm_linetable_encoding(t17, sizeof(t17)), 2);
	ck_assert_int_eq(jvm_linetable_encoding(t21, sizeof(t21)), 1);
	ck_assert_int_eq(jvm_linetable_lookup(t17, sizeof(t17), 0, false), 10);
	ck_assert_int_eq(jvm_linetable_lookup(t17, sizeof(t17), 3, false), 10);
	ck_assert_int_eq(jvm_linetable_lookup(t17, sizeof(t17), 9, false), 12);
	ck_assert_int_eq(jvm_linetable_lookup(t21, sizeof(t21), 4, true), 12);
	/* a multi-byte value: line delta 300 -> 600 signed; old: 600 =
	 * 192 + 408 -> b0 = 192 + (408 % 64) = 216, b1 = 408 / 64 = 6 */
	static const uint8_t big17[] = {0xff, 0x00, 216, 6, 0};
	ck_assert_int_eq(jvm_linetable_lookup(big17, sizeof(big17), 0, false), 300);
	/* UNSIGNED5: 600 = 191 + 409 -> b0 = 1 + 191 + (409 % 64) = 217,
	 * b1 = 1 + 409 / 64 = 7 */
	static const uint8_t big21[] = {0xff, 0x01, 217, 7, 0};
	ck_assert_int_eq(jvm_linetable_lookup(big21, sizeof(big21), 0, true), 300);
	/* cut off, or going backwards: no line rather than a wrong one */
	static const uint8_t cut[] = {0xff, 0x00};
	ck_assert_int_eq(jvm_linetable_lookup(cut, sizeof(cut), 0, false), 0);
	static const uint8_t neg[] = {0xff, 0x01, 20, 0}; /* bci -1 */
	ck_assert_int_eq(jvm_linetable_lookup(neg, sizeof(neg), 0, false), 0);
}
END_TEST

static Suite *jvm_suite(void)
{
	Suite *s = suite_create("jvm");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, dump_jdk17);
	tcase_add_test(tc, dump_jdk25_crlf_unterminated);
	tcase_add_test(tc, dump_max_depth);
	tcase_add_test(tc, dump_malformed);
	tcase_add_test(tc, dump_mutated);
	tcase_add_test(tc, heap_parse);
	tcase_add_test(tc, heap_malformed);
	tcase_add_test(tc, perf_data);
	suite_add_tcase(s, tc);
	tc = tcase_create("attach");
	tcase_add_test(tc, attach_request_reply);
	tcase_add_test(tc, attach_refused_no_sigpipe);
	tcase_add_test(tc, attach_timeout);
	tcase_add_test(tc, attach_backlog_full);
	tcase_add_test(tc, attach_init_takes_the_jvms_own_ids);
	tcase_add_test(tc, attach_ready_waits_for_the_dispatcher);
	tcase_add_test(tc, attach_ready_refuses_disabled_attach);
	tcase_add_test(tc, attach_start_signals_once_and_cleans_up);
	tcase_add_test(tc, attach_start_gives_up);
	tcase_add_test(tc, rate_default_and_warning);
	suite_add_tcase(s, tc);
	tc = tcase_create("walker");
	tcase_add_test(tc, vmstructs_read_and_resolve);
	tcase_add_test(tc, vmstructs_hostile_tables);
	tcase_add_test(tc, layout_constmethod_fields_inside);
	tcase_add_test(tc, walker_threads_and_frames);
	tcase_add_test(tc, method_cache_revalidated);
	tcase_add_test(tc, walker_stack_copy);
	tcase_add_test(tc, leaf_shapes);
	tcase_add_test(tc, walker_partial_leaf);
	tcase_add_test(tc, linetable_encodings);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(jvm_suite)
