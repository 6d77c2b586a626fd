/* Per-thread read plans: a thread's sample in one process_vm_readv (see
 * prefetch.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cgprof/target.h"
#include "cgprof/util.h"
#include "prefetch.h"

/* chain regions: the head and cframe words (copied once, between copy A
 * and copy B), the frames walked, runs of them merged, shims, and on
 * <= 3.10 every (heap) frame; copied twice: 2 * 256 + 480 <= IOV_MAX */
#define PF_CHAIN_MAX 256
#define PF_CODE_MAX 480
#define PF_BYTES_MAX (192u * 1024) /* copy A + copy B of one plan */
#define PF_PLANS_MAX 256     /* threads that keep a plan */
#define PF_PLAN_IDLE 1024    /* rounds a plan is kept unused (a thread waiting for the GIL) */
#define PF_SET 1024          /* the code-address set of one walk (power of 2) */
#define PF_MERGE_GAP 512     /* bytes between two frames copied as one region */
#define PF_MERGE_MAX 16384   /* the longest merged region */
#define PF_AGE 16            /* walks a region stays in a plan unused */

struct pf_region {
	uint64_t addr;
	uint32_t len;
	uint16_t age;  /* walks since one last used it */
	uint16_t head; /* a head word: read between copy A and copy B */
};

/* A kept plan holds its regions in one allocation of exact size (chain
 * then code); the snapshot and the recording have room for the most. */
struct pf_plan {
	uint64_t tstate;
	uint32_t idle; /* rounds since it was last fetched */
	uint32_t nchain, ncode;
	struct pf_region *chain, *code;
};

struct py_prefetch {
	struct target *t;
	struct pf_plan plans[PF_PLANS_MAX];
	uint32_t nplans;
	/* the snapshot of the current walk: a copy of its plan's regions */
	bool active;
	struct pf_plan snap;
	uint32_t a_chain[PF_CHAIN_MAX], b_chain[PF_CHAIN_MAX], a_code[PF_CODE_MAX];
	bool ok_a_chain[PF_CHAIN_MAX], ok_b_chain[PF_CHAIN_MAX], ok_code[PF_CODE_MAX];
	uint32_t last_chain, last_after; /* where the last range lookups hit */
	uint8_t *buf;        /* PF_BYTES_MAX */
	/* code address -> index + 1 in snap.code, open addressing */
	uint64_t set_key[PF_SET];
	uint32_t set_val[PF_SET], set_gen[PF_SET], gen;
	/* what this walk read: the next plan */
	struct pf_plan rec;
	bool rec_over; /* more than a plan holds: the thread keeps none */
	uint32_t rec_leaf; /* regions up to the leaf's: never extended */
	uint64_t rec_key[PF_SET];
	uint32_t rec_gen[PF_SET];
};

int py_pf_new(struct target *t, struct py_prefetch **out)
{
	struct py_prefetch *pf = calloc(1, sizeof(*pf));
	if (!pf)
		return -ENOMEM;
	pf->t = t;
	pf->buf = malloc(PF_BYTES_MAX);
	pf->snap.chain = malloc((PF_CHAIN_MAX + PF_CODE_MAX) * sizeof(struct pf_region));
	pf->rec.chain = malloc((PF_CHAIN_MAX + PF_CODE_MAX) * sizeof(struct pf_region));
	if (!pf->buf || !pf->snap.chain || !pf->rec.chain) {
		py_pf_free(pf);
		return -ENOMEM;
	}
	pf->snap.code = pf->snap.chain + PF_CHAIN_MAX;
	pf->rec.code = pf->rec.chain + PF_CHAIN_MAX;
	*out = pf;
	return 0;
}

void py_pf_free(struct py_prefetch *pf)
{
	if (!pf)
		return;
	for (uint32_t i = 0; i < pf->nplans; i++)
		free(pf->plans[i].chain);
	free(pf->buf);
	free(pf->snap.chain);
	free(pf->rec.chain);
	free(pf);
}

/* A set slot of an 8-aligned address: its high bits, mixed */
static uint32_t slot_of(uint64_t key)
{
	return (uint32_t)((key >> 3) * 0x9E3779B97F4A7C15ull >> 54);
}

static void rec_start(struct py_prefetch *pf)
{
	pf->rec.nchain = pf->rec.ncode = 0;
	pf->rec_leaf = 0;
	pf->rec_over = false;
	/* a new generation empties both sets without clearing them */
	if (++pf->gen == 0) {
		memset(pf->set_gen, 0, sizeof(pf->set_gen));
		memset(pf->rec_gen, 0, sizeof(pf->rec_gen));
		pf->gen = 1;
	}
}

