/* Naming Java frames from outside: Method -> ConstMethod -> ConstantPool ->
 * Symbol and the holder's name, cached per Method*; bci -> line through
 * the ConstMethod's compressed line-number table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/target.h"
#include "jvm_walk.h"

#define MAX_SYMBOL 256u     /* longer names are cut */
#define MAX_LINETAB 4096u   /* bytes of line table read */
#define MAX_CONSTMETHOD JVM_MAX_CONSTMETHOD
#define MAX_CP_SLOTS 65536u /* u2 indices */

/* ---- the compressed line-number table ------------------------------- */

/* One unsigned int of a CompressedReadStream. JDK 20 moved it to
 * UNSIGNED5, which keeps zero bytes out by biasing each byte by one
 * (x = 1, 191 single-byte values); before, bytes were unbiased with 192.
 * Both: up to five bytes, six bits more per byte after the first. */
bool jvm_compressed_uint(const uint8_t *p, size_t len, size_t *pos, bool u5, uint32_t *out)
{
	const uint32_t x = u5 ? 1 : 0, l = u5 ? 191 : 192;
	if (*pos >= len)
		return false;
	uint32_t b = p[(*pos)++];
	if (b < x)
		return false;
	uint32_t sum = b - x;
	if (sum < l) {
		*out = sum;
		return true;
	}
	for (int i = 1, shift = 6; i < 5; i++, shift += 6) {
		if (*pos >= len)
			return false;
		b = p[(*pos)++];
		if (b < x)
			return false;
		sum += (b - x) << shift;
		if (b < x + l || i == 4) {
			*out = sum;
			return true;
		}
	}
	return false;
}

