/* The CodeGuru Profiler agent profile (the JSON body of PostAgentProfile):
 * window, agentMetadata, and the call graph of self counts per counter type.
 *
 * Python follows the official Python agent's encoder: frame keys
 * "module.path:Class:function" (module from the file path with the longest
 * sys.path root stripped, class from the qualified name), one counter type
 * WALL_TIME, sampleWeights.WALL_TIME = sampling rounds per second,
 * numTimesSampled = rounds, metrics.numThreads = threads per round,
 * "file" and "line" ([line] or [first, last] when one key merged lines).
 *
 * Java (the Java agent's format is not public; our choices): frame keys are
 * the fully qualified "package.Class.method" the thread dump prints, counts
 * are keyed by thread state with the names the CodeGuru console documents
 * (RUNNABLE, BLOCKED, NATIVE, WAITING, TIMED_WAITING, IDLE), and
 * sampleWeights carries one entry per state present, all equal to rounds
 * per second (every sample of every state stands for one interval). A JVM
 * heap summary, when the profile has one, travels as a top-level
 * "heapSummary" object (cgprof's own; left out when there is none).
 *
 * Synthetic thread/process roots are not frames to CodeGuru: their
 * subtrees are merged, as the official agents never split by thread. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "encode_priv.h"

struct cgc {
	const struct cg_profile *p;
	const struct cg_encode_opts *o;
	bool java;
	FILE *out;
	struct cg_buf key, scratch;
	/* Each frame's key, made once: a frame recurs in many nodes. */
	size_t *key_of; /* offset into keys, or SIZE_MAX until made */
	struct cg_buf keys;
	bool state_seen[CG_ST__COUNT];
	int err;
};

static const char *cgc_state_key(enum cg_state s)
{
	switch (s) {
	case CG_ST_RUNNING: return "RUNNABLE";
	case CG_ST_BLOCKED: return "BLOCKED";
	case CG_ST_WAITING: return "WAITING";
	case CG_ST_TIMED_WAITING: return "TIMED_WAITING";
	case CG_ST_NATIVE: return "NATIVE";
	default: return "IDLE";
	}
}

static bool has_prefix(const char *s, const char *root, size_t n)
{
	return !strncmp(s, root, n) && (root[n - 1] == '/' || s[n] == '/');
}

/* "module.path" from a source file, as the Python agent forms it: strip the
 * longest sys.path root that matches, the extension, and turn '/' into '.'.
 * Without the target's sys.path we know the usual roots: site-packages,
 * dist-packages and the stdlib directory; otherwise the file's directory
 * (sys.path[0] of a script) is the root. */
static int py_module(const struct cg_profile *p, const char *file, struct cg_buf *out)
{
	const char *rel = NULL;
	size_t best = 0;
	for (size_t i = 0; i < profile_module_root_count(p); i++) {
		const char *root = profile_module_root(p, i);
		size_t n = strlen(root);
		if (n > best && has_prefix(file, root, n)) {
			best = n;
			rel = file + n;
		}
	}
	if (!rel) {
		const char *m;
		if ((m = strstr(file, "/site-packages/")))
			rel = m + strlen("/site-packages/");
		else if ((m = strstr(file, "/dist-packages/")))
			rel = m + strlen("/dist-packages/");
		else if ((m = strstr(file, "/lib/python")) && strchr(m + 11, '/'))
			rel = strchr(m + 11, '/') + 1;
		else if (file[0] == '/')
			rel = strrchr(file, '/') + 1;
		else
			rel = file;
	}
	while (*rel == '/')
		rel++;
	out->len = 0;
	/* The extension goes only if it is in the last path component;
	 * "<frozen ...>" and "<string>" names stay as they are. */
	const char *slash = strrchr(rel, '/'), *dot = strrchr(rel, '.');
	size_t n = strlen(rel);
	if (rel[0] != '<' && dot && (!slash || dot > slash) && dot != rel)
		n = (size_t)(dot - rel);
	for (size_t i = 0; i < n; i++) {
		char c = rel[i] == '/' ? '.' : rel[i];
		if (cg_buf_append(out, &c, 1))
			return -ENOMEM;
	}
	return cg_buf_append(out, "", 0);
}

