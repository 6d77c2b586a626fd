/* The CPython sampler: walks every thread state and its frame chain in the
 * target's memory, names each frame from its (cached) code object, and
 * reports one cg_sample per thread. All target memory is untrusted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"
#include "prefetch.h"
#include "py_priv.h"

#define PY_MAX_THREADS 4096
#define PY_HARD_MAX_DEPTH 65536
#define PY_CODE_CACHE_MAX 16384
#define PY_STR_MAX 1024          /* longest name or path we keep */
#define PY_LINETABLE_MAX (1 << 20)
#define PY_WINDOW_MAX 512        /* bytes read per frame / code object */
#define PY_FRAME_BLOCK 8192      /* 3.11+: data-stack bytes read at once */
/* _PyInterpreterFrame.owner from this value up is a frame that runs no
 * code of the program: FRAME_OWNED_BY_CSTACK (3) on 3.12-3.13,
 * FRAME_OWNED_BY_INTERPRETER (3) and _CSTACK (4) from 3.14. */
#define PY_OWNER_NOT_CODE 3
#define PY_INTERP_RECHECK 1000 /* rounds between looks at the interpreter */
#define PY_TLIST_MAX 1000      /* thread states read in one call (< IOV_MAX) */

struct py_code {
	uint64_t addr;
	uint64_t filename, name, qualname, linetable; /* pointers, to validate */
	int32_t firstlineno;
	char *sname, *sfile;
	uint8_t *tab;
	uint32_t tablen;
	/* Maybe an interpreter-built shim (3.13+: _Py_InitCleanup, which
	 * runs after a class call's __init__): one interned string is both
	 * its file and its name. One that has no line where it stands is
	 * one; Python's tracebacks leave it out, and so does a sample. */
	bool shim;
	/* the line of the instruction a frame of it was last seen at: a
	 * recursion or a loop asks again and again (the table is decoded
	 * from its start each time otherwise) */
	int memo_addr, memo_line;
};

/* Per thread: how often its unpaused reads tear, and so how it is read
 * (read_unpaused). */
struct py_tear {
	uint64_t ts;    /* its thread state */
	uint32_t rate;  /* torn share of its recent unpaused reads, 1/65536ths */
	uint32_t idle;  /* rounds since it was sampled */
	uint16_t probe; /* paused samples since its last probe */
	bool paused;    /* read paused for now */
};
#define PY_TEARS 256               /* threads with a record */
#define PY_TEAR_SHIFT 5            /* the rate's memory: ~32 reads */
#define PY_TEAR_ON (65536u / 10)   /* paused from 10% torn */
#define PY_TEAR_OFF (65536u / 32)  /* unpaused again under 3% */
#define PY_TEAR_PROBE 8            /* paused: one unpaused probe per 8 samples */
#define PY_TEAR_IDLE 1024          /* rounds a record is kept unused */

struct py_sampler {
	struct py_interp pi;
	struct py_raw_frame *raw;
	struct cg_sampler_opts o;
	struct cg_map code_idx; /* code address -> index + 1 */
	struct py_code *codes;
	uint32_t ncodes;
	struct cg_frame *frames;
	uint32_t frames_cap;
	uint8_t *cwin;     /* frames_cap code windows, read in one go */
	bool *cwin_ok;
	bool cwin_read;    /* read already, with the verification */
	/* 3.11+: the piece of data stack last read during this walk */
	uint64_t blk_lo, blk_hi;
	uint8_t blk[PY_FRAME_BLOCK + PY_WINDOW_MAX];
	size_t frame_win, code_win, tstate_win;
	/* Every link the last walk followed (shims too), with the words it
	 * read there, to check an unpaused read against the memory after
	 * it (chain_ok: all of them recorded). */
	uint64_t *chain, *chain_back, *chain_code;
	uint32_t nchain, chain_cap;
	bool chain_ok;
	uint64_t head_ptr[2]; /* what the walk started from (3.11-3.12: cframe too) */
	bool head_snap;       /* ... read from the snapshot's head words */
	bool pause_refused;   /* a torn read cannot fall back to a pause */
	struct py_tear tears[PY_TEARS];
	uint32_t ntears;
	int pthread_tid_off; /* -1 unknown, -2 not found (<=3.10 only) */
	struct cg_map pthread_tids; /* pthread_t -> tid, while that tid lives */
	struct py_ptid_learn ptid;  /* where in struct pthread its tid is */
	uint64_t interp;     /* the main interpreter, cached */
	uint32_t interp_age; /* rounds since it was looked up */
	struct native_ctx *nctx;   /* --native */
	struct native_frame *nf;
	bool *entry;
	struct cg_frame *merged;
	/* --native on an interpreter whose eval loop has no name (stripped,
	 * no debug symbols): merges failed before one first worked; said once */
	uint32_t no_merge;
	bool merged_once, no_merge_said;
	struct py_async *async;    /* --async on 3.14+ */
	struct py_prefetch *pf;    /* unpaused reads: each thread's plan */
	/* The thread states of the last round, in list order, and this
	 * round's windows of them: read again in one call while the list
	 * stays the same. */
	uint64_t *tlist;
	uint8_t *tlwin;
	uint32_t ntlist, tlist_cap;
	struct py_tnames *tnames; /* thread names from threading */
};

static size_t max_off(const int32_t *offs, size_t n)
{
	int32_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (offs[i] > m)
			m = offs[i];
	return (size_t)m + 8;
}

/* A live object's reference count: its low 32 bits not 0, and not the
 * free-list pointer the allocator writes over ob_refcnt when the object
 * is freed (a user-space pointer has bits 32-47 set). Bits 48-63 are
 * ob_flags from 3.14 (set on statically allocated objects such as the
 * "<module>" name), a refcount's top bits before. */
static bool py_refcnt_live(const uint8_t *hdr, size_t len)
{
	uint64_t refcnt = py_rd64(hdr, len, 0);
	return (refcnt & 0xffffffffULL) != 0 && ((refcnt >> 32) & 0xffff) == 0;
}

/* A str object as UTF-8 in out (NUL-terminated, cut at n-1 bytes). Only
 * compact strings exist for names and paths of code objects. */
static int py_read_str(struct py_sampler *s, uint64_t addr, char *out, size_t n)
{
	return py_str_read(&s->pi, addr, out, n);
}

static int py_read_bytes(struct py_sampler *s, uint64_t addr, uint8_t **out, uint32_t *len)
{
	const struct py_layout *L = &s->pi.L;
	int64_t n;
	*out = NULL;
	*len = 0;
	if (!addr)
		return -EFAULT;
	int r = target_read(s->pi.t, addr + (uint64_t)L->bytes_size, &n, 8);
	if (r)
		return r;
	if (n < 0 || n > PY_LINETABLE_MAX)
		return -EINVAL;
	if (!n)
		return 0;
	uint8_t *b = malloc((size_t)n);
	if (!b)
		return -ENOMEM;
	r = target_read(s->pi.t, addr + (uint64_t)L->bytes_sval, b, (size_t)n);
	if (r) {
		free(b);
		return r;
	}
	*out = b;
	*len = (uint32_t)n;
	return 0;
}

static void code_free(struct py_code *c)
{
	free(c->sname);
	free(c->sfile);
	free(c->tab);
}

