/* The profile of one reporting window: interned strings and frames, the call
 * tree with self counts per thread state, what was lost, and its limits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/profile.h"
#include "cgprof/util.h"

/* Strings from the target are untrusted: a 1 MB "function name" must not
 * cost 1 MB per distinct frame. Longer names are cut at this many bytes. */
#define PROFILE_MAX_STR 1024u
/* Strings are packed into chunks so interning never mallocs per string. */
#define ARENA_CHUNK (64u * 1024u)
/* How many rehashes a table key may take before we give up; with 64-bit
 * hashes a second probe is already astronomically rare. */
#define PROBE_MAX 16
#define PROFILE_LAST_SLOTS 256u

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

struct cg_profile {
	enum cg_runtime runtime;
	struct cg_profile_limits lim;

	uint64_t start_ms, end_ms;
	double interval_ms;
	char *runtime_version;
	double overhead_ms;

	uint64_t samples, rounds;
	uint64_t lost[CG_LOST__COUNT];

	/* Strings: content hash -> pointer into the arena. */
	struct arena_chunk *arena;
	struct cg_map strings;

	/* Frames: content hash -> index into frames[]. */
	struct cg_profile_frame *frames;
	uint32_t nframes;
	size_t frames_cap;
	struct cg_map frame_ix;

	/* Tree. child_slots is an open-addressing set of node indices
	 * hashed by (parent, frame): 4 bytes a slot, the key is read back
	 * from the node. 0 (the root, never a child) marks a free slot. */
	struct cg_profile_node *nodes;
	uint32_t nnodes;
	size_t nodes_cap;
	uint32_t *child_slots;
	uint32_t child_cap; /* power of two */

	/* Self counts, only for nodes some sample ended in (a minority:
	 * the inner frames of every stack have none). */
	uint32_t (*counts)[CG_ST__COUNT];
	uint32_t ncounts;
	size_t counts_cap;

	uint32_t frame_truncated; /* "<Truncated>": root side cut at max_depth */
	uint32_t frame_full;      /* "(truncated)": a cap was reached */
	uint32_t node_full;       /* CG_PROFILE_NONE until first needed */

	struct cg_map tids; /* tid + 1 -> 1 */

	/* Where each thread's last stack ended: a thread is often exactly
	 * where it was a tick ago (idle, blocked, in the same loop), and then
	 * the sample is compared with that path instead of looked up frame
	 * by frame. Direct-mapped by tid; a collision is just a miss. */
	struct {
		pid_t tid;
		uint32_t start; /* node above the first code frame */
		uint32_t leaf;
		uint32_t depth; /* code frames from start to leaf */
	} last[PROFILE_LAST_SLOTS];

	struct cg_profile_heap *heap;

	char **module_roots;
	size_t nmodule_roots;
	double cpu_time_s;
	size_t arena_bytes;
};

static uint64_t nonzero(uint64_t h) { return h ? h : 1; }

/* A word at a time: frame names and paths are hashed on every sample, and
 * util's byte-wise FNV costs several times more on 60-byte paths. */
static uint64_t str_hash(const char *s, size_t n, uint64_t seed)
{
	const uint64_t k1 = 0x9e3779b97f4a7c15ULL, k2 = 0xc2b2ae3d27d4eb4fULL;
	uint64_t h = seed ^ (n * k2), w;
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		w *= k1;
		h = ((h ^ w) << 27 | (h ^ w) >> 37) * k2;
	}
	w = 0;
	memcpy(&w, s, n);
	h ^= w * k1;
	return cg_hash64(h);
}

static char *arena_copy(struct cg_profile *p, const char *s, size_t n)
{
	struct arena_chunk *c = p->arena;
	if (!c || c->cap - c->used < n + 1) {
		size_t cap = n + 1 > ARENA_CHUNK ? n + 1 : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = p->arena;
		p->arena_bytes += sizeof(*c) + cap;
		c->used = 0;
		c->cap = cap;
		p->arena = c;
	}
	char *d = c->data + c->used;
	memcpy(d, s, n);
	d[n] = '\0';
	c->used += n + 1;
	return d;
}

