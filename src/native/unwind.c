/* Native stacks: libunwind over a paused thread (ptrace) or over a kernel
 * sample's registers and stack copy, one address space (and unwind-info
 * cache) per process, frames named by elfsym. */
#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"
#include "cgprof/util.h"

/* A miss (address in no known mapping) re-reads the maps, but not more
 * often than this: a JIT or a corrupt stack would otherwise make every
 * frame cost a /proc read. */
#define NATIVE_MISS_REFRESH_NS (50ULL * 1000000ULL)
/* Without misses the maps are still checked now and then for objects
 * that were unmapped and replaced at the same addresses. */
#define NATIVE_PERIODIC_REFRESH_NS (1000ULL * 1000000ULL)
#define NATIVE_HEX_LEN 24

/* libunwind exports its search of an .eh_frame_hdr table without declaring
 * it in a public header; remote tables are read through our accessors. */
extern int UNW_OBJ(dwarf_search_unwind_table)(unw_addr_space_t as, unw_word_t ip,
					      unw_dyn_info_t *di, unw_proc_info_t *pi,
					      int need_unwind_info, void *arg);

/* What libunwind hands our accessors: the ptrace handle of the thread and
 * the ctx whose maps know where each object's unwind table is. */
struct native_arg {
	void *upt;
	struct native_ctx *c;
	/* A kernel sample (perf): registers and the stack copy come from it,
	 * and the thread is not stopped, so nothing goes through ptrace. */
	const struct target_perf_sample *smp;
	/* An IP in no mapping the maps showed when last read: libunwind
	 * had no table for it and guessed its caller by frame pointer. */
	bool unplaced;
};

/* Memory the unwinder reads (stack words, .eh_frame entries) comes in
 * whole pages through one process_vm_readv each, instead of one ptrace
 * PEEKDATA per word: a deep stack costs a few system calls, not hundreds.
 * Stack and heap pages are forgotten at every unwind, since they change
 * between samples; pages of mapped files (the unwind tables) stay until
 * the maps change, so a steady state reads only the stack. */
#define NATIVE_PAGE 4096u
#define NATIVE_PAGES 64u

struct native_page {
	uint64_t addr; /* page address + 1 when valid; 0 empty */
	bool keep;     /* in a mapped file (unwind tables): valid across
			  unwinds until the maps change; stack and heap
			  pages are read afresh for every unwind */
	unsigned char data[NATIVE_PAGE];
};

struct native_ctx {
	struct target *t;
	struct native_page *pages; /* NATIVE_PAGES, direct-mapped */
	unw_addr_space_t as;
	unw_addr_space_t as_upt; /* libunwind-ptrace's own search, as fallback */
	struct elfsym_proc *syms;
	struct cg_map upt;     /* tid -> _UPT_create handle, reused across samples */
	char (*hex)[NATIVE_HEX_LEN]; /* names of frames without a symbol */
	uint32_t nhex;
	uint64_t refreshed_ns;
};

static void pages_forget(struct native_ctx *c, bool all);
static struct native_page *page_get(struct native_ctx *c, uint64_t page);

/* len bytes at addr through the page cache when they sit in one page. */
static int cached_read(struct native_ctx *c, uint64_t addr, void *buf, size_t len)
{
	uint64_t page = addr & ~(uint64_t)(NATIVE_PAGE - 1);
	if (!c->pages || addr - page + len > NATIVE_PAGE)
		return target_read(c->t, addr, buf, len);
	struct native_page *pg = page_get(c, page);
	if (!pg)
		return -EFAULT;
	memcpy(buf, pg->data + (addr - page), len);
	return 0;
}

/* Unwind info comes from the .eh_frame_hdr in the target's own memory, not
 * from the file libunwind-ptrace would open by the path in maps: that path
 * may not exist in our mount namespace (containers), may be deleted or
 * replaced, and the vDSO has none. Objects we cannot place fall back to
 * libunwind-ptrace's own search. */
