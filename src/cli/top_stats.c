/* The counts behind `cgprof top`: fixed tables of relaxed atomics the
 * sampling thread bumps and the drawing thread sums, so drawing never
 * makes the sampler wait (one writer; readers tolerate a count in flight). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/profile.h"
#include "cgprof/util.h"
#include "top_stats.h"

#define FUNC_HASH_CAP (TOP_MAX_FUNCS * 2u)
#define FUNC_BITS 13u   /* TOP_MAX_FUNCS = 2^13 */
#define NAME_MAX_LEN 512u
#define NS 1000000000ULL

_Static_assert(TOP_MAX_FUNCS == 1u << FUNC_BITS, "func ids fit FUNC_BITS");
_Static_assert(TOP_MAX_THREADS <= 1u << 17, "thread slots fit the 18 high bits of a key");

struct top_func {
	char *name;
	char *file;
	_Atomic int32_t line; /* lowest line seen: near the definition */
};

struct top_stack {
	uint32_t n;
	bool have, truncated;
	enum cg_state state;
	uint32_t funcs[TOP_STACK_MAX];
	int32_t lines[TOP_STACK_MAX];
};

struct top_thread {
	pid_t pid, tid;
	pthread_mutex_t mu; /* name and stacks; the sampler only tries it */
	char name[64];
	/* its latest stack, and its latest on CPU: with idle samples hidden
	 * the view shows the latter, as its table counts only those */
	struct top_stack last, last_oncpu;
	_Atomic uint64_t last_sec; /* second of its latest sample, + 1 */
};

struct top_stats {
	unsigned w;          /* buckets: seconds in the window view */
	uint64_t start_ns;
	struct top_func funcs[TOP_MAX_FUNCS];
	_Atomic uint32_t nfuncs;
	struct top_thread threads[TOP_MAX_THREADS];
	_Atomic uint32_t nthreads;
	/* cells keyed (thread << 14 | idle << 13 | func) + 1; 0 = free */
	_Atomic uint32_t keys[TOP_MAX_ENTRIES];
	_Atomic uint32_t used[TOP_MAX_ENTRIES]; /* cell indices in use */
	_Atomic uint32_t nused;
	_Atomic uint64_t own_all[TOP_MAX_ENTRIES], tot_all[TOP_MAX_ENTRIES];
	_Atomic uint32_t *own_ring, *tot_ring; /* [bucket * ENTRIES + cell] */
	/* samples per (thread, idle): the 100% of a view */
	_Atomic uint64_t tsamp_all[TOP_MAX_THREADS * 2];
	_Atomic uint32_t *tsamp_ring; /* [bucket * THREADS * 2 + slot * 2 + idle] */
	_Atomic uint32_t *rounds_ring;
	_Atomic uint64_t rounds_all;
	_Atomic uint64_t cur_sec;
	_Atomic uint64_t taken, lost, dropped;
	/* sampler-private */
	uint32_t func_hash[FUNC_HASH_CAP]; /* func id + 1 */
	uint32_t mark[TOP_MAX_FUNCS];      /* total counted once per sample */
	uint32_t mark_gen;
	uint32_t last_slot;
};

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define ST(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define INC(x) atomic_store_explicit(&(x), LD(x) + 1, memory_order_relaxed) /* one writer */

int top_stats_new(unsigned window_s, uint64_t start_ns, struct top_stats **out)
{
	if (window_s < 1 || window_s > TOP_WINDOW_MAX)
		return -EINVAL;
	struct top_stats *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->w = window_s;
	st->start_ns = start_ns;
	st->own_ring = calloc((size_t)window_s * TOP_MAX_ENTRIES, sizeof(*st->own_ring));
	st->tot_ring = calloc((size_t)window_s * TOP_MAX_ENTRIES, sizeof(*st->tot_ring));
	st->tsamp_ring = calloc((size_t)window_s * TOP_MAX_THREADS * 2, sizeof(*st->tsamp_ring));
	st->rounds_ring = calloc(window_s, sizeof(*st->rounds_ring));
	/* id 0 takes what no longer fits, so a full table is visible */
	st->funcs[0].name = strdup("(other functions)");
	if (!st->own_ring || !st->tot_ring || !st->tsamp_ring || !st->rounds_ring ||
	    !st->funcs[0].name) {
		top_stats_free(st);
		return -ENOMEM;
	}
	ST(st->nfuncs, 1);
	*out = st;
	return 0;
}

void top_stats_free(struct top_stats *st)
{
	if (!st)
		return;
	uint32_t nf = LD(st->nfuncs);
	for (uint32_t i = 0; i < nf || i == 0; i++) {
		free(st->funcs[i].name);
		free(st->funcs[i].file);
	}
	uint32_t nt = LD(st->nthreads);
	for (uint32_t i = 0; i < nt; i++)
		pthread_mutex_destroy(&st->threads[i].mu);
	free(st->own_ring);
	free(st->tot_ring);
	free(st->tsamp_ring);
	free(st->rounds_ring);
	free(st);
}

/* Start the buckets of the seconds that began since the last call. */
static uint64_t rotate(struct top_stats *st, uint64_t now_ns)
{
	uint64_t sec = now_ns > st->start_ns ? (now_ns - st->start_ns) / NS : 0;
	uint64_t cur = LD(st->cur_sec);
	if (sec <= cur)
		return cur;
	uint64_t n = sec - cur < st->w ? sec - cur : st->w;
	uint32_t nused = LD(st->nused);
	for (uint64_t k = 1; k <= n; k++) {
		size_t b = (size_t)((cur + k) % st->w);
		for (uint32_t i = 0; i < nused; i++) {
			uint32_t c = LD(st->used[i]);
			ST(st->own_ring[b * TOP_MAX_ENTRIES + c], 0);
			ST(st->tot_ring[b * TOP_MAX_ENTRIES + c], 0);
		}
		for (uint32_t i = 0; i < TOP_MAX_THREADS * 2; i++)
			ST(st->tsamp_ring[b * TOP_MAX_THREADS * 2 + i], 0);
		ST(st->rounds_ring[b], 0);
	}
	atomic_store_explicit(&st->cur_sec, sec, memory_order_release);
	return sec;
}

static char *dup_bounded(const char *s)
{
	return s ? strndup(s, NAME_MAX_LEN) : NULL;
}

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strncmp(a, b, NAME_MAX_LEN);
}