/* The interned copy of s[0..n), or NULL on -ENOMEM. */
static const char *intern(struct cg_profile *p, const char *s, size_t n)
{
	uint64_t key = nonzero(str_hash(s, n, 0x5157));
	for (int i = 0; i < PROBE_MAX; i++, key = nonzero(cg_hash64(key))) {
		uint64_t v;
		if (!cg_map_get(&p->strings, key, &v)) {
			char *d = arena_copy(p, s, n);
			if (!d || cg_map_put(&p->strings, key, (uint64_t)(uintptr_t)d))
				return NULL;
			return d;
		}
		const char *have = (const char *)(uintptr_t)v;
		if (!strncmp(have, s, n) && have[n] == '\0')
			return have;
	}
	return NULL;
}

static uint64_t frame_hash(const char *name, size_t nlen, const char *file, size_t flen,
			   int32_t line, uint8_t kind)
{
	uint64_t h = str_hash(name, nlen, kind);
	if (file)
		h = str_hash(file, flen, h ^ 0x9e3779b97f4a7c15ULL);
	return nonzero(cg_hash64(h ^ ((uint64_t)(uint32_t)line << 8)));
}

static bool frame_equal(const struct cg_profile_frame *f, const char *name, size_t nlen,
			const char *file, size_t flen, int32_t line, uint8_t kind)
{
	if (f->kind != kind || f->line != line)
		return false;
	if (strncmp(f->name, name, nlen) || f->name[nlen])
		return false;
	if (!file || !f->file)
		return !file && !f->file;
	return !strncmp(f->file, file, flen) && !f->file[flen];
}

/* Index of the frame, interning it if new. -ENOSPC at the frame cap,
 * -ENOMEM. force ignores the cap (for the profile's own markers). */
static int64_t frame_id(struct cg_profile *p, const char *name, const char *file, int32_t line,
			uint8_t kind, bool force)
{
	if (!name)
		name = "?";
	size_t nlen = strnlen(name, PROFILE_MAX_STR);
	size_t flen = file ? strnlen(file, PROFILE_MAX_STR) : 0;
	uint64_t key = frame_hash(name, nlen, file, flen, line, kind);
	for (int i = 0; i < PROBE_MAX; i++, key = nonzero(cg_hash64(key))) {
		uint64_t v;
		if (cg_map_get(&p->frame_ix, key, &v)) {
			if (frame_equal(&p->frames[v], name, nlen, file, flen, line, kind))
				return (int64_t)v;
			continue;
		}
		if (!force && p->nframes >= p->lim.max_frames)
			return -ENOSPC;
		if (cg_grow(&p->frames, &p->frames_cap, (size_t)p->nframes + 1, sizeof(*p->frames),
			    256))
			return -ENOMEM;
		struct cg_profile_frame *f = &p->frames[p->nframes];
		f->name = intern(p, name, nlen);
		f->file = file ? intern(p, file, flen) : NULL;
		f->line = line;
		f->kind = kind;
		if (!f->name || (file && !f->file))
			return -ENOMEM;
		if (cg_map_put(&p->frame_ix, key, p->nframes))
			return -ENOMEM;
		return p->nframes++;
	}
	return -ENOMEM;
}

static int64_t node_new(struct cg_profile *p, uint32_t parent, uint32_t frame)
{
	if (cg_grow(&p->nodes, &p->nodes_cap, (size_t)p->nnodes + 1, sizeof(*p->nodes), 1024))
		return -ENOMEM;
	uint32_t i = p->nnodes++;
	struct cg_profile_node *n = &p->nodes[i];
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->frame = frame;
	n->child = CG_PROFILE_NONE;
	n->sibling = CG_PROFILE_NONE;
	n->counts = CG_PROFILE_NONE;
	if (parent != CG_PROFILE_NONE) {
		/* Push front: O(1) on growth. Encoders that care about order
		 * sort (flame graph) or do not depend on it. */
		n->sibling = p->nodes[parent].child;
		p->nodes[parent].child = i;
	}
	return i;
}