static int acc_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi,
			      int need_unwind_info, void *arg)
{
	struct native_arg *a = arg;
	uint64_t hdr, start, end;
	if (elfsym_eh_frame_hdr(a->c->syms, ip, &hdr, &start, &end) == 0) {
		/* version 1, then the encodings of eh_frame_ptr, fde_count and
		 * the table; we take the layout every linker writes: 4-byte
		 * pointer and count, table of datarel sdata4 pairs. */
		unsigned char h[12];
		if (cached_read(a->c, hdr, h, sizeof(h)) == 0 && h[0] == 1 &&
		    (h[1] & 0x0f) == 0x0b && ((h[2] & 0x0f) == 0x03 || (h[2] & 0x0f) == 0x0b) &&
		    h[2] != 0xff && h[3] == 0x3b) {
			uint32_t count;
			memcpy(&count, h + 8, 4);
			if (count > 0 && count < (1u << 24)) {
				unw_dyn_info_t di = {0};
				di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
				di.start_ip = start;
				di.end_ip = end;
				di.u.rti.segbase = hdr;
				di.u.rti.table_data = hdr + 12;
				/* in words; each entry is two 4-byte fields */
				di.u.rti.table_len = count * 8 / sizeof(unw_word_t);
				int r = UNW_OBJ(dwarf_search_unwind_table)(as, ip, &di, pi,
									   need_unwind_info, arg);
				if (r == 0)
					return 0;
			}
		}
	}
	/* A running thread cannot be read through ptrace: without a table
	 * libunwind falls back to the frame-pointer chain. */
	if (a->smp) {
		struct elfsym_result res;
		if (elfsym_lookup(a->c->syms, ip, &res) == -ENOENT)
			a->unplaced = true;
		return -UNW_ENOINFO;
	}
	/* libunwind-ptrace's search calls back into the address space's
	 * accessors with its own handle, so it runs in an address space of
	 * its own, never in ours. */
	return _UPT_find_proc_info(a->c->as_upt, ip, pi, need_unwind_info, a->upt);
}

static void acc_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
	struct native_arg *a = arg;
	if (a->smp)
		return; /* our own table search allocates nothing to put back */
	_UPT_accessors.put_unwind_info(as, pi, a->upt);
}

static int acc_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *dilap, void *arg)
{
	struct native_arg *a = arg;
	if (a->smp)
		return -UNW_ENOINFO; /* no JIT registry is read for samples */
	return _UPT_accessors.get_dyn_info_list_addr(as, dilap, a->upt);
}

static int acc_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
			  void *arg)
{
	struct native_arg *a = arg;
	struct native_ctx *c = a->c;
	uint64_t page = addr & ~(uint64_t)(NATIVE_PAGE - 1);
	uint64_t off = addr - page;
	const struct target_perf_sample *smp = a->smp;
	if (smp) {
		if (write)
			return -UNW_EINVAL;
		/* The stack as it was at the sample instant; what lies beyond
		 * the copy (callers of a deep stack, unwind tables) is read from
		 * the process, where it has not changed while the frames above
		 * it were running. */
		if (addr >= smp->sp && smp->stack_len >= sizeof(*val) &&
		    addr - smp->sp <= smp->stack_len - sizeof(*val)) {
			memcpy(val, smp->stack + (addr - smp->sp), sizeof(*val));
			return 0;
		}
		if (!c->pages || off + sizeof(*val) > NATIVE_PAGE)
			return target_read(c->t, addr, val, sizeof(*val)) ? -UNW_EINVAL : 0;
	} else if (write || !c->pages || off + sizeof(*val) > NATIVE_PAGE) {
		/* a word across a page boundary, or a write: the slow way */
		return _UPT_access_mem(as, addr, val, write, a->upt);
	}
	struct native_page *pg = page_get(c, page);
	if (!pg)
		return smp ? -UNW_EINVAL : _UPT_access_mem(as, addr, val, write, a->upt);
	memcpy(val, pg->data + off, sizeof(*val));
	return 0;
}

