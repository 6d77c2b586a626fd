/* Inlined methods of a compiled frame from outside: the nmethod's PcDesc
 * for the pc, then the ScopeDesc chain (method, bci, sender) it points to,
 * each scope a Java frame of its own. Debug info is copied once per
 * nmethod and checked against the nmethod's own method. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/target.h"
#include "jvm_walk.h"

#define MAX_DEBUG_BYTES (1u << 20) /* per table of one nmethod */
#define MAX_SCOPES 64u             /* inlining depth HotSpot never reaches */
#define INVOCATION_ENTRY_BCI (-1)

/* Copy [from, to) of the target into a new buffer. */
static int copy_range(struct target *t, uint64_t from, uint64_t to, uint8_t **out, uint32_t *n)
{
	if (to <= from || to - from > MAX_DEBUG_BYTES)
		return -EPROTO;
	uint8_t *b = malloc((size_t)(to - from));
	if (!b)
		return -ENOMEM;
	if (target_read(t, from, b, (size_t)(to - from))) {
		free(b);
		return -EFAULT;
	}
	*out = b;
	*n = (uint32_t)(to - from);
	return 0;
}

/* Where an nmethod keeps its code, PcDescs, scope data and metadata. */
static int nm_locate(struct jvm_walker *w, uint64_t nm, struct jvm_nminfo *ni)
{
	const struct jvm_layout *L = &w->L;
	struct target *t = w->t;
	uint32_t pcs, end, meta;
	uint64_t scopes, pcs_begin, pcs_end;
	if (L->nm_deps_off != JVM_NO_OFF && L->nm_scopes_ptr != JVM_NO_OFF) {
		/* JDK 17-22: offsets from the nmethod, scope data by pointer */
		if (jvm_rd64(t, nm + L->cb_code_begin, &ni->code_begin) || jvm_rd32(t, nm + L->nm_pcs_off, &pcs) ||
		    jvm_rd32(t, nm + L->nm_deps_off, &end) || jvm_rd32(t, nm + L->nm_meta_off, &meta) ||
		    jvm_rd64(t, nm + L->nm_scopes_ptr, &scopes))
			return -EFAULT;
		pcs_begin = nm + pcs;
		pcs_end = nm + end;
		ni->metadata = nm + meta;
		/* the scope data runs up to the PcDescs */
		if (copy_range(t, scopes, pcs_begin, &ni->scopes, &ni->nscopes))
			return -EPROTO;
	} else {
		/* JDK 23+: PcDescs and scopes in the immutable data, metadata
		 * after the relocations in the mutable data */
		uint64_t imm, mut;
		uint32_t code_off, sdata, reloc;
		if (jvm_rd64(t, nm + L->nm_immutable, &imm) || jvm_rd32(t, nm + L->nm_pcs_off, &pcs) ||
		    jvm_rd32(t, nm + L->nm_scopes_off, &sdata) || jvm_rd32(t, nm + L->cb_code_offset, &code_off) ||
		    jvm_rd64(t, nm + L->cb_mutable, &mut) || jvm_rd32(t, nm + L->cb_reloc_size, &reloc))
			return -EFAULT;
		ni->code_begin = nm + code_off;
		pcs_begin = imm + pcs;
		pcs_end = imm + sdata;
		ni->metadata = mut + ((reloc + 7u) & ~7u);
		uint32_t isize = 0;
		if (L->nm_imm_size != JVM_NO_OFF && jvm_rd32(t, nm + L->nm_imm_size, &isize) == 0 && isize > sdata &&
		    copy_range(t, imm + sdata, imm + isize, &ni->scopes, &ni->nscopes) == 0)
			;
		else if (copy_range(t, imm + sdata, imm + sdata + 4096, &ni->scopes, &ni->nscopes))
			return -EPROTO;
	}
	return copy_range(t, pcs_begin, pcs_end, &ni->pcs, &ni->npcs);
}

static void nminfo_free(struct jvm_nminfo *ni)
{
	free(ni->pcs);
	free(ni->scopes);
	memset(ni, 0, sizeof(*ni));
}

static struct jvm_nminfo *nm_info(struct jvm_walker *w, uint64_t nm, uint64_t method)
{
	uint64_t idx;
	if (cg_map_get(&w->nms, nm, &idx)) {
		struct jvm_nminfo *ni = &w->nm[idx - 1];
		if (ni->method == method)
			return ni->pcs ? ni : NULL;
		/* the blob was freed and reused for another method */
		nminfo_free(ni);
		ni->method = method;
		if (nm_locate(w, nm, ni))
			nminfo_free(ni), ni->method = method;
		return ni->pcs ? ni : NULL;
	}
	if (!w->nnm || !(w->nnm & (w->nnm - 1))) {
		size_t cap = w->nnm ? w->nnm * 2 : 32;
		struct jvm_nminfo *p = realloc(w->nm, cap * sizeof(*p));
		if (!p)
			return NULL;
		w->nm = p;
	}
	struct jvm_nminfo *ni = &w->nm[w->nnm];
	memset(ni, 0, sizeof(*ni));
	if (cg_map_put(&w->nms, nm, w->nnm + 1))
		return NULL;
	w->nnm++;
	ni->method = method;
	/* A failure is remembered as an entry without tables: tried once. */
	if (nm_locate(w, nm, ni)) {
		nminfo_free(ni);
		ni->method = method;
	}
	return ni->pcs ? ni : NULL;
}