static uint32_t child_hash(uint32_t parent, uint32_t frame)
{
	return (uint32_t)cg_hash64((uint64_t)parent << 32 | frame);
}

static int child_grow(struct cg_profile *p)
{
	uint32_t cap = p->child_cap ? p->child_cap * 2 : 1024;
	uint32_t *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < p->child_cap; i++) {
		uint32_t n = p->child_slots[i];
		if (!n)
			continue;
		uint32_t j = child_hash(p->nodes[n].parent, p->nodes[n].frame) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = n;
	}
	free(p->child_slots);
	p->child_slots = slots;
	p->child_cap = cap;
	return 0;
}

static int64_t node_child(struct cg_profile *p, uint32_t parent, uint32_t frame, bool force)
{
	/* Keep the load under 3/4 so probes stay short. */
	if ((uint64_t)(p->nnodes + 1) * 4 > (uint64_t)p->child_cap * 3 && child_grow(p))
		return -ENOMEM;
	uint32_t mask = p->child_cap - 1, j = child_hash(parent, frame) & mask;
	for (uint32_t n; (n = p->child_slots[j]); j = (j + 1) & mask)
		if (p->nodes[n].parent == parent && p->nodes[n].frame == frame)
			return n;
	if (!force && p->nnodes >= p->lim.max_nodes)
		return -ENOSPC;
	int64_t i = node_new(p, parent, frame);
	if (i >= 0)
		p->child_slots[j] = (uint32_t)i;
	return i;
}

/* The self counts of node i, made on first use; NULL on -ENOMEM. */
static uint32_t *node_counts(struct cg_profile *p, uint32_t i)
{
	struct cg_profile_node *n = &p->nodes[i];
	if (n->counts == CG_PROFILE_NONE) {
		if (cg_grow(&p->counts, &p->counts_cap, (size_t)p->ncounts + 1, sizeof(*p->counts),
			    256))
			return NULL;
		memset(p->counts[p->ncounts], 0, sizeof(p->counts[0]));
		n->counts = p->ncounts++;
	}
	return p->counts[n->counts];
}

struct cg_profile *profile_new(enum cg_runtime rt, const struct cg_profile_limits *lim)
{
	struct cg_profile *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->runtime = rt;
	p->lim.max_depth = lim && lim->max_depth ? lim->max_depth : CG_PROFILE_DEFAULT_MAX_DEPTH;
	p->lim.max_frames = lim && lim->max_frames ? lim->max_frames : CG_PROFILE_DEFAULT_MAX_FRAMES;
	p->lim.max_nodes = lim && lim->max_nodes ? lim->max_nodes : CG_PROFILE_DEFAULT_MAX_NODES;
	/* Frame and node indices share 32 bits with a NONE marker. */
	if (p->lim.max_frames > UINT32_MAX - 4)
		p->lim.max_frames = UINT32_MAX - 4;
	if (p->lim.max_nodes > UINT32_MAX - 4)
		p->lim.max_nodes = UINT32_MAX - 4;
	p->node_full = CG_PROFILE_NONE;
	p->cpu_time_s = -1;
	cg_map_init(&p->strings);
	cg_map_init(&p->frame_ix);
	cg_map_init(&p->tids);
	int64_t t = frame_id(p, "<Truncated>", NULL, 0, CG_FK_TRUNCATED, true);
	int64_t f = frame_id(p, "(truncated)", NULL, 0, CG_FK_TRUNCATED, true);
	if (t < 0 || f < 0 || node_new(p, CG_PROFILE_NONE, CG_PROFILE_NONE) != 0) {
		profile_free(p);
		return NULL;
	}
	p->frame_truncated = (uint32_t)t;
	p->frame_full = (uint32_t)f;
	return p;
}

static void heap_free(struct cg_profile_heap *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++)
		free((char *)h->classes[i].name);
	free(h->classes);
	free(h);
}

