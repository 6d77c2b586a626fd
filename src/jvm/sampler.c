/* The JVM sampler (jvm_sampler_ops): finds HotSpot in a target and hands
 * each round to a stack mechanism: the VMStructs walker, else thread dumps. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/jvm.h"
#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"
#include "jvm_priv.h"
#include "jvm_walk.h"

struct jvm_sampler;

/* A Java thread's name as last read from its Thread object. */
struct jvm_tname {
	pid_t tid;
	uint64_t round;
	char name[64];
};
/* Names are re-read this often (rounds): Thread.setName is rare. */
#define JVM_TNAME_REFRESH 128

/* Rates a mechanism can sample at, by JVM major version (ascending). */
struct jvm_rate {
	int upto_major;
	double default_hz, max_hz;
};

/* A way to get Java stacks out of a JVM. Thread dumps over the attach
 * socket work everywhere but stop the JVM at a safepoint per sample (so
 * they are safepoint-biased and cost the target); a reader of HotSpot's
 * exported gHotSpotVMStructs tables from outside would be a second entry
 * in jvm_mechs[], tried first by jvm_open() and failing its open() with
 * -ENOTSUP for a JVM it cannot serve. */
struct jvm_mech {
	const char *name;
	const char *cost;             /* what a sample costs the JVM */
	const struct jvm_rate *rates; /* last entry: upto_major INT_MAX */
	int (*open)(struct jvm_sampler *js);
	int (*sample)(struct jvm_sampler *js, cg_sample_fn fn, void *arg,
		      struct cg_sample_stats *stats);
	void (*close)(struct jvm_sampler *js);
};

struct jvm_sampler {
	struct target *t;
	struct cg_sampler_opts opts;
	const struct jvm_mech *mech;
	struct jvm_attach attach;
	char version[160];
	int major;            /* Java feature release, 0 if unknown */
	/* attach mechanism state */
	struct cg_buf reply;
	struct jvm_dump dump;
	/* JVM in another PID namespace: its thread ids (nid) -> ours */
	struct cg_map tids;
	bool tids_fresh;
	/* walker mechanism state */
	struct jvm_walker *w;
	struct jvm_jthread *th;
	struct jvm_rawframe *raw;
	struct cg_frame *frames;
	uint32_t depth;
	uint64_t rounds;
	struct jvm_objlayout O;
	struct cg_map name_slot;      /* JavaThread* -> 1 + index in names */
	struct jvm_tname *names;
	size_t nnames;
	/* registers of threads in Java: the kernel's CPU-clock samples, or
	 * (perf NULL) a pause of the thread */
	struct target_perf *perf;
	pid_t *perf_tids;             /* host tids perf was last synced to */
	size_t nperf_tids;
	pid_t *round_tids;            /* this round's, in th[] order */
	/* per th[] slot: the kernel's samples of it outside Java code since
	 * the last round, each 1/rate s of its CPU time there */
	uint32_t *cpu_out;
	struct cg_map tid_slot;       /* host tid -> 1 + index in th[], this round */
	struct cg_map perf_has;       /* host tid -> 1 when perf samples it */
	int nth;
	/* the round a perf drain belongs to */
	cg_sample_fn fn;
	void *arg;
	struct cg_sample_stats *stats;
	uint64_t perf_seen, perf_native; /* for -v: samples, and those outside Java */
	/* kernel samples outside Java code: their native frames unwound
	 * (libunwind over the stack copy) to the Java frame below them */
	struct native_ctx *nat;
	uint64_t jvm_lo, jvm_hi;      /* libjvm.so's mappings, to tell VM from native */
	uint64_t perf_unwound;        /* for -v: those walked from the sample */
};

/* ---- mechanism: thread dumps over the attach socket ---- */

/* Refill the namespaced-tid map: each of our thread ids by the id the JVM
 * knows it as (nid in dumps, OSThread::_thread_id for the walker). */
static void attach_map_tids(struct jvm_sampler *js)
{
	pid_t tids[JVM_WALK_MAX_THREADS];
	cg_map_clear(&js->tids);
	js->tids_fresh = true;
	int n = target_threads(js->t, tids, CG_ARRAY_LEN(tids));
	for (int i = 0; i < n; i++) {
		pid_t ns;
		if (target_thread_nstid(js->t, tids[i], &ns) == 0 && ns > 0)
			cg_map_put(&js->tids, (uint64_t)ns, (uint64_t)tids[i]);
	}
}

static pid_t attach_host_tid(struct jvm_sampler *js, pid_t nid)
{
	uint64_t v;
	if (js->attach.nspid == js->attach.pid || nid <= 0)
		return nid;
	if (cg_map_get(&js->tids, (uint64_t)nid, &v))
		return (pid_t)v;
	if (!js->tids_fresh) {
		attach_map_tids(js);
		if (cg_map_get(&js->tids, (uint64_t)nid, &v))
			return (pid_t)v;
	}
	return nid;
}

/* "OpenJDK 64-Bit Server VM 17.0.15+6-Debian" -> 17; JDK 8's HotSpot calls
 * itself "25.202-b08" (no '+'), which is 8, not 25. 0 if unknown. */
