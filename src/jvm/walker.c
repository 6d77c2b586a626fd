/* The out-of-process HotSpot stack walker: HotSpot's thread list, and a
 * Java stack walked from (pc, sp, fp) through interpreted and compiled
 * frames, with every pointer checked (x86-64 frame layout). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cgprof/target.h"
#include "jvm_walk.h"

/* x86-64 interpreter frame slots, in words from fp. HotSpot exports the
 * first two (frame::interpreter_frame_sender_sp_offset, _last_sp_offset);
 * the method and bcp slots sit at fixed distances below them in the x86
 * port's layout (method, mirror, mdp, cache, locals, bcp). */
#define IFRAME_SENDER_SP (-1)
#define IFRAME_METHOD (-3)
#define IFRAME_BCP (-8)
/* A frame larger than this is not believed. */
#define MAX_FRAME_BYTES (1u << 20)
/* Without the thread's stack base: the most a walk may climb. */
#define MAX_STACK_BYTES (64u << 20)

int jvm_walker_init(struct jvm_walker *w, struct target *t, const struct jvm_layout *L)
{
	memset(w, 0, sizeof(*w));
	w->t = t;
	w->L = *L;
	cg_map_init(&w->methods);
	cg_map_init(&w->blob_names);
	cg_map_init(&w->nms);
	if (L->has_code)
		(void)jvm_codeheap_refresh(w);
	return 0;
}

void jvm_walker_free(struct jvm_walker *w)
{
	for (size_t i = 0; i < w->nminfo; i++) {
		free(w->minfo[i].name);
		free(w->minfo[i].file);
		free(w->minfo[i].lines);
	}
	free(w->minfo);
	cg_map_free(&w->methods);
	cg_map_free(&w->blob_names);
	jvm_scopes_free(w);
	memset(w, 0, sizeof(*w));
}

static enum jvm_tstate tstate_of(const struct jvm_layout *L, int32_t ts)
{
	if (ts == L->ts_in_java)
		return JVM_TS_IN_JAVA;
	if (ts == L->ts_in_vm || ts == L->ts_in_vm + 1) /* _trans states */
		return JVM_TS_IN_VM;
	if (ts == L->ts_in_native || ts == L->ts_in_native + 1)
		return JVM_TS_IN_NATIVE;
	if (ts == L->ts_blocked || ts == L->ts_blocked + 1)
		return JVM_TS_BLOCKED;
	if (ts == L->ts_in_java + 1)
		return JVM_TS_IN_JAVA;
	return JVM_TS_OTHER;
}

/* What java.lang.Thread.State a thread dump would print: a thread blocked
 * in the VM waits on what its OSThread state says. OBJECT_WAIT covers both
 * Object.wait() and wait(ms), CONDVAR_WAIT both park() and parkNanos():
 * the OS-level state cannot tell the timed ones apart, so they show as
 * WAITING. */
static enum cg_state java_state(const struct jvm_layout *L, enum jvm_tstate ts, int32_t os)
{
	if (ts == JVM_TS_IN_NATIVE)
		return CG_ST_NATIVE;
	if (ts != JVM_TS_BLOCKED || !L->has_os_state)
		return CG_ST_RUNNING;
	if (os == L->os_monitor_wait)
		return CG_ST_BLOCKED;
	if (os == L->os_object_wait || os == L->os_condvar_wait)
		return CG_ST_WAITING;
	if (os == L->os_sleeping)
		return CG_ST_TIMED_WAITING;
	return CG_ST_RUNNING;
}

/* Per thread, the pieces read in the first scatter read. */
struct jt_raw {
	uint64_t anchor[3]; /* sp, pc, fp at their own offsets */
	int32_t state;
	uint64_t osthread;
	uint64_t stack_base;
};