static uint32_t intern(struct top_stats *st, const struct cg_frame *f)
{
	const char *name = f->name ? f->name : "?";
	uint64_t h = cg_hash_bytes(name, strnlen(name, NAME_MAX_LEN), 0x70f);
	if (f->file)
		h = cg_hash_bytes(f->file, strnlen(f->file, NAME_MAX_LEN), h);
	uint32_t nf = LD(st->nfuncs);
	for (uint32_t probe = 0; probe < FUNC_HASH_CAP; probe++) {
		uint32_t *slot = &st->func_hash[(h + probe) & (FUNC_HASH_CAP - 1)];
		if (*slot) {
			struct top_func *tf = &st->funcs[*slot - 1];
			if (same_str(tf->name, name) && same_str(tf->file, f->file))
				return *slot - 1;
			continue;
		}
		if (nf >= TOP_MAX_FUNCS)
			return 0;
		struct top_func *tf = &st->funcs[nf];
		tf->name = dup_bounded(name);
		tf->file = dup_bounded(f->file);
		if (!tf->name || (f->file && !tf->file)) {
			free(tf->name);
			free(tf->file);
			tf->name = tf->file = NULL;
			return 0;
		}
		*slot = nf + 1;
		/* the strings are complete before a reader can see the id */
		atomic_store_explicit(&st->nfuncs, nf + 1, memory_order_release);
		return nf;
	}
	return 0;
}