int jvm_major_version(const char *vm)
{
	const char *v = strrchr(vm, ' ');
	v = v ? v + 1 : vm;
	if (*v < '0' || *v > '9')
		return 0;
	int major = atoi(v);
	if (!strchr(v, '+') && strstr(v, "-b"))
		return 8;
	return major > 0 && major < 1000 ? major : 0;
}

/* One thread dump into js->dump. 0 or negative with cg_fail(). */
static int attach_dump(struct jvm_sampler *js)
{
	int status = 0, r;
	if ((r = jvm_attach_start(&js->attach)))
		return r;
	r = jvm_attach_request(&js->attach, "threaddump", NULL,
			       jvm_timeout_ms(JVM_DUMP_TIMEOUT_MS), &status, &js->reply);
	if (r)
		return r;
	if (status != 0)
		return cg_fail(-EIO, "JVM %d refused the thread dump (code %d)",
			       (int)js->attach.pid, status);
	r = jvm_dump_parse(js->reply.data, js->reply.len, js->opts.max_depth, &js->dump);
	if (r)
		return cg_fail(r, "out of memory parsing a thread dump");
	return 0;
}

static int attach_open(struct jvm_sampler *js)
{
	/* The first dump proves attach works and names the VM, so a refusal
	 * shows up here as a clear error instead of as lost samples. */
	int r = attach_dump(js);
	if (r)
		return r;
	if (!js->dump.nthreads)
		return cg_fail(-EPROTO, "JVM %d sent a thread dump without Java threads",
			       (int)js->attach.pid);
	snprintf(js->version, sizeof(js->version), "%s",
		 js->dump.vm[0] ? js->dump.vm : "HotSpot JVM");
	js->major = jvm_major_version(js->version);
	return 0;
}

static int attach_sample(struct jvm_sampler *js, cg_sample_fn fn, void *arg,
			 struct cg_sample_stats *stats)
{
	int r = attach_dump(js);
	if (r) {
		if (!target_alive(js->t))
			return -ESRCH;
		/* A slow or briefly unreachable JVM costs this round only. */
		cg_debug("jvm: %s", cg_lasterr());
		cg_clearerr();
		stats->lost[CG_LOST_READ]++;
		return 0;
	}
	js->tids_fresh = false;
	for (size_t i = 0; i < js->dump.nthreads; i++) {
		const struct jvm_thread *th = &js->dump.threads[i];
		if (!js->opts.idle && th->state != CG_ST_RUNNING && th->state != CG_ST_NATIVE)
			continue;
		pid_t tid = attach_host_tid(js, th->nid);
		/* The JVM calls a thread in native code RUNNABLE even while it
		 * sleeps in the kernel (Reference Handler on its condition
		 * variable, a socket read): off CPU, it is no CPU sample. Java
		 * code itself cannot be asked: the dump's safepoint just
		 * stopped it. */
		if (!js->opts.idle && th->state == CG_ST_NATIVE &&
		    target_thread_oncpu(js->t, tid) != TARGET_THREAD_RUNNING)
			continue;
		struct cg_sample s = {
			.pid = js->attach.pid,
			.tid = tid,
			.thread_name = th->name,
			.state = th->state,
			.truncated = th->truncated,
			.nframes = th->nframes,
			.frames = &js->dump.frames[th->first],
		};
		fn(&s, arg);
		stats->taken++;
	}
	return (int)js->dump.nthreads;
}

static void attach_close(struct jvm_sampler *js)
{
	cg_buf_free(&js->reply);
	jvm_dump_free(&js->dump);
}

/* Measured: see include/cgprof/jvm.h. */
static const struct jvm_rate jvm_attach_rates[] = {
	{17, CG_JVM_DEFAULT_RATE_HZ_JDK17, CG_JVM_MAX_RATE_HZ_JDK17},
	{INT_MAX, CG_JVM_DEFAULT_RATE_HZ, CG_JVM_MAX_RATE_HZ},
};

static const struct jvm_mech jvm_mech_attach = {
	.name = "thread dumps over HotSpot attach",
	.cost = "every sample stops all Java threads at a safepoint",
	.rates = jvm_attach_rates,
	.open = attach_open,
	.sample = attach_sample,
	.close = attach_close,
};

/* ---- mechanism: HotSpot's own tables, read from outside ---- */

/* "HotSpot 17.0.15+6-Debian-1deb12u1" from Abstract_VM_Version. */
static void walker_version(struct jvm_sampler *js, const struct jvm_vms *v)
{
	uint64_t a, s;
	char rel[96];
	snprintf(js->version, sizeof(js->version), "HotSpot JVM");
	if (jvm_vms_static(v, "Abstract_VM_Version", "_s_vm_release", &a) == 0 &&
	    target_read(js->t, a, &s, 8) == 0 && s && target_read_cstr(js->t, s, rel, sizeof(rel)) == 0 &&
	    rel[0] >= '0' && rel[0] <= '9')
		snprintf(js->version, sizeof(js->version), "HotSpot JVM %s", rel);
	js->major = jvm_major_version(js->version);
}

