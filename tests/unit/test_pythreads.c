/* The CPython object readers and the thread-name reader over a fake
 * target: for every layout row, a hand-built interpreter whose
 * sys.modules holds threading, whose threading._active maps two idents
 * to Thread objects kept the way that version keeps instances. Also the
 * int and dict readers on their own, and what they refuse. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "../../src/python/py_priv.h"
#include "../../src/target/target_priv.h"

#define ARENA 0x100000ULL
#define ARENA_SIZE 0x10000
/* What the interpreter's type objects are taken to be. */
#define T_DICT 0xd1c7000ULL
#define T_MODULE 0x30d0000ULL
#define T_LONG 0x10e0000ULL
#define T_STR 0x57e0000ULL
#define T_OTHER 0x0700000ULL

static uint8_t arena[ARENA_SIZE];
static size_t used;
static const struct py_layout *L;

static const struct cg_fake_region regions[] = {{ARENA, arena, sizeof(arena)}};
static const struct cg_fake_mem mem = {regions, 1};

static void put64(uint64_t at, uint64_t v) { memcpy(arena + (at - ARENA), &v, 8); }
static void put32(uint64_t at, uint32_t v) { memcpy(arena + (at - ARENA), &v, 4); }
static void put8(uint64_t at, uint8_t v) { arena[at - ARENA] = v; }

/* size bytes, 16-aligned, with `before` bytes of room in front (3.11+
 * keep the dict or values pointers there). */
static uint64_t alloc(size_t size, size_t before)
{
	used = (used + before + 15) & ~(size_t)15;
	uint64_t at = ARENA + used;
	used += size;
	ck_assert_uint_le(used, ARENA_SIZE);
	return at;
}

static uint64_t obj(uint64_t type, size_t size, size_t before)
{
	uint64_t o = alloc(size, before);
	put64(o, 1); /* ob_refcnt: live */
	put64(o + (uint64_t)L->object_type, type);
	return o;
}

static uint64_t mkstr(const char *s)
{
	uint64_t o = obj(T_STR, (size_t)L->unicode_ascii_size + strlen(s) + 1, 0);
	put64(o + (uint64_t)L->unicode_length, strlen(s));
	put32(o + (uint64_t)L->unicode_state, (1 << 2) | (1 << 5) | (1 << 6)); /* compact ascii */
	memcpy(arena + (o - ARENA) + L->unicode_ascii_size, s, strlen(s));
	return o;
}

static uint64_t mklong(uint64_t v)
{
	uint64_t o = obj(T_LONG, (size_t)L->long_digit + 16, 0);
	uint32_t n = 0;
	for (uint64_t x = v; x; x >>= L->long_shift)
		put32(o + (uint64_t)L->long_digit + 4 * n++,
		      (uint32_t)(x & ((1u << L->long_shift) - 1)));
	if (L->long_lv_tag >= 0)
		put64(o + (uint64_t)L->long_lv_tag, v ? (uint64_t)n << 3 : 1);
	else
		put64(o + (uint64_t)L->long_size, n);
	return o;
}

/* A keys object of 8 slots holding keys[0..n) (kind: 3.11+ dk_kind,
 * 0 general entries, 1 or 2 str-key entries), values in the entries
 * unless vals is NULL (a split table). */
static uint64_t mkkeys(int n, const uint64_t *keys, const uint64_t *vals, int kind)
{
	bool unicode = kind && L->dictkeys_log2_size >= 0; /* 3.11+ */
	size_t esize = (size_t)(unicode ? L->dict_unicode_entry_size : L->dict_entry_size);
	uint64_t k = alloc((size_t)L->dictkeys_indices + 8 + 8 * esize, 0);
	put64(k, 1);
	if (L->dictkeys_log2_size >= 0) {
		put8(k + (uint64_t)L->dictkeys_log2_size, 3);
		put8(k + (uint64_t)L->dictkeys_log2_index_bytes, 3);
		put8(k + (uint64_t)L->dictkeys_kind, (uint8_t)kind);
	} else {
		put64(k + (uint64_t)L->dictkeys_size, 8);
	}
	put64(k + (uint64_t)L->dictkeys_nentries, (uint64_t)n);
	uint64_t e = k + (uint64_t)L->dictkeys_indices + 8;
	for (int i = 0; i < n; i++) {
		put8(k + (uint64_t)L->dictkeys_indices + (uint64_t)i, (uint8_t)i);
		put64(e + i * esize + esize - 16, keys[i]);
		put64(e + i * esize + esize - 8, vals ? vals[i] : 0);
	}
	return k;
}

