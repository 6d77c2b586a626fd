/* Reading a few kinds of CPython object out of a target: str, int, dict
 * and an instance's attributes, on every layout from 3.6 to 3.15. */
#include <errno.h>
#include <string.h>

#include "cgprof/target.h"
#include "py_priv.h"

#define OBJ_HDR_MAX 128      /* object headers read here are smaller */
#define TYPE_WIN_MAX 1024    /* PyHeapTypeObject up to ht_cached_keys */
#define STR_MAX 1024         /* longest str read */
#define STR_EQ_MAX 64        /* longest key compared */
#define ENTRY_CHUNK 128      /* dict entries read at once */
#define LONG_MAX_DIGITS 5    /* enough for 64 bits with 15-bit digits */

static uint8_t get8(const uint8_t *b, size_t len, int32_t off)
{
	return off >= 0 && (size_t)off < len ? b[off] : 0;
}

/* Live (a reference count not 0, and not the free-list pointer the
 * allocator writes over a freed object; bits 48-63 are ob_flags from
 * 3.14) and of type `type` when that is known. */
static int obj_check(const struct py_interp *pi, const uint8_t *h, size_t len, uint64_t type)
{
	uint64_t refcnt = py_rd64(h, len, 0);
	if (!(refcnt & 0xffffffffULL) || ((refcnt >> 32) & 0xffff))
		return -EINVAL;
	if (type && py_rd64(h, len, pi->L.object_type) != type)
		return -EINVAL;
	return 0;
}

/* Append code point c to out as UTF-8; false when it does not fit. */
static bool utf8_put(char *out, size_t n, size_t *o, uint32_t c)
{
	char e[4];
	size_t el;
	if (c < 0x80) {
		e[0] = (char)c;
		el = 1;
	} else if (c < 0x800) {
		e[0] = (char)(0xc0 | (c >> 6));
		e[1] = (char)(0x80 | (c & 63));
		el = 2;
	} else if (c < 0x10000) {
		e[0] = (char)(0xe0 | (c >> 12));
		e[1] = (char)(0x80 | ((c >> 6) & 63));
		e[2] = (char)(0x80 | (c & 63));
		el = 3;
	} else {
		e[0] = (char)(0xf0 | (c >> 18));
		e[1] = (char)(0x80 | ((c >> 12) & 63));
		e[2] = (char)(0x80 | ((c >> 6) & 63));
		e[3] = (char)(0x80 | (c & 63));
		el = 4;
	}
	if (*o + el + 1 > n)
		return false;
	memcpy(out + *o, e, el);
	*o += el;
	return true;
}

int py_str_read(const struct py_interp *pi, uint64_t addr, char *out, size_t n)
{
	const struct py_layout *L = &pi->L;
	uint8_t hdr[OBJ_HDR_MAX];
	size_t hlen = (size_t)L->unicode_compact_size;
	if (!n)
		return -EINVAL;
	out[0] = '\0';
	if (!addr || L->unicode_compact_size <= 0 || hlen > sizeof(hdr))
		return -EFAULT;
	int r = target_read(pi->t, addr, hdr, hlen);
	if (r)
		return r;
	if (obj_check(pi, hdr, hlen, pi->types.str))
		return -EINVAL;
	int64_t len = (int64_t)py_rd64(hdr, hlen, L->unicode_length);
	uint32_t state = py_rd32(hdr, hlen, L->unicode_state);
	unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
	/* Names are compact strings; a legacy one is not worth following. */
	if (len < 0 || len > STR_MAX || !compact || (kind != 1 && kind != 2 && kind != 4))
		return -EINVAL;
	uint8_t raw[STR_MAX * 4];
	uint64_t data = addr + (uint64_t)(ascii ? L->unicode_ascii_size : L->unicode_compact_size);
	r = target_read(pi->t, data, raw, (size_t)len * kind);
	if (r)
		return r;
	size_t o = 0;
	for (int64_t i = 0; i < len; i++) {
		uint32_t c;
		if (kind == 1) {
			c = raw[i];
		} else if (kind == 2) {
			uint16_t c16;
			memcpy(&c16, raw + i * 2, 2);
			c = c16;
		} else {
			memcpy(&c, raw + i * 4, 4);
		}
		if (c >= 0x110000 || (ascii && c >= 0x80))
			return -EINVAL;
		if (!utf8_put(out, n, &o, c))
			break;
	}
	out[o] = '\0';
	return 0;
}