static int walker_open(struct jvm_sampler *js)
{
	struct jvm_vms_syms syms;
	struct jvm_vms v = {0};
	struct jvm_layout L;
	char lib[256];
	int r;
	const char *force = getenv("CGPROF_JVM_SAMPLER");
	if (force && !strcmp(force, "dump"))
		return -ENOTSUP;
	if ((r = jvm_vms_find_syms(js->t, &syms, lib, sizeof(lib))) ||
	    (r = jvm_vms_read(js->t, &syms, &v)) || (r = jvm_layout_resolve(&v, &L)))
		goto out;
	if (L.missing[0])
		cg_info("jvm: some HotSpot fields are not described (%s): those details are off",
			L.missing);
	walker_version(js, &v);
	js->jvm_lo = syms.lo;
	js->jvm_hi = syms.hi;
	jvm_objlayout_resolve(js->t, &v, &syms, &js->O);
	if (!js->O.ok)
		cg_info("jvm: cannot read java.lang.Thread objects: thread states come from the OS "
			"thread state (timed waits show as WAITING)");
	else if (!js->O.names)
		cg_info("jvm: cannot read Java thread names: OS thread names are shown");
	cg_map_init(&js->name_slot);
	cg_map_init(&js->tid_slot);
	cg_map_init(&js->perf_has);
	js->depth = js->opts.max_depth && js->opts.max_depth < JVM_WALK_MAX_DEPTH ? js->opts.max_depth
										    : JVM_WALK_MAX_DEPTH;
	js->w = calloc(1, sizeof(*js->w));
	js->th = calloc(JVM_WALK_MAX_THREADS, sizeof(*js->th));
	js->raw = calloc(js->depth, sizeof(*js->raw));
	js->frames = calloc(js->depth, sizeof(*js->frames));
	js->round_tids = calloc(JVM_WALK_MAX_THREADS, sizeof(*js->round_tids));
	js->cpu_out = calloc(JVM_WALK_MAX_THREADS, sizeof(*js->cpu_out));
	if (!js->w || !js->th || !js->raw || !js->frames || !js->round_tids || !js->cpu_out) {
		r = -ENOMEM;
		goto out;
	}
	jvm_walker_init(js->w, js->t, &L);
	/* One list of threads proves the tables describe this process. */
	r = jvm_walk_threads(js->w, js->th, JVM_WALK_MAX_THREADS);
	if (r <= 0) {
		r = cg_fail(-EPROTO, "HotSpot's thread list does not read back (%d)", r);
		goto out;
	}
	r = 0;
out:
	jvm_vms_free(&v);
	return r;
}

/* th read again (state and anchor), the round's Thread-object state kept:
 * 0, or negative with th as it was. */
static int walker_reread(struct jvm_sampler *js, struct jvm_jthread *th)
{
	struct jvm_jthread again = *th;
	int e = jvm_thread_reread(js->w, &again);
	if (e)
		return e;
	again.state = th->state;
	*th = again;
	return 0;
}

/* A thread paused for its walk: where it is read again once it holds
 * still, its anchor (in the VM or native code now) or its registers (in
 * Java). What the round read of it is from before the pause: a thread
 * read in Java that has gone into the VM since is stopped in native code
 * (measured: in libc's read() under a CPU-time read), where a walk from
 * its registers does not start. 1 (held: resume it), or negative
 * (counted). */
static int walker_hold(struct jvm_sampler *js, struct jvm_jthread *th, pid_t tid,
		       struct jvm_regs *r, bool *anchor, struct cg_sample_stats *stats)
{
	int e = target_pause(js->t, tid);
	if (e) {
		stats->lost[e == -ESRCH ? CG_LOST_GONE : CG_LOST_PAUSE]++;
		return e;
	}
	if (walker_reread(js, th)) {
		target_resume(js->t, tid);
		stats->lost[CG_LOST_READ]++;
		return -EFAULT;
	}
	*anchor = th->ts != JVM_TS_IN_JAVA;
	if (*anchor) {
		if (!th->sp) { /* in the VM for good: no Java frame */
			target_resume(js->t, tid);
			stats->lost[CG_LOST_TORN]++;
			return -ESTALE;
		}
		*r = (struct jvm_regs){th->pc, th->sp, th->fp, 0, NULL, 0, false};
		return 1;
	}
	struct target_regs tr;
	if ((e = target_thread_regs(js->t, tid, &tr))) {
		target_resume(js->t, tid);
		stats->lost[CG_LOST_PAUSE]++;
		return e;
	}
	*r = (struct jvm_regs){tr.pc, tr.sp, tr.fp, tr.r13, NULL, 0, false};
	return 1;
}

/* The registers a walk of th starts from: a running Java thread is paused
 * for the read (only it; the JVM runs on), any other starts from its last
 * Java frame anchor. 1 when the thread is held (resume after the walk), 0
 * when not, negative: no sample (counted). Threads in Java come here only
 * where perf samples are refused, or for a dump's one round. */
static int walker_start(struct jvm_sampler *js, struct jvm_jthread *th, pid_t tid,
			struct jvm_regs *r, bool *anchor, struct cg_sample_stats *stats)
{
	*anchor = th->ts != JVM_TS_IN_JAVA;
	if (*anchor) {
		*r = (struct jvm_regs){th->pc, th->sp, th->fp, 0, NULL, 0, false};
		return 0;
	}
	if (js->opts.nonblocking) {
		stats->lost[CG_LOST_PAUSE]++;
		return -EAGAIN;
	}
	return walker_hold(js, th, tid, r, anchor, stats);
}