int jvm_walk_threads(struct jvm_walker *w, struct jvm_jthread *th, size_t max)
{
	const struct jvm_layout *L = &w->L;
	struct target *t = w->t;
	uint64_t list, arr;
	uint32_t len;
	int r;

	if ((r = target_read(t, L->java_thread_list, &list, 8)))
		return r;
	if (!list || (r = target_read(t, list + L->tl_length, &len, 4)) ||
	    (r = target_read(t, list + L->tl_threads, &arr, 8)))
		return r ? r : -EFAULT;
	if (len > max)
		len = (uint32_t)max;
	if (len > JVM_WALK_MAX_THREADS)
		len = JVM_WALK_MAX_THREADS;
	if (!len)
		return 0;
	uint64_t *ptrs = calloc(len, sizeof(*ptrs));
	struct jt_raw *raw = calloc(len, sizeof(*raw));
	struct iovec *lv = calloc(6ul * len, sizeof(*lv)), *rv = calloc(6ul * len, sizeof(*rv));
	int n = 0;
	if (!ptrs || !raw || !lv || !rv) {
		n = -ENOMEM;
		goto out;
	}
	if ((r = target_read(t, arr, ptrs, 8ul * len))) {
		n = r;
		goto out;
	}
	/* One system call for every thread's anchor, state and OSThread*;
	 * a thread that exits meanwhile cuts the read short, and the threads
	 * after it are simply read one by one. */
	size_t k = 0;
	for (uint32_t i = 0; i < len; i++) {
		uint64_t a = ptrs[i], anc = a + L->jt_anchor;
		struct { void *p; uint64_t at; size_t n; } piece[] = {
			{&raw[i].anchor[0], anc + L->anchor_sp, 8},
			{&raw[i].anchor[1], anc + L->anchor_pc, 8},
			{&raw[i].anchor[2], anc + L->anchor_fp, 8},
			{&raw[i].state, a + L->jt_state, 4},
			{&raw[i].osthread, a + L->jt_osthread, 8},
			{&raw[i].stack_base, a + L->jt_stack_base, 8},
		};
		size_t np = L->jt_stack_base == JVM_NO_OFF ? 5 : 6;
		for (size_t j = 0; j < np; j++) {
			lv[k] = (struct iovec){piece[j].p, piece[j].n};
			rv[k] = (struct iovec){(void *)(uintptr_t)piece[j].at, piece[j].n};
			k++;
		}
	}
	ssize_t got = target_readv(t, lv, k, rv, k);
	size_t per = L->jt_stack_base == JVM_NO_OFF ? 5 : 6, upto = 0;
	for (uint32_t i = 0; i < len; i++) {
		struct jt_raw *jr = &raw[i];
		size_t want = 0;
		for (size_t j = i * per; j < (i + 1) * per; j++)
			want += lv[j].iov_len;
		upto += want;
		if (got < 0 || (size_t)got < upto) {
			/* Past the short read: this thread on its own. */
			ssize_t one = target_readv(t, &lv[i * per], per, &rv[i * per], per);
			if (one < 0 || (size_t)one < want)
				continue;
		}
		int32_t tid = 0, os_state = -1;
		if (!jr->osthread || target_read(t, jr->osthread + L->os_tid, &tid, 4) || tid <= 0)
			continue; /* not started, or exiting */
		if (L->has_os_state)
			(void)target_read(t, jr->osthread + L->os_state, &os_state, 4);
		struct jvm_jthread *o = &th[n++];
		o->addr = ptrs[i];
		o->tid = tid;
		o->ts = tstate_of(L, jr->state);
		o->state = java_state(L, o->ts, os_state);
		o->sp = jr->anchor[0];
		o->pc = jr->anchor[1];
		o->fp = jr->anchor[2];
		o->stack_base = jr->stack_base;
	}
out:
	free(ptrs);
	free(raw);
	free(lv);
	free(rv);
	return n;
}

int jvm_thread_reread(struct jvm_walker *w, struct jvm_jthread *th)
{
	const struct jvm_layout *L = &w->L;
	uint64_t anc = th->addr + L->jt_anchor;
	int32_t st;
	uint64_t sp, pc, fp;
	/* one system call: the state and the anchor as close together in
	 * time as a read of a running thread gets */
	const struct iovec local[] = {{&st, 4}, {&sp, 8}, {&pc, 8}, {&fp, 8}};
	const struct iovec remote[] = {
		{(void *)(uintptr_t)(th->addr + L->jt_state), 4},
		{(void *)(uintptr_t)(anc + L->anchor_sp), 8},
		{(void *)(uintptr_t)(anc + L->anchor_pc), 8},
		{(void *)(uintptr_t)(anc + L->anchor_fp), 8},
	};
	if (target_readv(w->t, local, 4, remote, 4) != 28)
		return -EFAULT;
	th->sp = sp;
	th->pc = pc;
	th->fp = fp;
	th->ts = tstate_of(L, st);
	return 0;
}