int py_str_eq(const struct py_interp *pi, uint64_t addr, const char *want)
{
	const struct py_layout *L = &pi->L;
	size_t wl = strlen(want), hlen = (size_t)L->unicode_ascii_size;
	uint8_t b[OBJ_HDR_MAX + STR_EQ_MAX];
	if (!addr || wl > STR_EQ_MAX || L->unicode_ascii_size <= 0 || hlen > OBJ_HDR_MAX)
		return -EINVAL;
	/* Header and characters in one read; a short str at the very end of
	 * a mapping makes that fail, and then the header alone says. */
	int r = target_read(pi->t, addr, b, hlen + wl);
	if (r) {
		r = target_read(pi->t, addr, b, hlen);
		if (r)
			return r;
		if ((size_t)py_rd64(b, hlen, L->unicode_length) == wl)
			return -EFAULT;
		return -ENOENT;
	}
	if (obj_check(pi, b, hlen, pi->types.str))
		return -EINVAL;
	uint32_t state = py_rd32(b, hlen, L->unicode_state);
	if (!((state >> 5) & 1) || !((state >> 6) & 1)) /* compact ASCII */
		return -ENOENT;
	if (py_rd64(b, hlen, L->unicode_length) != wl || memcmp(b + hlen, want, wl))
		return -ENOENT;
	return 0;
}

int py_long_read(const struct py_interp *pi, uint64_t addr, uint64_t *val)
{
	const struct py_layout *L = &pi->L;
	uint8_t b[OBJ_HDR_MAX];
	int32_t dsz = L->long_digit_size, shift = L->long_shift;
	*val = 0;
	if (!addr || L->long_digit < 0 || (dsz != 2 && dsz != 4) || shift <= 0 || shift > 30 ||
	    (size_t)L->long_digit + LONG_MAX_DIGITS * 4 > sizeof(b))
		return -EINVAL;
	size_t len = (size_t)L->long_digit + LONG_MAX_DIGITS * (size_t)dsz;
	int r = target_read(pi->t, addr, b, len);
	if (r)
		return r;
	if (obj_check(pi, b, len, pi->types.integer))
		return -EINVAL;
	int64_t ndigits;
	if (L->long_lv_tag >= 0) {
		/* 3.12+: digit count << 3 | sign (0 positive, 1 zero, 2 negative) */
		uint64_t tag = py_rd64(b, len, L->long_lv_tag);
		if ((tag & 3) == 1)
			return 0;
		if ((tag & 3) != 0)
			return -EINVAL;
		ndigits = (int64_t)(tag >> 3);
	} else {
		ndigits = (int64_t)py_rd64(b, len, L->long_size); /* negative: < 0 */
	}
	if (ndigits < 0 || ndigits > LONG_MAX_DIGITS)
		return -EINVAL;
	uint64_t v = 0;
	for (int64_t i = 0; i < ndigits; i++) {
		uint32_t d = dsz == 4 ? py_rd32(b, len, L->long_digit + (int32_t)i * 4) : 0;
		if (dsz == 2) {
			uint16_t d16;
			memcpy(&d16, b + L->long_digit + i * 2, 2);
			d = d16;
		}
		unsigned at = (unsigned)(shift * i);
		if (d >> shift)
			return -EINVAL; /* not a digit */
		if (!d)
			continue; /* (a zero top digit is not normal, but no harm) */
		if (at >= 64 || (at && ((uint64_t)d >> (64 - at))))
			return -ERANGE;
		v |= (uint64_t)d << at;
	}
	*val = v;
	return 0;
}