/* A walk is kept only when whole: it reached the call stub the thread
 * entered Java from, or the depth bound. */
static bool walk_whole(enum jvm_walk_end end)
{
	return end == JVM_END_ENTRY || end == JVM_END_DEPTH;
}

/* Walk one thread's stack into js->raw: the number of frames, -EAGAIN
 * when the thread could not be paused (counted), -ESTALE when the
 * thread's anchor kept moving under the walk (or, perf sampling the
 * thread, it went back to Java), -ENODATA for a walk that did not end
 * whole, or another negative. A thread read from its anchor runs on
 * meanwhile; the walk counts only if the anchor is the same afterwards,
 * else it is tried again, the last time paused where pausing is allowed
 * (not under perf sampling, not --nonblocking): a thread that calls into
 * the VM all the time (a clock read in a loop) moved under every unpaused
 * walk on a slow machine and went missing from a dump. */
static int walker_walk(struct jvm_sampler *js, struct jvm_jthread *th, pid_t tid, bool perf,
		       bool *truncated, struct cg_sample_stats *stats)
{
	enum { TRIES = 3 };
	int nf = -ESTALE;
	for (int attempt = 0; attempt < TRIES; attempt++) {
		struct jvm_regs r;
		enum jvm_walk_end end;
		bool anchor;
		bool hold = attempt == TRIES - 1 && !perf && !js->opts.nonblocking;
		int held = hold ? walker_hold(js, th, tid, &r, &anchor, stats)
				: walker_start(js, th, tid, &r, &anchor, stats);
		if (held < 0) {
			cg_debug("jvm: thread %d (state %d) not sampled: %s", (int)tid, (int)th->ts,
				 strerror(-held));
			return -EAGAIN;
		}
		nf = jvm_walk_stack(js->w, &r, anchor, js->raw, js->depth, &end, th->stack_base);
		*truncated = end == JVM_END_DEPTH;
		if (held) {
			target_resume(js->t, tid);
			nf = nf > 0 && !walk_whole(end) ? -ENODATA : nf;
			/* A dump looks at each thread once: one paused where
			 * its walk does not end whole is looked at again, 1 ms
			 * on. A profile counts it lost: a sample taken later
			 * is not of the instant it stands for. */
			if (nf > 0 || js->opts.rate_hz > 0 || attempt == TRIES - 1 ||
			    walker_reread(js, th))
				return nf;
			/* a moment on: paused again at once, it stands where it stood */
			nanosleep(&(struct timespec){0, 1000000}, NULL);
			continue;
		}
		struct jvm_jthread again = *th;
		if (jvm_thread_reread(js->w, &again))
			return -EFAULT;
		if (again.sp == th->sp && again.pc == th->pc && again.ts == th->ts && nf > 0)
			return walk_whole(end) ? nf : -ENODATA;
		nf = -ESTALE;
		again.state = th->state;
		*th = again;
		/* In the VM with no anchor: its state and anchor read apart
		 * (in or out of the VM between the reads; measured: 1 dump in
		 * 60 lacked a thread that reads its CPU clock in a loop); read
		 * again paused, where a pause is allowed */
		if (th->ts != JVM_TS_IN_JAVA && !th->sp) {
			if (perf || js->opts.nonblocking)
				return -ESTALE;
			attempt = TRIES - 2;
		}
		/* Back in Java meanwhile: where perf samples it, that time is
		 * in its samples, and it is never paused. */
		if (th->ts == JVM_TS_IN_JAVA && perf)
			return -ESTALE;
	}
	return nf;
}

/* The Java name of th (cached), else its OS name, else its id. */
static const char *walker_thread_name(struct jvm_sampler *js, const struct jvm_jthread *th,
				      pid_t tid)
{
	uint64_t idx;
	struct jvm_tname *tn = NULL;
	if (cg_map_get(&js->name_slot, th->addr, &idx)) {
		tn = &js->names[idx];
		if (tn->tid == th->tid && js->rounds - tn->round < JVM_TNAME_REFRESH)
			return tn->name;
	} else {
		if (!(js->nnames & (js->nnames - 1)) || !js->nnames) {
			size_t cap = js->nnames ? js->nnames * 2 : 16;
			struct jvm_tname *p = realloc(js->names, cap * sizeof(*p));
			if (!p)
				return "?";
			js->names = p;
		}
		if (cg_map_put(&js->name_slot, th->addr, js->nnames))
			return "?";
		tn = &js->names[js->nnames++];
	}
	tn->tid = th->tid;
	tn->round = js->rounds;
	if (jvm_thread_jname(js->t, &js->O, th->addr, tn->name, sizeof(tn->name)) || !tn->name[0])
		if (target_thread_name(js->t, tid, tn->name, sizeof(tn->name)) || !tn->name[0])
			snprintf(tn->name, sizeof(tn->name), "%d", (int)tid);
	return tn->name;
}

