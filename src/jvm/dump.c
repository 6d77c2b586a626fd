/* Parsing the JVM's jstack-style thread dump (untrusted text) into threads
 * with a state and Java frames, in place and with every loop bounded. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jvm_priv.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t max)
{
	if (need <= *cap)
		return 0;
	if (need > max)
		return -E2BIG;
	size_t ncap = *cap ? *cap : 64;
	while (ncap < need)
		ncap *= 2;
	if (ncap > max)
		ncap = max;
	void *np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

void jvm_dump_free(struct jvm_dump *d)
{
	free(d->threads);
	free(d->frames);
	memset(d, 0, sizeof(*d));
}

static char *skip_spaces(char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* `"name" #1 [1234] daemon prio=5 ... nid=0x4d2 runnable [0x...]`. Field
 * text after the name never holds a quote, so the name ends at the last
 * one (a thread may well be named with quotes). */
static int parse_header(char *line, struct jvm_thread *th)
{
	char *close = strrchr(line + 1, '"');
	if (!close)
		return -EINVAL;
	*close = '\0';
	th->name = line + 1;
	th->nid = 0;
	char *nid = strstr(close + 1, " nid=");
	if (nid) {
		char *end;
		long v = strtol(nid + 5, &end, 0);
		if (end != nid + 5 && v > 0 && v <= INT_MAX)
			th->nid = (pid_t)v;
	}
	return 0;
}

static enum cg_state parse_state(const char *s)
{
	static const struct {
		const char *word;
		enum cg_state st;
	} map[] = {
		{"RUNNABLE", CG_ST_RUNNING},
		{"BLOCKED", CG_ST_BLOCKED},
		{"TIMED_WAITING", CG_ST_TIMED_WAITING},
		{"WAITING", CG_ST_WAITING},
	};
	for (size_t i = 0; i < CG_ARRAY_LEN(map); i++) {
		size_t l = strlen(map[i].word);
		if (!strncmp(s, map[i].word, l) && (s[l] == '\0' || s[l] == ' '))
			return map[i].st;
	}
	return CG_ST_IDLE; /* NEW, TERMINATED, or something newer */
}

/* Hidden classes (lambdas) carry their address: "Foo$$Lambda$14/0x0000
 * 000800c03000.run". It differs per run and per JVM, so the same code
 * would never aggregate; the name without it is what a person reads. */
static void strip_hidden_address(char *name)
{
	for (char *p = strstr(name, "/0x"); p; p = strstr(p + 1, "/0x")) {
		char *q = p + 3;
		while ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F'))
			q++;
		if (q > p + 3 && (*q == '.' || *q == '\0')) {
			memmove(p, q, strlen(q) + 1);
			return;
		}
	}
}

/* `at pkg.Class.method(app//File.java:12)`; the location may be "Native
 * Method", "Unknown Source", "File.java" or carry class-loader and module
 * prefixes ending in '/'. Sets *native for "Native Method". */
static int parse_frame(char *at, struct cg_frame *f, bool *native)
{
	char *open = strchr(at, '(');
	char *close = open ? strrchr(open, ')') : NULL;
	*native = false;
	if (!open || !close || open == at)
		return -EINVAL;
	*open = '\0';
	*close = '\0';
	strip_hidden_address(at);
	f->name = at;
	f->file = NULL;
	f->line = 0;
	f->kind = CG_FK_JAVA;

	char *loc = open + 1;
	char *slash = strrchr(loc, '/');
	if (slash)
		loc = slash + 1;
	if (!strcmp(loc, "Native Method")) {
		*native = true;
		return 0;
	}
	if (!strcmp(loc, "Unknown Source") || !*loc)
		return 0;
	char *colon = strrchr(loc, ':');
	if (colon) {
		char *end;
		long v = strtol(colon + 1, &end, 10);
		if (end != colon + 1 && *end == '\0' && v > 0 && v <= INT32_MAX) {
			f->line = (int32_t)v;
			*colon = '\0';
		}
	}
	f->file = loc;
	return 0;
}

/* Where the parse of one dump stands. */
struct dump_parse {
	struct jvm_dump *d;
	struct jvm_thread *cur; /* the thread whose lines these are, or NULL */
	bool have_state;        /* its java.lang.Thread.State line was seen */
	bool top_native;        /* its innermost frame is a native method */
	uint32_t max_depth;
};