void profile_free(struct cg_profile *p)
{
	if (!p)
		return;
	while (p->arena) {
		struct arena_chunk *n = p->arena->next;
		free(p->arena);
		p->arena = n;
	}
	cg_map_free(&p->strings);
	cg_map_free(&p->frame_ix);
	free(p->child_slots);
	free(p->counts);
	cg_map_free(&p->tids);
	free(p->frames);
	free(p->nodes);
	free(p->runtime_version);
	heap_free(p->heap);
	for (size_t i = 0; i < p->nmodule_roots; i++)
		free(p->module_roots[i]);
	free(p->module_roots);
	free(p);
}

void profile_set_window(struct cg_profile *p, uint64_t start_ms, uint64_t end_ms)
{
	p->start_ms = start_ms;
	p->end_ms = end_ms;
}

void profile_set_interval_ms(struct cg_profile *p, double interval_ms) { p->interval_ms = interval_ms; }

void profile_set_runtime_version(struct cg_profile *p, const char *version)
{
	char *v = version ? strdup(version) : NULL;
	if (version && !v)
		return; /* keep the old one: a missing version is cosmetic */
	free(p->runtime_version);
	p->runtime_version = v;
}


static void count_add(uint32_t *c)
{
	if (*c != UINT32_MAX) /* saturate rather than wrap on a week-long run */
		(*c)++;
}

int profile_add_sample(struct cg_profile *p, const struct cg_sample *s)
{
	if (!p || !s)
		return -EINVAL;
	enum cg_state st = (unsigned)s->state < CG_ST__COUNT ? s->state : CG_ST_IDLE;
	uint64_t tkey = (uint64_t)(uint32_t)s->tid + 1;
	if (!cg_map_get(&p->tids, tkey, NULL))
		(void)cg_map_put(&p->tids, tkey, 1); /* on -ENOMEM only the thread count suffers */
	p->samples++;

	uint32_t n = s->frames ? s->nframes : 0;
	bool trunc = s->truncated;
	if (n > p->lim.max_depth) {
		n = p->lim.max_depth; /* keep the leaf side */
		trunc = true;
	}
	int64_t node = 0;
	if (node >= 0 && trunc)
		node = node_child(p, (uint32_t)node, p->frame_truncated, false);
	uint32_t i = n, start = node >= 0 ? (uint32_t)node : 0;
	__typeof__(&p->last[0]) last = &p->last[(uint32_t)s->tid % PROFILE_LAST_SLOTS];
	if (node >= 0 && last->tid == s->tid && last->start == start && last->depth == n && n) {
		/* Leaf first, so a different stack is told apart at once.
		 * Content, not pointers: the sampler's strings may be new. */
		uint32_t x = last->leaf, k = 0;
		for (; k < n && x != start; k++, x = p->nodes[x].parent) {
			const struct cg_frame *fr = &s->frames[k];
			const struct cg_profile_frame *f = &p->frames[p->nodes[x].frame];
			if (f->kind != fr->kind || f->line != fr->line || !fr->name ||
			    strcmp(f->name, fr->name) ||
			    (f->file ? !fr->file || strcmp(f->file, fr->file) : fr->file != NULL))
				break;
		}
		if (k == n && x == start) {
			node = last->leaf;
			i = 0;
		}
	}
	for (; i-- > 0 && node >= 0;) {
		const struct cg_frame *fr = &s->frames[i];
		int64_t f = frame_id(p, fr->name, fr->file, fr->line, fr->kind, false);
		node = f < 0 ? f : node_child(p, (uint32_t)node, (uint32_t)f, false);
	}
	uint32_t *c = node >= 0 ? node_counts(p, (uint32_t)node) : NULL;
	if (c) {
		count_add(&c[st]);
		last->tid = s->tid;
		last->start = start;
		last->leaf = (uint32_t)node;
		last->depth = n;
		return 0;
	}
	last->tid = 0;
	last->depth = 0;
	/* A cap (or memory) ran out: the sample still counts, in one node
	 * that says so, and the loss is visible in the summary. */
	if (p->node_full == CG_PROFILE_NONE) {
		int64_t t = node_child(p, 0, p->frame_full, true);
		if (t < 0) {
			p->samples--;
			p->lost[CG_LOST_FULL]++;
			return (int)t;
		}
		p->node_full = (uint32_t)t;
	}
	p->lost[CG_LOST_FULL]++;
	if (!(c = node_counts(p, p->node_full))) {
		p->samples--;
		return -ENOMEM;
	}
	count_add(&c[st]);
	return -ENOSPC;
}