/* The scope decode offset of the first PcDesc at or after off (for a
 * return address HotSpot records that exact pc; for a paused pc it is
 * the next debug point, as AsyncGetCallTrace takes it). */
static int32_t find_pcdesc(const struct jvm_walker *w, const struct jvm_nminfo *ni, uint32_t off)
{
	const struct jvm_layout *L = &w->L;
	size_t n = ni->npcs / L->pcdesc_size, lo = 0, hi = n;
	if (L->pc_pc_off + 4 > L->pcdesc_size || L->pc_scope_off + 4 > L->pcdesc_size)
		return -1;
	while (lo < hi) { /* PcDescs are sorted by pc */
		size_t mid = lo + (hi - lo) / 2;
		int32_t po;
		memcpy(&po, ni->pcs + mid * L->pcdesc_size + L->pc_pc_off, 4);
		if (po < 0 || (uint32_t)po < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* A paused frame past the last recorded pc (an epilogue) is still in
	 * the scope of the last PcDesc. */
	if (lo == n) {
		if (!n)
			return -1;
		lo = n - 1;
	}
	/* Some PcDescs carry no scope (entry points): take the nearest one
	 * that does, forward first. */
	for (size_t d = 0; d < n; d++) {
		int32_t so;
		if (lo + d < n) {
			memcpy(&so, ni->pcs + (lo + d) * L->pcdesc_size + L->pc_scope_off, 4);
			if (so > 0)
				return so;
		}
		if (d && d <= lo) {
			memcpy(&so, ni->pcs + (lo - d) * L->pcdesc_size + L->pc_scope_off, 4);
			if (so > 0)
				return so;
		}
	}
	return -1;
}

/* Decode the scope chain from offset so with one stream encoding. */
static int decode_chain(struct jvm_walker *w, const struct jvm_nminfo *ni, int32_t so, bool u5,
			uint64_t nm_method, struct jvm_rawframe *out, size_t max)
{
	size_t n = 0;
	uint64_t last = 0;
	for (unsigned guard = 0; guard < MAX_SCOPES && so > 0 && n < max; guard++) {
		size_t pos = (size_t)so;
		uint32_t sender, midx, bci;
		if (pos >= ni->nscopes || !jvm_compressed_uint(ni->scopes, ni->nscopes, &pos, u5, &sender) ||
		    !jvm_compressed_uint(ni->scopes, ni->nscopes, &pos, u5, &midx) ||
		    !jvm_compressed_uint(ni->scopes, ni->nscopes, &pos, u5, &bci))
			return -EPROTO;
		uint64_t m;
		if (!midx || midx > 65536 || jvm_rd64(w->t, ni->metadata + 8ull * (midx - 1), &m) || !m || m & 7)
			return -EPROTO;
		/* InvocationEntryBci: the frame is at its method's entry (stack
		 * bang, prologue), which is the line of bytecode 0 */
		int32_t b = (int32_t)bci + INVOCATION_ENTRY_BCI;
		if (b == INVOCATION_ENTRY_BCI)
			b = 0;
		out[n++] = (struct jvm_rawframe){m, 0, b < 0 || b > 65535 ? -1 : b, 1};
		last = m;
		/* senders are recorded before their callees: offsets go down */
		if ((int32_t)sender >= so)
			return sender ? -EPROTO : (int)n;
		so = (int32_t)sender;
	}
	/* The outermost scope is the nmethod's own method: the check that
	 * every offset above was read the right way. */
	if (so > 0 && n < max)
		return -EPROTO;
	return last == nm_method || n == max ? (int)n : -EPROTO;
}

int jvm_scopes(struct jvm_walker *w, uint64_t blob, uint64_t pc, uint64_t nm_method,
	       struct jvm_rawframe *out, size_t max)
{
	if (!w->L.has_scopes || !max)
		return -ENOTSUP;
	struct jvm_nminfo *ni = nm_info(w, blob, nm_method);
	if (!ni || pc < ni->code_begin || pc - ni->code_begin > UINT32_MAX)
		return -ENOENT;
	int32_t so = find_pcdesc(w, ni, (uint32_t)(pc - ni->code_begin));
	if (so <= 0)
		return -ENOENT;
	/* Same stream encoding as the line tables; until one of those told,
	 * the encoding whose chain ends at the nmethod's method wins. */
	if (w->line_enc)
		return decode_chain(w, ni, so, w->line_enc == 1, nm_method, out, max);
	int n = decode_chain(w, ni, so, true, nm_method, out, max);
	if (n > 0)
		return n;
	return decode_chain(w, ni, so, false, nm_method, out, max);
}

void jvm_scopes_free(struct jvm_walker *w)
{
	for (size_t i = 0; i < w->nnm; i++)
		nminfo_free(&w->nm[i]);
	free(w->nm);
	cg_map_free(&w->nms);
	w->nm = NULL;
	w->nnm = 0;
}