static void code_cache_clear(struct py_sampler *s)
{
	for (uint32_t i = 0; i < s->ncodes; i++)
		code_free(&s->codes[i]);
	s->ncodes = 0;
	cg_map_clear(&s->code_idx);
}

/* The code object at addr, from the cache when its identifying fields are
 * unchanged (a freed code object's address can be reused). w: its window
 * (code_win bytes), already read. */
static struct py_code *code_get(struct py_sampler *s, uint64_t addr, const uint8_t *w,
				      int *err)
{
	const struct py_layout *L = &s->pi.L;
	*err = 0;
	/* Frames are named after their thread runs on: a code object freed
	 * meanwhile (a module's, once it has run) may hold another object, or
	 * be on a free list with its strings freed and reused. */
	if ((s->pi.pycode_type && py_rd64(w, s->code_win, 8) != s->pi.pycode_type) ||
	    !py_refcnt_live(w, s->code_win)) {
		*err = -ESTALE;
		return NULL;
	}
	struct py_code k = {
		.addr = addr,
		.filename = py_rd64(w, s->code_win, L->code_filename),
		.name = py_rd64(w, s->code_win, L->code_name),
		.qualname = L->code_qualname >= 0 ? py_rd64(w, s->code_win, L->code_qualname) : 0,
		.linetable = py_rd64(w, s->code_win, L->code_linetable),
		.firstlineno = (int32_t)py_rd32(w, s->code_win, L->code_firstlineno),
	};
	uint64_t idx;
	if (cg_map_get(&s->code_idx, addr, &idx)) {
		struct py_code *c = &s->codes[idx - 1];
		if (c->filename == k.filename && c->name == k.name && c->qualname == k.qualname &&
		    c->linetable == k.linetable && c->firstlineno == k.firstlineno)
			return c;
	}
	char name[PY_STR_MAX], file[PY_STR_MAX];
	*err = py_read_str(s, k.qualname ? k.qualname : k.name, name, sizeof(name));
	if (!*err)
		*err = py_read_str(s, k.filename, file, sizeof(file));
	if (!*err)
		*err = py_read_bytes(s, k.linetable, &k.tab, &k.tablen);
	if (*err)
		return NULL;
	/* Still the same live code object after its strings were read? One
	 * freed, or being built anew at this address, meanwhile may have led
	 * to strings that were never its own. */
	uint8_t w2[PY_WINDOW_MAX];
	if (target_read(s->pi.t, addr, w2, s->code_win) || !py_refcnt_live(w2, s->code_win) ||
	    py_rd64(w2, s->code_win, 8) != py_rd64(w, s->code_win, 8) ||
	    py_rd64(w2, s->code_win, L->code_filename) != k.filename ||
	    py_rd64(w2, s->code_win, L->code_name) != k.name ||
	    (L->code_qualname >= 0 && py_rd64(w2, s->code_win, L->code_qualname) != k.qualname) ||
	    py_rd64(w2, s->code_win, L->code_linetable) != k.linetable) {
		free(k.tab);
		*err = -ESTALE;
		return NULL;
	}
	/* 3.12 names its entry frames' code "<interpreter trampoline>" in
	 * file "<shim>": never the program's, whatever the owner byte read */
	k.shim = k.filename == k.name || !strcmp(file, "<shim>");
	k.memo_addr = INT32_MIN; /* no instruction is there */
	k.sname = strdup(name);
	k.sfile = strdup(file);
	if (!k.sname || !k.sfile) {
		code_free(&k);
		*err = -ENOMEM;
		return NULL;
	}
	if (cg_map_get(&s->code_idx, addr, &idx)) {
		code_free(&s->codes[idx - 1]);
		s->codes[idx - 1] = k;
		return &s->codes[idx - 1];
	}
	if (s->ncodes == PY_CODE_CACHE_MAX)
		code_cache_clear(s);
	s->codes[s->ncodes] = k;
	if (cg_map_put(&s->code_idx, addr, s->ncodes + 1)) {
		code_free(&k);
		*err = -ENOMEM;
		return NULL;
	}
	return &s->codes[s->ncodes++];
}

/* Where a thread state says which frame runs: the frame itself (<= 3.10
 * frame, 3.13+ current_frame) or, on 3.11-3.12, the _PyCFrame that does. */
static int32_t py_head_off(const struct py_layout *L)
{
	return L->tstate_frame >= 0		? L->tstate_frame
	       : L->tstate_current_frame >= 0 ? L->tstate_current_frame
					      : L->tstate_cframe;
}

/* Bytes of the walk's chain (a head word, a frame): from the thread's
 * prefetched snapshot when it holds them, else read, and either way part
 * of the thread's next plan (k: PY_PF_LEAF for the walk's first frame). */
static int chain_read_k(struct py_sampler *s, uint64_t addr, void *buf, size_t len,
			enum py_pf_kind k)
{
	const uint8_t *p = s->pf ? py_pf_get(s->pf, addr, len, k) : NULL;
	if (p) {
		memcpy(buf, p, len);
		return 0;
	}
	if (k == PY_PF_HEAD)
		s->head_snap = false;
	int r = target_read(s->pi.t, addr, buf, len);
	if (!r && s->pf)
		py_pf_note(s->pf, addr, len, k);
	return r;
}

/* One frame's window at f into w. From 3.11 frames live in per-thread
 * data-stack chunks, each caller below its callee, so one read of the
 * block that ends with this frame usually holds the next several: a walk
 * of depth D costs a few system calls, not D. Frames elsewhere (in
 * generator objects, another chunk, or on <= 3.10 the heap) are read
 * alone. The block is only valid for the walk that read it; the plan
 * keeps the frames' own windows, not the block (see prefetch.h). */
static int frame_read(struct py_sampler *s, uint64_t f, uint8_t *w)
{
	size_t win = s->frame_win;
	enum py_pf_kind k = s->nchain ? PY_PF_CHAIN : PY_PF_LEAF;
	if (f + win < f)
		return -EFAULT;
	if (f >= s->blk_lo && f + win <= s->blk_hi) {
		memcpy(w, s->blk + (f - s->blk_lo), win);
		if (s->pf)
			py_pf_note(s->pf, f, win, k);
		return 0;
	}
	const uint8_t *p = s->pf ? py_pf_get(s->pf, f, win, k) : NULL;
	if (p) {
		memcpy(w, p, win);
		return 0;
	}
	if (s->pi.L.frame_owner < 0)
		return chain_read_k(s, f, w, win, k);
	/* From a page boundary (a page under the frame may not exist, its
	 * own page does), so a failure falls back to the frame alone. */
	uint64_t page = f & ~(uint64_t)4095;
	uint64_t lo = page > PY_FRAME_BLOCK - 4096 ? page - (PY_FRAME_BLOCK - 4096) : 0;
	uint64_t hi = f + win;
	if (lo && !target_read(s->pi.t, lo, s->blk, hi - lo)) {
		s->blk_lo = lo;
		s->blk_hi = hi;
	} else if (!target_read(s->pi.t, page, s->blk, hi - page)) {
		s->blk_lo = page;
		s->blk_hi = hi;
	} else {
		return chain_read_k(s, f, w, win, k);
	}
	if (s->pf)
		py_pf_note(s->pf, f, win, k);
	memcpy(w, s->blk + (f - s->blk_lo), win);
	return 0;
}

