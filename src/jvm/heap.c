/* The heap summary: HotSpot's class histogram (`inspectheap -all`, which
 * skips the full GC `-live` forces) fetched over attach and parsed. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/jvm.h"
#include "cgprof/log.h"
#include "cgprof/profile.h"
#include "cgprof/target.h"
#include "jvm_priv.h"

#define JVM_HEAP_MAX_CLASSES (1u << 20)

void jvm_heap_free(struct jvm_heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->entries[i].name);
	free(h->entries);
	memset(h, 0, sizeof(*h));
}

static bool parse_u64(const char **pp, const char *end, uint64_t *v)
{
	const char *p = *pp;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return false;
	uint64_t x = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return false;
		x = x * 10 + (uint64_t)(*p - '0');
		p++;
	}
	*pp = p;
	*v = x;
	return true;
}

static int by_bytes_desc(const void *a, const void *b)
{
	const struct jvm_heap_entry *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->instances != y->instances)
		return x->instances > y->instances ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* "   1:    12345    1234567  [B (java.base@17.0.15)" and a closing
 * "Total   12345   1234567". Anything else is skipped. */
int jvm_heap_parse(const char *text, size_t len, struct jvm_heap *out)
{
	size_t cap = 0;
	bool have_total = false;
	int r = 0;
	const char *end = text + len;

	memset(out, 0, sizeof(*out));
	for (const char *line = text; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *eol = nl ? nl : end;
		const char *p = line;
		uint64_t num, inst, bytes;
		line = nl ? nl + 1 : end;

		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		if ((size_t)(eol - p) >= 5 && !memcmp(p, "Total", 5)) {
			p += 5;
			if (parse_u64(&p, eol, &inst) && parse_u64(&p, eol, &bytes)) {
				out->total_instances = inst;
				out->total_bytes = bytes;
				have_total = true;
			}
			continue;
		}
		if (!parse_u64(&p, eol, &num) || p >= eol || *p != ':')
			continue;
		p++;
		if (!parse_u64(&p, eol, &inst) || !parse_u64(&p, eol, &bytes))
			continue;
		while (p < eol && (*p == ' ' || *p == '\t'))
			p++;
		const char *name = p;
		while (p < eol && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\0')
			p++;
		if (p == name)
			continue;
		if (out->n == JVM_HEAP_MAX_CLASSES)
			break;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			void *np = realloc(out->entries, ncap * sizeof(*out->entries));
			if (!np) {
				r = -ENOMEM;
				goto out;
			}
			out->entries = np;
			cap = ncap;
		}
		struct jvm_heap_entry *e = &out->entries[out->n];
		e->name = strndup(name, (size_t)(p - name));
		if (!e->name) {
			r = -ENOMEM;
			goto out;
		}
		e->instances = inst;
		e->bytes = bytes;
		out->n++;
	}
	if (!out->n) {
		r = -EINVAL;
		goto out;
	}
	if (!have_total) {
		for (size_t i = 0; i < out->n; i++) {
			out->total_instances += out->entries[i].instances;
			out->total_bytes += out->entries[i].bytes;
		}
	}
	if (out->n)
		qsort(out->entries, out->n, sizeof(*out->entries), by_bytes_desc);
out:
	if (r)
		jvm_heap_free(out);
	return r;
}

int jvm_heap_to_json(const struct jvm_heap *h, pid_t pid, size_t top, struct cg_buf *out)
{
	int r = -ENOMEM;
	size_t n = top && top < h->n ? top : h->n;
	json_t *root = json_object(), *classes = json_array();
	char *text = NULL;

	if (!root || !classes)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_pack("{s:s, s:I, s:I}", "class", h->entries[i].name, "instances",
				      (json_int_t)h->entries[i].instances, "bytes",
				      (json_int_t)h->entries[i].bytes);
		if (!e || json_array_append_new(classes, e))
			goto out;
	}
	if ((pid && json_object_set_new(root, "pid", json_integer(pid))) ||
	    (h->time_ms && json_object_set_new(root, "time_ms", json_integer((json_int_t)h->time_ms))) ||
	    json_object_set_new(root, "total_instances", json_integer((json_int_t)h->total_instances)) ||
	    json_object_set_new(root, "total_bytes", json_integer((json_int_t)h->total_bytes)) ||
	    json_object_set_new(root, "classes_total", json_integer((json_int_t)h->n)) ||
	    json_object_set(root, "classes", classes))
		goto out;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (text)
		r = cg_buf_append(out, text, strlen(text));
out:
	free(text);
	json_decref(classes);
	json_decref(root);
	return r;
}

int jvm_heap_histogram(struct target *t, struct jvm_heap *out)
{
	struct jvm_attach a;
	struct cg_buf reply = {0};
	const char *const args[3] = {"-all", NULL, NULL};
	int status = 0, r;

	memset(out, 0, sizeof(*out));
	if ((r = jvm_attach_init(t, &a)))
		return r;
	if ((r = jvm_attach_start(&a)))
		return r;
	int timeout = jvm_timeout_ms(JVM_HEAP_TIMEOUT_MS);
	if ((r = jvm_attach_request(&a, "inspectheap", args, timeout, &status, &reply)))
		goto out;
	if (status != 0) {
		/* The JVM says why in the first line of its output. */
		char *nl = reply.data ? strchr(reply.data, '\n') : NULL;
		if (nl)
			*nl = '\0';
		r = cg_fail(-EIO, "JVM %d refused the heap histogram (code %d): %.200s",
			    (int)a.pid, status, reply.data ? reply.data : "");
		goto out;
	}
	r = jvm_heap_parse(reply.data ? reply.data : "", reply.len, out);
	out->time_ms = cg_epoch_ms();
	if (r == -EINVAL)
		r = cg_fail(-EPROTO, "JVM %d sent a heap histogram cgprof cannot read", (int)a.pid);
	else if (r)
		r = cg_fail(r, "out of memory reading the heap histogram");
out:
	cg_buf_free(&reply);
	return r;
}

int jvm_heap_summary(struct target *t, cg_heap_fn fn, void *arg)
{
	struct jvm_heap h;
	int r = jvm_heap_histogram(t, &h);
	if (r)
		return r;
	/* A profile keeps the largest CG_PROFILE_HEAP_MAX: no need for more. */
	size_t n = h.n < CG_PROFILE_HEAP_MAX ? h.n : CG_PROFILE_HEAP_MAX;
	struct cg_heap_class *c = calloc(n ? n : 1, sizeof(*c));
	if (!c) {
		jvm_heap_free(&h);
		return cg_fail(-ENOMEM, "out of memory for the heap summary");
	}
	for (size_t i = 0; i < n; i++)
		c[i] = (struct cg_heap_class){h.entries[i].name, h.entries[i].instances,
					      h.entries[i].bytes};
	fn(c, n, h.total_instances, h.total_bytes, arg);
	free(c);
	jvm_heap_free(&h);
	return 0;
}