static uint32_t thread_slot(struct top_stats *st, const struct cg_sample *s)
{
	uint32_t nt = LD(st->nthreads);
	if (st->last_slot < nt && st->threads[st->last_slot].tid == s->tid &&
	    st->threads[st->last_slot].pid == s->pid)
		return st->last_slot;
	uint32_t i;
	for (i = 0; i < nt; i++)
		if (st->threads[i].tid == s->tid && st->threads[i].pid == s->pid)
			break;
	if (i == nt) {
		/* the last slot gathers every thread beyond the table */
		if (nt == TOP_MAX_THREADS)
			return TOP_MAX_THREADS - 1;
		struct top_thread *t = &st->threads[nt];
		bool last = nt == TOP_MAX_THREADS - 1;
		t->pid = last ? -1 : s->pid;
		t->tid = last ? -1 : s->tid;
		pthread_mutex_init(&t->mu, NULL);
		snprintf(t->name, sizeof(t->name), "%s",
			 last ? "(other threads)" : s->thread_name ? s->thread_name : "");
		atomic_store_explicit(&st->nthreads, nt + 1, memory_order_release);
	}
	st->last_slot = i;
	return i;
}

static _Atomic uint32_t *cell(struct top_stats *st, uint32_t key)
{
	uint64_t h = cg_hash64(key);
	for (uint32_t probe = 0; probe < 64; probe++) {
		uint32_t c = (uint32_t)((h + probe) & (TOP_MAX_ENTRIES - 1));
		uint32_t k = LD(st->keys[c]);
		if (k == key + 1)
			return &st->keys[c];
		if (k)
			continue;
		uint32_t n = LD(st->nused);
		if (n >= TOP_MAX_ENTRIES * 3 / 4)
			return NULL;
		atomic_store_explicit(&st->keys[c], key + 1, memory_order_release);
		ST(st->used[n], c);
		atomic_store_explicit(&st->nused, n + 1, memory_order_release);
		return &st->keys[c];
	}
	return NULL;
}

static void bump(struct top_stats *st, uint32_t key, size_t b, bool own)
{
	_Atomic uint32_t *k = cell(st, key);
	if (!k) {
		INC(st->dropped);
		return;
	}
	size_t c = (size_t)(k - st->keys);
	if (own) {
		INC(st->own_all[c]);
		INC(st->own_ring[b * TOP_MAX_ENTRIES + c]);
	} else {
		INC(st->tot_all[c]);
		INC(st->tot_ring[b * TOP_MAX_ENTRIES + c]);
	}
}

/* fids[i] is frame i's function, for the first min(nframes,
 * TOP_STACK_MAX) frames. */
static void save_stack(struct top_thread *t, const struct cg_sample *s, const uint32_t *fids)
{
	/* A reader holding it means this round's stack is skipped, never
	 * that the sampler waits. */
	if (pthread_mutex_trylock(&t->mu))
		return;
	if (t->tid >= 0 && s->thread_name && strncmp(t->name, s->thread_name, sizeof(t->name) - 1))
		snprintf(t->name, sizeof(t->name), "%s", s->thread_name);
	struct top_stack *ts = &t->last;
	uint32_t k = 0;
	for (uint32_t i = 0; i < s->nframes && i < TOP_STACK_MAX; i++) {
		if (s->frames[i].kind == CG_FK_THREAD || s->frames[i].kind == CG_FK_PROCESS)
			continue;
		ts->funcs[k] = fids[i];
		ts->lines[k] = s->frames[i].line;
		k++;
	}
	ts->n = k;
	ts->truncated = s->truncated || s->nframes > TOP_STACK_MAX;
	ts->state = s->state;
	ts->have = true;
	if (profile_state_on_cpu(s->state)) {
		t->last_oncpu.n = k;
		t->last_oncpu.truncated = ts->truncated;
		t->last_oncpu.state = ts->state;
		t->last_oncpu.have = true;
		memcpy(t->last_oncpu.funcs, ts->funcs, k * sizeof(*ts->funcs));
		memcpy(t->last_oncpu.lines, ts->lines, k * sizeof(*ts->lines));
	}
	pthread_mutex_unlock(&t->mu);
}