/* The frame a thread runs, into *f and s->head_ptr (what verification
 * compares): from tw, the thread state's window already read (one system
 * call fewer), else read here. 0 or negative. */
static int walk_head(struct py_sampler *s, uint64_t tstate, const uint8_t *tw, uint64_t *f)
{
	const struct py_layout *L = &s->pi.L;
	int32_t head_off = py_head_off(L);
	uint64_t head = 0;
	int r = 0;
	s->head_ptr[0] = s->head_ptr[1] = 0;
	s->head_snap = !tw && py_pf_active(s->pf);
	if (tw)
		head = py_rd64(tw, s->tstate_win, head_off);
	else
		r = chain_read_k(s, tstate + (uint64_t)head_off, &head, 8, PY_PF_HEAD);
	if (!r && L->tstate_frame < 0 && L->tstate_current_frame < 0) {
		uint64_t cf = head; /* 3.11-3.12: through the _PyCFrame */
		head = 0;
		if (cf)
			r = chain_read_k(s, cf + (uint64_t)L->cframe_current_frame, &head, 8,
					 PY_PF_HEAD);
		s->head_ptr[1] = cf;
	}
	if (r)
		return r;
	*f = s->head_ptr[0] = head;
	return 0;
}

/* The byte offset of a frame's current instruction in its code, -1 when
 * it makes no sense. */
static int frame_instr_addr(const struct py_sampler *s, const uint8_t *w, uint64_t code)
{
	const struct py_layout *L = &s->pi.L;
	if (L->frame_lasti >= 0) {
		/* f_lasti is the target's word: scaled in 64 bits */
		int64_t a = (int64_t)(int32_t)py_rd32(w, s->frame_win, L->frame_lasti) * s->pi.lasti_scale;
		return a >= 0 && a < (1 << 30) ? (int)a : -1;
	}
	uint64_t ip = py_rd64(w, s->frame_win, L->frame_instr);
	uint64_t first = code + (uint64_t)L->code_adaptive;
	return ip >= first && ip - first < (1u << 30) ? (int)(ip - first) : -1;
}

/* Walk one thread's frame chain, leaf first, into s->raw: only the reads
 * that must see a consistent chain (done while the thread is paused).
 * Returns the number of frames, or negative (-ENOLINK: a chain that does
 * not end where a thread's stack ends). *truncated when deeper than
 * max_depth. */
static int walk_frames(struct py_sampler *s, uint64_t tstate, const uint8_t *tw, bool *truncated)
{
	const struct py_layout *L = &s->pi.L;
	uint8_t w[PY_WINDOW_MAX];
	uint64_t f = 0, lap = 0;
	uint32_t n = 0, steps = 0, power = 1, lam = 0;
	bool last_shim = false;
	int r;

	*truncated = false;
	s->blk_lo = s->blk_hi = 0;
	s->cwin_read = false;
	s->nchain = 0;
	s->chain_ok = true;
	r = walk_head(s, tstate, tw, &f);
	if (r)
		return r;
	/* Bounded twice: by max_depth for what we keep, and by a hard cap on
	 * steps so a frame chain that loops ends. */
	while (f && steps++ < PY_HARD_MAX_DEPTH) {
		/* Brent's cycle check: a chain that comes back to a frame it
		 * passed is torn (or hostile), not a deep stack of repeats. */
		if (f == lap)
			return -ELOOP;
		if (++lam == power) {
			lap = f;
			power *= 2;
			lam = 0;
		}
		r = frame_read(s, f, w);
		if (r)
			return r;
		uint64_t code = py_rd64(w, s->frame_win, L->frame_code);
		uint64_t back = py_rd64(w, s->frame_win, L->frame_back);
		if (s->nchain < s->chain_cap) {
			s->chain[s->nchain] = f;
			s->chain_back[s->nchain] = back;
			s->chain_code[s->nchain++] = code;
		} else {
			s->chain_ok = false;
		}
		/* 3.14+: f_executable is a tagged stack reference; objects are
		 * 8-aligned, so the tag bits are masked on 3.13+ alike. */
		if (L->tstate_current_frame >= 0)
			code &= ~(uint64_t)7;
		last_shim = L->frame_owner >= 0 && w[L->frame_owner] >= PY_OWNER_NOT_CODE;
		if (last_shim) {
			/* a shim the interpreter or the C stack pushes (owner
			 * CSTACK on 3.12-3.13, INTERPRETER or CSTACK from 3.14) */
			if (n > 0)
				s->raw[n - 1].entry = true;
			f = back;
			continue;
		}
		/* 3.13: f_executable may be something other than code; its
		 * type is checked with the code windows, after the walk */
		bool maybe_not_code = s->pi.pycode_type && L->tstate_current_frame >= 0;
		if (!code && maybe_not_code) {
			f = back;
			continue;
		}
		if (!code)
			return -EFAULT;
		if (n == s->o.max_depth) {
			*truncated = true;
			break;
		}
		int addr = frame_instr_addr(s, w, code);
		/* Where an eval-loop C call starts, for --native: every frame
		 * up to 3.10, is_entry on 3.11, before a C-stack shim on 3.12+
		 * (marked above when the shim is met). */
		bool entry = L->frame_owner < 0 && L->frame_is_entry < 0;
		if (L->frame_is_entry >= 0)
			entry = w[L->frame_is_entry] != 0;
		s->raw[n++] = (struct py_raw_frame){code, addr, entry, maybe_not_code, f};
		f = back;
	}
	if (steps >= PY_HARD_MAX_DEPTH)
		return -ELOOP;
	/* A whole chain ends where the thread's first eval loop began: from
	 * 3.12 in that loop's entry shim, on 3.11 in a frame marked is_entry.
	 * One that ends anywhere else is a frame caught while being linked
	 * (a generator on resume or yield, its caller not yet, or no longer,
	 * set) and is not the thread's stack. */
	if (n > 0 && !*truncated && L->frame_owner >= 0) {
		bool rooted = L->frame_is_entry >= 0 ? s->raw[n - 1].entry : last_shim;
		if (!rooted)
			return -ENOLINK;
	}
	return (int)n;
}

/* The code-object windows of frames [0, n): from the thread's snapshot
 * where it holds them, the rest with as few system calls as
 * process_vm_readv allows (IOV_MAX pieces each) instead of one per frame.
 * It stops at the first unreadable piece: those from there on are left to
 * code_get, which reads (and reports) them one by one. */
static void read_code_windows(struct py_sampler *s, int n)
{
	enum { CHUNK = 1024 };
	struct iovec local[CHUNK], remote[CHUNK];
	int idx[CHUNK];
	int k = 0;
	for (int i = 0; i <= n; i++) {
		if (i < n) {
			uint8_t *w = s->cwin + (size_t)i * s->code_win;
			const uint8_t *p =
				s->pf ? py_pf_get(s->pf, s->raw[i].code, s->code_win, PY_PF_CODE) : NULL;
			s->cwin_ok[i] = p != NULL;
			if (p) {
				memcpy(w, p, s->code_win);
				continue;
			}
			local[k] = (struct iovec){w, s->code_win};
			remote[k] = (struct iovec){(void *)(uintptr_t)s->raw[i].code, s->code_win};
			idx[k++] = i;
			if (k < CHUNK)
				continue;
		}
		if (!k)
			continue;
		ssize_t got = target_readv(s->pi.t, local, (size_t)k, remote, (size_t)k);
		int whole = got > 0 ? (int)((size_t)got / s->code_win) : 0;
		for (int j = 0; j < whole && j < k; j++) {
			s->cwin_ok[idx[j]] = true;
			if (s->pf)
				py_pf_note(s->pf, s->raw[idx[j]].code, s->code_win, PY_PF_CODE);
		}
		if (whole < k) {
			for (int j = i + 1; j < n; j++)
				s->cwin_ok[j] = false;
			return;
		}
		k = 0;
	}
}