void profile_add_round(struct cg_profile *p) { p->rounds++; }

void profile_add_lost(struct cg_profile *p, enum cg_lost reason, uint64_t n)
{
	if ((unsigned)reason < CG_LOST__COUNT)
		p->lost[reason] += n;
}

void profile_add_overhead_ms(struct cg_profile *p, double ms) { p->overhead_ms += ms; }

uint64_t profile_samples(const struct cg_profile *p) { return p->samples; }

uint64_t profile_lost(const struct cg_profile *p, enum cg_lost reason)
{
	return (unsigned)reason < CG_LOST__COUNT ? p->lost[reason] : 0;
}

uint64_t profile_rounds(const struct cg_profile *p) { return p->rounds; }
uint64_t profile_thread_count(const struct cg_profile *p) { return p->tids.len; }
enum cg_runtime profile_runtime(const struct cg_profile *p) { return p->runtime; }
uint64_t profile_start_ms(const struct cg_profile *p) { return p->start_ms; }
uint64_t profile_end_ms(const struct cg_profile *p) { return p->end_ms; }
double profile_interval_ms(const struct cg_profile *p) { return p->interval_ms; }
const char *profile_runtime_version(const struct cg_profile *p) { return p->runtime_version; }
double profile_overhead_ms(const struct cg_profile *p) { return p->overhead_ms; }
uint32_t profile_node_count(const struct cg_profile *p) { return p->nnodes; }
uint32_t profile_frame_count(const struct cg_profile *p) { return p->nframes; }

const struct cg_profile_node *profile_node(const struct cg_profile *p, uint32_t i)
{
	return i < p->nnodes ? &p->nodes[i] : NULL;
}

const struct cg_profile_frame *profile_frame(const struct cg_profile *p, uint32_t i)
{
	return i < p->nframes ? &p->frames[i] : NULL;
}

bool profile_state_on_cpu(enum cg_state s) { return s == CG_ST_RUNNING || s == CG_ST_NATIVE; }

const uint32_t *profile_node_self(const struct cg_profile *p, uint32_t node)
{
	static const uint32_t none[CG_ST__COUNT];
	if (node >= p->nnodes || p->nodes[node].counts == CG_PROFILE_NONE)
		return none;
	return p->counts[p->nodes[node].counts];
}

uint64_t profile_node_total(const struct cg_profile *p, uint32_t node, bool include_idle)
{
	const uint32_t *c = profile_node_self(p, node);
	uint64_t t = 0;
	for (int s = 0; s < CG_ST__COUNT; s++)
		if (include_idle || profile_state_on_cpu((enum cg_state)s))
			t += c[s];
	return t;
}