void top_stats_add(struct top_stats *st, const struct cg_sample *s, uint64_t now_ns)
{
	uint32_t fids[TOP_STACK_MAX] = {0};
	uint64_t sec = rotate(st, now_ns);
	size_t b = (size_t)(sec % st->w);
	uint32_t slot = thread_slot(st, s);
	uint32_t idle = !profile_state_on_cpu(s->state);
	uint32_t base = slot << 14 | idle << 13;

	INC(st->tsamp_all[slot * 2 + idle]);
	INC(st->tsamp_ring[b * TOP_MAX_THREADS * 2 + slot * 2 + idle]);
	ST(st->threads[slot].last_sec, sec + 1);
	if (++st->mark_gen == 0) {
		memset(st->mark, 0, sizeof(st->mark));
		st->mark_gen = 1;
	}
	bool leaf = true;
	for (uint32_t i = 0; s->frames && i < s->nframes; i++) {
		const struct cg_frame *f = &s->frames[i];
		if (f->kind == CG_FK_THREAD || f->kind == CG_FK_PROCESS)
			continue;
		uint32_t id = intern(st, f);
		if (i < TOP_STACK_MAX)
			fids[i] = id;
		if (f->line > 0) {
			int32_t cur = LD(st->funcs[id].line);
			if (!cur || f->line < cur)
				ST(st->funcs[id].line, f->line);
		}
		if (leaf)
			bump(st, base | id, b, true);
		leaf = false;
		/* a recursive function counts once in a sample's total */
		if (st->mark[id] != st->mark_gen) {
			st->mark[id] = st->mark_gen;
			bump(st, base | id, b, false);
		}
	}
	if (s->frames && s->nframes)
		save_stack(&st->threads[slot], s, fids);
}

void top_stats_round(struct top_stats *st, const struct cg_sample_stats *ss, uint64_t now_ns)
{
	uint64_t sec = rotate(st, now_ns);
	INC(st->rounds_ring[sec % st->w]);
	INC(st->rounds_all);
	uint64_t lost = 0;
	for (int i = 0; i < CG_LOST__COUNT; i++)
		lost += ss->lost[i];
	ST(st->taken, ss->taken);
	ST(st->lost, lost);
}

/* ---- readers ---- */

struct sort_ctx {
	const struct top_stats *st;
	enum top_sort sort;
};

static int cmp_rows(const void *a, const void *b, void *arg)
{
	const struct top_row *x = a, *y = b;
	const struct sort_ctx *c = arg;
	uint64_t kx, ky;
	switch (c->sort) {
	case TOP_SORT_NAME: {
		int r = strcmp(c->st->funcs[x->func].name, c->st->funcs[y->func].name);
		if (r)
			return r;
		return x->func < y->func ? -1 : x->func > y->func;
	}
	case TOP_SORT_TOTAL:
	case TOP_SORT_TOTAL_TIME:
		kx = x->total, ky = y->total;
		if (kx == ky)
			kx = x->own, ky = y->own;
		break;
	default:
		kx = x->own, ky = y->own;
		if (kx == ky)
			kx = x->total, ky = y->total;
		break;
	}
	if (kx != ky)
		return kx > ky ? -1 : 1;
	return x->func < y->func ? -1 : x->func > y->func;
}

static uint64_t sum_ring32(const _Atomic uint32_t *ring, size_t stride, size_t idx, unsigned w)
{
	uint64_t s = 0;
	for (unsigned b = 0; b < w; b++)
		s += LD(ring[b * stride + idx]);
	return s;
}