static uint64_t mkvalues(int n, const uint64_t *vals, size_t before)
{
	uint64_t v = alloc((size_t)L->dictvalues_values + 8 * (size_t)n, before);
	if (L->dictvalues_values >= 4) { /* 3.13+: capacity, size, embedded, valid */
		put8(v, (uint8_t)n);
		put8(v + 1, (uint8_t)n);
		put8(v + 3, 1);
	}
	for (int i = 0; i < n; i++)
		put64(v + (uint64_t)L->dictvalues_values + 8 * (uint64_t)i, vals[i]);
	return v;
}

static uint64_t mkdict(uint64_t keys, uint64_t values)
{
	uint64_t d = obj(T_DICT, 64, 0);
	put64(d + (uint64_t)L->dict_keys, keys);
	put64(d + (uint64_t)L->dict_values, values);
	return d;
}

static uint64_t mkdict_of(int n, const uint64_t *keys, const uint64_t *vals, int kind)
{
	return mkdict(mkkeys(n, keys, vals, kind), 0);
}

/* A Thread whose only attributes are _ident and _name, kept as this
 * version keeps a plain class's instance. */
static uint64_t mkthread(uint64_t cls, uint64_t ident, const char *name)
{
	uint64_t names[] = {mkstr("_ident"), mkstr("_name")};
	uint64_t vals[] = {mklong(ident), mkstr(name)};
	uint64_t cached = mkkeys(2, names, NULL, 2); /* shared keys: no values */
	put64(cls + (uint64_t)L->heaptype_cached_keys, cached);
	uint64_t basicsize = 16 + 16; /* header, then __dict__/__weakref__ slots */
	put64(cls + (uint64_t)L->type_basicsize, basicsize);
	uint64_t t = obj(cls, basicsize + 64, 32);
	if (L->tpflag_managed_dict < 0) { /* 3.6-3.10: a split __dict__ at tp_dictoffset */
		put64(cls + (uint64_t)L->type_dictoffset, 16);
		put64(t + 16, mkdict(cached, mkvalues(2, vals, 0)));
	} else if (L->tpflag_inline_values >= 0) { /* 3.13+: values after the object */
		put64(cls + (uint64_t)L->type_flags,
		      (uint64_t)(L->tpflag_managed_dict | L->tpflag_inline_values));
		uint64_t v = t + basicsize;
		put8(v, 2);
		put8(v + 1, 2);
		put8(v + 2, 1);
		put8(v + 3, 1);
		put64(v + (uint64_t)L->dictvalues_values, vals[0]);
		put64(v + (uint64_t)L->dictvalues_values + 8, vals[1]);
	} else {
		put64(cls + (uint64_t)L->type_flags, (uint64_t)L->tpflag_managed_dict);
		uint64_t v = mkvalues(2, vals, 0);
		if (L->managed_values_before > 0) /* 3.11: a values pointer */
			put64(t - (uint64_t)L->managed_values_before, v);
		else /* 3.12: the tagged dict-or-values word */
			put64(t - (uint64_t)L->managed_dict_before, v - (uint64_t)L->managed_values_tag);
	}
	return t;
}

static struct py_interp pi;
static struct target *tgt;
static uint64_t ident_objs[4]; /* the int keys of _active */

static void setup_row(const struct py_layout *row)
{
	L = row;
	memset(arena, 0, sizeof(arena));
	used = 0;
	ck_assert_int_eq(target_fake_memory(&tgt, &mem), 0);
	memset(&pi, 0, sizeof(pi));
	pi.t = tgt;
	pi.major = 3;
	pi.minor = row->minor;
	pi.types = (struct py_types){T_DICT, T_MODULE, T_LONG, T_STR};
	py_interp_set_layout(&pi, row);
}

/* interp -> sys.modules {"sys", "threading"} -> threading.__dict__
 * {"__name__", "_active"} -> _active {ident: Thread}. The _active dict's
 * address. */