/* A word of the walked stack: from the walk's stack copy where it lies
 * inside it (the thread has run on since the copy was taken), else from
 * the target; deeper frames are still the same if the walk ends whole. */
static int frame_rd64(struct jvm_walker *w, uint64_t a, uint64_t *v)
{
	if (w->copy && w->copy_len >= 8 && a >= w->copy_lo && a - w->copy_lo <= w->copy_len - 8) {
		memcpy(v, w->copy + (a - w->copy_lo), 8);
		return 0;
	}
	return jvm_rd64(w->t, a, v);
}

/* Frame-walk state: HotSpot's (pc, sp, unextended sp, fp). */
struct fstate {
	uint64_t pc, sp, usp, fp;
	bool exact; /* pc is where a running thread stood (the first frame of
		       a walk from registers) */
};

/* The caller of an interpreted frame at s->fp. */
static int sender_of_interpreted(struct jvm_walker *w, struct fstate *s)
{
	uint64_t fp = s->fp, link, ret, usp;
	if (frame_rd64(w, fp, &link) || frame_rd64(w, fp + 8, &ret) ||
	    frame_rd64(w, fp + 8 * IFRAME_SENDER_SP, &usp))
		return -EFAULT;
	s->sp = fp + 16;
	/* The unextended sp is where a compiled caller's frame is measured
	 * from: the sp before a c2i adapter pushed the interpreter's
	 * arguments below it, so at or above the raw one. */
	s->usp = usp >= s->sp && usp - s->sp < MAX_FRAME_BYTES ? usp : s->sp;
	s->pc = ret;
	s->fp = link;
	return 0;
}

/* The caller of a compiled (or stub) frame of frame_words words. */
static int sender_of_compiled(struct jvm_walker *w, struct fstate *s, int32_t frame_words)
{
	if (frame_words <= 0 || (uint64_t)frame_words * 8 > MAX_FRAME_BYTES)
		return -EINVAL;
	uint64_t ssp = s->usp + 8ull * (uint64_t)frame_words, ret, link;
	if (frame_rd64(w, ssp - 8, &ret) || frame_rd64(w, ssp - 16, &link))
		return -EFAULT;
	s->sp = s->usp = ssp;
	s->pc = ret;
	s->fp = link; /* rbp as saved by the callee; a frame pointer only if
			 the caller keeps one (interpreted ones do) */
	return 0;
}

/* Length of one instruction of a compiled frame's return path (the
 * return poll, a pending-exception check, vzeroupper), 0 for any other. */
static size_t tail_insn(const uint8_t *c, size_t n)
{
	if (n >= 3 && c[0] == 0xc5 && c[1] == 0xf8 && c[2] == 0x77)
		return 3; /* vzeroupper */
	if (n >= 7 && c[0] == 0x49 && c[1] == 0x3b && c[2] == 0xa7)
		return 7; /* cmp rsp, [r15 + disp32]: the return poll */
	if (n >= 4 && c[0] == 0x49 && c[1] == 0x3b && c[2] == 0x67)
		return 4; /* ... disp8 */
	if (n >= 8 && c[0] == 0x49 && c[1] == 0x83 && c[2] == 0xbf)
		return 8; /* cmp qword [r15 + disp32], imm8: pending exception */
	if (n >= 5 && c[0] == 0x49 && c[1] == 0x83 && c[2] == 0x7f)
		return 5; /* ... disp8 */
	if (n >= 11 && c[0] == 0x49 && c[1] == 0x81 && c[2] == 0xbf)
		return 11; /* ... disp32, imm32 */
	if (n >= 8 && c[0] == 0x49 && c[1] == 0x81 && c[2] == 0x7f)
		return 8; /* ... disp8, imm32 */
	if (n >= 6 && c[0] == 0x0f && (c[1] == 0x87 || c[1] == 0x85))
		return 6; /* ja / jne rel32 to the slow path */
	if (n >= 2 && (c[0] == 0x77 || c[0] == 0x75))
		return 2; /* ... rel8 */
	return 0;
}