int top_stats_snapshot(const struct top_stats *st, const struct top_view *v, uint64_t now_ns,
		       struct top_snapshot *snap)
{
	memset(snap, 0, sizeof(*snap));
	uint32_t nf = atomic_load_explicit(&st->nfuncs, memory_order_acquire);
	uint32_t nt = atomic_load_explicit(&st->nthreads, memory_order_acquire);
	uint64_t cur = atomic_load_explicit(&st->cur_sec, memory_order_acquire);
	uint64_t *own = calloc(nf, sizeof(*own)), *tot = calloc(nf, sizeof(*tot));
	snap->rows = calloc(nf, sizeof(*snap->rows));
	if (!own || !tot || !snap->rows) {
		free(own);
		free(tot);
		top_snapshot_free(snap);
		return -ENOMEM;
	}
	uint32_t nused = atomic_load_explicit(&st->nused, memory_order_acquire);
	for (uint32_t i = 0; i < nused; i++) {
		uint32_t c = LD(st->used[i]);
		uint32_t key = atomic_load_explicit(&st->keys[c], memory_order_acquire);
		if (!key)
			continue;
		key--;
		uint32_t func = key & (TOP_MAX_FUNCS - 1), idle = key >> 13 & 1, slot = key >> 14;
		if (func >= nf || (v->thread >= 0 && slot != (uint32_t)v->thread) ||
		    (idle && !v->idle))
			continue;
		if (v->window) {
			own[func] += sum_ring32(st->own_ring, TOP_MAX_ENTRIES, c, st->w);
			tot[func] += sum_ring32(st->tot_ring, TOP_MAX_ENTRIES, c, st->w);
		} else {
			own[func] += LD(st->own_all[c]);
			tot[func] += LD(st->tot_all[c]);
		}
	}
	for (uint32_t f = 0; f < nf; f++)
		if (own[f] || tot[f])
			snap->rows[snap->nrows++] = (struct top_row){f, own[f], tot[f]};
	free(own);
	free(tot);
	struct sort_ctx sc = {st, v->sort};
	qsort_r(snap->rows, snap->nrows, sizeof(*snap->rows), cmp_rows, &sc);

	uint64_t first = v->window && cur + 1 > st->w ? cur + 1 - st->w : 0;
	for (uint32_t t = 0; t < nt; t++) {
		uint64_t n[2];
		for (int idle = 0; idle < 2; idle++)
			n[idle] = v->window ? sum_ring32(st->tsamp_ring, TOP_MAX_THREADS * 2,
							 t * 2 + (unsigned)idle, st->w)
					    : LD(st->tsamp_all[t * 2 + idle]);
		uint64_t last = LD(st->threads[t].last_sec);
		if (last && last - 1 >= first) {
			snap->threads++;
			if (t == TOP_MAX_THREADS - 1)
				snap->threads_more = true;
		}
		if (v->thread >= 0 && t != (uint32_t)v->thread)
			continue;
		snap->oncpu += n[0];
		snap->all_states += n[0] + n[1];
		snap->samples += n[0] + (v->idle ? n[1] : 0);
	}
	snap->rounds = v->window ? sum_ring32(st->rounds_ring, 1, 0, st->w) : LD(st->rounds_all);
	uint64_t from = st->start_ns + first * NS;
	snap->span_s = now_ns > from ? (double)(now_ns - from) / 1e9 : 0;
	uint64_t all_rounds = LD(st->rounds_all);
	double elapsed = now_ns > st->start_ns ? (double)(now_ns - st->start_ns) / 1e9 : 0;
	snap->sec_per_round = all_rounds ? elapsed / (double)all_rounds : 0;
	snap->taken = LD(st->taken);
	snap->lost = LD(st->lost);
	snap->dropped = LD(st->dropped);
	return 0;
}

void top_snapshot_free(struct top_snapshot *snap)
{
	free(snap->rows);
	snap->rows = NULL;
	snap->nrows = 0;
}

void top_stats_func(const struct top_stats *st, uint32_t func, const char **name,
		    const char **file, int32_t *line)
{
	uint32_t nf = atomic_load_explicit(&st->nfuncs, memory_order_acquire);
	if (func >= nf)
		func = 0;
	*name = st->funcs[func].name;
	*file = st->funcs[func].file;
	*line = LD(st->funcs[func].line);
}

void top_stats_func_label(const struct top_stats *st, uint32_t func, int32_t line, bool short_file,
			  char *buf, size_t n)
{
	const char *name, *file;
	int32_t l;
	top_stats_func(st, func, &name, &file, &l);
	if (file && short_file && strrchr(file, '/'))
		file = strrchr(file, '/') + 1;
	if (line <= 0)
		line = l;
	if (file && line > 0)
		snprintf(buf, n, "%s (%s:%d)", name, file, (int)line);
	else if (file)
		snprintf(buf, n, "%s (%s)", name, file);
	else
		snprintf(buf, n, "%s", name);
}

uint32_t top_stats_thread_count(const struct top_stats *st)
{
	return atomic_load_explicit(&st->nthreads, memory_order_acquire);
}

