/* Finding the HotSpot code blob that holds a pc, from outside: the code
 * heaps' ranges and segment maps, and the interpreter's code range. */
#include <errno.h>
#include <string.h>

#include "cgprof/target.h"
#include "jvm_walk.h"

/* A segment map byte: 0 starts a block, 0xff is a free segment, any other
 * value n says the block starts at least n segments earlier. */
#define SEGMAP_FREE 0xff
/* A blob bigger than this many segments is not believed (256 MiB at the
 * default 128-byte segment). */
#define SEGMAP_MAX_BACK (1u << 21)

int jvm_codeheap_refresh(struct jvm_walker *w)
{
	const struct jvm_layout *L = &w->L;
	struct target *t = w->t;
	uint64_t arr, data, q, buf;
	uint32_t len, limit;
	int r;

	w->nheaps = 0;
	if (!L->has_code)
		return -ENOTSUP;
	/* The interpreter: one StubQueue of codelets. */
	if ((r = jvm_rd64(t, L->interp_code, &q)) || !q || (r = jvm_rd64(t, q + L->sq_buffer, &buf)) ||
	    (r = jvm_rd32(t, q + L->sq_limit, &limit)))
		return r ? r : -EFAULT;
	w->interp_lo = buf;
	w->interp_hi = buf + limit;
	/* Set once at start-up, before any Java runs; a JVM that does not
	 * describe it leaves 0, and walks end as they always did. */
	uint64_t ret = 0;
	if (L->call_stub_ret && jvm_rd64(t, L->call_stub_ret, &ret) == 0)
		w->call_stub_ret = ret;
	if ((r = jvm_rd64(t, L->code_heaps, &arr)) || !arr || (r = jvm_rd32(t, arr + L->ga_len, &len)) ||
	    (r = jvm_rd64(t, arr + L->ga_data, &data)))
		return r ? r : -EFAULT;
	if (len > JVM_MAX_HEAPS)
		return -EPROTO;
	for (uint32_t i = 0; i < len; i++) {
		uint64_t h;
		struct jvm_codeheap *ch = &w->heaps[w->nheaps];
		uint32_t lg;
		if (jvm_rd64(t, data + 8ull * i, &h) || !h ||
		    jvm_rd64(t, h + L->ch_memory + L->vs_low_b, &ch->low) ||
		    jvm_rd64(t, h + L->ch_memory + L->vs_high_b, &ch->high) ||
		    jvm_rd64(t, h + L->ch_segmap + L->vs_low, &ch->segmap) ||
		    jvm_rd32(t, h + L->ch_log2_seg, &lg))
			continue;
		if (ch->high <= ch->low || lg < 3 || lg > 16 || !ch->segmap)
			continue;
		ch->log2_seg = lg;
		w->nheaps++;
	}
	return w->nheaps ? 0 : -ENOENT;
}

bool jvm_pc_in_java(struct jvm_walker *w, uint64_t pc)
{
	if (pc >= w->interp_lo && pc < w->interp_hi)
		return true;
	for (size_t i = 0; i < w->nheaps; i++)
		if (pc >= w->heaps[i].low && pc < w->heaps[i].high)
			return true;
	return false;
}

/* The start of the CodeBlob holding pc, or 0. */
uint64_t jvm_codeheap_find(struct jvm_walker *w, uint64_t pc)
{
	const struct jvm_codeheap *ch = NULL;
	for (size_t i = 0; i < w->nheaps; i++)
		if (pc >= w->heaps[i].low && pc < w->heaps[i].high) {
			ch = &w->heaps[i];
			break;
		}
	if (!ch)
		return 0;
	uint64_t seg = (pc - ch->low) >> ch->log2_seg;
	uint64_t back = 0;
	/* Read the map backwards in chunks: most blobs start within a few
	 * segments, one read usually does it. */
	uint8_t chunk[64];
	uint64_t chunk_lo = UINT64_MAX;
	for (int guard = 0; guard < 4096; guard++) {
		if (seg < chunk_lo || seg >= chunk_lo + sizeof(chunk)) {
			chunk_lo = seg >= sizeof(chunk) - 1 ? seg - (sizeof(chunk) - 1) : 0;
			size_t n = (size_t)(seg - chunk_lo + 1);
			if (target_read(w->t, ch->segmap + chunk_lo, chunk, n))
				return 0;
		}
		uint8_t b = chunk[seg - chunk_lo];
		if (b == SEGMAP_FREE)
			return 0;
		if (b == 0)
			break;
		if (b > seg || (back += b) > SEGMAP_MAX_BACK)
			return 0;
		seg -= b;
		if (guard == 4095)
			return 0;
	}
	uint64_t blob = ch->low + (seg << ch->log2_seg) + w->L.heapblock_size;
	/* The blob must reach pc: a stale map or a hostile one otherwise. */
	uint32_t size;
	if (jvm_rd32(w->t, blob + w->L.cb_size, &size) || pc < blob || pc - blob >= size)
		return 0;
	return blob;
}

enum jvm_blob_kind jvm_codeheap_kind(struct jvm_walker *w, uint64_t blob, int32_t *frame_words)
{
	const struct jvm_layout *L = &w->L;
	int32_t fs;
	if (target_read(w->t, blob + L->cb_frame_size, &fs, 4))
		return JVM_BLOB_BAD;
	*frame_words = fs;
	if (L->cb_kind != JVM_NO_OFF && L->kind_nmethod >= 0) {
		uint8_t k;
		if (target_read(w->t, blob + L->cb_kind, &k, 1))
			return JVM_BLOB_BAD;
		return k == L->kind_nmethod ? JVM_BLOB_NMETHOD : JVM_BLOB_STUB;
	}
	/* Before CodeBlob had a kind byte its name told nmethods apart; the
	 * name is a constant string in libjvm, so one read per distinct one. */
	uint64_t name, kind;
	if (jvm_rd64(w->t, blob + L->cb_name, &name) || !name)
		return JVM_BLOB_BAD;
	if (cg_map_get(&w->blob_names, name, &kind))
		return (enum jvm_blob_kind)kind;
	char s[32];
	if (target_read_cstr(w->t, name, s, sizeof(s)))
		return JVM_BLOB_BAD;
	/* a native method's wrapper is an nmethod too ("native nmethod"
	 * up to JDK 22), and the frame of that native method */
	kind = !strcmp(s, "nmethod") || !strcmp(s, "native nmethod") ? JVM_BLOB_NMETHOD
								      : JVM_BLOB_STUB;
	(void)cg_map_put(&w->blob_names, name, kind);
	return (enum jvm_blob_kind)kind;
}