/* verify_walk from the thread's snapshot. Copy A (the frames), the head
 * words, copy B (the frames again) were read in that order in one call:
 * when the walk started from a head read there and every frame of its
 * chain holds the same caller and code in copy B as in copy A, each
 * frame held them all along, so at the instant the head was read the
 * chain was the thread's whole stack. A call or a return between the
 * copies leaves the frames under the head as they were; only a frame
 * reused (returned from and called anew in its place) or a generator's
 * frame unlinked on yield changes one. Only the leaf's instruction may
 * have moved on, which is the sample instant's uncertainty, not a tear.
 * 0 whole, -EAGAIN changed, -ENOENT when the snapshot does not hold it
 * all (verify_walk reads it). */
static int verify_snapshot(struct py_sampler *s)
{
	const struct py_layout *L = &s->pi.L;
	if (!s->chain_ok)
		return -EAGAIN;
	if (!s->head_snap)
		return -ENOENT;
	for (uint32_t i = 0; i < s->nchain; i++) {
		uint64_t back, code;
		if (py_pf_after(s->pf, s->chain[i] + (uint64_t)L->frame_back, &back) ||
		    py_pf_after(s->pf, s->chain[i] + (uint64_t)L->frame_code, &code))
			return -ENOENT;
		if (back != s->chain_back[i] || code != s->chain_code[i])
			return -EAGAIN;
	}
	return 0;
}

/* An unpaused walk is kept only when the chain it followed is still the
 * thread's chain once it is done: the thread state still starts at the
 * same frame, and every frame still links to the same caller and runs
 * the same code. All of it is read again in one process_vm_readv (its
 * iovecs a word each), so a stack that changed under the walk - a return,
 * a call, a frame reused - is never kept half old, half new. Only the
 * leaf's instruction may have moved on, which is the sample instant's
 * uncertainty, not a tear. 0 when whole, -EAGAIN when it changed. */
static int verify_walk(struct py_sampler *s, uint64_t tstate, int nraw)
{
	enum { IOVS = 1024, CHUNK = 510 }; /* IOV_MAX a call; 2 iovecs a frame */
	const struct py_layout *L = &s->pi.L;
	struct iovec local[IOVS], remote[IOVS];
	uint64_t got[2 * CHUNK + 2];
	size_t k = 0;

	if (!s->chain_ok)
		return -EAGAIN;
	/* the head first, in the same call as the first frames */
	int32_t head_off = py_head_off(L);
	local[k] = (struct iovec){&got[k], 8};
	remote[k++] = (struct iovec){(void *)(uintptr_t)(tstate + (uint64_t)head_off), 8};
	if (s->head_ptr[1]) {
		local[k] = (struct iovec){&got[k], 8};
		remote[k++] = (struct iovec){
			(void *)(uintptr_t)(s->head_ptr[1] + (uint64_t)L->cframe_current_frame), 8};
	}
	size_t heads = k;
	uint32_t base = 0;
	do {
		for (uint32_t i = base; i < s->nchain && i < base + CHUNK; i++) {
			local[k] = (struct iovec){&got[k], 8};
			remote[k++] = (struct iovec){
				(void *)(uintptr_t)(s->chain[i] + (uint64_t)L->frame_back), 8};
			local[k] = (struct iovec){&got[k], 8};
			remote[k++] = (struct iovec){
				(void *)(uintptr_t)(s->chain[i] + (uint64_t)L->frame_code), 8};
		}
		/* A stack that fits one call brings its code-object windows
		 * along (name_frames needs them next): one system call for
		 * both. A short read there only leaves them to be read again. */
		size_t words = k, ncode = 0;
		if (base == 0 && s->nchain <= CHUNK && words + (size_t)nraw <= IOVS) {
			for (int i = 0; i < nraw; i++, ncode++) {
				local[k] = (struct iovec){s->cwin + (size_t)i * s->code_win, s->code_win};
				remote[k++] =
					(struct iovec){(void *)(uintptr_t)s->raw[i].code, s->code_win};
			}
		}
		ssize_t n = target_readv(s->pi.t, local, k, remote, k);
		if (n < (ssize_t)(words * 8))
			return -EAGAIN;
		if (ncode) {
			size_t whole = ((size_t)n - words * 8) / s->code_win;
			for (size_t i = 0; i < ncode; i++) {
				s->cwin_ok[i] = i < whole;
				if (s->pf && i < whole)
					py_pf_note(s->pf, s->raw[i].code, s->code_win, PY_PF_CODE);
			}
			s->cwin_read = true;
		}
		size_t j = 0;
		if (base == 0) {
			uint64_t want = s->head_ptr[1] ? s->head_ptr[1] : s->head_ptr[0];
			if (got[0] != want || (s->head_ptr[1] && got[1] != s->head_ptr[0]))
				return -EAGAIN;
			j = heads;
		}
		for (uint32_t i = base; j + 1 < words; i++, j += 2)
			if (got[j] != s->chain_back[i] || got[j + 1] != s->chain_code[i])
				return -EAGAIN;
		k = 0;
		base += CHUNK;
	} while (base < s->nchain);
	return 0;
}

/* CO_GENERATOR, CO_COROUTINE, CO_ITERABLE_COROUTINE, CO_ASYNC_GENERATOR:
 * code that runs only when a frame of someone's resumes it. */
#define PY_CO_RESUMABLE (0x20 | 0x80 | 0x100 | 0x200)

/* Name the raw frames (after the thread runs again): code objects from the
 * cache, lines from their tables. whole: the walk reached the thread's
 * first frame, which then cannot be a generator's or a coroutine's (one
 * is resumed from a frame below it; one alone is a frame caught while
 * being linked or unlinked): -ENOLINK. */