void top_stats_thread_label(const struct top_stats *st, uint32_t slot, char *buf, size_t n)
{
	if (slot >= top_stats_thread_count(st)) {
		snprintf(buf, n, "?");
		return;
	}
	struct top_thread *t = (struct top_thread *)&st->threads[slot];
	pthread_mutex_lock(&t->mu);
	if (t->tid < 0)
		snprintf(buf, n, "%s", t->name);
	else
		snprintf(buf, n, "%s (%d)", t->name[0] ? t->name : "?", (int)t->tid);
	pthread_mutex_unlock(&t->mu);
}

int top_stats_stack(const struct top_stats *st, uint32_t slot, bool idle, uint32_t *funcs,
		    int32_t *lines, uint32_t max, enum cg_state *state, bool *truncated)
{
	if (slot >= top_stats_thread_count(st))
		return -ENOENT;
	struct top_thread *t = (struct top_thread *)&st->threads[slot];
	int r = -ENOENT;
	pthread_mutex_lock(&t->mu);
	const struct top_stack *ts = idle ? &t->last : &t->last_oncpu;
	if (ts->have) {
		uint32_t n = ts->n < max ? ts->n : max;
		memcpy(funcs, ts->funcs, n * sizeof(*funcs));
		memcpy(lines, ts->lines, n * sizeof(*lines));
		*state = ts->state;
		*truncated = ts->truncated || n < ts->n;
		r = (int)n;
	}
	pthread_mutex_unlock(&t->mu);
	return r;
}

static const char *sort_names[TOP_SORT__COUNT] = {"OWN%", "TOTAL%", "OWN(s)", "TOTAL(s)",
						  "FUNCTION"};

void top_format_titles(enum top_sort sort, char *buf, size_t n)
{
	char t[TOP_SORT__COUNT][16];
	for (int i = 0; i < TOP_SORT__COUNT; i++)
		snprintf(t[i], sizeof(t[i]), "%s%s", (int)sort == i ? "*" : "", sort_names[i]);
	snprintf(buf, n, "%7s %7s %9s %9s  %s", t[0], t[1], t[2], t[3], t[4]);
}

void top_format_counts(const struct top_snapshot *snap, const struct top_view *v, double rate_hz,
		       char *buf, size_t n)
{
	double hz = snap->span_s > 0 ? (double)snap->rounds / snap->span_s : 0;
	double oncpu = snap->all_states ? 100.0 * (double)snap->oncpu / (double)snap->all_states : 0;
	char span[32];
	if (v->window)
		snprintf(span, sizeof(span), "last %.0f s", snap->span_s);
	else
		snprintf(span, sizeof(span), "%.1f s", snap->span_s);
	/* without idle samples every sample is on CPU: no share to show */
	char cpu[32] = "";
	if (v->idle_sampled)
		snprintf(cpu, sizeof(cpu), ", on CPU %.0f%%", oncpu);
	snprintf(buf, n, "samples %llu in %s, %.1f Hz of %g, lost %llu%s, threads %u%s%s",
		 (unsigned long long)snap->samples, span, hz, rate_hz,
		 (unsigned long long)snap->lost, snap->dropped ? " (+table full)" : "",
		 snap->threads, snap->threads_more ? "+" : "", cpu);
}

static void fmt_time(char *buf, size_t n, double s)
{
	if (s < 100)
		snprintf(buf, n, "%.2f", s);
	else if (s < 10000)
		snprintf(buf, n, "%.1f", s);
	else
		snprintf(buf, n, "%.0f", s);
}

void top_format_row(const struct top_stats *st, const struct top_snapshot *snap,
		    const struct top_row *r, bool short_file, char *buf, size_t n)
{
	char label[1200], ot[32], tt[32];
	double den = snap->samples ? (double)snap->samples : 1;
	top_stats_func_label(st, r->func, 0, short_file, label, sizeof(label));
	fmt_time(ot, sizeof(ot), (double)r->own * snap->sec_per_round);
	fmt_time(tt, sizeof(tt), (double)r->total * snap->sec_per_round);
	snprintf(buf, n, "%7.1f %7.1f %9s %9s  %s", 100.0 * (double)r->own / den,
		 100.0 * (double)r->total / den, ot, tt, label);
}