static bool read_sint(const uint8_t *p, size_t len, size_t *pos, bool u5, int32_t *out)
{
	uint32_t u;
	if (!jvm_compressed_uint(p, len, pos, u5, &u))
		return false;
	*out = (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
	return true;
}

/* Walk the (bci, line) pairs; fn gets each. Returns false on a malformed
 * table (cut off, or a pair that goes backwards in bci). */
static bool linetable_walk(const uint8_t *tab, size_t len, bool u5, int32_t want_bci,
			   int32_t *line_out, int32_t *first_line)
{
	size_t pos = 0;
	int32_t bci = 0, line = 0, best = 0;
	*first_line = 0;
	for (size_t guard = 0; guard < len; guard++) {
		if (pos >= len)
			return false;
		uint8_t b = tab[pos++];
		if (b == 0) {
			*line_out = best;
			return true;
		}
		int32_t db, dl;
		if (b == 0xff) {
			if (!read_sint(tab, len, &pos, u5, &db) || !read_sint(tab, len, &pos, u5, &dl))
				return false;
		} else {
			db = b >> 3;
			dl = b & 7;
		}
		if (db < 0 || (int64_t)bci + db > 65535 || (int64_t)line + dl <= 0 ||
		    (int64_t)line + dl > 0x7fffffff)
			return false;
		bci += db;
		line += dl;
		if (!*first_line)
			*first_line = line;
		/* The pairs are in bci order: the line of a bci is the last
		 * pair at or before it. */
		if (bci <= want_bci)
			best = line;
	}
	return false;
}

int jvm_linetable_encoding(const uint8_t *tab, size_t len)
{
	int32_t line, first;
	bool u5 = linetable_walk(tab, len, true, 0, &line, &first);
	bool old = linetable_walk(tab, len, false, 0, &line, &first);
	if (u5 != old)
		return u5 ? 1 : 2;
	return 0;
}

int32_t jvm_linetable_lookup(const uint8_t *tab, size_t len, int32_t bci, bool unsigned5)
{
	int32_t line = 0, first;
	if (bci < 0 || !linetable_walk(tab, len, unsigned5, bci, &line, &first))
		return 0;
	/* A bci before the first pair (a frame at its entry) is on its
	 * first line. */
	return line ? line : first;
}

/* ---- naming ---------------------------------------------------------- */

static int read_symbol(struct target *t, const struct jvm_layout *L, uint64_t sym, char *buf,
		       size_t n)
{
	uint16_t len;
	if (!sym || target_read(t, sym + L->sym_length, &len, 2))
		return -EFAULT;
	size_t take = len < n - 1 ? len : n - 1;
	if (take && target_read(t, sym + L->sym_body, buf, take))
		return -EFAULT;
	buf[take] = '\0';
	for (size_t i = 0; i < take; i++)
		if ((unsigned char)buf[i] < 0x20) /* untrusted: keep output one line */
			buf[i] = '?';
	return 0;
}

static int cp_symbol(struct target *t, const struct jvm_layout *L, uint64_t cp, uint32_t idx,
		     uint32_t cp_len, char *buf, size_t n)
{
	uint64_t sym;
	if (!idx || idx >= cp_len)
		return -EINVAL;
	if (target_read(t, cp + L->cp_size + 8ull * idx, &sym, 8))
		return -EFAULT;
	return read_symbol(t, L, sym & ~1ull, buf, n);
}

/* A u2 of the ConstMethod copy; 0 for an offset outside it (the layout
 * check refuses such tables, this keeps the reader safe on its own). */
static uint32_t get_u16(const uint8_t *p, size_t len, uint32_t off)
{
	uint16_t v;
	if (off > len || len - off < 2)
		return 0;
	memcpy(&v, p + off, 2);
	return v;
}

/* Read a Method's names and tables into mi. 0 or negative. */
static int minfo_read(struct jvm_walker *w, uint64_t method, struct jvm_minfo *mi)
{
	const struct jvm_layout *L = &w->L;
	struct target *t = w->t;
	uint8_t cm[MAX_CONSTMETHOD];
	uint64_t cmp, cp, holder, ksym;
	char klass[MAX_SYMBOL], name[MAX_SYMBOL], file[MAX_SYMBOL];
	uint32_t cp_len = MAX_CP_SLOTS;

	memset(mi, 0, sizeof(*mi));
	size_t cml = (size_t)L->cm_size;
	if (cml > sizeof(cm) || cml < 8 || L->cm_constants > cml - 8)
		return -EPROTO;
	if (target_read(t, method + L->m_constmethod, &cmp, 8) || !cmp || cmp & 7 ||
	    target_read(t, cmp, cm, cml))
		return -EFAULT;
	memcpy(&cp, cm + L->cm_constants, 8);
	if (!cp || cp & 7 || target_read(t, cp + L->cp_holder, &holder, 8) || !holder ||
	    target_read(t, holder + L->k_name, &ksym, 8))
		return -EFAULT;
	uint32_t name_idx = get_u16(cm, cml, L->cm_name_idx);
	if (read_symbol(t, L, ksym, klass, sizeof(klass)) ||
	    cp_symbol(t, L, cp, name_idx, cp_len, name, sizeof(name)))
		return -EFAULT;
	mi->key_cm = cmp;
	mi->key_cp = cp;
	mi->key_name = name_idx;
	mi->key_holder = holder;
	for (char *c = klass; *c; c++)
		if (*c == '/')
			*c = '.';
	size_t nl = strlen(klass) + strlen(name) + 2;
	if (!(mi->name = malloc(nl)))
		return -ENOMEM;
	snprintf(mi->name, nl, "%s.%s", klass, name);
	if (L->cp_srcfile_idx != JVM_NO_OFF) {
		uint16_t fi;
		if (target_read(t, cp + L->cp_srcfile_idx, &fi, 2) == 0 &&
		    cp_symbol(t, L, cp, fi, cp_len, file, sizeof(file)) == 0 && file[0])
			mi->file = strdup(file);
	}
	if (!L->has_lines)
		return 0;
	mi->code_size = get_u16(cm, cml, L->cm_code_size);
	mi->code = cmp + L->cm_size;
	if (!(get_u16(cm, cml, L->cm_flags) & L->cm_linenumber_flag))
		return 0;
	/* The table follows the bytecodes; read what there is up to the
	 * bound (the ConstMethod may end sooner than MAX_LINETAB). */
	uint8_t *tab = malloc(MAX_LINETAB);
	if (!tab)
		return -ENOMEM;
	struct iovec lv = {tab, MAX_LINETAB}, rv = {(void *)(uintptr_t)(mi->code + mi->code_size), MAX_LINETAB};
	ssize_t got = target_readv(t, &lv, 1, &rv, 1);
	if (got <= 0) {
		free(tab);
		return 0;
	}
	mi->lines = tab;
	mi->nlines = (uint32_t)got;
	return 0;
}

/* ---- the cache by Method* ------------------------------------------- */

/* A cached name is believed only while the words it was read through are
 * the same: a class unload frees its Methods, ConstMethods and constant
 * pool, and new ones may take the same addresses. The four words are
 * read where they were, one scatter read for many entries. */
struct mkey {
	uint64_t cm, cp, holder;
	uint16_t name;
};
#define MKEY_IOV 4
/* Entries checked by one system call (IOV_MAX is 1024). */
#define MKEY_BATCH 256u

static void mkey_iov(const struct jvm_layout *L, uint64_t method, const struct jvm_minfo *mi,
		     struct mkey *k, struct iovec *lv, struct iovec *rv)
{
	const struct { void *p; uint64_t at; size_t n; } piece[MKEY_IOV] = {
		{&k->cm, method + L->m_constmethod, 8},
		{&k->cp, mi->key_cm + L->cm_constants, 8},
		{&k->name, mi->key_cm + L->cm_name_idx, 2},
		{&k->holder, mi->key_cp + L->cp_holder, 8},
	};
	for (int i = 0; i < MKEY_IOV; i++) {
		lv[i] = (struct iovec){piece[i].p, piece[i].n};
		rv[i] = (struct iovec){(void *)(uintptr_t)piece[i].at, piece[i].n};
	}
}

static bool mkey_same(const struct jvm_minfo *mi, const struct mkey *k)
{
	return k->cm == mi->key_cm && k->cp == mi->key_cp && k->name == mi->key_name &&
	       k->holder == mi->key_holder;
}

static void minfo_drop(struct jvm_minfo *mi)
{
	free(mi->name);
	free(mi->file);
	free(mi->lines);
	memset(mi, 0, sizeof(*mi)); /* name NULL: read again when next asked */
}

/* The cache slot of a Method*, NULL if it has none. */
static struct jvm_minfo *minfo_slot(struct jvm_walker *w, uint64_t method)
{
	uint64_t idx;
	if (!cg_map_get(&w->methods, method, &idx) || !idx || idx > w->nminfo)
		return NULL;
	return &w->minfo[idx - 1];
}

int jvm_methods_check(struct jvm_walker *w, const struct jvm_rawframe *f, size_t n)
{
	struct iovec lv[MKEY_BATCH * MKEY_IOV], rv[MKEY_BATCH * MKEY_IOV];
	struct mkey key[MKEY_BATCH];
	struct jvm_minfo *slot[MKEY_BATCH];
	uint64_t gen = ++w->check_gen;
	int changed = 0;
	size_t i = 0;
	while (i < n) {
		size_t k = 0;
		for (; i < n && k < MKEY_BATCH; i++) {
			struct jvm_minfo *mi = minfo_slot(w, f[i].method);
			if (!mi || !mi->name || mi->checked == gen)
				continue;
			mi->checked = gen; /* once per call, however often it recurs */
			mkey_iov(&w->L, f[i].method, mi, &key[k], &lv[k * MKEY_IOV], &rv[k * MKEY_IOV]);
			slot[k++] = mi;
		}
		if (!k)
			break;
		ssize_t got = target_readv(w->t, lv, k * MKEY_IOV, rv, k * MKEY_IOV);
		size_t upto = 0;
		for (size_t j = 0; j < k; j++) {
			upto += 8 + 8 + 2 + 8;
			if (got >= 0 && (size_t)got >= upto && mkey_same(slot[j], &key[j]))
				continue;
			/* Changed, or no longer readable: not this method's name. A
			 * short read cuts the rest too; they are read afresh. */
			minfo_drop(slot[j]);
			changed++;
		}
	}
	return changed;
}

const struct jvm_minfo *jvm_method_info(struct jvm_walker *w, uint64_t method)
{
	struct jvm_minfo *mi = minfo_slot(w, method);
	if (mi && mi->name) {
		if (mi->checked == w->check_gen)
			return mi;
		/* Not checked since the last jvm_methods_check: on its own. */
		struct mkey k;
		struct iovec lv[MKEY_IOV], rv[MKEY_IOV];
		mkey_iov(&w->L, method, mi, &k, lv, rv);
		ssize_t got = target_readv(w->t, lv, MKEY_IOV, rv, MKEY_IOV);
		if (got == 8 + 8 + 2 + 8 && mkey_same(mi, &k)) {
			mi->checked = w->check_gen;
			return mi;
		}
		minfo_drop(mi);
	}
	if (mi) {
		/* Its slot stays; what it names is read again. */
		struct jvm_minfo fresh;
		if (minfo_read(w, method, &fresh)) {
			free(fresh.name);
			free(fresh.file);
			return NULL;
		}
		*mi = fresh;
		mi->checked = w->check_gen;
		return mi;
	}
	if (!(w->nminfo & (w->nminfo - 1)) || !w->nminfo) {
		size_t cap = w->nminfo ? w->nminfo * 2 : 64;
		struct jvm_minfo *p = realloc(w->minfo, cap * sizeof(*p));
		if (!p)
			return NULL;
		w->minfo = p;
	}
	mi = &w->minfo[w->nminfo];
	if (minfo_read(w, method, mi)) {
		free(mi->name);
		free(mi->file);
		/* A Method* that does not name is not cached: it may be a torn
		 * read of a frame slot, not a bad method. */
		return NULL;
	}
	if (cg_map_put(&w->methods, method, w->nminfo + 1)) {
		free(mi->name);
		free(mi->file);
		free(mi->lines);
		return NULL;
	}
	mi->checked = w->check_gen;
	w->nminfo++;
	return mi;
}

int32_t jvm_frame_bci(const struct jvm_minfo *mi, const struct jvm_rawframe *f)
{
	if (f->compiled)
		return f->bci;
	if (!f->bcp || f->bcp < mi->code || f->bcp - mi->code >= mi->code_size)
		return -1;
	return (int32_t)(f->bcp - mi->code);
}

int32_t jvm_method_line(struct jvm_walker *w, const struct jvm_minfo *mi, int32_t bci)
{
	if (!mi->lines || bci < 0)
		return 0;
	if (!w->line_enc)
		w->line_enc = jvm_linetable_encoding(mi->lines, mi->nlines);
	if (!w->line_enc)
		return 0;
	return jvm_linetable_lookup(mi->lines, mi->nlines, bci, w->line_enc == 1);
}