static int name_frames(struct py_sampler *s, int n, bool whole)
{
	int k = 0;
	if (!s->cwin_read)
		read_code_windows(s, n);
	s->cwin_read = false;
	for (int i = 0; i < n; i++) {
		int err;
		uint8_t buf[PY_WINDOW_MAX];
		const uint8_t *w = s->cwin + (size_t)i * s->code_win;
		if (!s->cwin_ok[i]) {
			err = target_read(s->pi.t, s->raw[i].code, buf, s->code_win);
			if (err)
				return err;
			w = buf;
		}
		if (whole && i == n - 1 && s->pi.L.code_flags >= 0 &&
		    ((int32_t)py_rd32(w, s->code_win, s->pi.L.code_flags) & PY_CO_RESUMABLE))
			return -ENOLINK;
		if (s->raw[i].maybe_not_code && py_rd64(w, s->code_win, 8) != s->pi.pycode_type) {
			/* not a code object: left out, as the walk leaves out the
			 * C-stack shim; an entry mark moves to the kept frame
			 * before it (leafward), where the walk would have put it */
			if (s->raw[i].entry && k > 0)
				s->raw[k - 1].entry = true;
			continue;
		}
		struct py_code *c = code_get(s, s->raw[i].code, w, &err);
		if (!c)
			return err;
		if (c->memo_addr != s->raw[i].addr) {
			c->memo_line = py_line_for(s->pi.lt_kind, c->tab, c->tablen, c->firstlineno,
						   s->raw[i].addr);
			c->memo_addr = s->raw[i].addr;
		}
		int line = c->memo_line;
		if (c->shim && (line <= 0 || !strcmp(c->sfile, "<shim>"))) {
			if (s->raw[i].entry && k > 0)
				s->raw[k - 1].entry = true;
			continue;
		}
		s->raw[k] = s->raw[i];
		s->frames[k++] = (struct cg_frame){
			.name = c->sname,
			.file = c->sfile,
			.line = line > 0 ? line : 0,
			.kind = CG_FK_PYTHON,
		};
	}
	return k;
}

static bool tid_listed(pid_t tid, const pid_t *tids, int ntids)
{
	for (int i = 0; i < ntids; i++)
		if (tids[i] == tid)
			return true;
	return false;
}

/* Where in glibc's struct pthread the kernel tid is, learnt from the
 * structs themselves: the words that hold a tid of the process, in every
 * struct seen (one word alone may hold a tid by chance: glibc's header
 * saves vector registers, which may hold any small number), and that
 * differ between two threads' structs (two live threads never share a
 * tid; the upper half of a pointer into the thread stacks' region, the
 * same in every struct, is a listed tid whenever the tids have reached
 * that number: 0x7fxx is 32512-32767, inside the default pid_max). The
 * offset is fixed once a single word is left, or when every thread has
 * been seen (one thread: the main one, whose tid is the pid). 0 and *off
 * learnt, or -EAGAIN. */
int py_ptid_learn(struct py_ptid_learn *l, uint64_t addr, const int32_t *buf, size_t nwords,
		  const pid_t *tids, int ntids, int *off)
{
	uint64_t cand[4] = {0};
	if (nwords > PY_PTID_WORDS)
		nwords = PY_PTID_WORDS;
	for (size_t k = 0; k < nwords; k++)
		if (buf[k] > 0 && tid_listed(buf[k], tids, ntids))
			cand[k / 64] |= 1ull << (k % 64);
	bool first = !l->seen;
	if (!first && addr != l->first_addr)
		for (size_t k = 0; k < nwords; k++)
			if (buf[k] == l->first[k])
				cand[k / 64] &= ~(1ull << (k % 64));
	int bits = 0;
	for (int i = 0; i < 4; i++) {
		l->cand[i] = first ? cand[i] : l->cand[i] & cand[i];
		bits += __builtin_popcountll(l->cand[i]);
	}
	if (first) {
		l->first_addr = addr;
		memset(l->first, 0, sizeof(l->first));
		memcpy(l->first, buf, nwords * sizeof(*buf));
	}
	l->seen = bits ? l->seen + 1 : 0; /* none left: start again */
	if (bits != 1 && (bits == 0 || l->seen < (uint32_t)ntids))
		return -EAGAIN;
	for (int i = 0; i < 4; i++)
		if (l->cand[i]) {
			*off = 4 * (64 * i + __builtin_ctzll(l->cand[i]));
			return 0;
		}
	return -EAGAIN;
}

/* The kernel tid in glibc's struct pthread at pthread, once the field is
 * known (py_ptid_learn). 0 when unknown. */
static pid_t pthread_lookup(struct py_sampler *s, uint64_t pthread, const pid_t *tids, int ntids)
{
	int32_t buf[PY_PTID_WORDS];
	if (target_read(s->pi.t, pthread, buf, sizeof(buf)))
		return 0;
	if (s->pthread_tid_off < 0) {
		if (py_ptid_learn(&s->ptid, pthread, buf, CG_ARRAY_LEN(buf), tids, ntids,
				  &s->pthread_tid_off))
			return 0;
		cg_debug("python: the kernel tid is at byte %d of struct pthread (%u structs, %d threads)",
			 s->pthread_tid_off, s->ptid.seen, ntids);
	}
	pid_t v = buf[s->pthread_tid_off / 4];
	if (!v || !tid_listed(v, tids, ntids))
		return 0;
	if (s->pthread_tids.len >= PY_MAX_THREADS)
		cg_map_clear(&s->pthread_tids);
	cg_map_put(&s->pthread_tids, pthread, (uint64_t)v); /* no room: read again */
	return v;
}

/* <= 3.10 know a thread only by its pthread_t. A thread keeps its tid for
 * life, so the answer is kept: glibc reuses a struct pthread only after
 * its thread ended, and the caller forgets a kept tid whose thread is
 * gone. Only a pthread_t not known yet costs the OS thread list (*ntids <
 * 0: not listed this round; a directory listing, four system calls) and
 * a read. */
static pid_t pthread_to_tid(struct py_sampler *s, uint64_t pthread, pid_t *tids, int *ntids)
{
	uint64_t known;
	if (s->pthread_tid_off == -2 || !pthread)
		return 0;
	if (cg_map_get(&s->pthread_tids, pthread, &known) && known)
		return (pid_t)known;
	if (*ntids < 0 && (*ntids = target_threads(s->pi.t, tids, PY_MAX_THREADS)) < 0)
		*ntids = 0;
	return pthread_lookup(s, pthread, tids, *ntids);
}

static int py_probe(struct target *t)
{
	struct py_interp pi;
	return py_discover(t, &pi);
}

