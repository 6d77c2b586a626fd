/* Per-thread read plans: a thread's sample in one process_vm_readv (see
 * prefetch.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cgprof/target.h"
#include "cgprof/util.h"
#include "prefetch.h"

/* chain regions: frame blocks, the head and cframe words, shims, and on
 * <= 3.10 every (heap) frame; copied twice: 2 * 256 + 480 <= IOV_MAX */
#define PF_CHAIN_MAX 256
#define PF_CODE_MAX 480
#define PF_BYTES_MAX (192u * 1024) /* copy A + copy B of one plan */
#define PF_PLANS_MAX 256     /* threads that keep a plan */
#define PF_PLAN_IDLE 1024    /* rounds a plan is kept unused (a thread waiting for the GIL) */
#define PF_SET 1024          /* the code-address set of one walk (power of 2) */

struct pf_region {
	uint64_t addr;
	uint32_t len;
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

bool py_pf_fetch(struct py_prefetch *pf, uint64_t tstate, uint64_t head_addr)
{
	enum { IOVS = 2 * PF_CHAIN_MAX + PF_CODE_MAX };
	struct iovec local[IOVS], remote[IOVS];
	uint32_t len[IOVS];
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
	/* the head word first, read fresh: where the walk starts (a plan
	 * has it already when its last walk read it) */
	if (!p->nchain || p->chain[0].addr != head_addr || p->chain[0].len != 8)
		s->chain[s->nchain++] = (struct pf_region){head_addr, 8};
	for (uint32_t i = 0; i < p->nchain && s->nchain < PF_CHAIN_MAX; i++)
		s->chain[s->nchain++] = p->chain[i];
	memcpy(s->code, p->code, p->ncode * sizeof(*s->code));
#define PF_PUT(a, n, off)                                                         \
	do {                                                                      \
		*(off) = (uint32_t)used;                                          \
		local[k] = (struct iovec){pf->buf + used, (n)};                   \
		remote[k] = (struct iovec){(void *)(uintptr_t)(a), (n)};          \
		len[k++] = (n);                                                   \
		used += (n);                                                      \
	} while (0)
	for (uint32_t i = 0; i < s->nchain; i++)
		PF_PUT(s->chain[i].addr, s->chain[i].len, &pf->a_chain[i]);
	for (uint32_t i = 0; i < s->ncode; i++)
		PF_PUT(s->code[i].addr, s->code[i].len, &pf->a_code[i]);
	/* copy B: the memory after copy A, to verify the walk against */
	for (uint32_t i = 0; i < s->nchain; i++)
		PF_PUT(s->chain[i].addr, s->chain[i].len, &pf->b_chain[i]);
#undef PF_PUT
	ssize_t got = target_readv(pf->t, local, k, remote, k);
	/* A short read stops at the first piece that failed: what came
	 * before it is whole. */
	size_t at = 0, j = 0;
	bool any = false;
	for (uint32_t i = 0; i < s->nchain; i++, j++) {
		at += len[j];
		pf->ok_a_chain[i] = got >= 0 && (size_t)got >= at;
		any |= pf->ok_a_chain[i];
	}
	for (uint32_t i = 0; i < s->ncode; i++, j++) {
		at += len[j];
		pf->ok_code[i] = got >= 0 && (size_t)got >= at;
		if (!pf->ok_code[i])
			continue;
		any = true;
		for (uint32_t h = slot_of(s->code[i].addr), n = 0; n < PF_SET; h = (h + 1) & (PF_SET - 1), n++) {
			if (pf->set_gen[h] != pf->gen) {
				pf->set_gen[h] = pf->gen;
				pf->set_key[h] = s->code[i].addr;
				pf->set_val[h] = i + 1;
				break;
			}
			if (pf->set_key[h] == s->code[i].addr)
				break;
		}
	}
	for (uint32_t i = 0; i < s->nchain; i++, j++) {
		at += len[j];
		pf->ok_b_chain[i] = got >= 0 && (size_t)got >= at;
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
		r->code[r->ncode++] = (struct pf_region){addr, (uint32_t)len};
		return;
	}
	/* a block serves the frames in it one after the other: the same
	 * region again is the last one (or the one before, past a shim) */
	for (uint32_t i = r->nchain > 2 ? r->nchain - 2 : 0; i < r->nchain; i++)
		if (r->chain[i].addr == addr && r->chain[i].len == len)
			return;
	if (r->nchain == PF_CHAIN_MAX) {
		pf->rec_over = true;
		return;
	}
	r->chain[r->nchain++] = (struct pf_region){addr, (uint32_t)len};
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
	for (uint32_t n = 0; n < s->nchain; n++) {
		uint32_t i = (pf->last_chain + n) % s->nchain;
		if (!pf->ok_a_chain[i] || !inside(&s->chain[i], addr, len))
			continue;
		pf->last_chain = i;
		py_pf_note(pf, s->chain[i].addr, s->chain[i].len, k);
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

/* Copy A and copy B of a plan must fit the buffer, with the head word. */
static bool plan_fits(const struct pf_plan *r)
{
	size_t bytes = 8;
	for (uint32_t i = 0; i < r->nchain; i++)
		bytes += 2 * (size_t)r->chain[i].len;
	for (uint32_t i = 0; i < r->ncode; i++)
		bytes += r->code[i].len;
	return bytes <= PF_BYTES_MAX;
}

void py_pf_done(struct py_prefetch *pf, uint64_t tstate, bool whole)
{
	struct pf_plan *p = plan_of(pf, tstate);
	const struct pf_plan *r = &pf->rec;
	pf->active = false;
	if (p) {
		free(p->chain);
		*p = pf->plans[--pf->nplans];
	}
	if (!whole || pf->rec_over || !r->nchain || !plan_fits(r) || pf->nplans == PF_PLANS_MAX)
		return;
	struct pf_region *g = malloc((r->nchain + r->ncode) * sizeof(*g));
	if (!g)
		return;
	memcpy(g, r->chain, r->nchain * sizeof(*g));
	memcpy(g + r->nchain, r->code, r->ncode * sizeof(*g));
	pf->plans[pf->nplans++] = (struct pf_plan){tstate, 0, r->nchain, r->ncode, g, g + r->nchain};
}