static uint64_t build_interp(int nthreads, const uint64_t *idents, const char *const *names)
{
	uint64_t cls = obj(T_OTHER, 1024, 0);
	uint64_t ks[4], vs[4];
	for (int i = 0; i < nthreads; i++) {
		ks[i] = ident_objs[i] = mklong(idents[i]);
		vs[i] = mkthread(cls, idents[i], names[i]);
	}
	uint64_t active = mkdict_of(nthreads, ks, vs, 0);
	uint64_t mk[] = {mkstr("__name__"), mkstr("_active")};
	uint64_t mv[] = {mkstr("threading"), active};
	uint64_t md = mkdict_of(2, mk, mv, 1);
	uint64_t mod = obj(T_MODULE, 64, 0);
	put64(mod + (uint64_t)L->module_dict, md);
	uint64_t sk[] = {mkstr("sys"), mkstr("threading")};
	uint64_t sv[] = {obj(T_MODULE, 64, 0), mod};
	uint64_t modules = mkdict_of(2, sk, sv, 1);
	uint64_t interp = alloc((size_t)L->interp_modules + 8, 0);
	put64(interp + (uint64_t)L->interp_modules, modules);
	uint64_t rt = alloc((size_t)(L->runtime_interp_head > 0 ? L->runtime_interp_head : 0) + 8, 0);
	if (L->runtime_interp_head >= 0) {
		pi.runtime = rt;
		put64(rt + (uint64_t)L->runtime_interp_head, interp);
	} else {
		pi.interp_head_var = rt; /* 3.6 */
		put64(rt, interp);
	}
	return active;
}

/* CGPROF_PYTHREADS_SEEDS=DIR: each image also becomes a seed of
 * tests/fuzz/fuzz_pythreads.c, in its input format (the arena is its
 * region 0). */
static void write_seed(unsigned row, uint64_t ident)
{
	const char *dir = getenv("CGPROF_PYTHREADS_SEEDS");
	char path[512];
	if (!dir)
		return;
	uint64_t rt = pi.runtime ? pi.runtime : pi.interp_head_var;
	snprintf(path, sizeof(path), "%s/py3%02d-threading-active", dir, L->minor);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	uint8_t head[14] = {(uint8_t)row, 1, (uint8_t)(rt - ARENA), (uint8_t)((rt - ARENA) >> 8)};
	memcpy(head + 4, &ident, 8);
	head[12] = (uint8_t)used;
	head[13] = (uint8_t)(used >> 8);
	ck_assert_uint_eq(fwrite(head, 1, sizeof(head), f), sizeof(head));
	ck_assert_uint_eq(fwrite(arena, 1, used, f), used);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(names_from_threading_every_layout)
{
	for (unsigned i = 0; i < py_layouts_len; i++) {
		setup_row(&py_layouts[i]);
		static const uint64_t idents[] = {0x7f12345678c0ULL, 0x7f1234ffe6c0ULL};
		static const char *const names[] = {"MainThread", "CustomThreadName-0"};
		uint64_t active = build_interp(2, idents, names);
		write_seed(i, idents[1]);
		struct py_tnames *tn;
		ck_assert_int_eq(py_tnames_new(&pi, &tn), 0);
		ck_assert_msg(py_tnames_refresh(tn) == 2, "3.%d", L->minor);
		ck_assert_str_eq(py_tnames_get(tn, idents[0]), "MainThread");
		ck_assert_str_eq(py_tnames_get(tn, idents[1]), "CustomThreadName-0");
		ck_assert_ptr_null(py_tnames_get(tn, 0x7f0000001000ULL)); /* not threading's */
		ck_assert_ptr_null(py_tnames_get(tn, 0));
		/* _active that no longer reads as a dict: found again, or none */
		put64(active + (uint64_t)L->object_type, T_OTHER);
		ck_assert_int_lt(py_tnames_refresh(tn), 0);
		py_tnames_free(tn);
		target_close(tgt);
	}
}
END_TEST

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
	nanosleep(&ts, NULL);
}

/* A thread sampled before it registers in threading._active, for as long
 * as it likes, is named at the first look after it registers (a look: at
 * most once a millisecond), not a second later; while the registry is
 * unchanged a look costs one system call and no scan. */
START_TEST(new_thread_is_named_soon)
{
	static const uint64_t idents[] = {0x7f00000010c0ULL, 0x7f00000020c0ULL};
	static const char *const names[] = {"MainThread", "late-registered"};
	for (unsigned row = 0; row < py_layouts_len; row++) {
		setup_row(&py_layouts[row]);
		uint64_t active = build_interp(2, idents, names);
		uint64_t keys;
		memcpy(&keys, arena + (active + (uint64_t)L->dict_keys - ARENA), 8);
		uint64_t nent = keys + (uint64_t)L->dictkeys_nentries;
		put64(nent, 1); /* the second thread not yet registered */
		struct py_tnames *tn;
		ck_assert_int_eq(py_tnames_new(&pi, &tn), 0);
		ck_assert_str_eq(py_tnames_get(tn, idents[0]), "MainThread");
		for (int i = 0; i < 12; i++) { /* it runs unknown a while */
			ck_assert_ptr_null(py_tnames_get(tn, idents[1]));
			sleep_ms(2);
		}
		/* a look at an unchanged registry: one call, no rescan */
		uint64_t calls = target_fake_calls(tgt);
		ck_assert_ptr_null(py_tnames_get(tn, idents[1]));
		ck_assert_uint_eq(target_fake_calls(tgt) - calls, 1);
		/* and none within the millisecond after */
		calls = target_fake_calls(tgt);
		ck_assert_ptr_null(py_tnames_get(tn, idents[1]));
		ck_assert_uint_eq(target_fake_calls(tgt) - calls, 0);
		/* the thread registers: the dict takes its next entry */
		put64(nent, 2);
		sleep_ms(2);
		ck_assert_msg(py_tnames_get(tn, idents[1]) != NULL, "3.%d", L->minor);
		ck_assert_str_eq(py_tnames_get(tn, idents[1]), "late-registered");
		py_tnames_free(tn);
		target_close(tgt);
	}
}
END_TEST

