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
	struct cg_buf key, scratch;
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

static int json_add_count(json_t *counts, const char *key, uint64_t n)
{
	json_t *v = json_object_get(counts, key);
	json_int_t have = v ? json_integer_value(v) : 0;
	return json_object_set_new(counts, key, json_integer(have + (json_int_t)n)) ? -ENOMEM : 0;
}

/* Merge node i of the profile (and its subtree) under the JSON node jn. */
static int cgc_node(struct cgc *c, uint32_t i, json_t *jn)
{
	const struct cg_profile *p = c->p;
	const struct cg_profile_node *n = profile_node(p, i);
	const struct cg_profile_frame *f = profile_frame(p, n->frame);
	json_t *me = jn;
	int r = 0;

	if (f->kind != CG_FK_THREAD && f->kind != CG_FK_PROCESS) {
		json_t *kids = json_object_get(jn, "children");
		if (!kids) {
			kids = json_object();
			if (!kids || json_object_set_new(jn, "children", kids))
				return -ENOMEM;
		}
		if ((r = cgc_key(c, f)))
			return r;
		const char *key = encode_utf8(c->key.data, &c->scratch);
		me = json_object_get(kids, key);
		if (!me) {
			me = json_object();
			if (!me || json_object_set_new(kids, key, me))
				return -ENOMEM;
			if (f->file && f->kind != CG_FK_TRUNCATED &&
			    json_object_set_new(me, "file",
						json_string(encode_utf8(f->file, &c->scratch))))
				return -ENOMEM;
		}
		if (f->line > 0) {
			/* One key may merge lines: keep [first, last]. */
			json_t *line = json_object_get(me, "line");
			json_int_t lo = f->line, hi = f->line;
			if (line) {
				json_int_t a = json_integer_value(json_array_get(line, 0));
				json_int_t b = json_array_size(line) > 1
						       ? json_integer_value(json_array_get(line, 1))
						       : a;
				lo = a < lo ? a : lo;
				hi = b > hi ? b : hi;
			}
			json_t *nl = lo == hi ? json_pack("[I]", lo) : json_pack("[I,I]", lo, hi);
			if (!nl || json_object_set_new(me, "line", nl))
				return -ENOMEM;
		}
	}
	uint64_t total = profile_node_total(n, true);
	if (total) {
		json_t *counts = json_object_get(me, "counts");
		if (!counts) {
			counts = json_object();
			if (!counts || json_object_set_new(me, "counts", counts))
				return -ENOMEM;
		}
		if (!c->java) {
			r = json_add_count(counts, "WALL_TIME", total);
		} else {
			for (int s = 0; s < CG_ST__COUNT && !r; s++) {
				if (!n->self[s])
					continue;
				c->state_seen[s] = true;
				r = json_add_count(counts, cgc_state_key((enum cg_state)s), n->self[s]);
			}
		}
		if (r)
			return r;
	}
	for (uint32_t k = n->child; k != CG_PROFILE_NONE && !r; k = profile_node(p, k)->sibling)
		r = cgc_node(c, k, me);
	return r;
}

/* "CPython 3.12.1" -> "3.12.1", as the agent's platform.python_version(). */
static const char *bare_version(const char *v)
{
	if (!v)
		return "unknown";
	for (const char *q = v; *q; q++)
		if (*q >= '0' && *q <= '9')
			return q;
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
	char host[256] = "unknown";
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
		bare_version(profile_runtime_version(p)), "metrics", "numThreads",
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
	struct cgc c = {.p = p, .o = o, .java = profile_runtime(p) == CG_RT_JAVA};
	json_t *doc = NULL, *graph = json_object(), *meta = NULL;
	int r = 0;
	if (!graph) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t k = profile_node(p, 0)->child; k != CG_PROFILE_NONE && !r;
	     k = profile_node(p, k)->sibling)
		r = cgc_node(&c, k, graph);
	if (r)
		goto out;
	/* Metadata after the graph: sampleWeights names the states seen. */
	if (!(meta = cgc_metadata(&c))) {
		r = -ENOMEM;
		goto out;
	}
	doc = json_pack("{s:I, s:I, s:o, s:o}", "start", (json_int_t)profile_start_ms(p), "end",
			(json_int_t)profile_end_ms(p), "agentMetadata", meta, "callgraph", graph);
	meta = graph = NULL; /* owned by doc now (or freed by json_pack) */
	if (!doc) {
		r = -ENOMEM;
		goto out;
	}
	const struct cg_profile_heap *h = profile_heap(p);
	if (h) {
		json_t *hj = cgc_heap(&c, h);
		if (!hj || json_object_set_new(doc, "heapSummary", hj)) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (json_dumpf(doc, out, JSON_COMPACT | JSON_PRESERVE_ORDER)) {
		r = cg_fail(-EIO, "cannot write the CodeGuru profile");
		goto out;
	}
	fputc('\n', out);
	r = encode_check_stream(out, "CodeGuru");
out:
	if (r == -ENOMEM)
		r = cg_fail(r, "out of memory encoding the CodeGuru profile");
	json_decref(doc);
	json_decref(graph);
	json_decref(meta);
	cg_buf_free(&c.key);
	cg_buf_free(&c.scratch);
	return r;
}