int py_sampler_new(const struct py_interp *pi, const struct cg_sampler_opts *o, void **priv)
{
	struct target *t = pi->t;
	int r;
	struct py_sampler *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pi = *pi;
	s->o = *o;
	if (!s->o.max_depth)
		s->o.max_depth = 2048;
	s->frames_cap = s->o.max_depth;
	s->frames = calloc(s->frames_cap + 1, sizeof(*s->frames)); /* + a task root */
	s->raw = calloc(s->frames_cap, sizeof(*s->raw));
	s->codes = calloc(PY_CODE_CACHE_MAX, sizeof(*s->codes));
	/* shims between kept frames: at most one for each, and a few more */
	s->chain_cap = 2 * s->frames_cap + 16;
	s->chain = calloc(s->chain_cap, sizeof(*s->chain));
	s->chain_back = calloc(s->chain_cap, sizeof(*s->chain_back));
	s->chain_code = calloc(s->chain_cap, sizeof(*s->chain_code));
	cg_map_init(&s->code_idx);
	cg_map_init(&s->pthread_tids);
	r = py_tnames_new(&s->pi, &s->tnames);
	if (r)
		goto fail;
	s->pthread_tid_off = s->pi.L.tstate_native_thread_id >= 0 ? -2 : -1;
	const struct py_layout *L = &s->pi.L;
	int32_t fo[] = {L->frame_back,	 L->frame_code,	 L->frame_lasti,
			L->frame_instr, L->frame_owner, L->frame_is_entry};
	int32_t co[] = {L->code_filename, L->code_name, L->code_qualname, L->code_linetable,
			L->code_firstlineno, L->code_flags};
	int32_t to[] = {L->tstate_next,	 L->tstate_thread_id,	 L->tstate_native_thread_id,
			L->tstate_frame, L->tstate_current_frame, L->tstate_cframe};
	s->frame_win = max_off(fo, 6);
	if (o->native) {
		if (o->nonblocking) {
			r = cg_fail(-EINVAL, "--native needs pausing; drop --nonblocking");
			goto fail;
		}
		r = native_open(t, &s->nctx);
		if (r)
			goto fail;
		s->nf = calloc(s->frames_cap, sizeof(*s->nf));
		s->entry = calloc(s->frames_cap, sizeof(*s->entry));
		s->merged = calloc(s->frames_cap, sizeof(*s->merged));
		if (!s->nf || !s->entry || !s->merged) {
			r = -ENOMEM;
			goto fail;
		}
	}
	s->code_win = max_off(co, 6);
	s->tstate_win = max_off(to, 6);
	s->cwin = calloc(s->frames_cap, s->code_win);
	s->cwin_ok = calloc(s->frames_cap, sizeof(*s->cwin_ok));
	if (!o->blocking && !o->native && py_pf_new(t, &s->pf))
		s->pf = NULL; /* without plans every read is made as it comes */
	if (!s->frames || !s->raw || !s->codes || !s->cwin || !s->cwin_ok || !s->chain ||

	    !s->chain_back || !s->chain_code ||
	    s->frame_win > PY_WINDOW_MAX || s->code_win > PY_WINDOW_MAX ||
	    s->tstate_win > PY_WINDOW_MAX) {
		r = -ENOMEM;
		goto fail;
	}
	if (o->async_tasks) {
		r = py_async_new(&s->pi, s, &s->async);
		if (r)
			goto fail;
		if (s->async && s->nctx)
			cg_warn("--async with --native: running tasks keep their event-loop frames "
				"(no task root); suspended tasks are sampled as usual");
	}
	cg_debug("python: %s in %s", s->pi.version, s->pi.object);
	*priv = s;
	return 0;
fail:
	py_tnames_free(s->tnames);
	if (s->nctx)
		native_close(s->nctx);
	free(s->nf);
	free(s->entry);
	free(s->merged);
	free(s->frames);
	free(s->raw);
	free(s->codes);
	free(s->cwin);
	free(s->cwin_ok);
	free(s->chain);
	free(s->chain_back);
	free(s->chain_code);
	free(s->tlist);
	free(s->tlwin);
	py_pf_free(s->pf);
	free(s);
	return r;
}

static int py_open(struct target *t, const struct cg_sampler_opts *o, void **priv)
{
	struct py_interp pi;
	int r = py_discover(t, &pi);
	return r ? r : py_sampler_new(&pi, o, priv);
}

int py_sample_thread(void *priv, uint64_t tstate, const struct cg_frame **frames,
		     bool *truncated)
{
	struct py_sampler *s = priv;
	int n = walk_frames(s, tstate, NULL, truncated);
	if (n > 0)
		n = name_frames(s, n, !*truncated);
	*frames = s->frames;
	return n;
}

static void py_close(void *priv)
{
	struct py_sampler *s = priv;
	if (!s)
		return;
	code_cache_clear(s);
	cg_map_free(&s->code_idx);
	cg_map_free(&s->pthread_tids);
	free(s->codes);
	free(s->frames);
	free(s->raw);
	free(s->cwin);
	free(s->cwin_ok);
	free(s->chain);
	free(s->chain_back);
	free(s->chain_code);
	if (s->nctx)
		native_close(s->nctx);
	py_tnames_free(s->tnames);
	free(s->nf);
	free(s->entry);
	free(s->merged);
	py_async_free(s->async);
	free(s->tlist);
	free(s->tlwin);
	py_pf_free(s->pf);
	free(s);
}

static const char *py_version(void *priv)
{
	return ((struct py_sampler *)priv)->pi.version;
}

/* A stack read without stopping the thread: kept only when verify_walk
 * finds the chain unchanged after the read; one more try when it changed
 * (a return or a call in the microseconds of the read). The number of
 * frames, or negative: -EAGAIN (or the walk's error) when both tore. */
static int walk_unpaused(struct py_sampler *s, uint64_t ts, const uint8_t *tw, bool *truncated)
{
	const struct py_layout *L = &s->pi.L;
	int32_t head_off = py_head_off(L);
	int nf = -EAGAIN;
	for (int attempt = 0; attempt < 2; attempt++) {
		/* Each try from the thread's plan, if it has one: one system
		 * call, the head read with it (the plan is the walk's memory,
		 * the same when the stack moved within it). */
		bool snap = false;
		if (s->pf)
			snap = py_pf_fetch(s->pf, ts, ts + (uint64_t)head_off);
		nf = walk_frames(s, ts, attempt || snap ? NULL : tw, truncated);
		if (nf < 0)
			continue;
		int v = snap ? verify_snapshot(s) : -ENOENT;
		if (v == -ENOENT)
			v = verify_walk(s, ts, nf);
		if (v == 0)
			return nf;
		nf = -EAGAIN;
	}
	return nf;
}

/* A stack read with the thread paused (--blocking, --native): the walk
 * and the native unwind see one instant. nn native frames into s->nf.
 * The number of Python frames, or negative (counted lost). */
static int walk_paused(struct py_sampler *s, uint64_t ts, pid_t tid, bool *truncated,
		       uint32_t *nn, bool *ntrunc, int *nr, struct cg_sample_stats *st)
{
	if (s->pf)
		py_pf_drop(s->pf); /* everything read anew */
	int r = target_pause(s->pi.t, tid);
	if (r) {
		st->lost[r == -ESRCH ? CG_LOST_GONE : CG_LOST_PAUSE]++;
		return r;
	}
	int nf = walk_frames(s, ts, NULL, truncated);
	if (s->nctx && nf >= 0)
		*nr = native_unwind_ips(s->nctx, tid, s->nf, s->frames_cap, nn, ntrunc);
	target_resume(s->pi.t, tid);
	if (nf < 0)
		st->lost[nf == -ENOLINK ? CG_LOST_TORN : CG_LOST_READ]++;
	return nf;
}

/* Name a walk's frames; a failure counted lost. */
static int name_counted(struct py_sampler *s, int nf, bool truncated, struct cg_sample_stats *st)
{
	if (nf <= 0)
		return nf;
	nf = name_frames(s, nf, !truncated);
	if (nf < 0)
		st->lost[nf == -ENOLINK ? CG_LOST_TORN : CG_LOST_READ]++;
	return nf;
}

/* A thread's tear record, found or made (NULL when the table is full). */
static struct py_tear *tear_of(struct py_sampler *s, uint64_t ts)
{
	for (uint32_t i = 0; i < s->ntears; i++)
		if (s->tears[i].ts == ts) {
			s->tears[i].idle = 0;
			return &s->tears[i];
		}
	if (s->ntears == PY_TEARS)
		return NULL;
	s->tears[s->ntears] = (struct py_tear){.ts = ts};
	return &s->tears[s->ntears++];
}

/* One unpaused read's outcome into the thread's torn rate, which decides
 * how it is read next (with hysteresis). */