/* Name the raw frames of one walk into js->frames. */
static uint32_t walker_name(struct jvm_sampler *js, int n)
{
	uint32_t k = 0;
	/* cached names still those of these Method*s? one read for all */
	(void)jvm_methods_check(js->w, js->raw, (size_t)n);
	for (int i = 0; i < n; i++) {
		const struct jvm_minfo *mi = jvm_method_info(js->w, js->raw[i].method);
		if (!mi)
			continue;
		int32_t bci = jvm_frame_bci(mi, &js->raw[i]);
		js->frames[k++] = (struct cg_frame){
			.name = mi->name,
			.file = mi->file,
			.line = jvm_method_line(js->w, mi, bci),
			.kind = CG_FK_JAVA,
		};
	}
	return k;
}

/* Name and hand on one walk of th as `times` samples; counts them, or
 * why they were lost. */
static void walker_emit(struct jvm_sampler *js, struct jvm_jthread *th, pid_t tid, int nf,
			bool truncated, enum cg_state state, uint32_t times, cg_sample_fn fn,
			void *arg, struct cg_sample_stats *stats)
{
	if (nf == -EAGAIN)
		return; /* counted */
	uint32_t k = nf > 0 ? walker_name(js, nf) : 0;
	if (!k) {
		cg_debug("jvm: thread %d (state %d) not sampled: %s", (int)tid, (int)th->ts,
			 nf > 0 ? "no frame named" : strerror(-nf));
		stats->lost[nf == -ESTALE    ? CG_LOST_TORN
			    : nf == -ENODATA ? CG_LOST_PARTIAL
					     : CG_LOST_READ] += times;
		return;
	}
	struct cg_sample s = {
		.pid = js->attach.pid,
		.tid = tid,
		.thread_name = walker_thread_name(js, th, tid),
		.state = state,
		.truncated = truncated,
		.nframes = k,
		.frames = js->frames,
	};
	for (uint32_t i = 0; i < times; i++)
		fn(&s, arg);
	stats->taken += times;
}

#if defined(__x86_64__)
#include <asm/perf_regs.h>
#define JVM_PERF_REG_BCP PERF_REG_X86_R13 /* the interpreter's bytecode pointer */
#else
#define JVM_PERF_REG_BCP (-1)
#endif

/* Native frames between a kernel sample and Java code are at most this
 * many: the VM's deepest paths from a Java call (class loading, a
 * deoptimization) stay well under it. */
#define JVM_NATIVE_MAX_FRAMES 128u

struct jvm_to_java {
	const struct jvm_sampler *js;
	bool in_vm; /* a frame in libjvm.so on the way: the thread is in the VM */
};

static bool jvm_ip_in_vm(const struct jvm_sampler *js, uint64_t ip)
{
	return ip >= js->jvm_lo && ip < js->jvm_hi;
}

static bool walker_to_java(void *arg, uint64_t ip)
{
	struct jvm_to_java *tj = arg;
	if (jvm_pc_in_java(tj->js->w, ip))
		return true;
	tj->in_vm |= jvm_ip_in_vm(tj->js, ip);
	return false;
}

/* A kernel sample outside Java code (the VM's own code, a native method,
 * libc): its native frames are unwound over the stack copy down to the
 * Java frame that called them, and the Java stack is walked from there,
 * as it was at the sample instant. The state is the one HotSpot would
 * give: in the VM (RUNNING) when a libjvm.so frame is on the way, else
 * in native code (NATIVE). false: no whole walk; the round's anchor walk
 * then stands for the sample (see walker_sample). */
static bool walker_from_native(struct jvm_sampler *js, struct jvm_jthread *th,
			       const struct target_perf_sample *ps)
{
	/* No look at the round's state and anchor here: they were read at
	 * the round, not at the sample, and apart (a thread caught in or out
	 * of the VM between the two reads shows IN_VM without an anchor);
	 * trusting them lost ~1% of VmCalls' samples, 2% under ASan. A thread
	 * without Java frames (a compiler thread) unwinds to its root and
	 * finds none. */
	struct jvm_to_java tj = {js, jvm_ip_in_vm(js, ps->ip)};
	struct native_handoff h;
	if (!js->nat || !ps->ip ||
	    native_unwind_sample_to(js->nat, ps, walker_to_java, &tj, JVM_NATIVE_MAX_FRAMES, &h))
		return false;
	struct jvm_regs r = {h.ip, h.sp, h.fp, 0, NULL, 0, true};
	if (h.sp >= ps->sp && h.sp - ps->sp < ps->stack_len) {
		r.stack = ps->stack + (h.sp - ps->sp);
		r.stack_len = ps->stack_len - (h.sp - ps->sp);
	}
	enum jvm_walk_end end;
	int nf = jvm_walk_stack(js->w, &r, false, js->raw, js->depth, &end, th->stack_base);
	if (nf <= 0 || !walk_whole(end))
		return false;
	walker_emit(js, th, ps->tid, nf, end == JVM_END_DEPTH,
		    tj.in_vm ? CG_ST_RUNNING : CG_ST_NATIVE, 1, js->fn, js->arg, js->stats);
	js->perf_unwound++;
	return true;
}

/* One kernel sample of a Java thread: walked from its registers over its
 * stack copy. A sample whose pc is outside Java code (the JVM's own
 * code, a native library, libc) is walked from the Java frame below its
 * native ones; where that fails it is counted for the thread, and the
 * round's anchor walk stands for that CPU time (see walker_sample). */