START_TEST(long_reader)
{
	setup_row(py_layout_find(3, 11));
	uint64_t v;
	ck_assert_int_eq(py_long_read(&pi, mklong(0), &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(py_long_read(&pi, mklong(12345), &v), 0);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(py_long_read(&pi, mklong(0xfedcba9876543210ULL), &v), 0);
	ck_assert_uint_eq(v, 0xfedcba9876543210ULL);
	uint64_t o = mklong(5);
	put64(o + (uint64_t)L->long_size, (uint64_t)-1); /* -5 */
	ck_assert_int_eq(py_long_read(&pi, o, &v), -EINVAL);
	o = mklong(5);
	put32(o + (uint64_t)L->long_digit, 1u << 30); /* not a 30-bit digit */
	ck_assert_int_eq(py_long_read(&pi, o, &v), -EINVAL);
	o = mklong(UINT64_MAX);
	put32(o + (uint64_t)L->long_digit + 8, 0x1f); /* 2^64 and up */
	ck_assert_int_eq(py_long_read(&pi, o, &v), -ERANGE);
	/* four digits, the top ones zero (found by fuzz_pythreads: a shift
	 * of 90 bits) */
	o = mklong(5);
	put64(o + (uint64_t)L->long_size, 4);
	ck_assert_int_eq(py_long_read(&pi, o, &v), 0);
	ck_assert_uint_eq(v, 5);
	o = mklong(5);
	put64(o + (uint64_t)L->object_type, T_STR);
	ck_assert_int_eq(py_long_read(&pi, o, &v), -EINVAL);
	ck_assert_int_eq(py_long_read(&pi, ARENA + ARENA_SIZE + 64, &v), -EFAULT);
	target_close(tgt);

	setup_row(py_layout_find(3, 12)); /* lv_tag: count << 3 | sign */
	ck_assert_int_eq(py_long_read(&pi, mklong(1ULL << 62), &v), 0);
	ck_assert_uint_eq(v, 1ULL << 62);
	o = mklong(7);
	put64(o + (uint64_t)L->long_lv_tag, 1 << 3 | 2); /* -7 */
	ck_assert_int_eq(py_long_read(&pi, o, &v), -EINVAL);
	target_close(tgt);
}
END_TEST

static int count_item(uint64_t key, uint64_t value, void *arg)
{
	ck_assert_uint_ne(key, 0);
	ck_assert_uint_ne(value, 0);
	++*(uint64_t *)arg;
	return 0;
}

START_TEST(dict_reader)
{
	static const int minors[] = {6, 10, 11, 13};
	for (unsigned m = 0; m < sizeof(minors) / sizeof(minors[0]); m++) {
		setup_row(py_layout_find(3, minors[m]));
		uint64_t k[] = {mkstr("alpha"), mkstr("beta"), mkstr("gamma"), 0};
		uint64_t v[] = {0xa1, 0xb2, 0xc3, 0xd4};
		uint64_t d = mkdict_of(4, k, v, 1), val = 0, hint = 0;
		ck_assert_int_eq(py_dict_get_str(&pi, d, "gamma", &hint, &val), 0);
		ck_assert_uint_eq(val, 0xc3);
		ck_assert_uint_eq(hint, k[2]);
		/* the interned key's address alone finds it again */
		ck_assert_int_eq(py_dict_get_str(&pi, d, "gamma", &hint, &val), 0);
		ck_assert_uint_eq(val, 0xc3);
		ck_assert_int_eq(py_dict_get_str(&pi, d, "delta", NULL, &val), -ENOENT);
		ck_assert_int_eq(py_dict_get_str(&pi, d, "gam", NULL, &val), -ENOENT);
		/* a deleted slot (NULL key) is skipped, not an item */
		uint64_t n = 0;
		ck_assert_int_eq(py_dict_scan(&pi, d, count_item, &n), 0);
		ck_assert_uint_eq(n, 3);
		/* not a dict, or a keys object out of shape */
		put64(d + (uint64_t)L->object_type, T_OTHER);
		ck_assert_int_eq(py_dict_get_str(&pi, d, "alpha", NULL, &val), -EINVAL);
		put64(d + (uint64_t)L->object_type, T_DICT);
		uint64_t keys = 0;
		memcpy(&keys, arena + (d - ARENA) + L->dict_keys, 8);
		put64(keys + (uint64_t)L->dictkeys_nentries, 9); /* more than its 8 slots */
		ck_assert_int_eq(py_dict_get_str(&pi, d, "alpha", NULL, &val), -EINVAL);
		ck_assert_int_eq(py_dict_get_str(&pi, ARENA + ARENA_SIZE, "alpha", NULL, &val),
				 -EFAULT);
		target_close(tgt);
	}
}
END_TEST

/* A struct pthread as glibc 2.36 on x86-64 lays it out, as far as the
 * learner can tell: pointers into the thread-stack region (self, the
 * list links), whose upper halves are the same in every struct, and the
 * tid at byte 720. */
static void fake_pthread(int32_t *w, uint32_t region_hi, pid_t tid)
{
	memset(w, 0, PY_PTID_WORDS * sizeof(*w));
	w[0] = 0x1234000;  /* self: low half */
	w[1] = (int32_t)region_hi;
	w[4] = 0x1234000;
	w[5] = (int32_t)region_hi;
	w[176] = 0x5678000; /* list links */
	w[177] = (int32_t)region_hi;
	w[180] = tid;
	w[196] = 128;
}

START_TEST(pthread_tid_word_learnt_when_a_pointer_half_is_a_tid)
{
	/* CI's 2-CPU machines have pid_max 32768: a process whose threads
	 * got tids around 0x7f6a (32618) sees that number in every struct's
	 * pointer halves. Picking the lowest surviving word gave every
	 * thread one tid (so 250 of 250 threads "never sampled"). */
	pid_t tids[40];
	for (int i = 0; i < 40; i++)
		tids[i] = 32600 + i;
	int32_t w[PY_PTID_WORDS];
	struct py_ptid_learn l = {0};
	int off = -1;
	fake_pthread(w, 32618, 32601);
	ck_assert_int_eq(py_ptid_learn(&l, 0x7f6a01234000, w, PY_PTID_WORDS, tids, 40, &off),
			 -EAGAIN);
	/* the same struct again (a lookup that failed) narrows nothing */
	ck_assert_int_eq(py_ptid_learn(&l, 0x7f6a01234000, w, PY_PTID_WORDS, tids, 40, &off),
			 -EAGAIN);
	/* another thread's: only the word that differs is left */
	fake_pthread(w, 32618, 32602);
	ck_assert_int_eq(py_ptid_learn(&l, 0x7f6a01274000, w, PY_PTID_WORDS, tids, 40, &off), 0);
	ck_assert_int_eq(off, 720);

	/* one thread (the main one: its tid is the pid) and nothing in its
	 * struct that looks like a tid but the tid: learnt from it alone */
	struct py_ptid_learn one = {0};
	pid_t pid = 4242;
	fake_pthread(w, 32618, pid);
	off = -1;
	ck_assert_int_eq(py_ptid_learn(&one, 0x7f6a01234000, w, PY_PTID_WORDS, &pid, 1, &off), 0);
	ck_assert_int_eq(off, 720);

	/* no word holds a listed tid: start again, learn nothing */
	struct py_ptid_learn none = {0};
	fake_pthread(w, 32618, 999);
	ck_assert_int_eq(py_ptid_learn(&none, 0x7f6a01234000, w, PY_PTID_WORDS, &pid, 1, &off),
			 -EAGAIN);
	ck_assert_uint_eq(none.seen, 0);
}
END_TEST


static Suite *suite(void)
{
	Suite *s = suite_create("pythreads");
	TCase *tc = tcase_create("objects");
	tcase_add_test(tc, names_from_threading_every_layout);
	tcase_add_test(tc, new_thread_is_named_soon);
	tcase_add_test(tc, long_reader);
	tcase_add_test(tc, pthread_tid_word_learnt_when_a_pointer_half_is_a_tid);
	tcase_add_test(tc, dict_reader);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(suite)