static void tear_note(struct py_tear *tr, bool torn)
{
	tr->rate -= tr->rate >> PY_TEAR_SHIFT;
	if (torn)
		tr->rate += 65536u >> PY_TEAR_SHIFT;
	if (!tr->paused && tr->rate >= PY_TEAR_ON)
		tr->paused = true;
	else if (tr->paused && tr->rate < PY_TEAR_OFF)
		tr->paused = false;
}

/* The default read of a Python-only sample: unpaused and kept only when
 * whole. A stack can change faster than any read sees it whole: a thread
 * on another CPU calling, returning and resuming generators every few
 * hundred nanoseconds. Its torn reads cannot simply be dropped, nor
 * replaced by a pause of the thread just then: either keeps the reads
 * that succeeded, which are of the code that holds still (measured: a
 * loop driving generators and coroutines at 70-85% instead of its 20%).
 * So a thread whose reads tear often (PY_TEAR_ON of its recent ones) is
 * read paused, every sample, whatever it runs, until probes - an
 * unpaused read every PY_TEAR_PROBE samples, never kept - find its reads
 * whole again (under PY_TEAR_OFF). Below that, a torn read is taken
 * paused at once: the few left skew nothing that matters. The pause
 * shifts a sample toward a system call (the interrupt takes microseconds
 * to land), but only in threads whose stacks churn, not in a thread that
 * holds still between system calls. --nonblocking never pauses: torn
 * reads are dropped and counted. The number of frames, or negative
 * (counted lost). */
static int read_unpaused(struct py_sampler *s, uint64_t ts, pid_t tid, const uint8_t *tw,
			 bool *truncated, struct cg_sample_stats *st)
{
	uint32_t nn = 0;
	bool ntrunc = false;
	int nr = -1;
	/* A torn read is taken again paused whether or not the thread has
	 * a record: past PY_TEARS threads it only has no memory of its rate
	 * (each torn read costs a second, paused one) */
	bool may_pause = tid > 0 && !s->o.nonblocking && !s->pause_refused;
	struct py_tear *tr = may_pause ? tear_of(s, ts) : NULL;
	bool probe = false;
	if (tr && tr->paused) {
		if (++tr->probe < PY_TEAR_PROBE)
			goto paused;
		tr->probe = 0;
		probe = true;
	}
	int nf = walk_unpaused(s, ts, tw, truncated);
	bool torn = nf < 0;
	if (nf > 0) {
		nf = name_frames(s, nf, !*truncated);
		torn = nf == -ENOLINK;
		if (nf < 0 && !torn) {
			st->lost[CG_LOST_READ]++;
			return nf;
		}
	}
	if (tr)
		tear_note(tr, torn);
	if (!torn && !probe)
		return nf;
	if (!may_pause) {
		st->lost[CG_LOST_TORN]++;
		return -EAGAIN;
	}
paused:
	nf = walk_paused(s, ts, tid, truncated, &nn, &ntrunc, &nr, st);
	if (nf == -EPERM) {
		/* not allowed (another tracer, a seccomp filter): torn
		 * reads are dropped from here on */
		s->pause_refused = true;
		cg_info("cannot pause a thread of %d to read a stack that changes too fast to read "
			"unpaused (%s): those samples are dropped, as with --nonblocking",
			(int)target_pid(s->pi.t), strerror(EPERM));
	}
	return name_counted(s, nf, *truncated, st);
}

/* A merge failed on a stack with Python frames. When none has worked
 * after many, the interpreter's eval loop is not (wholly) named in its
 * symbols (Debian's 3.14: stripped, PGO+LTO, the loop's code outside the
 * one small symbol left): say so once, with what to do, instead of a
 * profile of nothing but "merge". */
static void note_no_merge(struct py_sampler *s)
{
	if (++s->no_merge < 50 || s->no_merge_said)
		return;
	s->no_merge_said = true;
	cg_warn("%s: native and Python stacks never lined up in %u samples: the eval loop "
		"is not named in the symbols of %s (a stripped, optimised build without its "
		"debug symbols?), so --native samples are lost as \"merge\"; install the "
		"interpreter's debug symbols, or profile without --native",
		s->pi.version, s->no_merge, s->pi.object);
}

/* --native: the Python frames put in place of the eval-loop frames of the
 * native stack. The merged depth, or negative (counted lost). */
static int merge_native(struct py_sampler *s, int nf, int nr, uint32_t nn, bool *truncated,
			bool ntrunc, struct cg_sample_stats *st)
{
	if (nr == 0)
		nr = native_symbolize(s->nctx, s->nf, &nn);
	for (int i = 0; i < nf; i++)
		s->entry[i] = s->raw[i].entry;
	uint32_t nm = 0;
	bool mt = false;
	if (nr == 0)
		nr = native_merge(s->nf, nn, s->frames, s->entry, (uint32_t)nf,
				  *truncated || ntrunc, s->merged, s->frames_cap, &nm, &mt);
	if (nr) {
		st->lost[nr == -EPROTO ? CG_LOST_MERGE : CG_LOST_READ]++;
		if (nr == -EPROTO && nf > 0 && !s->merged_once)
			note_no_merge(s);
		return nr;
	}
	/* a stack with no Python frame lines up with any native one, and a
	 * cut native stack with no eval-loop frame in it keeps its native
	 * part alone: neither says the eval loop is named */
	for (uint32_t i = 0; i < nn && nf > 0 && !s->merged_once; i++)
		s->merged_once = (s->nf[i].flags & NATIVE_F_EVAL) != 0;
	*truncated = *truncated || mt || ntrunc;
	return (int)nm;
}

/* One thread's sample, whole or not at all, delivered to fn. */
static void sample_thread(struct py_sampler *s, uint64_t ts, const uint8_t *tw, pid_t tid,
			  uint64_t ident, enum target_thread_run run, cg_sample_fn fn, void *arg,
			  struct cg_sample_stats *st)
{
	bool truncated = false, ntrunc = false;
	uint32_t nn = 0;
	int nr = -1, nf;
	bool pause = tid > 0 && (s->o.blocking || s->nctx);

	if (pause) {
		nf = walk_paused(s, ts, tid, &truncated, &nn, &ntrunc, &nr, st);
		nf = name_counted(s, nf, truncated, st);
	} else
		nf = read_unpaused(s, ts, tid, tw, &truncated, st);
	/* what this sample read is the thread's plan for the next one */
	if (s->pf)
		py_pf_done(s->pf, ts, nf >= 0);
	if (nf < 0)
		return;
	if (s->async && !s->nctx)
		nf = py_async_root(s->async, ts, s->frames, s->raw, nf, &truncated);
	const struct cg_frame *frames = s->frames;
	if (s->nctx) {
		nf = merge_native(s, nf, nr, nn, &truncated, ntrunc, st);
		if (nf < 0)
			return;
		frames = s->merged;
	}
	if (nf == 0)
		return;
	/* The program's own name for the thread wins over the OS one (which
	 * 3.14+ also set, cut to 15 bytes). */
	char tname[PY_TNAME_MAX];
	py_tnames_name(s->tnames, ident, tid, tname, sizeof(tname));
	struct cg_sample smp = {
		.pid = target_pid(s->pi.t),
		.tid = tid,
		.thread_name = tname,
		.state = run == TARGET_THREAD_RUNNING ? CG_ST_RUNNING : CG_ST_IDLE,
		.truncated = truncated,
		.nframes = (uint32_t)nf,
		.frames = frames,
	};
	fn(&smp, arg);
	st->taken++;
}