static struct native_page *page_get(struct native_ctx *c, uint64_t page)
{
	struct native_page *pg = &c->pages[(page / NATIVE_PAGE) % NATIVE_PAGES];
	if (pg->addr == page + 1)
		return pg;
	pg->addr = 0;
	if (target_read(c->t, page, pg->data, NATIVE_PAGE) != 0)
		return NULL;
	struct elfsym_result res;
	pg->keep = elfsym_lookup(c->syms, page, &res) == 0;
	pg->addr = page + 1;
	return pg;
}

static void pages_forget(struct native_ctx *c, bool all)
{
	for (uint32_t i = 0; c->pages && i < NATIVE_PAGES; i++)
		if (all || !c->pages[i].keep)
			c->pages[i].addr = 0;
}

/* libunwind's register numbers to the kernel's perf register numbers. */
static int sample_reg(const struct target_perf_sample *smp, unw_regnum_t reg, unw_word_t *val,
		      int write)
{
#if defined(__x86_64__)
	static const int8_t perf_of[] = {
		[UNW_X86_64_RAX] = 0, [UNW_X86_64_RDX] = 3, [UNW_X86_64_RCX] = 2,
		[UNW_X86_64_RBX] = 1, [UNW_X86_64_RSI] = 4, [UNW_X86_64_RDI] = 5,
		[UNW_X86_64_RBP] = 6, [UNW_X86_64_RSP] = 7, [UNW_X86_64_R8] = 16,
		[UNW_X86_64_R9] = 17, [UNW_X86_64_R10] = 18, [UNW_X86_64_R11] = 19,
		[UNW_X86_64_R12] = 20, [UNW_X86_64_R13] = 21, [UNW_X86_64_R14] = 22,
		[UNW_X86_64_R15] = 23, [UNW_X86_64_RIP] = 8,
	};
	if (write || reg < 0 || (size_t)reg >= CG_ARRAY_LEN(perf_of))
		return -UNW_EBADREG;
	int pr = perf_of[reg];
	if (!(smp->regs_mask & (1ULL << pr)))
		return -UNW_EBADREG;
	*val = smp->regs[pr];
	return 0;
#else
	(void)smp;
	(void)reg;
	(void)val;
	(void)write;
	return -UNW_EBADREG;
#endif
}

static int acc_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write,
			  void *arg)
{
	struct native_arg *a = arg;
	if (a->smp)
		return sample_reg(a->smp, reg, val, write);
	return _UPT_accessors.access_reg(as, reg, val, write, a->upt);
}

static int acc_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write,
			    void *arg)
{
	struct native_arg *a = arg;
	if (a->smp)
		return -UNW_EBADREG; /* perf delivers no FP registers; unwinding needs none */
	return _UPT_accessors.access_fpreg(as, reg, val, write, a->upt);
}

static int acc_resume(unw_addr_space_t as, unw_cursor_t *cur, void *arg)
{
	return -UNW_EINVAL; /* we only look */
}

static int acc_get_proc_name(unw_addr_space_t as, unw_word_t addr, char *buf, size_t len,
			     unw_word_t *off, void *arg)
{
	return -UNW_ENOINFO; /* names come from elfsym */
}

static unw_accessors_t native_accessors = {
	.find_proc_info = acc_find_proc_info,
	.put_unwind_info = acc_put_unwind_info,
	.get_dyn_info_list_addr = acc_get_dyn_info_list_addr,
	.access_mem = acc_access_mem,
	.access_reg = acc_access_reg,
	.access_fpreg = acc_access_fpreg,
	.resume = acc_resume,
	.get_proc_name = acc_get_proc_name,
};