static void walker_on_perf(const struct target_perf_sample *ps, void *arg)
{
	struct jvm_sampler *js = arg;
	uint64_t idx;
	if (!cg_map_get(&js->tid_slot, (uint64_t)ps->tid, &idx) || !idx || idx > (uint64_t)js->nth)
		return; /* not a Java thread (any more) */
	js->perf_seen++;
	struct jvm_jthread *th = &js->th[idx - 1];
	if (!ps->ip || !jvm_pc_in_java(js->w, ps->ip)) {
		js->perf_native++;
		if (!walker_from_native(js, th, ps))
			js->cpu_out[idx - 1]++;
		return;
	}
	struct jvm_regs r = {ps->ip, ps->sp, ps->fp, 0, ps->stack, ps->stack_len, false};
	if (JVM_PERF_REG_BCP >= 0 && JVM_PERF_REG_BCP < TARGET_PERF_MAX_REGS &&
	    (ps->regs_mask >> JVM_PERF_REG_BCP & 1))
		r.bcp = ps->regs[JVM_PERF_REG_BCP];
	enum jvm_walk_end end;
	int nf = jvm_walk_stack(js->w, &r, false, js->raw, js->depth, &end, th->stack_base);
	if (nf <= 0 || !walk_whole(end))
		nf = -ENODATA; /* a frame did not check out: caught mid-call, say */
	walker_emit(js, th, ps->tid, nf, end == JVM_END_DEPTH, CG_ST_RUNNING, 1, js->fn, js->arg,
		    js->stats);
}

/* Follow HotSpot's thread list with perf events: one per Java thread,
 * opened for a new thread, closed for one gone (its last samples kept). */
static int walker_perf_sync(struct jvm_sampler *js, int n)
{
	if ((size_t)n == js->nperf_tids &&
	    !memcmp(js->round_tids, js->perf_tids, (size_t)n * sizeof(pid_t)))
		return 0;
	int r = target_perf_sync(js->perf, js->round_tids, (size_t)n, walker_on_perf, js);
	if (r < 0)
		return r;
	memcpy(js->perf_tids, js->round_tids, (size_t)n * sizeof(pid_t));
	js->nperf_tids = (size_t)n;
	cg_map_clear(&js->perf_has);
	for (int i = 0; i < n; i++)
		if (target_perf_has(js->perf, js->round_tids[i]))
			(void)cg_map_put(&js->perf_has, (uint64_t)js->round_tids[i], 1);
	return 0;
}

/* The unwinder for samples outside Java code. Without it those samples
 * weigh the round's anchor walk. */
static void walker_native_open(struct jvm_sampler *js)
{
	if (native_open(js->t, &js->nat)) {
		cg_info("jvm: %s; samples outside Java code weigh the round's anchor walk",
			cg_lasterr());
		cg_clearerr();
		js->nat = NULL;
	}
}

/* Open perf events for every Java thread when the system allows them
 * and the profile has a rate; else say once why and what pausing costs. */
static void walker_perf_open(struct jvm_sampler *js, int n)
{
	const char *force = getenv("CGPROF_JVM_SAMPLER");
	if (!(js->opts.rate_hz > 0))
		return; /* one round (dump): a pause is exact and brief */
	if (force && !strcmp(force, "pause")) {
		cg_info("jvm: running Java threads are paused for their registers "
			"(CGPROF_JVM_SAMPLER=pause)");
		return;
	}
	js->perf_tids = calloc(JVM_WALK_MAX_THREADS, sizeof(pid_t));
	if (!js->perf_tids)
		return;
	for (int i = 0; i < n; i++)
		js->round_tids[i] = attach_host_tid(js, js->th[i].tid);
	int r = target_perf_open(js->t, js->opts.rate_hz, 0, js->round_tids, (size_t)n, &js->perf);
	if (r == 0) {
		cg_info("jvm: threads in Java sampled by perf CPU-clock events (no thread stopped)");
		walker_native_open(js);
		js->nperf_tids = 0;
		(void)walker_perf_sync(js, n);
		return;
	}
	js->perf = NULL;
	if (js->opts.nonblocking)
		cg_warn("%s; with --nonblocking, threads running Java code are not sampled "
			"(their registers would need a pause)",
			cg_lasterr());
	else
		cg_warn("%s; threads running Java code fall back to being paused (ptrace) for "
			"their registers, which costs each a stop per sample and shifts samples "
			"toward system calls (see README, \"Java\")",
			cg_lasterr());
	cg_clearerr();
}

