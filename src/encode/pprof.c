/* pprof: the Profile message of google/pprof's proto/profile.proto, encoded
 * by hand (varints, length-delimited fields) and gzipped with zlib. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cgprof/log.h"
#include "encode_priv.h"

/* Field numbers from profile.proto. */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUETYPE_TYPE = 1,
	VALUETYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,
	LABEL_KEY = 1,
	LABEL_STR = 2,
	LABEL_NUM = 3,
	LOCATION_ID = 1,
	LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,
	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
};
enum { WT_VARINT = 0, WT_LEN = 2 };

/* ---- protobuf writing ---- */

static int pb_varint(struct cg_buf *b, uint64_t v)
{
	unsigned char t[10];
	size_t n = 0;
	do {
		t[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return cg_buf_append(b, t, n);
}

static int pb_key(struct cg_buf *b, unsigned field, unsigned wt)
{
	return pb_varint(b, (uint64_t)field << 3 | wt);
}

/* A scalar field; zero is the default and is left out, as proto3 does. */
static int pb_uint(struct cg_buf *b, unsigned field, uint64_t v)
{
	if (!v)
		return 0;
	int r = pb_key(b, field, WT_VARINT);
	return r ? r : pb_varint(b, v);
}

static int pb_bytes(struct cg_buf *b, unsigned field, const void *p, size_t n)
{
	int r = pb_key(b, field, WT_LEN);
	if (!r)
		r = pb_varint(b, n);
	return r ? r : cg_buf_append(b, p, n);
}

/* ---- the string table: index 0 is "" ---- */

struct strtab {
	struct cg_buf msg; /* the string_table fields, in order */
	struct cg_map ix;  /* content hash -> index + 1 ... with probing */
	const char **strs; /* for comparing on a hash hit */
	uint32_t n;
	size_t cap;
	char **owned;      /* copies made for strings that do not last */
	size_t nowned;
};

/* Index of s, added if new; copy: s does not outlive the encode. */
static int64_t strtab_get(struct strtab *t, const char *s, bool copy)
{
	size_t len = strlen(s);
	uint64_t key = cg_hash_bytes(s, len, 11);
	for (int i = 0; i < 16; i++, key = cg_hash64(key)) {
		uint64_t v;
		key = key ? key : 1;
		if (cg_map_get(&t->ix, key, &v)) {
			if (!strcmp(t->strs[v], s))
				return (int64_t)v;
			continue;
		}
		if (cg_grow(&t->strs, &t->cap, (size_t)t->n + 1, sizeof(*t->strs), 256))
			return -ENOMEM;
		if (copy) {
			char **no = realloc(t->owned, (t->nowned + 1) * sizeof(*no));
			if (!no)
				return -ENOMEM;
			t->owned = no;
			if (!(s = strdup(s)))
				return -ENOMEM;
			t->owned[t->nowned++] = (char *)s;
		}
		t->strs[t->n] = s;
		if (cg_map_put(&t->ix, key, t->n) || pb_bytes(&t->msg, PROFILE_STRING_TABLE, s, len))
			return -ENOMEM;
		return t->n++;
	}
	return -ENOMEM;
}

static void strtab_free(struct strtab *t)
{
	cg_buf_free(&t->msg);
	cg_map_free(&t->ix);
	free(t->strs);
	for (size_t i = 0; i < t->nowned; i++)
		free(t->owned[i]);
	free(t->owned);
}

/* ---- the profile ---- */

struct pp {
	const struct cg_profile *p;
	struct strtab st;
	struct cg_buf out;   /* Profile fields but the string table */
	struct cg_buf msg;   /* one Sample being built */
	struct cg_buf packed;
	struct cg_buf label;
	uint64_t period_ns;
	int64_t k_thread, k_thread_id, k_process, k_task;
};

static int pp_str(struct pp *c, const char *s, int64_t *ix)
{
	int64_t r = strtab_get(&c->st, s, false);
	if (r < 0)
		return (int)r;
	*ix = r;
	return 0;
}

/* s[0..n) is a piece of a longer string: copied if new. */
static int pp_str_part(struct pp *c, const char *s, size_t n, int64_t *ix)
{
	char tmp[256];
	snprintf(tmp, sizeof(tmp), "%.*s", (int)n, s);
	int64_t r = strtab_get(&c->st, tmp, true);
	if (r < 0)
		return (int)r;
	*ix = r;
	return 0;
}

static int pp_value_type(struct pp *c, unsigned field, const char *type, const char *unit)
{
	int64_t t = 0, u = 0;
	int r = pp_str(c, type, &t);
	if (!r)
		r = pp_str(c, unit, &u);
	if (r)
		return r;
	struct cg_buf m = {0};
	r = pb_uint(&m, VALUETYPE_TYPE, (uint64_t)t);
	if (!r)
		r = pb_uint(&m, VALUETYPE_UNIT, (uint64_t)u);
	if (!r)
		r = pb_bytes(&c->out, field, m.data ? m.data : "", m.len);

	cg_buf_free(&m);
	return r;
}

static int pp_label(struct pp *c, int64_t key, int64_t str, int64_t num)
{
	c->label.len = 0;
	int r = pb_uint(&c->label, LABEL_KEY, (uint64_t)key);
	if (!r && str)
		r = pb_uint(&c->label, LABEL_STR, (uint64_t)str);
	if (!r && num)
		r = pb_uint(&c->label, LABEL_NUM, (uint64_t)num);
	return r ? r : pb_bytes(&c->msg, SAMPLE_LABEL, c->label.data ? c->label.data : "", c->label.len);
}

/* "thread NAME (TID)" -> a thread label and a thread_id label. */
static int pp_thread_labels(struct pp *c, const char *root)
{
	const char *name = root + strlen("thread ");
	const char *open = strrchr(name, '(');
	long tid = 0;
	size_t n = strlen(name);
	if (open && open > name && open[-1] == ' ') {
		tid = strtol(open + 1, NULL, 10);
		n = (size_t)(open - 1 - name);
	}
	int64_t s = 0;
	int r = pp_str_part(c, name, n, &s);
	if (!r)
		r = pp_label(c, c->k_thread, s, 0);
	if (!r && tid > 0)
		r = pp_label(c, c->k_thread_id, 0, tid);
	return r;
}

static int pp_stack(const struct cg_profile *p, uint32_t node, const uint32_t *frames,
		    uint32_t depth, void *arg)
{
	struct pp *c = arg;
	uint64_t all = profile_node_total(p, node, true), cpu = profile_node_total(p, node, false);
	uint32_t skip = 0;
	int r = 0;
	if (!all)
		return 0;
	c->msg.len = 0;
	/* Synthetic roots become labels; the stack keeps only code. */
	while (skip < depth && !r) {
		const struct cg_profile_frame *f = profile_frame(p, frames[skip]);
		if (f->kind == CG_FK_THREAD && !strncmp(f->name, "thread ", 7)) {
			r = pp_thread_labels(c, f->name);
		} else if (f->kind == CG_FK_PROCESS) {
			int64_t s = 0;
			r = pp_str(c, f->name, &s);
			if (!r)
				r = pp_label(c, c->k_process, s, 0);
		} else if (f->kind == CG_FK_TASK && !strncmp(f->name, "task ", 5)) {
			/* asyncio (--async): "task NAME" -> task=NAME */
			int64_t s = 0;
			r = pp_str(c, f->name + 5, &s);
			if (!r)
				r = pp_label(c, c->k_task, s, 0);
		} else {
			break;
		}
		skip++;
	}
	/* Leaf first, as profile.proto wants; location id = frame id + 1. */
	c->packed.len = 0;
	for (uint32_t i = depth; i-- > skip && !r;)
		r = pb_varint(&c->packed, (uint64_t)frames[i] + 1);
	if (!r && c->packed.len)
		r = pb_bytes(&c->msg, SAMPLE_LOCATION_ID, c->packed.data, c->packed.len);
	if (r)
		return r;
	c->packed.len = 0;
	/* samples/count, cpu/nanoseconds, wall/nanoseconds */
	r = pb_varint(&c->packed, all);
	if (!r)
		r = pb_varint(&c->packed, cpu * c->period_ns);
	if (!r)
		r = pb_varint(&c->packed, all * c->period_ns);
	if (!r)
		r = pb_bytes(&c->msg, SAMPLE_VALUE, c->packed.data, c->packed.len);
	/* Labels were written first; field order does not matter. */
	if (!r)
		r = pb_bytes(&c->out, PROFILE_SAMPLE, c->msg.data, c->msg.len);
	return r;
}

/* One Function per distinct (name, file), one Location per frame. */
static int pp_functions_locations(struct pp *c)
{
	const struct cg_profile *p = c->p;
	uint32_t nf = profile_frame_count(p);
	uint32_t *fn_of = calloc(nf ? nf : 1, sizeof(*fn_of));
	struct cg_map fix;
	struct cg_buf m = {0}, line = {0};
	uint32_t nfn = 0;
	int r = 0;
	cg_map_init(&fix);
	if (!fn_of) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < nf && !r; i++) {
		const struct cg_profile_frame *f = profile_frame(p, i);
		/* Strings are interned: equal content, equal pointers. */
		uint64_t key = cg_hash64((uintptr_t)f->name ^ cg_hash64((uintptr_t)f->file));
		uint64_t v = 0;
		bool found = false;
		for (int k = 0; k < 16; k++, key = cg_hash64(key)) {
			key = key ? key : 1;
			if (!cg_map_get(&fix, key, &v))
				break;
			const struct cg_profile_frame *g = profile_frame(p, (uint32_t)v);
			if (g->name == f->name && g->file == f->file) {
				found = true;
				break;
			}
		}
		if (found) {
			fn_of[i] = fn_of[v];
			continue;
		}
		if ((r = cg_map_put(&fix, key, i)))
			break;
		fn_of[i] = ++nfn;
		int64_t name = 0, file = 0;
		r = pp_str(c, f->name, &name);
		if (!r && f->file)
			r = pp_str(c, f->file, &file);
		m.len = 0;
		if (!r)
			r = pb_uint(&m, FUNCTION_ID, nfn);
		if (!r)
			r = pb_uint(&m, FUNCTION_NAME, (uint64_t)name);
		if (!r)
			r = pb_uint(&m, FUNCTION_SYSTEM_NAME, (uint64_t)name);
		if (!r)
			r = pb_uint(&m, FUNCTION_FILENAME, (uint64_t)file);
		if (!r)
			r = pb_bytes(&c->out, PROFILE_FUNCTION, m.data, m.len);
	}
	for (uint32_t i = 0; i < nf && !r; i++) {
		const struct cg_profile_frame *f = profile_frame(p, i);
		line.len = 0;
		m.len = 0;
		r = pb_uint(&line, LINE_FUNCTION_ID, fn_of[i]);
		if (!r && f->line > 0)
			r = pb_uint(&line, LINE_LINE, (uint64_t)f->line);
		if (!r)
			r = pb_uint(&m, LOCATION_ID, (uint64_t)i + 1);
		if (!r)
			r = pb_bytes(&m, LOCATION_LINE, line.data, line.len);
		if (!r)
			r = pb_bytes(&c->out, PROFILE_LOCATION, m.data, m.len);
	}
out:
	free(fn_of);
	cg_map_free(&fix);
	cg_buf_free(&m);
	cg_buf_free(&line);
	return r;
}

static int pp_gzip(const struct cg_buf *a, const struct cg_buf *b, FILE *out)
{
	z_stream z;
	unsigned char chunk[16384];
	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip wrapper, which is what pprof reads. */
	if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	int r = 0;
	const struct cg_buf *parts[2] = {a, b};
	for (int i = 0; i < 2 && !r; i++) {
		z.next_in = (unsigned char *)(parts[i]->data ? parts[i]->data : "");
		z.avail_in = (uInt)parts[i]->len;
		int flush = i == 1 ? Z_FINISH : Z_NO_FLUSH;
		int zr;
		do {
			z.next_out = chunk;
			z.avail_out = sizeof(chunk);
			zr = deflate(&z, flush);
			if (zr == Z_STREAM_ERROR) {
				r = -EIO;
				break;
			}
			size_t have = sizeof(chunk) - z.avail_out;
			if (have && fwrite(chunk, 1, have, out) != have) {
				r = -EIO;
				break;
			}
		} while (z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	}
	deflateEnd(&z);
	return r;
}

int encode_pprof(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out)
{
	struct pp c = {.p = p};
	int64_t ix = 0;
	int r;
	double interval = profile_interval_ms(p);
	c.period_ns = interval > 0 ? (uint64_t)(interval * 1e6 + 0.5) : 10000000ULL;
	cg_map_init(&c.st.ix);

	r = pp_str(&c, "", &ix); /* string_table[0] must be "" */
	if (!r)
		r = pp_value_type(&c, PROFILE_SAMPLE_TYPE, "samples", "count");
	if (!r)
		r = pp_value_type(&c, PROFILE_SAMPLE_TYPE, "cpu", "nanoseconds");
	if (!r)
		r = pp_value_type(&c, PROFILE_SAMPLE_TYPE, "wall", "nanoseconds");
	if (!r)
		r = pp_str(&c, "thread", &c.k_thread);
	if (!r)
		r = pp_str(&c, "thread_id", &c.k_thread_id);
	if (!r)
		r = pp_str(&c, "process", &c.k_process);
	if (!r)
		r = pp_str(&c, "task", &c.k_task);
	if (!r)
		r = pp_functions_locations(&c);
	if (!r)
		r = profile_walk_stacks(p, pp_stack, &c);
	uint64_t start = profile_start_ms(p), end = profile_end_ms(p);
	if (!r)
		r = pb_uint(&c.out, PROFILE_TIME_NANOS, start * 1000000ULL);
	if (!r && end > start)
		r = pb_uint(&c.out, PROFILE_DURATION_NANOS, (end - start) * 1000000ULL);
	if (!r)
		r = pp_value_type(&c, PROFILE_PERIOD_TYPE, o->include_idle ? "wall" : "cpu", "nanoseconds");
	if (!r)
		r = pb_uint(&c.out, PROFILE_PERIOD, c.period_ns);
	/* Comments: who wrote it and about what. */
	int64_t cm[2] = {0, 0};
	char what[256];
	snprintf(what, sizeof(what), "cgprof; %llu samples; runtime %s",
		 (unsigned long long)profile_samples(p),
		 profile_runtime_version(p) ? profile_runtime_version(p) : "unknown");
	if (!r)
		r = pp_str(&c, what, &cm[0]);
	if (!r)
		r = pp_str(&c, o->title ? o->title : "cgprof", &cm[1]);
	c.packed.len = 0;
	for (int i = 0; i < 2 && !r; i++)
		r = pb_varint(&c.packed, (uint64_t)cm[i]);
	if (!r)
		r = pb_bytes(&c.out, PROFILE_COMMENT, c.packed.data, c.packed.len);
	if (!r)
		r = pp_str(&c, o->include_idle ? "wall" : "cpu", &ix);
	if (!r)
		r = pb_uint(&c.out, PROFILE_DEFAULT_SAMPLE_TYPE, (uint64_t)ix);
	if (r) {
		r = cg_fail(r, "cannot encode the pprof profile: %s", strerror(-r));
		goto out;
	}
	/* Every field may come in any order: strings last, since samples
	 * added to them. */
	if ((r = pp_gzip(&c.out, &c.st.msg, out)))
		r = cg_fail(r, "cannot compress the pprof profile");
	else
		r = encode_check_stream(out, "pprof");
out:
	strtab_free(&c.st);
	cg_buf_free(&c.out);
	cg_buf_free(&c.msg);
	cg_buf_free(&c.packed);
	cg_buf_free(&c.label);
	return r;
}