int native_open(struct target *t, struct native_ctx **out)
{
	struct native_ctx *c = calloc(1, sizeof(*c));
	int r = 0;
	if (!c)
		return -ENOMEM;
	c->t = t;
	cg_map_init(&c->upt);
	c->pages = calloc(NATIVE_PAGES, sizeof(*c->pages)); /* NULL: no cache, still works */
	c->as = unw_create_addr_space(&native_accessors, 0);
	if (!c->as) {
		r = cg_fail(-ENOMEM, "libunwind: cannot create an address space");
		goto out;
	}
	/* One cache for the whole process: unwind info of a library found
	 * while unwinding one thread serves every other thread. cgprof
	 * unwinds from one thread, so libunwind's per-thread cache is that
	 * cache, without the global one's lock (two sigprocmask calls per
	 * frame step). */
	if (unw_set_caching_policy(c->as, UNW_CACHE_PER_THREAD) != 0)
		unw_set_caching_policy(c->as, UNW_CACHE_GLOBAL);
	c->as_upt = unw_create_addr_space(&_UPT_accessors, 0);
	if (!c->as_upt) {
		r = cg_fail(-ENOMEM, "libunwind: cannot create an address space");
		goto out;
	}
	r = elfsym_proc_new(t, &c->syms);
	if (r)
		goto out;
	r = elfsym_proc_refresh(c->syms);
	if (r < 0) {
		r = cg_fail(r, "cannot read the memory map of process %d: %s", (int)target_pid(t),
			    strerror(-r));
		goto out;
	}
	r = 0;
	c->refreshed_ns = cg_now_ns();
out:
	if (r) {
		native_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void native_close(struct native_ctx *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->upt.cap; i++)
		if (c->upt.keys && c->upt.keys[i])
			_UPT_destroy((void *)(uintptr_t)c->upt.vals[i]);
	cg_map_free(&c->upt);
	if (c->as)
		unw_destroy_addr_space(c->as);
	if (c->as_upt)
		unw_destroy_addr_space(c->as_upt);
	elfsym_proc_free(c->syms);
	free(c->pages);
	free(c->hex);
	free(c);
}

static void refresh(struct native_ctx *c)
{
	int r = elfsym_proc_refresh(c->syms);
	c->refreshed_ns = cg_now_ns();
	/* Unwind info cached for addresses whose object changed is wrong now. */
	if (r > 0) {
		unw_flush_cache(c->as, 0, 0);
		unw_flush_cache(c->as_upt, 0, 0);
		pages_forget(c, true);
	}
}

void native_round(struct native_ctx *c, const pid_t *tids, size_t n)
{
	if (cg_now_ns() - c->refreshed_ns > NATIVE_PERIODIC_REFRESH_NS)
		refresh(c);
	if (c->upt.len <= n)
		return; /* nothing can be stale; common case, no scan */
	struct cg_map keep;
	cg_map_init(&keep);
	for (size_t i = 0; i < c->upt.cap; i++) {
		uint64_t k = c->upt.keys ? c->upt.keys[i] : 0;
		if (!k)
			continue;
		bool live = false;
		for (size_t j = 0; j < n && !live; j++)
			live = (uint64_t)tids[j] == k;
		if (live && cg_map_put(&keep, k, c->upt.vals[i]) == 0)
			continue;
		_UPT_destroy((void *)(uintptr_t)c->upt.vals[i]);
	}
	cg_map_free(&c->upt);
	c->upt = keep;
}

static void *upt_for(struct native_ctx *c, pid_t tid)
{
	uint64_t v;
	if (cg_map_get(&c->upt, (uint64_t)tid, &v))
		return (void *)(uintptr_t)v;
	void *u = _UPT_create(tid);
	if (!u)
		return NULL;
	if (cg_map_put(&c->upt, (uint64_t)tid, (uint64_t)(uintptr_t)u)) {
		_UPT_destroy(u);
		return NULL;
	}
	return u;
}

static void drop_upt(struct native_ctx *c, pid_t tid)
{
	uint64_t v;
	if (!cg_map_get(&c->upt, (uint64_t)tid, &v))
		return;
	_UPT_destroy((void *)(uintptr_t)v);
	/* cg_map has no delete: rebuild without this key. */
	struct cg_map keep;
	cg_map_init(&keep);
	for (size_t i = 0; i < c->upt.cap; i++)
		if (c->upt.keys[i] && c->upt.keys[i] != (uint64_t)tid)
			cg_map_put(&keep, c->upt.keys[i], c->upt.vals[i]);
	cg_map_free(&c->upt);
	c->upt = keep;
}

static int walk(unw_cursor_t *cur, struct native_frame *frames, uint32_t max, uint32_t *n,
		bool *truncated);

static void name_frame(struct native_ctx *c, struct native_frame *fr, uint32_t i, bool leaf)
{
	/* A caller's IP is a return address, possibly the first byte of the
	 * next function (calls to noreturn functions end a function): look up
	 * the call instruction instead. */
	uint64_t addr = leaf ? fr->ip : fr->ip - 1;
	struct elfsym_result res;
	int r = elfsym_lookup(c->syms, addr, &res);
	if (r == -ENOENT && cg_now_ns() - c->refreshed_ns > NATIVE_MISS_REFRESH_NS) {
		refresh(c);
		r = elfsym_lookup(c->syms, addr, &res);
	}
	fr->f.kind = CG_FK_NATIVE;
	fr->f.line = 0;
	fr->flags &= NATIVE_F_EXACT;
	if (r == 0 && res.sym) {
		fr->f.name = res.sym;
		fr->f.file = res.object;
		if (native_is_eval_frame(res.sym))
			fr->flags |= NATIVE_F_EVAL;
		else if (native_is_plumbing_frame(res.sym))
			fr->flags |= NATIVE_F_PLUMBING;
		return;
	}
	/* Unknown symbol: the object-relative address is stable across runs
	 * (ASLR) and is what addr2line takes. */
	snprintf(c->hex[i], NATIVE_HEX_LEN, "0x%llx",
		 (unsigned long long)(r == 0 ? res.rel : fr->ip));
	fr->f.name = c->hex[i];
	fr->f.file = r == 0 ? res.object : NULL;
	fr->flags |= NATIVE_F_UNKNOWN;
}

int native_unwind_ips(struct native_ctx *c, pid_t tid, struct native_frame *frames, uint32_t max,
		      uint32_t *n, bool *truncated)
{
	unw_cursor_t cur;
	int r = 0;

	*n = 0;
	*truncated = false;
	if (max == 0)
		return -EINVAL;
	struct native_arg a = {.upt = upt_for(c, tid), .c = c};
	if (!a.upt)
		return -ENOMEM;
	pages_forget(c, false);
	r = unw_init_remote(&cur, c->as, &a);
	if (r < 0) {
		/* the handle may hold state of a dead thread with a reused tid */
		drop_upt(c, tid);
		return r == -UNW_EBADREG || r == -UNW_EINVAL ? -ESRCH : -EFAULT;
	}
	return walk(&cur, frames, max, n, truncated);
}

int native_unwind_sample(struct native_ctx *c, const struct target_perf_sample *smp,
			 struct native_frame *frames, uint32_t max, uint32_t *n, bool *truncated)
{
	unw_cursor_t cur;

	*n = 0;
	*truncated = false;
	if (max == 0)
		return -EINVAL;
	if (!smp->ip || !smp->sp)
		return -EFAULT; /* no user registers (a kernel-only moment) */
	struct native_arg a = {.c = c, .smp = smp};
	pages_forget(c, false);
	if (unw_init_remote(&cur, c->as, &a) < 0)
		return -EFAULT;
	int r = walk(&cur, frames, max, n, truncated);
	/* A frame in no mapping we know, in a stack younger than our read of
	 * the maps, is most likely in an object mapped since (the libraries
	 * the dynamic loader maps right after exec, a dlopen): without its
	 * table libunwind took that frame's caller from rbp, which such code
	 * (libc's clock_gettime on its way to the vDSO) does not keep, and
	 * skipped a frame. Read the maps again and unwind with the table. At
	 * most once per drained round: the maps are then younger than every
	 * sample in it, so code that has no mapping (a JIT) costs no more. */
	if (!a.unplaced || c->refreshed_ns >= smp->time_ns)
		return r;
	refresh(c);
	*n = 0;
	*truncated = false;
	a.unplaced = false;
	pages_forget(c, false);
	if (unw_init_remote(&cur, c->as, &a) < 0)
		return -EFAULT;
	return walk(&cur, frames, max, n, truncated);
}

/* One unwind of a kernel sample to the first caller stop() accepts; 1
 * found (*out set), 0 not found, negative: no frame could be unwound. */
static int step_to(unw_cursor_t *cur, bool (*stop)(void *, uint64_t), void *arg, uint32_t max,
		   struct native_handoff *out)
{
#if defined(__x86_64__)
	uint64_t last_sp = 0;
	for (uint32_t k = 0; k < max; k++) {
		int r = unw_step(cur);
		if (r <= 0)
			return r < 0 && k == 0 ? -EFAULT : 0;
		unw_word_t ip = 0, sp = 0, fp = 0;
		if (unw_get_reg(cur, UNW_REG_IP, &ip) < 0 || !ip ||
		    unw_get_reg(cur, UNW_REG_SP, &sp) < 0 || sp <= last_sp)
			return 0; /* the stack ended, or no progress */
		last_sp = sp;
		if (!stop(arg, ip))
			continue;
		if (unw_get_reg(cur, UNW_X86_64_RBP, &fp) < 0)
			return 0;
		*out = (struct native_handoff){ip, sp, fp};
		return 1;
	}
	return 0;
#else
	(void)cur, (void)stop, (void)arg, (void)max, (void)out;
	return 0;
#endif
}

int native_unwind_sample_to(struct native_ctx *c, const struct target_perf_sample *smp,
			    bool (*stop)(void *arg, uint64_t ip), void *arg, uint32_t max,
			    struct native_handoff *out)
{
	if (!smp->ip || !smp->sp)
		return -EFAULT;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct native_arg a = {.c = c, .smp = smp};
		unw_cursor_t cur;
		pages_forget(c, false);
		if (unw_init_remote(&cur, c->as, &a) < 0)
			return -EFAULT;
		int r = step_to(&cur, stop, arg, max, out);
		if (r > 0)
			return 0;
		/* as in native_unwind_sample: a frame in an object mapped
		 * since the maps were read (a JNI library loaded late) is
		 * unwound again with its table, once per drained round */
		if (!a.unplaced || c->refreshed_ns >= smp->time_ns)
			return r < 0 ? r : -ENOENT;
		refresh(c);
	}
	return -ENOENT;
}