static int walker_sample(struct jvm_sampler *js, cg_sample_fn fn, void *arg,
			 struct cg_sample_stats *stats)
{
	/* The code heaps grow and the interpreter never moves: a refresh
	 * every 16 rounds keeps new heaps in sight. */
	if (js->rounds++ % 16 == 0)
		(void)jvm_codeheap_refresh(js->w);
	int n = jvm_walk_threads(js->w, js->th, JVM_WALK_MAX_THREADS);
	if (n < 0) {
		if (!target_alive(js->t))
			return -ESRCH;
		stats->lost[CG_LOST_READ]++;
		return 0;
	}
	js->tids_fresh = false;
	js->nth = n;
	cg_map_clear(&js->tid_slot);
	for (int i = 0; i < n; i++) {
		js->round_tids[i] = attach_host_tid(js, js->th[i].tid);
		(void)cg_map_put(&js->tid_slot, (uint64_t)js->round_tids[i], (uint64_t)i + 1);
	}
	if (js->rounds == 1)
		walker_perf_open(js, n);
	if (js->perf) {
		/* What the kernel sampled of each Java thread since the last
		 * round: one sample per 1/rate s of its CPU time. */
		js->fn = fn;
		js->arg = arg;
		js->stats = stats;
		uint64_t lost = 0;
		memset(js->cpu_out, 0, (size_t)n * sizeof(*js->cpu_out));
		if (js->nat)
			native_round(js->nat, js->round_tids, (size_t)n);
		if (walker_perf_sync(js, n) == -ENOMEM)
			stats->lost[CG_LOST_READ]++;
		target_perf_drain(js->perf, walker_on_perf, js, &lost);
		stats->lost[CG_LOST_LATE] += lost;
	}
	for (int i = 0; i < n; i++) {
		struct jvm_jthread *th = &js->th[i];
		pid_t tid = js->round_tids[i];
		uint64_t one;
		bool perf = js->perf && cg_map_get(&js->perf_has, (uint64_t)tid, &one);
		uint32_t times = 1;
		if (perf) {
			/* In Java now: its CPU time is in its perf samples. The
			 * kernel's samples of it outside Java code (a stub, a
			 * leaf call into the VM that stays in Java) have no
			 * walk: lost. */
			if (th->ts == JVM_TS_IN_JAVA) {
				stats->lost[CG_LOST_PARTIAL] += js->cpu_out[i];
				continue;
			}
			/* In the VM or native code: the walk from its anchor
			 * stands for each kernel sample of it outside Java
			 * since the last round, so it weighs its CPU time
			 * there, as a sample in Java does. (A thread in the VM
			 * that waits for a CPU, preempted in a system call on
			 * a busy machine, is R all that time: counting the
			 * rounds it was R took the wait for CPU time.) */
			times = js->cpu_out[i];
			if (!times) {
				if (!js->opts.idle)
					continue;
				times = 1; /* --idle: a round's sample, as off CPU */
			}
		} else if (!js->opts.idle &&
			   target_thread_oncpu(js->t, tid) != TARGET_THREAD_RUNNING) {
			/* Off CPU is no CPU sample, whatever the JVM thinks:
			 * asked first, it saves reading the Thread object. On
			 * a CPU, not merely runnable (R is a wait for one too). */
			continue;
		}
		if (th->ts != JVM_TS_IN_JAVA) {
			int st = jvm_thread_status(js->t, &js->O, th->addr, (int)th->ts);
			if (st >= 0)
				th->state = (enum cg_state)st;
		}
		if (!js->opts.idle && th->state != CG_ST_RUNNING && th->state != CG_ST_NATIVE)
			continue;
		/* A thread in the VM without a Java frame (a compiler thread, one
		 * not started) has no Java stack to report, as in a dump. Its
		 * state and anchor are read apart: a Java thread entering or
		 * leaving the VM between the reads looks like one; read again
		 * before it is skipped. */
		if (th->ts != JVM_TS_IN_JAVA && !th->sp &&
		    (walker_reread(js, th) || (th->ts != JVM_TS_IN_JAVA && !th->sp)))
			continue;
		bool truncated = false;
		int nf = walker_walk(js, th, tid, perf, &truncated, stats);
		walker_emit(js, th, tid, nf, truncated, th->state, times, fn, arg, stats);
	}
	return n;
}

static void walker_close(struct jvm_sampler *js)
{
	if (js->perf)
		cg_info("jvm: %llu perf samples of Java threads, %llu of them outside Java code "
			"(%llu walked from the Java frame below their native frames; each other "
			"weighs its thread's walk from its anchor)",
			(unsigned long long)js->perf_seen, (unsigned long long)js->perf_native,
			(unsigned long long)js->perf_unwound);
	target_perf_close(js->perf);
	native_close(js->nat);
	js->nat = NULL;
	js->perf = NULL;
	free(js->perf_tids);
	free(js->round_tids);
	free(js->cpu_out);
	js->cpu_out = NULL;
	js->perf_tids = js->round_tids = NULL;
	js->nperf_tids = 0;
	cg_map_free(&js->tid_slot);
	cg_map_free(&js->perf_has);
	if (js->w)
		jvm_walker_free(js->w);
	free(js->w);
	free(js->th);
	free(js->raw);
	free(js->frames);
	free(js->names);
	cg_map_free(&js->name_slot);
	js->names = NULL;
	js->nnames = 0;
	js->w = NULL;
	js->th = NULL;
	js->raw = NULL;
	js->frames = NULL;
}

/* No safepoint per sample: the rate is the profiler's, as for Python. */
static const struct jvm_rate jvm_walker_rates[] = {
	{INT_MAX, CG_JVM_WALKER_RATE_HZ, CG_JVM_WALKER_MAX_RATE_HZ},
};