static bool is_sub_rsp(const uint8_t *c, size_t n)
{
	return n >= 3 && c[0] == 0x48 && (c[1] == 0x83 || c[1] == 0x81) && c[2] == 0xec;
}

static bool is_mov_rbp_rsp(const uint8_t *c, size_t n)
{
	return n >= 3 && c[0] == 0x48 && ((c[1] == 0x89 && c[2] == 0xe5) ||
					  (c[1] == 0x8b && c[2] == 0xec));
}

enum jvm_leaf_shape jvm_leaf_shape(const uint8_t *c, size_t n)
{
	if (!n)
		return JVM_LEAF_BUILT;
	/* the return path after the frame is gone: up to a few checks,
	 * then ret */
	size_t at = 0;
	for (int i = 0; i < 6 && at < n; i++) {
		if (c[at] == 0xc3)
			return JVM_LEAF_RET_AT_SP;
		size_t k = tail_insn(c + at, n - at);
		if (!k)
			break;
		at += k;
	}
	if (c[0] == 0x5d)
		return JVM_LEAF_RBP_AT_SP; /* pop rbp: only rbp is left */
	if (c[0] == 0xc9)
		return JVM_LEAF_VIA_RBP; /* leave */
	/* the prologue: stack bang (mov [rsp - d32], eax), push rbp, then
	 * mov rbp, rsp (a wrapper) or sub rsp */
	if (n >= 8 && c[0] == 0x89 && c[1] == 0x84 && c[2] == 0x24 && c[7] == 0x55)
		return JVM_LEAF_RET_AT_SP;
	if (n >= 4 && c[0] == 0x55 && (is_sub_rsp(c + 1, n - 1) || is_mov_rbp_rsp(c + 1, n - 1)))
		return JVM_LEAF_RET_AT_SP;
	if (is_mov_rbp_rsp(c, n) || is_sub_rsp(c, n))
		return JVM_LEAF_RBP_AT_SP;
	return JVM_LEAF_BUILT;
}

/* The caller of a compiled leaf frame caught building or tearing down
 * its frame: 1 moved (s is the caller), 0 the frame is whole, negative
 * unreadable. */
static int sender_of_partial(struct jvm_walker *w, struct fstate *s, uint64_t hi)
{
	uint8_t code[24];
	if (target_read(w->t, s->pc, code, sizeof(code)))
		return 0; /* near the end of a mapping: taken as whole */
	uint64_t base = s->sp, fp = s->fp, ret;
	switch (jvm_leaf_shape(code, sizeof(code))) {
	case JVM_LEAF_BUILT:
		return 0;
	case JVM_LEAF_RET_AT_SP:
		break;
	case JVM_LEAF_RBP_AT_SP:
		if (frame_rd64(w, base, &fp))
			return -EFAULT;
		base += 8;
		break;
	case JVM_LEAF_VIA_RBP:
		if (s->fp < s->sp || s->fp >= hi || s->fp & 7 || s->fp - s->sp > MAX_FRAME_BYTES ||
		    frame_rd64(w, s->fp, &fp))
			return -EFAULT;
		base = s->fp + 8;
		break;
	}
	if (frame_rd64(w, base, &ret))
		return -EFAULT;
	s->pc = ret;
	s->sp = s->usp = base + 8;
	s->fp = fp;
	return 1;
}

/* One frame of the walk at s: its Java frames into out[*n...], then s
 * moved to its caller. 1: go on, 0: the walk ended (*end says how). */