/* The key of a frame in the call graph, into c->key. */
static int cgc_key(struct cgc *c, const struct cg_profile_frame *f)
{
	c->key.len = 0;
	if (f->kind != CG_FK_PYTHON)
		return cg_buf_printf(&c->key, "%s", f->name);
	/* Qualified name "Outer.Inner.method": class Inner, function method,
	 * like the agent's class of self/cls; nested functions
	 * ("f.<locals>.g") have no class. */
	const char *fn = strrchr(f->name, '.');
	const char *cls = NULL;
	size_t cls_len = 0;
	if (fn) {
		const char *end = fn, *start = f->name;
		for (const char *q = f->name; q < end; q++)
			if (*q == '.')
				start = q + 1;
		if (start < end && !(end[-1] == '>')) {
			cls = start;
			cls_len = (size_t)(end - start);
		}
		fn++;
	} else {
		fn = f->name;
	}
	int r = 0;
	if (f->file && f->file[0]) {
		struct cg_buf mod = {0};
		r = py_module(c->p, f->file, &mod);
		if (!r && mod.len)
			r = cg_buf_printf(&c->key, "%s", mod.data);
		cg_buf_free(&mod);
	}
	if (!r && cls)
		r = cg_buf_printf(&c->key, "%s%.*s", c->key.len ? ":" : "", (int)cls_len, cls);
	if (!r)
		r = cg_buf_printf(&c->key, "%s%s", c->key.len ? ":" : "", fn);
	return r;
}

/* One child of a JSON node: a profile node and its key in the level's
 * key arena. Children of different profile nodes that share a key are one
 * JSON node (thread roots merged, lines merged). */
struct cgc_item {
	uint32_t node;
	size_t key; /* offset into cgc.keys */
};

/* qsort_r, not a global: encodes may run in two threads at once. */
static int cgc_item_cmp(const void *a, const void *b, void *arg)
{
	const struct cgc_item *x = a, *y = b;
	const char *base = arg;
	int r = strcmp(base + x->key, base + y->key);
	return r ? r : (x->node < y->node ? -1 : x->node > y->node);
}

struct cgc_level {
	struct cgc_item *items; /* inline until it outgrows it */
	size_t n, cap;
	struct cgc_item inline_items[4];
	uint64_t extra[CG_ST__COUNT]; /* self counts of merged-away roots */
};

static int cgc_collect(struct cgc *c, struct cgc_level *lv, uint32_t parent)
{
	const struct cg_profile *p = c->p;
	int r = 0;
	for (uint32_t k = profile_node(p, parent)->child; k != CG_PROFILE_NONE && !r;
	     k = profile_node(p, k)->sibling) {
		const struct cg_profile_node *n = profile_node(p, k);
		const struct cg_profile_frame *f = profile_frame(p, n->frame);
		if (f->kind == CG_FK_THREAD || f->kind == CG_FK_PROCESS) {
			/* Not code: its samples and children belong one up. */
			for (int s = 0; s < CG_ST__COUNT; s++)
				lv->extra[s] += profile_node_self(p, k)[s];
			r = cgc_collect(c, lv, k);
			continue;
		}
		if (lv->n == lv->cap) {
			/* Most nodes have one child: no allocation for them. */
			size_t cap = lv->cap * 2;
			struct cgc_item *ni = lv->items == lv->inline_items
						      ? malloc(cap * sizeof(*ni))
						      : realloc(lv->items, cap * sizeof(*ni));
			if (!ni)
				return -ENOMEM;
			if (lv->items == lv->inline_items)
				memcpy(ni, lv->inline_items, sizeof(lv->inline_items));
			lv->items = ni;
			lv->cap = cap;
		}
		if (c->key_of[n->frame] == SIZE_MAX) {
			if ((r = cgc_key(c, f)))
				break;
			const char *fresh = encode_utf8(c->key.data, &c->scratch);
			c->key_of[n->frame] = c->keys.len;
			if ((r = cg_buf_append(&c->keys, fresh, strlen(fresh) + 1)))
				break;
		}
		lv->items[lv->n].node = k;
		lv->items[lv->n].key = c->key_of[n->frame];
		lv->n++;
	}
	return r;
}

static void cgc_counts(struct cgc *c, const uint64_t *counts, bool comma)
{
	FILE *out = c->out;
	uint64_t all = 0;
	bool any = false;
	for (int s = 0; s < CG_ST__COUNT; s++)
		all += counts[s];
	if (!all)
		return;
	fputs(comma ? ",\"counts\":{" : "\"counts\":{", out);
	if (!c->java) {
		fprintf(out, "\"WALL_TIME\":%llu}", (unsigned long long)all);
		return;
	}
	for (int s = 0; s < CG_ST__COUNT; s++) {
		if (!counts[s])
			continue;
		fprintf(out, "%s\"%s\":%llu", any ? "," : "", cgc_state_key((enum cg_state)s),
			(unsigned long long)counts[s]);
		any = true;
	}
	fputc('}', out);
}

/* Write the JSON node made of the profile nodes group[0..n) (n == 0: the
 * root): file and line, children, then counts. Recursion follows the
 * stack depth, which max_depth bounds. */