/* Step the cursor from the leaf out. Bounded: max frames plus one step to
 * learn whether more follow. */
static int walk(unw_cursor_t *cur, struct native_frame *frames, uint32_t max, uint32_t *n,
		bool *truncated)
{
	uint32_t k = 0;
	uint64_t last_sp = 0, last_ip = 0;
	bool next_exact = true; /* the leaf's IP is where it stopped */
	for (;;) {
		unw_word_t ip = 0, sp = 0;
		if (unw_get_reg(cur, UNW_REG_IP, &ip) < 0 || ip == 0)
			break;
		unw_get_reg(cur, UNW_REG_SP, &sp);
		if (k > 0 && ip == last_ip && sp == last_sp)
			break; /* no progress: a loop in corrupt unwind info */
		if (k == max) {
			*truncated = true;
			break;
		}
		frames[k] = (struct native_frame){.ip = ip, .flags = next_exact ? NATIVE_F_EXACT : 0};
		/* Above a signal frame the IP is the interrupted instruction,
		 * not a return address. */
		next_exact = unw_is_signal_frame(cur) > 0;
		k++;
		last_ip = ip;
		last_sp = sp;
		if (unw_step(cur) <= 0)
			break;
	}
	if (k == 0)
		return -EFAULT;
	*n = k;
	return 0;
}