static const struct jvm_mech jvm_mech_walker = {
	.name = "HotSpot's VMStructs read from outside",
	.cost = "each sample is a kernel CPU-clock sample of a thread, or where perf events "
		"are refused a brief pause of it",
	.rates = jvm_walker_rates,
	.open = walker_open,
	.sample = walker_sample,
	.close = walker_close,
};

/* In order of preference. */
static const struct jvm_mech *const jvm_mechs[] = {&jvm_mech_walker, &jvm_mech_attach};

/* ---- the sampler interface ---- */

/* What jvm_sampler_rate() goes by: the JVM opened last. */
static const struct jvm_mech *jvm_opened_mech;
static int jvm_opened_major;

static const struct jvm_rate *jvm_rate_for(const struct jvm_mech *m, int major)
{
	const struct jvm_rate *r = m->rates;
	if (!major) /* unknown: the cautious last entry */
		while (r->upto_major != INT_MAX)
			r++;
	while (r->upto_major < major)
		r++;
	return r;
}

double jvm_sampler_rate(double asked_hz, bool asked)
{
	const struct jvm_mech *m = jvm_opened_mech ? jvm_opened_mech : jvm_mechs[0];
	const struct jvm_rate *r = jvm_rate_for(m, jvm_opened_major);
	if (!asked)
		return r->default_hz;
	if (asked_hz > r->max_hz)
		cg_warn("--rate %g Hz is more than this JVM can be sampled at with %s without "
			"slowing it down (about %g Hz: %s); expect a slower target and late samples "
			"(its default: %g Hz)",
			asked_hz, m->name, r->max_hz, m->cost, r->default_hz);
	return asked_hz;
}

static int jvm_probe(struct target *t)
{
	struct target_maps m = {0};
	struct jvm_attach a;
	int r = target_maps_read(t, &m);
	if (r)
		return r == -ESRCH ? cg_fail(r, "process %d is gone", (int)target_pid(t)) : -ENOENT;
	bool jvm = target_maps_find(&m, "/libjvm.so") != NULL;
	target_maps_free(&m);
	if (!jvm)
		return -ENOENT;
	if ((r = jvm_attach_init(t, &a)))
		return r;
	return jvm_attach_ready(&a);
}

/* A JVM on its way out (System.exit, a crash) fails every read of its
 * memory, so each mechanism fails for a reason that is not its own, and
 * the attach listener is no longer there to fall back to. Its address
 * space gone (the leader's, which /proc and process_vm_readv go by), or
 * the process itself: it has exited. */
static bool jvm_exited(struct target *t)
{
	struct target_maps m = {0};
	if (!target_alive(t))
		return true;
	int r = target_maps_read(t, &m);
	target_maps_free(&m);
	return r == -ESRCH;
}

static void jvm_close(void *priv)
{
	struct jvm_sampler *js = priv;
	if (!js)
		return;
	if (js->mech)
		js->mech->close(js);
	cg_map_free(&js->tids);
	free(js);
}

static int jvm_open(struct target *t, const struct cg_sampler_opts *o, void **priv)
{
	struct jvm_sampler *js = calloc(1, sizeof(*js));
	int r;
	if (!js)
		return -ENOMEM;
	js->t = t;
	js->opts = *o;
	cg_map_init(&js->tids);
	if ((r = jvm_attach_init(t, &js->attach)))
		goto out;
	r = -ENOENT;
	for (size_t i = 0; i < CG_ARRAY_LEN(jvm_mechs); i++) {
		js->mech = jvm_mechs[i];
		if ((r = js->mech->open(js)) == 0)
			break;
		js->mech->close(js);
		js->mech = NULL;
		if (r != -ENOTSUP && jvm_exited(t)) {
			cg_clearerr();
			r = cg_fail(-ESRCH, "JVM %d has exited before its stacks could be read",
				    (int)target_pid(t));
			break;
		}
		if (i + 1 < CG_ARRAY_LEN(jvm_mechs) && r != -ENOTSUP) {
			/* Said once per JVM: why this one costs a safepoint a sample. */
			cg_warn("cannot walk Java stacks of process %d from outside (%s); "
				"falling back to thread dumps over the attach socket, which stop "
				"the JVM at a safepoint per sample",
				(int)target_pid(t), cg_lasterr());
			cg_clearerr();
		}
	}
out:
	if (r) {
		jvm_close(js);
		return r;
	}
	jvm_opened_mech = js->mech;
	jvm_opened_major = js->major;
	*priv = js;
	return 0;
}

static int jvm_sample(void *priv, cg_sample_fn fn, void *arg, struct cg_sample_stats *stats)
{
	struct jvm_sampler *js = priv;
	return js->mech->sample(js, fn, arg, stats);
}

static const char *jvm_version(void *priv)
{
	struct jvm_sampler *js = priv;
	return js->version;
}

const struct cg_sampler_ops jvm_sampler_ops = {
	.name = "Java",
	.runtime = CG_RT_JAVA,
	.probe = jvm_probe,
	.open = jvm_open,
	.sample = jvm_sample,
	.version = jvm_version,
	.close = jvm_close,
	.rate = jvm_sampler_rate,
	.heap = jvm_heap_summary,
};