/* Where a dict keys object's entries are, and how to read them: key and
 * value are the last two words of an entry in every layout ({hash, key,
 * value} or, 3.11+ for str keys, {key, value}). */
struct keys_view {
	uint64_t entries, values; /* values: split table's array, or 0 */
	uint32_t n, esize, values_cap;
};

static int keys_view(const struct py_interp *pi, uint64_t keys, struct keys_view *v)
{
	const struct py_layout *L = &pi->L;
	uint8_t b[OBJ_HDR_MAX];
	size_t len = (size_t)L->dictkeys_indices;
	uint64_t slots, index_bytes;
	if (!keys || L->dictkeys_indices <= 0 || len > sizeof(b))
		return -EINVAL;
	int r = target_read(pi->t, keys, b, len);
	if (r)
		return r;
	if (L->dictkeys_log2_size >= 0) {
		unsigned lsz = get8(b, len, L->dictkeys_log2_size);
		unsigned lix = get8(b, len, L->dictkeys_log2_index_bytes);
		unsigned kind = get8(b, len, L->dictkeys_kind);
		/* index bytes: 1, 2, 4 or 8 per slot */
		if (lsz < 3 || lsz > 30 || lix < lsz || lix > lsz + 3 || kind > 2)
			return -EINVAL;
		slots = 1ULL << lsz;
		index_bytes = 1ULL << lix;
		v->esize = (uint32_t)(kind == 0 ? L->dict_entry_size : L->dict_unicode_entry_size);
	} else {
		slots = py_rd64(b, len, L->dictkeys_size);
		if (slots < 8 || slots > (1ULL << 30) || (slots & (slots - 1)))
			return -EINVAL;
		index_bytes = slots * (slots <= 0xff ? 1 : slots <= 0xffff ? 2 : 4);
		v->esize = (uint32_t)L->dict_entry_size;
	}
	int64_t n = (int64_t)py_rd64(b, len, L->dictkeys_nentries);
	if (n < 0 || (uint64_t)n > slots || v->esize < 16 || v->esize > 64)
		return -EINVAL;
	v->n = (uint32_t)(n > PY_DICT_MAX_ITEMS ? PY_DICT_MAX_ITEMS : n);
	v->entries = keys + (uint64_t)L->dictkeys_indices + index_bytes;
	return 0;
}

static int keys_scan(const struct py_interp *pi, const struct keys_view *v, py_dict_item_fn fn,
		     void *arg)
{
	uint8_t eb[ENTRY_CHUNK * 64];
	uint64_t vals[ENTRY_CHUNK];
	uint32_t n = v->n;
	if (v->values && v->values_cap && v->values_cap < n)
		n = v->values_cap;
	for (uint32_t at = 0; at < n; at += ENTRY_CHUNK) {
		uint32_t k = n - at < ENTRY_CHUNK ? n - at : ENTRY_CHUNK;
		int r = target_read(pi->t, v->entries + (uint64_t)at * v->esize, eb,
				    (size_t)k * v->esize);
		if (!r && v->values)
			r = target_read(pi->t, v->values + (uint64_t)at * 8, vals, (size_t)k * 8);
		if (r)
			return r;
		for (uint32_t i = 0; i < k; i++) {
			const uint8_t *e = eb + (size_t)i * v->esize;
			uint64_t key, value;
			memcpy(&key, e + v->esize - 16, 8);
			memcpy(&value, e + v->esize - 8, 8);
			if (v->values)
				value = vals[i];
			if (!key || !value)
				continue; /* deleted, or not set on this instance */
			r = fn(key, value, arg);
			if (r)
				return r;
		}
	}
	return 0;
}