static int cgc_node(struct cgc *c, const uint32_t *group, size_t n)
{
	const struct cg_profile *p = c->p;
	FILE *out = c->out;
	struct cgc_level lv = {0};
	lv.items = lv.inline_items;
	lv.cap = CG_ARRAY_LEN(lv.inline_items);
	uint64_t counts[CG_ST__COUNT] = {0};
	int r = 0;

	fputc('{', out);
	bool comma = false;
	if (n) {
		const struct cg_profile_frame *f = profile_frame(p, profile_node(p, group[0])->frame);
		int32_t lo = 0, hi = 0;
		for (size_t i = 0; i < n; i++) {
			int32_t l = profile_frame(p, profile_node(p, group[i])->frame)->line;
			if (l > 0 && (!lo || l < lo))
				lo = l;
			if (l > hi)
				hi = l;
		}
		if (f->file && f->kind != CG_FK_TRUNCATED) {
			fputs("\"file\":", out);
			encode_json_str(out, f->file);
			comma = true;
		}
		if (lo) {
			fprintf(out, "%s\"line\":[%d", comma ? "," : "", (int)lo);
			if (hi != lo)
				fprintf(out, ",%d", (int)hi);
			fputc(']', out);
			comma = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		const uint32_t *self = profile_node_self(p, group[i]);
		for (int s = 0; s < CG_ST__COUNT; s++)
			counts[s] += self[s];
	}
	if (!n)
		r = cgc_collect(c, &lv, 0);
	for (size_t i = 0; i < n && !r; i++)
		r = cgc_collect(c, &lv, group[i]);
	if (r)
		goto out;
	for (int s = 0; s < CG_ST__COUNT; s++)
		counts[s] += lv.extra[s];
	if (lv.n) {
		/* Keys are offsets: deeper levels append to c->keys (which may
		 * move) but never change what is there. Frames with the same
		 * key (one function, other lines) sort next to each other. */
		if (lv.n > 1)
			qsort_r(lv.items, lv.n, sizeof(*lv.items), cgc_item_cmp, c->keys.data);
		/* The sorted items become the groups of the next level. */
		uint32_t one, *ids = lv.n == 1 ? &one : malloc(lv.n * sizeof(*ids));
		if (!ids) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < lv.n; i++)
			ids[i] = lv.items[i].node;
		fprintf(out, "%s\"children\":{", comma ? "," : "");
		comma = true;
		for (size_t i = 0, j; i < lv.n && !r; i = j) {
			const char *key = c->keys.data + lv.items[i].key;
			for (j = i + 1; j < lv.n && !strcmp(key, c->keys.data + lv.items[j].key); j++)
				;
			if (i)
				fputc(',', out);
			encode_json_str(out, key);
			fputc(':', out);
			r = cgc_node(c, ids + i, j - i);
		}
		fputc('}', out);
		if (ids != &one)
			free(ids);
		if (r)
			goto out;
	}
	cgc_counts(c, counts, comma);
	fputc('}', out);
out:
	if (lv.items != lv.inline_items)
		free(lv.items);
	return r;
}

/* The version number alone, as the agents send it (Python's
 * platform.python_version()): "CPython 3.12.1" -> "3.12.1",
 * "OpenJDK 64-Bit Server VM 17.0.15+6-Debian" -> "17.0.15+6-Debian": the
 * first word that starts with digits and a dot. */
static const char *bare_version(const char *v, char *buf, size_t n)
{
	if (!v)
		return "unknown";
	for (const char *q = v; *q; q++) {
		if ((q != v && q[-1] != ' ') || *q < '0' || *q > '9')
			continue;
		const char *e = q;
		while (*e >= '0' && *e <= '9')
			e++;
		if (*e != '.')
			continue;
		size_t len = strcspn(q, " ");
		snprintf(buf, n, "%.*s", (int)len, q);
		return buf;
	}
	return v;
}