int profile_walk_subtree(const struct cg_profile *p, uint32_t top, profile_stack_fn fn, void *arg)
{
	/* Iterative depth-first walk: stacks can be thousands deep. path[d]
	 * is the node at depth d (path[0] above the first level), frames[d-1]
	 * its frame. Nodes at depth <= stop never move on to a sibling. */
	uint32_t cap = 64, d = 0, stop = top ? 1 : 0;
	uint32_t *path = malloc(cap * sizeof(*path));
	uint32_t *frames = malloc(cap * sizeof(*frames));
	int r = 0;
	if (!path || !frames) {
		r = -ENOMEM;
		goto out;
	}
	if (top >= p->nnodes) {
		r = -EINVAL;
		goto out;
	}
	path[0] = top ? p->nodes[top].parent : 0;
	uint32_t cur = top ? top : p->nodes[0].child;
	while (cur != CG_PROFILE_NONE) {
		const struct cg_profile_node *n = &p->nodes[cur];
		if (d + 1 >= cap) {
			uint32_t nc = cap * 2;
			uint32_t *np = realloc(path, nc * sizeof(*np));
			if (!np) {
				r = -ENOMEM;
				goto out;
			}
			path = np;
			uint32_t *nf = realloc(frames, nc * sizeof(*nf));
			if (!nf) {
				r = -ENOMEM;
				goto out;
			}
			frames = nf;
			cap = nc;
		}
		frames[d] = n->frame;
		path[++d] = cur;
		if (n->counts != CG_PROFILE_NONE && (r = fn(p, cur, frames, d, arg)))
			goto out;
		if (n->child != CG_PROFILE_NONE) {
			cur = n->child;
			continue;
		}
		/* Climb until a node has a next sibling. */
		while (d > stop && p->nodes[path[d]].sibling == CG_PROFILE_NONE)
			d--;
		if (d <= stop)
			break;
		cur = p->nodes[path[d]].sibling;
		d--;
	}
out:
	free(path);
	free(frames);
	return r;
}

int profile_walk_stacks(const struct cg_profile *p, profile_stack_fn fn, void *arg)
{
	return profile_walk_subtree(p, 0, fn, arg);
}

int profile_set_heap(struct cg_profile *p, const struct cg_heap_class *c, size_t n,
		     uint64_t total_instances, uint64_t total_bytes, uint64_t taken_ms)
{
	int r = 0;
	if (n > CG_PROFILE_HEAP_MAX)
		n = CG_PROFILE_HEAP_MAX;
	struct cg_profile_heap *h = calloc(1, sizeof(*h));
	if (!h || (n && !(h->classes = calloc(n, sizeof(*h->classes))))) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		h->classes[i] = c[i];
		h->classes[i].name = strndup(c[i].name ? c[i].name : "?", PROFILE_MAX_STR);
		if (!h->classes[i].name) {
			r = -ENOMEM;
			goto out;
		}
		h->n = i + 1;
	}
	h->total_instances = total_instances;
	h->total_bytes = total_bytes;
	h->taken_ms = taken_ms;
	struct cg_profile_heap *old = p->heap;
	p->heap = h;
	h = old;
out:
	heap_free(h);
	return r;
}

const struct cg_profile_heap *profile_heap(const struct cg_profile *p) { return p->heap; }

int profile_add_module_root(struct cg_profile *p, const char *dir)
{
	if (!dir || !*dir)
		return 0;
	char **nr = realloc(p->module_roots, (p->nmodule_roots + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	p->module_roots = nr;
	if (!(nr[p->nmodule_roots] = strndup(dir, PROFILE_MAX_STR)))
		return -ENOMEM;
	p->nmodule_roots++;
	return 0;
}

size_t profile_module_root_count(const struct cg_profile *p) { return p->nmodule_roots; }

const char *profile_module_root(const struct cg_profile *p, size_t i)
{
	return i < p->nmodule_roots ? p->module_roots[i] : NULL;
}

void profile_set_cpu_time_s(struct cg_profile *p, double seconds) { p->cpu_time_s = seconds; }
double profile_cpu_time_s(const struct cg_profile *p) { return p->cpu_time_s; }

size_t profile_memory_bytes(const struct cg_profile *p)
{
	/* Every map slot holds a key and a value. */
	size_t maps = (p->strings.cap + p->frame_ix.cap + p->tids.cap) * 16;
	return sizeof(*p) + p->arena_bytes + maps + (size_t)p->frames_cap * sizeof(*p->frames) +
	       (size_t)p->nodes_cap * sizeof(*p->nodes) + (size_t)p->child_cap * sizeof(uint32_t) +
	       (size_t)p->counts_cap * sizeof(*p->counts);
}