/* The keys view of the dict at addr, checked to be a dict. */
static int dict_view(const struct py_interp *pi, uint64_t dict, struct keys_view *v)
{
	const struct py_layout *L = &pi->L;
	uint8_t b[OBJ_HDR_MAX];
	int32_t end = L->dict_keys > L->dict_values ? L->dict_keys : L->dict_values;
	size_t len = (size_t)end + 8;
	memset(v, 0, sizeof(*v));
	if (!dict || L->dict_keys < 0 || L->dict_values < 0 || len > sizeof(b))
		return -EINVAL;
	int r = target_read(pi->t, dict, b, len);
	if (r)
		return r;
	if (obj_check(pi, b, len, pi->types.dict))
		return -EINVAL;
	r = keys_view(pi, py_rd64(b, len, L->dict_keys), v);
	if (r)
		return r;
	uint64_t values = py_rd64(b, len, L->dict_values);
	if (values) /* a split table: the values of this dict alone */
		v->values = values + (uint64_t)L->dictvalues_values;
	return 0;
}

int py_dict_scan(const struct py_interp *pi, uint64_t dict, py_dict_item_fn fn, void *arg)
{
	struct keys_view v;
	int r = dict_view(pi, dict, &v);
	return r ? r : keys_scan(pi, &v, fn, arg);
}

/* What a new key changes in the dict at addr: its keys object (a resize
 * makes a new one) or that object's count of entries ever used (an
 * insertion takes the next entry; a deletion keeps its own). *keys in:
 * the keys object of the last stamp, read in the same call as the dict;
 * out, with *nentries, the stamp now. */
int py_dict_stamp(const struct py_interp *pi, uint64_t dict, uint64_t *keys, uint64_t *nentries)
{
	const struct py_layout *L = &pi->L;
	uint64_t k = 0, n = 0;
	if (!dict || L->dict_keys < 0 || L->dictkeys_nentries < 0)
		return -EINVAL;
	size_t nv = *keys ? 2 : 1;
	struct iovec loc[2] = {{&k, 8}, {&n, 8}};
	struct iovec rem[2] = {{(void *)(uintptr_t)(dict + (uint64_t)L->dict_keys), 8},
			       {(void *)(uintptr_t)(*keys + (uint64_t)L->dictkeys_nentries), 8}};
	ssize_t got = target_readv(pi->t, loc, nv, rem, nv);
	if (got < 0)
		return (int)got;
	if (got < 8 || !k)
		return -EFAULT;
	if (k != *keys || got < 16) { /* a new keys object: its own count */
		int r = target_read(pi->t, k + (uint64_t)L->dictkeys_nentries, &n, 8);
		if (r)
			return r;
	}
	*keys = k;
	*nentries = n;
	return 0;
}

struct find_str {
	const struct py_interp *pi;
	const char *key;
	uint64_t hint, found_key, val;
};

static int match_ptr(uint64_t key, uint64_t value, void *arg)
{
	struct find_str *f = arg;
	if (key != f->hint)
		return 0;
	f->found_key = key;
	f->val = value;
	return 1;
}

static int match_str(uint64_t key, uint64_t value, void *arg)
{
	struct find_str *f = arg;
	if (py_str_eq(f->pi, key, f->key))
		return 0;
	f->found_key = key;
	f->val = value;
	return 1;
}

/* The value for key in a keys view: by the interned key's address first
 * (no string read), then by comparing strings. */
static int view_get_str(const struct py_interp *pi, const struct keys_view *v, const char *key,
			uint64_t *hint, uint64_t *val)
{
	struct find_str f = {pi, key, hint ? *hint : 0, 0, 0};
	int r = f.hint ? keys_scan(pi, v, match_ptr, &f) : 0;
	if (r != 1)
		r = keys_scan(pi, v, match_str, &f);
	if (r < 0)
		return r;
	if (r != 1)
		return -ENOENT;
	if (hint)
		*hint = f.found_key;
	*val = f.val;
	return 0;
}

int py_dict_get_str(const struct py_interp *pi, uint64_t dict, const char *key, uint64_t *hint,
		    uint64_t *val)
{
	struct keys_view v;
	*val = 0;
	int r = dict_view(pi, dict, &v);
	return r ? r : view_get_str(pi, &v, key, hint, val);
}