static json_t *cgc_metadata(struct cgc *c)
{
	const struct cg_profile *p = c->p;
	const struct cg_encode_opts *o = c->o;
	uint64_t start = profile_start_ms(p), end = profile_end_ms(p);
	uint64_t duration = end > start ? end - start : 0;
	uint64_t rounds = profile_rounds(p), samples = profile_samples(p);
	double weight = duration ? (double)rounds / ((double)duration / 1000.0) : 1.0;
	char host[256] = "unknown", version[128];
	cpu_set_t cpus;
	int vcpus = sched_getaffinity(0, sizeof(cpus), &cpus) ? 1 : CPU_COUNT(&cpus);

	if (!o->fleet_instance_id && gethostname(host, sizeof(host) - 1))
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';

	json_t *weights = json_object();
	if (!weights)
		return NULL;
	if (!c->java) {
		json_object_set_new(weights, "WALL_TIME", json_real(weight));
	} else {
		for (int s = 0; s < CG_ST__COUNT; s++)
			if (c->state_seen[s])
				json_object_set_new(weights, cgc_state_key((enum cg_state)s),
						    json_real(weight));
	}
	const char *type = o->agent_type ? o->agent_type
			   : c->java      ? "CodeGuruProfiler-java"
					  : "CodeGuruProfiler-python";
	json_t *overhead = json_pack("{s:f}", "memory_usage_mb",
				     (double)profile_memory_bytes(p) / (1024.0 * 1024.0));
	if (overhead && profile_overhead_ms(p) > 0)
		json_object_set_new(overhead, "timeInMs",
				    json_integer((json_int_t)llround(profile_overhead_ms(p))));
	json_t *m = json_pack(
		"{s:o, s:I, s:{s:s, s:s, s:i}, s:{s:s, s:s}, s:o*, s:s, s:{s:f}, s:I}",
		"sampleWeights", weights, "durationInMs", (json_int_t)duration, "fleetInfo", "id",
		encode_utf8(o->fleet_instance_id ? o->fleet_instance_id : host, &c->scratch), "type",
		o->fleet_type ? o->fleet_type : "UNKNOWN", "vCPUs", vcpus, "agentInfo", "type", type,
		"version", o->agent_version ? o->agent_version : CG_ENCODE_AGENT_VERSION,
		"agentOverhead", overhead, "runtimeVersion",
		bare_version(profile_runtime_version(p), version, sizeof(version)), "metrics", "numThreads",
		rounds ? (double)samples / (double)rounds : 0.0, "numTimesSampled",
		(json_int_t)rounds);
	if (m && profile_cpu_time_s(p) >= 0)
		json_object_set_new(m, "cpuTimeInSeconds", json_real(profile_cpu_time_s(p)));
	return m;
}

static json_t *cgc_heap(struct cgc *c, const struct cg_profile_heap *h)
{
	json_t *classes = json_array();
	for (size_t i = 0; classes && i < h->n; i++)
		json_array_append_new(classes,
				      json_pack("{s:s, s:I, s:I}", "className",
						encode_utf8(h->classes[i].name, &c->scratch),
						"instances", (json_int_t)h->classes[i].instances,
						"bytes", (json_int_t)h->classes[i].bytes));
	return json_pack("{s:I, s:I, s:I, s:o*}", "timestamp", (json_int_t)h->taken_ms,
			 "totalInstances", (json_int_t)h->total_instances, "totalBytes",
			 (json_int_t)h->total_bytes, "classes", classes);
}

int encode_codeguru(const struct cg_profile *p, const struct cg_encode_opts *o, FILE *out)
{
	struct cgc c = {.p = p, .o = o, .java = profile_runtime(p) == CG_RT_JAVA, .out = out};
	json_t *meta = NULL, *heap = NULL;
	char *text = NULL;
	int r = 0;
	if (!(c.key_of = malloc((profile_frame_count(p) + 1) * sizeof(*c.key_of)))) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < profile_frame_count(p); i++)
		c.key_of[i] = SIZE_MAX;
	/* sampleWeights names the states the graph uses. */
	for (uint32_t i = 0; i < profile_node_count(p); i++)
		for (int s = 0; s < CG_ST__COUNT; s++)
			c.state_seen[s] |= profile_node_self(p, i)[s] != 0;
	/* The small parts through jansson; the call graph, which can hold
	 * hundreds of thousands of nodes, streams straight out (a jansson
	 * tree of it would cost ~1 KB a node). */
	if (!(meta = cgc_metadata(&c)) || !(text = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
		r = -ENOMEM;
		goto out;
	}
	fprintf(out, "{\"start\":%llu,\"end\":%llu,\"agentMetadata\":%s,\"callgraph\":",
		(unsigned long long)profile_start_ms(p), (unsigned long long)profile_end_ms(p), text);
	if ((r = cgc_node(&c, NULL, 0)))
		goto out;
	const struct cg_profile_heap *h = profile_heap(p);
	if (h) {
		free(text);
		text = NULL;
		if (!(heap = cgc_heap(&c, h)) ||
		    !(text = json_dumps(heap, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
			r = -ENOMEM;
			goto out;
		}
		fprintf(out, ",\"heapSummary\":%s", text);
	}
	fputs("}\n", out);
	r = encode_check_stream(out, "CodeGuru");
out:
	if (r == -ENOMEM)
		r = cg_fail(r, "out of memory encoding the CodeGuru profile");
	free(text);
	json_decref(meta);
	json_decref(heap);
	cg_buf_free(&c.key);
	cg_buf_free(&c.scratch);
	cg_buf_free(&c.keys);
	free(c.key_of);
	return r;
}