void py_pf_round(struct py_prefetch *pf)
{
	for (uint32_t i = 0; i < pf->nplans;) {
		if (++pf->plans[i].idle <= PF_PLAN_IDLE) {
			i++;
			continue;
		}
		free(pf->plans[i].chain);
		pf->plans[i] = pf->plans[--pf->nplans];
	}
}

static struct pf_plan *plan_of(struct py_prefetch *pf, uint64_t tstate)
{
	for (uint32_t i = 0; i < pf->nplans; i++)
		if (pf->plans[i].tstate == tstate)
			return &pf->plans[i];
	return NULL;
}

/* A plan region that could not be read (memory unmapped since): out of
 * the plan now, not after PF_AGE walks, for the pieces after it in the
 * one system call are lost with it. */
static void plan_forget(struct pf_plan *p, uint64_t addr, uint32_t len, bool code)
{
	struct pf_region *g = code ? p->code : p->chain;
	uint32_t *n = code ? &p->ncode : &p->nchain;
	for (uint32_t i = 0; i < *n; i++)
		if (g[i].addr == addr && g[i].len == len) {
			memmove(&g[i], &g[i + 1], (*n - i - 1) * sizeof(*g));
			(*n)--;
			return;
		}
}

bool py_pf_fetch(struct py_prefetch *pf, uint64_t tstate, uint64_t head_addr)
{
	enum { IOVS = 2 * PF_CHAIN_MAX + PF_CODE_MAX };
	struct iovec local[IOVS], remote[IOVS];
	uint32_t len[IOVS], of[IOVS];
	size_t k = 0, used = 0;

	pf->active = false;
	rec_start(pf);
	struct pf_plan *p = plan_of(pf, tstate);
	if (!p)
		return false;
	p->idle = 0;
	struct pf_plan *s = &pf->snap;
	s->nchain = 0;
	s->ncode = p->ncode;
	/* the thread state's head word always (a plan has it already when
	 * its last walk read it) */
	bool have = false;
	for (uint32_t i = 0; i < p->nchain; i++)
		have |= p->chain[i].head && p->chain[i].addr == head_addr && p->chain[i].len == 8;
	if (!have)
		s->chain[s->nchain++] = (struct pf_region){head_addr, 8, 0, 1};
	for (uint32_t i = 0; i < p->nchain && s->nchain < PF_CHAIN_MAX; i++)
		s->chain[s->nchain++] = p->chain[i];
	memcpy(s->code, p->code, p->ncode * sizeof(*s->code));
#define PF_PUT(a, n, off, j)                                                      \
	do {                                                                      \
		*(off) = (uint32_t)used;                                          \
		local[k] = (struct iovec){pf->buf + used, (n)};                   \
		remote[k] = (struct iovec){(void *)(uintptr_t)(a), (n)};          \
		of[k] = (j);                                                      \
		len[k++] = (n);                                                   \
		used += (n);                                                      \
	} while (0)
	/* Copy A of the frames, then the head words, then copy B of the
	 * frames: the walk starts from a head read after copy A and before
	 * copy B, so a chain whose frames hold the same links in both was
	 * the thread's stack at the instant the head was read (see
	 * prefetch.h) */
	for (uint32_t i = 0; i < s->nchain; i++)
		if (!s->chain[i].head)
			PF_PUT(s->chain[i].addr, s->chain[i].len, &pf->a_chain[i], i);
	for (uint32_t i = 0; i < s->nchain; i++)
		if (s->chain[i].head)
			PF_PUT(s->chain[i].addr, s->chain[i].len, &pf->a_chain[i], i);
	for (uint32_t i = 0; i < s->nchain; i++)
		if (!s->chain[i].head)
			PF_PUT(s->chain[i].addr, s->chain[i].len, &pf->b_chain[i], i);
	size_t codes = k;
	/* code objects last: they do not move under a walk */
	for (uint32_t i = 0; i < s->ncode; i++)
		PF_PUT(s->code[i].addr, s->code[i].len, &pf->a_code[i], i);
#undef PF_PUT
	ssize_t got = target_readv(pf->t, local, k, remote, k);
	if (got == -EFAULT) /* the first piece failed */
		got = 0;
	/* A short read stops at the first piece that failed: what came
	 * before it is whole; that piece leaves the plan. */
	size_t at = 0, nb = 0;
	bool any = false;
	memset(pf->ok_b_chain, 0, s->nchain * sizeof(bool));
	for (size_t j = 0; j < k; j++) {
		bool ok = got >= 0 && (size_t)got >= at + len[j];
		if (!ok && got >= 0 && (size_t)got >= at && (size_t)got < at + len[j]) {
			const struct pf_region *g = j < codes ? &s->chain[of[j]] : &s->code[of[j]];
			plan_forget(p, g->addr, g->len, j >= codes);
		}
		at += len[j];
		if (j >= codes) {
			uint32_t i = of[j];
			pf->ok_code[i] = ok;
			if (!ok)
				continue;
			any = true;
			for (uint32_t h = slot_of(s->code[i].addr), n = 0; n < PF_SET;
			     h = (h + 1) & (PF_SET - 1), n++) {
				if (pf->set_gen[h] != pf->gen) {
					pf->set_gen[h] = pf->gen;
					pf->set_key[h] = s->code[i].addr;
					pf->set_val[h] = i + 1;
					break;
				}
				if (pf->set_key[h] == s->code[i].addr)
					break;
			}
		} else if (nb < s->nchain) { /* copy A and the heads, in order */
			pf->ok_a_chain[of[j]] = ok;
			any |= ok;
			nb++;
		} else {
			pf->ok_b_chain[of[j]] = ok;
		}
	}
	pf->last_chain = pf->last_after = 0;
	pf->active = any;
	return any;
}