/* Close the current thread: keep it if it is a Java thread. */
static void end_thread(struct dump_parse *ps)
{
	struct jvm_thread *cur = ps->cur;
	if (cur && ps->have_state && cur->nframes) {
		if (cur->state == CG_ST_RUNNING && ps->top_native)
			cur->state = CG_ST_NATIVE;
		ps->d->nthreads++;
	} else if (cur) {
		ps->d->nframes = cur->first;
	}
	ps->cur = NULL;
}

/* A '"name" ...' header line opens a thread. 1: no room for more. */
static int begin_thread(struct dump_parse *ps, char *line)
{
	struct jvm_dump *d = ps->d;
	end_thread(ps);
	if (d->nthreads >= JVM_MAX_THREADS)
		return 1;
	int r = grow((void **)&d->threads, &d->threads_cap, d->nthreads + 1, sizeof(*d->threads),
		     JVM_MAX_THREADS);
	if (r)
		return r;
	struct jvm_thread *cur = &d->threads[d->nthreads];
	memset(cur, 0, sizeof(*cur));
	cur->first = (uint32_t)d->nframes;
	cur->state = CG_ST_IDLE;
	ps->have_state = false;
	ps->top_native = false;
	ps->cur = parse_header(line, cur) ? NULL : cur;
	return 0;
}

/* "Full thread dump OpenJDK 64-Bit Server VM (17.0.15+6 mixed mode):"
 * -> d->vm "OpenJDK 64-Bit Server VM 17.0.15+6". */
static void parse_vm_line(struct jvm_dump *d, char *v)
{
	size_t l = strlen(v);
	if (l && v[l - 1] == ':')
		v[--l] = '\0';
	char *paren = strchr(v, '(');
	char *sp = paren ? strchr(paren, ' ') : NULL;
	if (paren && sp && paren > v)
		snprintf(d->vm, sizeof(d->vm), "%.*s %.*s", (int)(paren - v - 1), v,
			 (int)(sp - paren - 1), paren + 1);
	else
		snprintf(d->vm, sizeof(d->vm), "%s", v);
}

/* One "at ..." frame line of the current thread, within the bounds. */
static int add_frame(struct dump_parse *ps, char *p)
{
	struct jvm_dump *d = ps->d;
	struct jvm_thread *cur = ps->cur;
	struct cg_frame f;
	bool native;
	if (cur->nframes >= ps->max_depth || d->nframes >= JVM_MAX_FRAMES_TOTAL) {
		cur->truncated = true;
		return 0;
	}
	if (parse_frame(p, &f, &native))
		return 0;
	if (!cur->nframes)
		ps->top_native = native;
	int r = grow((void **)&d->frames, &d->frames_cap, d->nframes + 1, sizeof(*d->frames),
		     JVM_MAX_FRAMES_TOTAL);
	if (r)
		return r;
	d->frames[d->nframes++] = f;
	cur->nframes++;
	return 0;
}

/* A line inside a thread's block: its state, a frame, or the blank line
 * that ends it ("- locked <0x...>", "No compile task"... are ignored). */
static int thread_line(struct dump_parse *ps, char *line)
{
	char *p = skip_spaces(line);
	if (!*p)
		end_thread(ps);
	else if (!strncmp(p, "java.lang.Thread.State: ", 24)) {
		ps->cur->state = parse_state(p + 24);
		ps->have_state = true;
	} else if (!strncmp(p, "at ", 3) && ps->have_state)
		return add_frame(ps, p + 3);
	return 0;
}

int jvm_dump_parse(char *text, size_t len, uint32_t max_depth, struct jvm_dump *d)
{
	struct dump_parse ps = {.d = d, .max_depth = max_depth};
	int r = 0;

	if (!max_depth || max_depth > JVM_MAX_FRAMES_PER_THREAD)
		ps.max_depth = JVM_MAX_FRAMES_PER_THREAD;
	d->nthreads = 0;
	d->nframes = 0;
	d->vm[0] = '\0';
	char *end = text + len;
	for (char *line = text; line < end && r == 0;) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *next = nl ? nl + 1 : end;
		if (nl) {
			*nl = '\0';
			if (nl > line && nl[-1] == '\r')
				nl[-1] = '\0';
		}
		if (line[0] == '"')
			r = begin_thread(&ps, line);
		else if (!strncmp(line, "Full thread dump ", 17) && !d->vm[0])
			parse_vm_line(d, line + 17);
		else if (ps.cur)
			r = thread_line(&ps, line);
		line = next;
	}
	if (r < 0)
		return r;
	end_thread(&ps);
	return 0;
}