/* Values kept apart from any dict object, with the keys of the type
 * (ht_cached_keys): 3.11-3.12 through a pointer, 3.13+ inline. */
static int split_get(const struct py_interp *pi, uint64_t cached_keys, uint64_t values,
		     uint32_t cap, const char *name, uint64_t *hint, uint64_t *val)
{
	struct keys_view v = {0};
	int r = keys_view(pi, cached_keys, &v);
	if (r)
		return r;
	v.values = values + (uint64_t)pi->L.dictvalues_values;
	v.values_cap = cap;
	return view_get_str(pi, &v, name, hint, val);
}

int py_attr_get(const struct py_interp *pi, uint64_t obj, const char *name, uint64_t *hint,
		uint64_t *val)
{
	const struct py_layout *L = &pi->L;
	uint8_t tb[TYPE_WIN_MAX];
	uint64_t type = 0, dict = 0, word = 0;
	int32_t offs[] = {L->type_flags, L->type_basicsize, L->type_dictoffset,
			  L->heaptype_cached_keys};
	int32_t end = 0;
	*val = 0;
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
		if (offs[i] > end)
			end = offs[i];
	if (!obj || L->object_type < 0 || L->type_flags < 0 || (size_t)end + 8 > sizeof(tb))
		return -EINVAL;
	int r = target_read(pi->t, obj + (uint64_t)L->object_type, &type, 8);
	if (!r)
		r = type ? target_read(pi->t, type, tb, (size_t)end + 8) : -EINVAL;
	if (r)
		return r;
	size_t tl = (size_t)end + 8;
	uint64_t flags = py_rd64(tb, tl, L->type_flags);
	int64_t basicsize = (int64_t)py_rd64(tb, tl, L->type_basicsize);
	int64_t dictoffset = (int64_t)py_rd64(tb, tl, L->type_dictoffset);
	uint64_t cached_keys = py_rd64(tb, tl, L->heaptype_cached_keys);
	bool managed = L->tpflag_managed_dict >= 0 && (flags & (uint64_t)L->tpflag_managed_dict);
	bool inline_values =
		L->tpflag_inline_values >= 0 && (flags & (uint64_t)L->tpflag_inline_values);

	if (managed && L->managed_dict_before > 0) {
		r = target_read(pi->t, obj - (uint64_t)L->managed_dict_before, &word, 8);
		if (r)
			return r;
		if (L->managed_values_tag > 0 && (word & (uint64_t)L->managed_values_tag))
			/* 3.12: the word is the values pointer less the tag */
			return split_get(pi, cached_keys, word + (uint64_t)L->managed_values_tag, 0,
					 name, hint, val);
		dict = word;
		if (!dict && L->managed_values_before > 0) {
			/* 3.11: values in a pointer of their own, before the dict */
			uint64_t values = 0;
			r = target_read(pi->t, obj - (uint64_t)L->managed_values_before, &values, 8);
			if (r)
				return r;
			if (values)
				return split_get(pi, cached_keys, values, 0, name, hint, val);
		}
		if (!dict && inline_values) {
			/* 3.13+: {capacity, size, embedded, valid} then the values */
			uint8_t vh[4];
			if (basicsize <= 0 || basicsize > (1 << 20))
				return -EINVAL;
			uint64_t values = obj + (uint64_t)basicsize;
			r = target_read(pi->t, values, vh, sizeof(vh));
			if (r)
				return r;
			if (!vh[3] || !vh[0])
				return -ENOENT;
			return split_get(pi, cached_keys, values, vh[0], name, hint, val);
		}
	} else if (!managed && dictoffset > 0 && dictoffset < (1 << 20)) {
		r = target_read(pi->t, obj + (uint64_t)dictoffset, &dict, 8);
		if (r)
			return r;
	}
	if (!dict)
		return -ENOENT;
	return py_dict_get_str(pi, dict, name, hint, val);
}