/* rec_gen doubles as the set of code addresses recorded in this walk. */
static bool rec_seen(struct py_prefetch *pf, uint64_t addr)
{
	for (uint32_t h = slot_of(addr), n = 0; n < PF_SET; h = (h + 1) & (PF_SET - 1), n++) {
		if (pf->rec_gen[h] != pf->gen) {
			pf->rec_gen[h] = pf->gen;
			pf->rec_key[h] = addr;
			return false;
		}
		if (pf->rec_key[h] == addr)
			return true;
	}
	return true; /* full: a walk this wide keeps no plan anyway */
}

void py_pf_note(struct py_prefetch *pf, uint64_t addr, size_t len, enum py_pf_kind k)
{
	struct pf_plan *r = &pf->rec;
	if (pf->rec_over || !len || len > PF_BYTES_MAX)
		return;
	if (k == PY_PF_CODE) {
		if (rec_seen(pf, addr))
			return;
		if (r->ncode == PF_CODE_MAX) {
			pf->rec_over = true;
			return;
		}
		r->code[r->ncode++] = (struct pf_region){addr, (uint32_t)len, 0, 0};
		return;
	}
	bool head = k == PY_PF_HEAD;
	/* the range again, or inside the last region (or the one before,
	 * past a shim) of its kind: nothing new */
	for (uint32_t i = r->nchain > 2 ? r->nchain - 2 : 0; i < r->nchain; i++)
		if (r->chain[i].head == head && addr >= r->chain[i].addr && len <= r->chain[i].len &&
		    addr - r->chain[i].addr <= r->chain[i].len - len)
			return;
	/* a frame close to the last region (its caller, just under it in a
	 * data-stack chunk) extends it, unless that is the leaf's */
	if (k == PY_PF_CHAIN && r->nchain > pf->rec_leaf && !r->chain[r->nchain - 1].head) {
		struct pf_region *g = &r->chain[r->nchain - 1];
		uint64_t lo = addr < g->addr ? addr : g->addr;
		uint64_t hi = addr + len > g->addr + g->len ? addr + len : g->addr + g->len;
		if (hi - lo <= (uint64_t)g->len + len + PF_MERGE_GAP && hi - lo <= PF_MERGE_MAX) {
			g->addr = lo;
			g->len = (uint32_t)(hi - lo);
			return;
		}
	}
	if (r->nchain == PF_CHAIN_MAX) {
		pf->rec_over = true;
		return;
	}
	r->chain[r->nchain++] = (struct pf_region){addr, (uint32_t)len, 0, head};
	if (k == PY_PF_LEAF)
		pf->rec_leaf = r->nchain;
}

static bool inside(const struct pf_region *g, uint64_t addr, size_t len)
{
	return addr >= g->addr && len <= g->len && addr - g->addr <= g->len - len;
}

const uint8_t *py_pf_get(struct py_prefetch *pf, uint64_t addr, size_t len, enum py_pf_kind k)
{
	const struct pf_plan *s = &pf->snap;
	if (!pf->active)
		return NULL;
	if (k == PY_PF_CODE) {
		for (uint32_t h = slot_of(addr), n = 0; n < PF_SET; h = (h + 1) & (PF_SET - 1), n++) {
			if (pf->set_gen[h] != pf->gen)
				return NULL;
			if (pf->set_key[h] != addr)
				continue;
			uint32_t i = pf->set_val[h] - 1;
			if (len > s->code[i].len)
				return NULL;
			py_pf_note(pf, addr, s->code[i].len, k);
			return pf->buf + pf->a_code[i];
		}
		return NULL;
	}
	/* a head word only from the heads, a frame only from copy A */
	uint16_t head = k == PY_PF_HEAD;
	for (uint32_t n = 0; n < s->nchain; n++) {
		uint32_t i = (pf->last_chain + n) % s->nchain;
		if (!pf->ok_a_chain[i] || s->chain[i].head != head || !inside(&s->chain[i], addr, len))
			continue;
		pf->last_chain = i;
		py_pf_note(pf, addr, len, k);
		return pf->buf + pf->a_chain[i] + (addr - s->chain[i].addr);
	}
	return NULL;
}