/* Every thread state's window into s->tlwin, in list order, with the
 * list head at interp: in one call when the list is the one of the last
 * round (each window's next pointer must say so), else one by one. The
 * number of thread states, or negative. */
static int read_tstates(struct py_sampler *s, uint64_t interp, struct cg_sample_stats *st)
{
	const struct py_layout *L = &s->pi.L;
	struct target *t = s->pi.t;
	uint64_t head = 0, ts;
	size_t win = s->tstate_win;

	if (s->ntlist && s->ntlist <= PY_TLIST_MAX) {
		struct iovec local[PY_TLIST_MAX + 1], remote[PY_TLIST_MAX + 1];
		local[0] = (struct iovec){&head, 8};
		remote[0] = (struct iovec){(void *)(uintptr_t)(interp + (uint64_t)L->interp_tstate_head), 8};
		for (uint32_t i = 0; i < s->ntlist; i++) {
			local[i + 1] = (struct iovec){s->tlwin + i * win, win};
			remote[i + 1] = (struct iovec){(void *)(uintptr_t)s->tlist[i], win};
		}
		ssize_t got = target_readv(t, local, s->ntlist + 1, remote, s->ntlist + 1);
		bool same = got == (ssize_t)(8 + s->ntlist * win) && head == s->tlist[0];
		for (uint32_t i = 0; same && i < s->ntlist; i++)
			same = py_rd64(s->tlwin + i * win, win, L->tstate_next) ==
			       (i + 1 < s->ntlist ? s->tlist[i + 1] : 0);
		if (same)
			return (int)s->ntlist;
	}
	s->ntlist = 0;
	int r = target_read(t, interp + (uint64_t)L->interp_tstate_head, &head, 8);
	if (r)
		return r; /* -ESRCH: the process is gone */
	ts = head;
	uint32_t n = 0;
	for (; ts && n < PY_MAX_THREADS; n++) {
		if (n == s->tlist_cap) {
			uint32_t cap = s->tlist_cap ? 2 * s->tlist_cap : 64;
			uint64_t *l = realloc(s->tlist, cap * sizeof(*l));
			if (l)
				s->tlist = l;
			uint8_t *w = l ? realloc(s->tlwin, cap * win) : NULL;
			if (!w)
				break; /* the threads so far */
			s->tlwin = w;
			s->tlist_cap = cap;
		}
		uint8_t *dst = s->tlwin + (size_t)n * win;
		if (target_read(t, ts, dst, win)) {
			st->lost[CG_LOST_READ]++;
			break;
		}
		s->tlist[n] = ts;
		ts = py_rd64(dst, win, L->tstate_next);
	}
	/* the whole list: next round reads it in one call (up to IOV_MAX) */
	if (!ts)
		s->ntlist = n;
	return (int)n;
}

static int py_sample(void *priv, cg_sample_fn fn, void *arg, struct cg_sample_stats *st)
{
	struct py_sampler *s = priv;
	const struct py_layout *L = &s->pi.L;
	struct target *t = s->pi.t;
	pid_t tids[PY_MAX_THREADS];
	int seen = 0;

	/* The OS thread list only where it is needed (a directory listing,
	 * four system calls): --native forgets the unwind state of threads
	 * that are gone with it each round; <= 3.10 map a new pthread_t to
	 * its tid with it (pthread_to_tid lists when it must). From 3.11 the
	 * thread state holds its tid. */
	int ntids = -1;
	if (s->nctx) {
		ntids = target_threads(t, tids, PY_MAX_THREADS);
		if (ntids < 0)
			return ntids;
		if (ntids == 0)
			return -ESRCH;
	}
	if (s->nctx)
		native_round(s->nctx, tids, (size_t)ntids);
	py_async_round(s->async);
	if (s->pf)
		py_pf_round(s->pf);
	for (uint32_t i = 0; i < s->ntears;)
		if (++s->tears[i].idle > PY_TEAR_IDLE)
			s->tears[i] = s->tears[--s->ntears];
		else
			i++;
	/* The main interpreter stays where it is for the process's life:
	 * looked up again only now and then, or when it stops answering. */
	if (!s->interp || ++s->interp_age >= PY_INTERP_RECHECK) {
		int r = py_read_interp(&s->pi, &s->interp);
		s->interp_age = 0;
		s->ntlist = 0;
		if (r || !s->interp) {
			s->interp = 0;
			return r == -ESRCH ? r : 0;
		}
	}
	uint64_t interp = s->interp;
	int nts = read_tstates(s, interp, st);
	if (nts < 0) {
		s->interp = 0;
		return nts == -ESRCH ? nts : 0;
	}
	for (int n = 0; n < nts; n++) {
		const uint8_t *w = s->tlwin + (size_t)n * s->tstate_win;
		uint64_t ts = s->tlist[n];
		pid_t tid = L->tstate_native_thread_id >= 0
				    ? (pid_t)py_rd64(w, s->tstate_win, L->tstate_native_thread_id)
				    : pthread_to_tid(s, py_rd64(w, s->tstate_win, L->tstate_thread_id), tids,
						     &ntids);
		/* A profile samples the threads on a CPU; a dump (one round)
		 * says which threads have work, so one waiting in the run
		 * queue for a CPU (R) is running there, not idle. */
		enum target_thread_run run = TARGET_THREAD_RUNNING;
		if (tid > 0)
			run = s->o.rate_hz > 0 ? target_thread_oncpu(t, tid)
					       : target_thread_state(t, tid);
		if (run == TARGET_THREAD_GONE && L->tstate_native_thread_id < 0)
			cg_map_put(&s->pthread_tids, py_rd64(w, s->tstate_win, L->tstate_thread_id), 0);
		if (run != TARGET_THREAD_GONE) {
			seen++;
			py_async_note_thread(s->async, interp, ts, tid);
			if (run == TARGET_THREAD_RUNNING || s->o.idle)
				sample_thread(s, ts, w, tid, py_rd64(w, s->tstate_win, L->tstate_thread_id),
					      run, fn, arg, st);
		}
	}
	if (s->async && s->o.idle)
		py_async_sample_suspended(s->async, fn, arg, st);
	return seen;
}

int py_sampler_read_str(void *priv, uint64_t addr, char *out, size_t n)
{
	return py_read_str(priv, addr, out, n);
}

struct py_raw_frame *py_sampler_raw(void *priv, uint32_t *cap)
{
	struct py_sampler *s = priv;
	*cap = s->frames_cap;
	return s->raw;
}

int py_sampler_name(void *priv, int n, struct cg_frame **frames)
{
	struct py_sampler *s = priv;
	*frames = s->frames;
	return n > 0 ? name_frames(s, n, false) : 0;
}

int python_tasks(void *priv, cg_task_fn fn, void *arg)
{
	struct py_sampler *s = priv;
	if (!s->async)
		return -ENOTSUP; /* py_async_new said why */
	return py_async_tasks(s->async, fn, arg);
}

const struct cg_sampler_ops python_sampler_ops = {
	.name = "python",
	.runtime = CG_RT_PYTHON,
	.probe = py_probe,
	.open = py_open,
	.sample = py_sample,
	.version = py_version,
	.close = py_close,
};