static int walk_frame(struct jvm_walker *w, struct fstate *s, const struct jvm_regs *r,
		      bool from_anchor, struct jvm_rawframe *out, size_t *n, size_t max,
		      uint64_t hi, enum jvm_walk_end *end)
{
	*end = JVM_END_LOST;
	if (s->pc >= w->interp_lo && s->pc < w->interp_hi) {
		uint64_t m, bcp;
		/* The frame pointer of an interpreted frame must lie above its
		 * sp and within the stack; a leaf caught in registers must have
		 * its fixed slots (method ... bcp) built above sp already, else
		 * fp is still its caller's. */
		if (s->fp <= s->sp || s->fp >= hi || s->fp & 7 || s->fp - s->sp > MAX_FRAME_BYTES)
			return 0;
		if (*n == 0 && !from_anchor && s->fp - s->sp < 8ull * -IFRAME_BCP)
			return 0;
		if (frame_rd64(w, s->fp + 8 * IFRAME_METHOD, &m) || !m || m & 7)
			return 0;
		bcp = *n == 0 && r->bcp && !from_anchor ? r->bcp : 0;
		if (!bcp && frame_rd64(w, s->fp + 8 * IFRAME_BCP, &bcp))
			bcp = 0;
		out[(*n)++] = (struct jvm_rawframe){m, bcp, -1, 0};
		return sender_of_interpreted(w, s) == 0;
	}
	uint64_t blob = jvm_codeheap_find(w, s->pc);
	int32_t fw = 0;
	enum jvm_blob_kind k = blob ? jvm_codeheap_kind(w, blob, &fw) : JVM_BLOB_BAD;
	if (k == JVM_BLOB_BAD) {
		/* Out of Java: without the call stub's address, as far as
		 * this JVM lets us tell, where the stack ends. */
		if (!w->call_stub_ret)
			*end = JVM_END_ENTRY;
		return 0;
	}
	if (k == JVM_BLOB_NMETHOD) {
		uint64_t m;
		if (jvm_rd64(w->t, blob + w->L.nm_method, &m) || !m || m & 7)
			return 0;
		/* one frame per inlined method when the debug info reads back,
		 * else the nmethod's own method */
		int ns = jvm_scopes(w, blob, s->pc, m, out + *n, max - *n);
		if (ns > 0)
			*n += (size_t)ns;
		else
			out[(*n)++] = (struct jvm_rawframe){m, 0, -1, 1};
	}
	/* Stubs and adapters between Java frames carry no name; a frameless
	 * one (the call stub's buffer) ends the walk. */
	if (fw <= 0) {
		if (!w->call_stub_ret)
			*end = JVM_END_ENTRY;
		return 0;
	}
	/* a running leaf may stand in its prologue or return path */
	if (k == JVM_BLOB_NMETHOD && s->exact) {
		int p = sender_of_partial(w, s, hi);
		if (p)
			return p > 0;
	}
	return sender_of_compiled(w, s, fw) == 0;
}

int jvm_walk_stack(struct jvm_walker *w, const struct jvm_regs *r, bool from_anchor,
		   struct jvm_rawframe *out, size_t max, enum jvm_walk_end *end,
		   uint64_t stack_base)
{
	struct fstate s = {r->pc, r->sp, r->sp, r->fp, !from_anchor && !r->caller};
	size_t n = 0;
	int ret = 0;
	*end = JVM_END_LOST;
	if (max > JVM_WALK_MAX_DEPTH)
		max = JVM_WALK_MAX_DEPTH;
	uint64_t prev_sp = s.sp;
	uint64_t hi = stack_base && stack_base > s.sp ? stack_base : s.sp + MAX_STACK_BYTES;
	if (!s.sp || s.sp & 7)
		return -EINVAL;
	w->copy = r->stack && r->stack_len ? r->stack : NULL;
	w->copy_lo = s.sp;
	w->copy_len = w->copy ? r->stack_len : 0;
	if (from_anchor && !s.pc && frame_rd64(w, s.sp - 8, &s.pc)) {
		ret = -EFAULT;
		goto out;
	}
	for (size_t guard = 0; guard < JVM_WALK_MAX_DEPTH; guard++) {
		/* Every Java stack returns to the call stub it was entered from. */
		if (w->call_stub_ret && s.pc == w->call_stub_ret && n) {
			*end = JVM_END_ENTRY;
			break;
		}
		if (n == max) {
			*end = JVM_END_DEPTH;
			break;
		}
		if (!walk_frame(w, &s, r, from_anchor, out, &n, max, hi, end))
			break;
		s.exact = false;
		*end = JVM_END_LOST;
		if (s.sp <= prev_sp || s.sp >= hi || s.sp & 7)
			break;
		prev_sp = s.sp;
	}
	ret = (int)n;
	/* a walk that found nothing is no walk */
	if (!n && *end != JVM_END_DEPTH)
		ret = *end == JVM_END_ENTRY ? 0 : -EINVAL;
out:
	w->copy = NULL;
	w->copy_len = 0;
	return ret;
}