/* The outermost function of every thread: nothing calls it. */
static bool is_thread_root(const char *sym)
{
	static const char *const roots[] = {"_start", "__clone3", "__clone", "clone", "clone3"};
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		if (!strcmp(sym, roots[i]))
			return true;
	return false;
}

int native_symbolize(struct native_ctx *c, struct native_frame *frames, uint32_t *np)
{
	uint32_t n = *np;
	if (c->nhex < n) {
		char (*h)[NATIVE_HEX_LEN] = realloc(c->hex, n * sizeof(*h));
		if (!h)
			return -ENOMEM;
		c->hex = h;
		c->nhex = n;
	}
	for (uint32_t i = 0; i < n; i++) {
		name_frame(c, &frames[i], i, frames[i].flags & NATIVE_F_EXACT);
		if (!(frames[i].flags & NATIVE_F_UNKNOWN) && is_thread_root(frames[i].f.name)) {
			*np = i + 1;
			break;
		}
	}
	return 0;
}

int native_unwind_thread(struct native_ctx *c, pid_t tid, struct native_frame *frames,
			 uint32_t max, uint32_t *n, bool *truncated)
{
	int r = native_unwind_ips(c, tid, frames, max, n, truncated);
	return r ? r : native_symbolize(c, frames, n);
}