int py_pf_after(struct py_prefetch *pf, uint64_t addr, uint64_t *v)
{
	const struct pf_plan *s = &pf->snap;
	if (!pf->active)
		return -ENOENT;
	for (uint32_t n = 0; n < s->nchain; n++) {
		uint32_t i = (pf->last_after + n) % s->nchain;
		if (!pf->ok_b_chain[i] || !inside(&s->chain[i], addr, 8))
			continue;
		pf->last_after = i;
		memcpy(v, pf->buf + pf->b_chain[i] + (addr - s->chain[i].addr), 8);
		return 0;
	}
	return -ENOENT;
}

bool py_pf_active(const struct py_prefetch *pf) { return pf && pf->active; }

void py_pf_drop(struct py_prefetch *pf)
{
	pf->active = false;
	rec_start(pf);
}

/* Whether region g lies inside one of n regions. */
static bool covered(const struct pf_region *rs, uint32_t n, const struct pf_region *g)
{
	for (uint32_t i = 0; i < n; i++)
		if (inside(&rs[i], g->addr, g->len))
			return true;
	return false;
}

/* The thread's next plan: what this walk used, then what walks before it
 * used that this one did not, for PF_AGE walks. A thread's stack moves
 * among a few shapes (a loop calling this, then that; a generator
 * resumed, then suspended): the frames of the shape the next sample
 * meets are in its copy A with the head word, not read a system call
 * later, when the frame may already have returned. Chain regions are
 * copied small first: single frames (a leaf, a generator's frame) change
 * fastest, runs deep in a chunk least. Bounded by what a plan holds. */
static uint32_t plan_merge(const struct pf_region *rec, uint32_t nrec, const struct pf_region *old,
			   uint32_t nold, bool chain, struct pf_region *out, uint32_t max,
			   size_t *bytes)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < nrec && n < max; i++) {
		out[n] = rec[i];
		out[n].age = 0;
		*bytes += (chain ? 2u : 1u) * out[n].len;
		n++;
	}
	for (uint32_t i = 0; i < nold && n < max; i++) {
		if (old[i].age + 1u >= PF_AGE || covered(rec, nrec, &old[i]))
			continue;
		size_t b = (chain ? 2u : 1u) * old[i].len;
		if (*bytes + b > PF_BYTES_MAX)
			continue;
		out[n] = old[i];
		out[n].age++;
		*bytes += b;
		n++;
	}
	if (chain) /* by length, stably: insertion sort of a few dozen */
		for (uint32_t i = 1; i < n; i++) {
			struct pf_region g = out[i];
			uint32_t j = i;
			for (; j > 0 && out[j - 1].len > g.len; j--)
				out[j] = out[j - 1];
			out[j] = g;
		}
	return n;
}

void py_pf_done(struct py_prefetch *pf, uint64_t tstate, bool whole)
{
	struct pf_plan *p = plan_of(pf, tstate);
	const struct pf_plan *r = &pf->rec;
	pf->active = false;
	/* a walk that failed says nothing of where the thread's memory is:
	 * the plan stays for the next try (a torn read is the stack moving
	 * within it, the common case) */
	if (!whole || pf->rec_over || !r->nchain)
		return;
	size_t bytes = 8;
	for (uint32_t i = 0; i < r->nchain; i++)
		bytes += 2 * (size_t)r->chain[i].len;
	for (uint32_t i = 0; i < r->ncode; i++)
		bytes += r->code[i].len;
	if (bytes > PF_BYTES_MAX || (!p && pf->nplans == PF_PLANS_MAX))
		return;
	struct pf_region *g = malloc((PF_CHAIN_MAX + PF_CODE_MAX) * sizeof(*g));
	if (!g)
		return;
	bytes = 8;
	uint32_t nc = plan_merge(r->chain, r->nchain, p ? p->chain : NULL, p ? p->nchain : 0, true,
				 g, PF_CHAIN_MAX, &bytes);
	uint32_t nk = plan_merge(r->code, r->ncode, p ? p->code : NULL, p ? p->ncode : 0, false,
				 g + nc, PF_CODE_MAX, &bytes);
	struct pf_region *e = realloc(g, (nc + nk) * sizeof(*g));
	if (e)
		g = e;
	if (p)
		free(p->chain);
	else
		p = &pf->plans[pf->nplans++];
	*p = (struct pf_plan){tstate, 0, nc, nk, g, g + nc};
}