/* Names compared without the compiler's clone suffixes
 * (_PyEval_EvalFrameDefault.cold, foo.isra.0, bar.constprop.1). */
static bool name_is(const char *sym, const char *want)
{
	size_t n = strlen(want);
	return !strncmp(sym, want, n) && (sym[n] == '\0' || sym[n] == '.');
}

bool native_is_eval_frame(const char *sym)
{
	static const char *const eval[] = {
		"_PyEval_EvalFrameDefault", "_PyEval_EvalFrame", "PyEval_EvalFrameEx",
		"PyEval_EvalFrame",
	};
	if (!sym)
		return false;
	for (size_t i = 0; i < CG_ARRAY_LEN(eval); i++)
		if (name_is(sym, eval[i]))
			return true;
	return false;
}

bool native_is_plumbing_frame(const char *sym)
{
	/* Exact names (modulo clone suffixes). */
	static const char *const exact[] = {
		"PyObject_Call", "PyObject_CallObject", "PyObject_CallFunction",
		"PyObject_CallFunctionObjArgs", "PyObject_CallMethod", "PyObject_CallMethodObjArgs",
		"PyObject_CallOneArg", "PyObject_CallNoArgs", "PyObject_Vectorcall",
		"PyObject_VectorcallDict", "PyObject_VectorcallMethod", "PyVectorcall_Call",
		"PyCFunction_Call", "PyEval_CallObjectWithKeywords", "PyEval_EvalCode",
		"PyEval_EvalCodeEx", "call_function", "fast_function", "do_call_core",
		"function_code_fastcall", "slot_tp_call", "builtin_exec", "builtin_exec_impl",
		"run_eval_code_obj", "run_mod", "run_pyc_file", "Py_RunMain", "Py_BytesMain",
		"Py_Main", "main", "_start", "__libc_start_main", "__libc_start_call_main",
		/* a thread's start, as the main thread's above: its root is the
		 * first Python function it runs (glibc 2.34+ names __clone3) */
		"start_thread", "clone", "clone3", "__clone", "__clone3", "thread_run",
		"pythread_wrapper",
		"t_bootstrap", "_Py_UnixMain", "object_vacall", "method_vectorcall",
		"partial_vectorcall", "partial_call", "vectorcall_method", "vectorcall_unbound",
		"call_unbound", "call_unbound_noarg", "slot_tp_init", "type_call",
	};
	/* Families of call helpers. */
	static const char *const prefix[] = {
		"_PyObject_Call", "_PyObject_Vectorcall", "_PyObject_FastCall", "_PyObject_MakeTpCall",
		"_PyFunction_Vectorcall", "_PyFunction_FastCall", "_PyEval_Vector",
		"_PyEval_EvalCode", "_PyCFunction_FastCall", "_PyMethodDef_RawFastCall",
		"_PyMethodDescr_FastCall", "_PyVectorcall_Call", "cfunction_call", "cfunction_vectorcall",
		"method_vectorcall_", "PyRun_", "_PyRun_", "pyrun_", "pymain_", "_Py_RunMain",
		"wrapper_call", "wrapperdescr_call", "_PyObject_Call_Prepend",
	};
	if (!sym)
		return false;
	for (size_t i = 0; i < CG_ARRAY_LEN(exact); i++)
		if (name_is(sym, exact[i]))
			return true;
	for (size_t i = 0; i < CG_ARRAY_LEN(prefix); i++)
		if (!strncmp(sym, prefix[i], strlen(prefix[i])))
			return true;
	return false;
}
