/* asyncio tasks of CPython 3.14+ read from outside the process: the _asyncio
 * module's debug offsets (.AsyncioDebug), the task lists, names, await chains. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/target.h"
#include "py_priv.h"

#define PA_MAX_TASKS 16384   /* tasks followed in one list */
#define PA_MAX_CHAIN 256     /* coroutines in one await chain */
#define PA_DUMP_TRIES 8      /* reads of a running task's stack, in a dump */
#define PA_MAX_THREADS 256   /* threads whose tasks a round looks at */
#define PA_MAX_WAITERS 1024  /* awaited_by entries kept for dump */
#define PA_SET_SLOTS 4096    /* largest awaited_by set table read */
#define PA_WIN 4096          /* largest object window read at once */
#define PA_NAME_MAX 256
/* Until the program imports asyncio (3.14 maps _asyncio then), the maps
 * are looked at again this often: a task's first quarter second may go
 * unrooted, and a program that never imports it costs four maps reads a
 * second. */
#define PA_PROBE_NS 250000000ULL
#define PA_FRAME_OWNED_BY_GENERATOR 1
#define PA_TPFLAGS_LONG (1UL << 24)
#define PA_TPFLAGS_UNICODE (1UL << 28)

/* Where the members asyncio.c needs sit inside one minor version's
 * _Py_DebugOffsets (offsetof, compiled against Debian's CPython 3.14.10
 * and 3.15.2 headers), and that version's generator frame states
 * (pycore_frame.h) and how deep under the stack top a suspended `await`
 * keeps what it awaits (_PyGen_yf). */
struct pa_version {
	int minor;
	uint32_t gen_iframe, gen_frame_state, frame_stackpointer, ob_type, tp_name, tp_flags;
	uint32_t set_used, set_table, set_mask, long_tag, long_digit, llist_next;
	int8_t st_created, st_suspended, st_yield_from, st_yield_from_locked, st_executing;
	uint8_t yf_depth;
};
static const struct pa_version pa_versions[] = {
	{14, 680, 688, 296, 408, 424, 440, 504, 512, 520, 576, 584, 696, -3, -2, -1, -1, 0, 1},
	{15, 808, 816, 360, 472, 488, 504, 600, 608, 616, 672, 680, 824, 0, 1, 2, 3, 4, 2},
};

/* The values, read from the target's _Py_DebugOffsets: byte offsets in
 * the objects of that build. */
struct pa_objects {
	uint32_t gen_iframe, gen_frame_state, frame_stackpointer, ob_type, tp_name, tp_flags;
	uint32_t set_used, set_table, set_mask, long_tag, long_digit, llist_next;
};

struct py_async {
	const struct py_interp *pi;
	void *sampler;
	const struct pa_version *v;
	struct pa_objects ob;
	struct py_async_offsets off;
	bool have;          /* off is read and valid */
	bool said;          /* the missing offsets were reported */
	uint64_t next_probe;
	uint64_t dbg_addr;  /* fixed by py_async_new_at (tests, fuzzer) */
	size_t frame_win, gen_win;
	struct {
		uint64_t interp, tstate;
		pid_t tid;
	} th[PA_MAX_THREADS];
	uint32_t nth;
	/* the last task named, so a steady running task costs one read */
	uint64_t name_task, name_obj;
	char name[PA_NAME_MAX];
	char root[PA_NAME_MAX + 8];
	uint64_t instr[PA_MAX_CHAIN]; /* what a chain walk read, to verify */
	uint64_t chain_frame[PA_MAX_CHAIN];
	uint64_t waiters[PA_MAX_WAITERS];
	uint64_t tasks[PA_MAX_TASKS]; /* one list, read before it is used */
};

static uint64_t rd64(const uint8_t *b, size_t len, uint64_t off)
{
	uint64_t v = 0;
	if (off + 8 <= len)
		memcpy(&v, b + off, 8);
	return v;
}

int py_async_offsets_parse(const void *rawp, size_t len, struct py_async_offsets *o)
{
	const uint64_t *w = rawp;
	uint64_t v[PY_ASYNC_OFFSETS_WORDS];
	if (len < sizeof(v))
		return -EINVAL;
	memcpy(v, w, sizeof(v));
	*o = (struct py_async_offsets){
		.task_size = v[0], .task_name = v[1], .task_awaited_by = v[2],
		.task_is_task = v[3], .task_awaited_by_is_set = v[4], .task_coro = v[5],
		.task_node = v[6], .interp_size = v[7], .interp_tasks_head = v[8],
		.ts_size = v[9], .ts_running_loop = v[10], .ts_running_task = v[11],
		.ts_tasks_head = v[12],
	};
	/* A task is a small object, the states are not huge, and every
	 * member lies inside the struct its size describes. */
	if (o->task_size < 32 || o->task_size > PA_WIN || o->interp_size > (1u << 22) ||
	    o->ts_size > (1u << 16) || o->task_name + 8 > o->task_size ||
	    o->task_awaited_by + 8 > o->task_size || o->task_is_task >= o->task_size ||
	    o->task_awaited_by_is_set >= o->task_size || o->task_coro + 8 > o->task_size ||
	    o->task_node + 16 > o->task_size || o->interp_tasks_head + 16 > o->interp_size ||
	    o->ts_running_loop + 8 > o->ts_size || o->ts_running_task + 8 > o->ts_size ||
	    o->ts_tasks_head + 16 > o->ts_size)
		return -EINVAL;
	return 0;
}

/* The .AsyncioDebug section of the ELF file at path: its address as
 * linked, and the first PT_LOAD's page (for the load bias). */
static int elf_asyncio_section(const char *path, uint64_t *addr, uint64_t *first_load)
{
	size_t shstrndx = 0, nph = 0;
	int r = -ENOENT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx) ||
	    elf_getphdrnum(e, &nph))
		goto out;
	*first_load = UINT64_MAX;
	for (size_t i = 0; i < nph && i < 256; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD) {
			*first_load = ph.p_vaddr & ~0xfffULL;
			break;
		}
	}
	for (Elf_Scn *scn = NULL; (scn = elf_nextscn(e, scn));) {
		GElf_Shdr sh;
		const char *name;
		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(e, shstrndx, sh.sh_name)))
			continue;
		if (!strcmp(name, ".AsyncioDebug") && sh.sh_addr &&
		    sh.sh_size >= 8 * PY_ASYNC_OFFSETS_WORDS && *first_load != UINT64_MAX) {
			*addr = sh.sh_addr;
			r = 0;
			break;
		}
	}
out:
	if (e)
		elf_end(e);
	close(fd);
	return r;
}

/* Where the offsets are in the target: in the interpreter's own object
 * (3.15), else in a mapped _asyncio extension module (3.14, once the
 * program imports asyncio). 0 or -ENOENT. */
static int pa_find(struct py_async *a, uint64_t *at)
{
	struct target *t = a->pi->t;
	struct target_maps m = {0};
	char path[1024];
	int r = target_maps_read(t, &m);
	if (r)
		return r;
	r = -ENOENT;
	for (int pass = 0; pass < 2 && r; pass++) {
		for (size_t i = 0; i < m.n && r; i++) {
			const struct target_map *mp = &m.map[i];
			const char *b = strrchr(mp->path, '/');
			b = b ? b + 1 : mp->path;
			bool want = pass == 0 ? !strcmp(mp->path, a->pi->object)
					      : !strncmp(b, "_asyncio.", 9);
			uint64_t sec = 0, first = 0;
			if (!want || mp->offset != 0 ||
			    elf_asyncio_section(target_path(t, mp->path, path, sizeof(path)), &sec,
						&first))
				continue;
			*at = mp->start - first + sec;
			r = 0;
		}
	}
	target_maps_free(&m);
	return r;
}

/* The few _Py_DebugOffsets members asyncio.c reads beyond the layout. */
static int pa_read_objects(struct py_async *a)
{
	const struct pa_version *v = a->v;
	const uint32_t at[] = {v->gen_iframe, v->gen_frame_state, v->frame_stackpointer,
			       v->ob_type, v->tp_name, v->tp_flags, v->set_used, v->set_table,
			       v->set_mask, v->long_tag, v->long_digit, v->llist_next};
	uint32_t *dst[] = {&a->ob.gen_iframe, &a->ob.gen_frame_state, &a->ob.frame_stackpointer,
			   &a->ob.ob_type, &a->ob.tp_name, &a->ob.tp_flags, &a->ob.set_used,
			   &a->ob.set_table, &a->ob.set_mask, &a->ob.long_tag, &a->ob.long_digit,
			   &a->ob.llist_next};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		uint64_t val;
		int r = target_read(a->pi->t, a->pi->runtime + at[i], &val, 8);
		if (r)
			return r;
		if (val > 2048)
			return -EINVAL;
		*dst[i] = (uint32_t)val;
	}
	const struct py_layout *L = &a->pi->L;
	int32_t fo[] = {L->frame_code, L->frame_instr, L->frame_owner,
			(int32_t)a->ob.frame_stackpointer};
	int32_t m = 0;
	for (size_t i = 0; i < 4; i++)
		if (fo[i] > m)
			m = fo[i];
	a->frame_win = (size_t)m + 8;
	a->gen_win = a->ob.gen_iframe + a->frame_win;
	if (a->gen_win > PA_WIN || a->ob.gen_frame_state >= a->ob.gen_iframe ||
	    a->ob.llist_next > 8)
		return -EINVAL;
	return 0;
}

static int pa_load(struct py_async *a, uint64_t at)
{
	uint8_t raw[8 * PY_ASYNC_OFFSETS_WORDS];
	int r = target_read(a->pi->t, at, raw, sizeof(raw));
	if (!r)
		r = py_async_offsets_parse(raw, sizeof(raw), &a->off);
	if (r)
		return r;
	a->have = true;
	cg_debug("python: asyncio debug offsets at %#llx", (unsigned long long)at);
	return 0;
}

static int pa_new(const struct py_interp *pi, void *sampler, struct py_async **out)
{
	*out = NULL;
	const struct pa_version *v = NULL;
	for (size_t i = 0; i < sizeof(pa_versions) / sizeof(pa_versions[0]); i++)
		if (pi->major == 3 && pa_versions[i].minor == pi->minor)
			v = &pa_versions[i];
	if (!v || !pi->runtime || pi->L.frame_owner < 0) {
		cg_warn("--async: CPython %d.%d has no asyncio debug offsets (3.14+ has); "
			"profiling threads as usual",
			pi->major, pi->minor);
		return 0;
	}
	struct py_async *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->pi = pi;
	a->sampler = sampler;
	a->v = v;
	int r = pa_read_objects(a);
	if (r) {
		free(a);
		cg_warn("--async: CPython 3.%d in process %d: its _Py_DebugOffsets do not describe "
			"generators; profiling threads as usual",
			pi->minor, (int)target_pid(pi->t));
		return 0;
	}
	*out = a;
	return 0;
}

int py_async_new(const struct py_interp *pi, void *sampler, struct py_async **out)
{
	int r = pa_new(pi, sampler, out);
	if (!r && *out)
		py_async_round(*out);
	return r;
}

int py_async_new_at(const struct py_interp *pi, void *sampler, uint64_t at,
		    struct py_async **out)
{
	int r = pa_new(pi, sampler, out);
	if (r || !*out)
		return r;
	(*out)->dbg_addr = at;
	r = pa_load(*out, at);
	if (r) {
		free(*out);
		*out = NULL;
	}
	return r;
}

void py_async_free(struct py_async *a)
{
	free(a);
}

void py_async_round(struct py_async *a)
{
	if (!a)
		return;
	a->nth = 0;
	if (a->have || a->dbg_addr)
		return;
	uint64_t now = cg_now_ns();
	if (now < a->next_probe)
		return;
	a->next_probe = now + PA_PROBE_NS;
	uint64_t at;
	int r = pa_find(a, &at);
	if (!r)
		r = pa_load(a, at);
	if (r == -EINVAL && !a->said) {
		a->said = true;
		cg_warn("--async: process %d: its asyncio debug offsets do not validate; "
			"profiling threads as usual",
			(int)target_pid(a->pi->t));
		a->next_probe = UINT64_MAX;
	}
}

void py_async_note_thread(struct py_async *a, uint64_t interp, uint64_t tstate, pid_t tid)
{
	if (a && a->nth < PA_MAX_THREADS)
		a->th[a->nth++] = (__typeof__(a->th[0])){interp, tstate, tid};
}

/* A live task object's window into buf (off.task_size bytes). */
static int pa_task_read(struct py_async *a, uint64_t task, uint8_t *buf)
{
	if (!task || (task & 7))
		return -EINVAL;
	int r = target_read(a->pi->t, task, buf, a->off.task_size);
	if (r)
		return r;
	uint64_t refcnt = rd64(buf, a->off.task_size, 0);
	if (!(refcnt & 0xffffffffULL) || !buf[a->off.task_is_task])
		return -EINVAL;
	return 0;
}

/* The type of the object at obj, and that type's tp_flags. */
static int pa_type(struct py_async *a, uint64_t obj, uint64_t *type, uint64_t *flags)
{
	int r = target_read(a->pi->t, obj + a->ob.ob_type, type, 8);
	if (!r && flags)
		r = target_read(a->pi->t, *type + a->ob.tp_flags, flags, 8);
	return r;
}

/* The task's name as asyncio shows it: a str, or (3.14 names lazily) the
 * number n of an unnamed "Task-n". */
static int pa_task_name(struct py_async *a, uint64_t task, const uint8_t *buf, char *out,
			size_t n)
{
	uint64_t obj = rd64(buf, a->off.task_size, a->off.task_name), type, flags;
	if (task == a->name_task && obj == a->name_obj && obj) {
		snprintf(out, n, "%s", a->name);
		return 0;
	}
	int r = obj ? pa_type(a, obj, &type, &flags) : -EINVAL;
	if (r)
		return r;
	if (flags & PA_TPFLAGS_UNICODE) {
		r = py_sampler_read_str(a->sampler, obj, out, n);
	} else if (flags & PA_TPFLAGS_LONG) {
		/* a compact int: lv_tag holds the digit count (<< 3) and sign */
		uint64_t tag;
		uint32_t dig[2] = {0, 0};
		r = target_read(a->pi->t, obj + a->ob.long_tag, &tag, 8);
		if (!r && (tag >> 3) > 2)
			r = -EINVAL;
		if (!r && (tag >> 3))
			r = target_read(a->pi->t, obj + a->ob.long_digit, dig, 4 * (tag >> 3));
		if (!r)
			snprintf(out, n, "Task-%llu",
				 (unsigned long long)dig[0] | (unsigned long long)dig[1] << 30);
	} else {
		r = -EINVAL;
	}
	if (r)
		return r;
	a->name_task = task;
	a->name_obj = obj;
	snprintf(a->name, sizeof(a->name), "%s", out);
	return 0;
}

static bool pa_state_live(const struct pa_version *v, int8_t st)
{
	return st == v->st_created || st == v->st_suspended || st == v->st_yield_from ||
	       st == v->st_yield_from_locked || st == v->st_executing;
}

/* The await chain of the coroutine coro into raw[], innermost first: each
 * coroutine, and what it awaits while that is a coroutine too. *awaiting:
 * the object the innermost one awaits (a future, a task...), or 0.
 * *executing: the outermost one runs now (its frames are a thread's).
 * The number of frames, or negative: -EINVAL a frame that is not a
 * coroutine's, -ELOOP a chain longer than PA_MAX_CHAIN. */
static int pa_chain(struct py_async *a, uint64_t coro, struct py_raw_frame *raw, uint32_t cap,
		    uint64_t *awaiting, bool *executing)
{
	const struct py_layout *L = &a->pi->L;
	uint8_t g[PA_WIN];
	uint32_t n = 0;
	uint64_t gen_type = 0;

	*awaiting = 0;
	*executing = false;
	while (coro) {
		if (n == PA_MAX_CHAIN || n == cap)
			return -ELOOP;
		if (coro & 7)
			return -EINVAL;
		int r = target_read(a->pi->t, coro, g, a->gen_win);
		if (r)
			return r;
		uint64_t type = rd64(g, a->gen_win, a->ob.ob_type);
		int8_t st = (int8_t)g[a->ob.gen_frame_state];
		if (n == 0)
			gen_type = type;
		if (!pa_state_live(a->v, st))
			break; /* finished: nothing of it runs or waits */
		if (n == 0 && st == a->v->st_executing)
			*executing = true;
		const uint8_t *f = g + a->ob.gen_iframe;
		if (f[L->frame_owner] != PA_FRAME_OWNED_BY_GENERATOR)
			return -EINVAL;
		uint64_t code = rd64(f, a->frame_win, (uint64_t)L->frame_code) & ~(uint64_t)7;
		uint64_t ip = rd64(f, a->frame_win, (uint64_t)L->frame_instr);
		uint64_t first = code + (uint64_t)L->code_adaptive;
		if (!code)
			return -EINVAL;
		raw[n] = (struct py_raw_frame){
			.code = code,
			.addr = ip >= first && ip - first < (1u << 30) ? (int)(ip - first) : -1,
			.maybe_not_code = a->pi->pycode_type != 0,
			.frame = coro + a->ob.gen_iframe,
		};
		a->instr[n] = ip;
		a->chain_frame[n++] = coro + a->ob.gen_iframe;
		if (st != a->v->st_yield_from && st != a->v->st_yield_from_locked)
			break;
		/* suspended in an await: what it awaits is on its stack */
		uint64_t sp = rd64(f, a->frame_win, a->ob.frame_stackpointer), ref = 0;
		if (sp < 8u * a->v->yf_depth ||
		    target_read(a->pi->t, sp - 8u * a->v->yf_depth, &ref, 8))
			return -EFAULT;
		uint64_t obj = ref & ~(uint64_t)7, otype = 0;
		if (!obj || pa_type(a, obj, &otype, NULL))
			break;
		if (otype != gen_type) {
			*awaiting = obj; /* a future or another awaitable: the end */
			break;
		}
		coro = obj;
	}
	/* outermost first as read; a stack is innermost first */
	for (uint32_t i = 0; i < n / 2; i++) {
		struct py_raw_frame tmp = raw[i];
		raw[i] = raw[n - 1 - i];
		raw[n - 1 - i] = tmp;
	}
	return (int)n;
}

/* Was the chain of n coroutines just read still where it was? (Read
 * without stopping the thread: a task that ran meanwhile moved on.) */
static bool pa_chain_still(struct py_async *a, uint32_t n)
{
	const struct py_layout *L = &a->pi->L;
	struct iovec local[PA_MAX_CHAIN], remote[PA_MAX_CHAIN];
	uint64_t got[PA_MAX_CHAIN];
	for (uint32_t i = 0; i < n; i++) {
		local[i] = (struct iovec){&got[i], 8};
		remote[i] = (struct iovec){
			(void *)(uintptr_t)(a->chain_frame[i] + (uint64_t)L->frame_instr), 8};
	}
	if (target_readv(a->pi->t, local, n, remote, n) != (ssize_t)(8 * n))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (got[i] != a->instr[i])
			return false;
	return true;
}

/* The running task of the thread at tstate, or 0. */
static uint64_t pa_running_task(struct py_async *a, uint64_t tstate)
{
	uint64_t loop = 0, task = 0;
	if (target_read(a->pi->t, tstate + a->off.ts_running_loop, &loop, 8) || !loop ||
	    target_read(a->pi->t, tstate + a->off.ts_running_task, &task, 8))
		return 0;
	return task;
}

static void pa_root_name(struct py_async *a, const char *name)
{
	snprintf(a->root, sizeof(a->root), "task %s", name);
}

int py_async_root(struct py_async *a, uint64_t tstate, struct cg_frame *frames,
		  const struct py_raw_frame *raw, int n, bool *truncated)
{
	uint8_t buf[PA_WIN];
	char name[PA_NAME_MAX];
	if (!a || !a->have || n <= 0)
		return n;
	uint64_t task = pa_running_task(a, tstate);
	if (!task || pa_task_read(a, task, buf))
		return n;
	uint64_t coro = rd64(buf, a->off.task_size, a->off.task_coro);
	uint64_t own = coro + a->ob.gen_iframe;
	int i = 0;
	while (i < n && raw[i].frame != own)
		i++;
	/* Not on this stack (the loop between two steps of it, or a torn
	 * read of the running task): the thread's stack as it is. */
	if (!coro || i == n || pa_task_name(a, task, buf, name, sizeof(name)))
		return n;
	pa_root_name(a, name);
	frames[i + 1] = (struct cg_frame){.name = a->root, .kind = CG_FK_TASK};
	*truncated = false; /* whatever max_depth cut lay above the task */
	return i + 2;
}

typedef int (*pa_task_cb)(struct py_async *a, uint64_t task, const uint8_t *buf, void *arg);

/* Each task in the circular list whose head (an llist_node) is at head:
 * the whole list is followed first, so a list that is broken or loops
 * (torn, or hostile) yields no task at all, then fn is called per task.
 * 0, or negative: -EFAULT a broken list, -ELOOP one that does not come
 * back to its head, or fn's first error. */
static int pa_each_task(struct py_async *a, uint64_t head, pa_task_cb fn, void *arg)
{
	uint8_t buf[PA_WIN];
	uint64_t node = 0, lap = 0;
	uint32_t n = 0, power = 1, lam = 0;
	int r = target_read(a->pi->t, head + a->ob.llist_next, &node, 8);
	while (!r && node != head) {
		if (n == PA_MAX_TASKS || node == lap)
			return -ELOOP;
		/* Brent's cycle check: a node met again is a loop, at once */
		if (++lam == power) {
			lap = node;
			power *= 2;
			lam = 0;
		}
		if (!node || (node & 7) || node < a->off.task_node)
			return -EFAULT;
		a->tasks[n++] = node - a->off.task_node;
		r = target_read(a->pi->t, node + a->ob.llist_next, &node, 8);
	}
	for (uint32_t i = 0; !r && i < n; i++) {
		/* a task freed since the list was read is no longer a task */
		if (pa_task_read(a, a->tasks[i], buf))
			return -ESTALE;
		r = fn(a, a->tasks[i], buf, arg);
	}
	return r;
}

struct pa_suspended {
	cg_sample_fn fn;
	void *arg;
	struct cg_sample_stats *st;
	pid_t tid;
	const char *tname;
	uint64_t running;
};

static int pa_sample_one(struct py_async *a, uint64_t task, const uint8_t *buf, void *arg)
{
	struct pa_suspended *ps = arg;
	uint32_t cap;
	struct py_raw_frame *raw = py_sampler_raw(a->sampler, &cap);
	struct cg_frame *frames;
	char name[PA_NAME_MAX];
	uint64_t awaiting;
	bool executing;

	if (task == ps->running)
		return 0; /* its thread's stack shows it */
	int n = pa_chain(a, rd64(buf, a->off.task_size, a->off.task_coro), raw, cap, &awaiting,
			 &executing);
	if (n == 0 || executing)
		return 0;
	if (n > 0)
		n = pa_task_name(a, task, buf, name, sizeof(name)) ? -EINVAL : n;
	if (n > 0 && !pa_chain_still(a, (uint32_t)n)) {
		ps->st->lost[CG_LOST_TORN]++;
		return 0;
	}
	if (n > 0)
		n = py_sampler_name(a->sampler, n, &frames);
	if (n <= 0) {
		ps->st->lost[n == -ESTALE ? CG_LOST_TORN : CG_LOST_READ]++;
		return 0;
	}
	pa_root_name(a, name);
	frames[n] = (struct cg_frame){.name = a->root, .kind = CG_FK_TASK};
	struct cg_sample smp = {
		.pid = target_pid(a->pi->t),
		.tid = ps->tid,
		.thread_name = ps->tname,
		.state = CG_ST_IDLE,
		.nframes = (uint32_t)n + 1,
		.frames = frames,
	};
	ps->fn(&smp, ps->arg);
	ps->st->taken++;
	return 0;
}

/* A task list that could not be read: one loss, torn when it changed
 * under the read (a task freed, a list that no longer closes). */
static void pa_count_lost(struct cg_sample_stats *st, int r)
{
	if (r)
		st->lost[r == -ESTALE || r == -ELOOP ? CG_LOST_TORN : CG_LOST_READ]++;
}

void py_async_sample_suspended(struct py_async *a, cg_sample_fn fn, void *arg,
			       struct cg_sample_stats *st)
{
	if (!a || !a->have)
		return;
	char tname[64];
	uint64_t interp = 0;
	for (uint32_t i = 0; i < a->nth; i++) {
		struct pa_suspended ps = {fn, arg, st, a->th[i].tid, tname,
					  pa_running_task(a, a->th[i].tstate)};
		tname[0] = '\0';
		if (ps.tid > 0)
			target_thread_name(a->pi->t, ps.tid, tname, sizeof(tname));
		pa_count_lost(st, pa_each_task(a, a->th[i].tstate + a->off.ts_tasks_head,
					       pa_sample_one, &ps));
		interp = a->th[i].interp;
	}
	/* tasks left by threads that exited: no thread of their own */
	struct pa_suspended ps = {fn, arg, st, 0, "", 0};
	if (interp)
		pa_count_lost(st, pa_each_task(a, interp + a->off.interp_tasks_head, pa_sample_one,
					       &ps));
}

/* The name of the type of obj (tp_name), "" when unreadable. */
static void pa_type_name(struct py_async *a, uint64_t obj, char *out, size_t n)
{
	uint64_t type, name;
	out[0] = '\0';
	if (pa_type(a, obj, &type, NULL) || target_read(a->pi->t, type + a->ob.tp_name, &name, 8) ||
	    target_read_cstr(a->pi->t, name, out, n))
		out[0] = '\0';
}

/* The tasks (or other futures) that await the task in buf: one object,
 * or a set of them. The number kept in a->waiters. */
static uint32_t pa_waiters(struct py_async *a, const uint8_t *buf)
{
	uint64_t ab = rd64(buf, a->off.task_size, a->off.task_awaited_by);
	if (!ab)
		return 0;
	if (!buf[a->off.task_awaited_by_is_set]) {
		a->waiters[0] = ab;
		return 1;
	}
	uint64_t used = 0, mask = 0, table = 0;
	if (target_read(a->pi->t, ab + a->ob.set_used, &used, 8) ||
	    target_read(a->pi->t, ab + a->ob.set_mask, &mask, 8) ||
	    target_read(a->pi->t, ab + a->ob.set_table, &table, 8) || mask >= PA_SET_SLOTS ||
	    ((mask + 1) & mask) || used > mask + 1)
		return 0;
	uint32_t k = 0;
	/* entries are {key, hash}; empty slots hold NULL, deleted ones the
	 * set's dummy, told apart below by its type's name */
	for (uint64_t i = 0; i <= mask && k < used && k < PA_MAX_WAITERS; i++) {
		uint64_t key = 0;
		if (target_read(a->pi->t, table + 16 * i, &key, 8))
			break;
		char tn[32];
		if (!key)
			continue;
		pa_type_name(a, key, tn, sizeof(tn));
		if (tn[0] != '<')
			a->waiters[k++] = key;
	}
	return k;
}

struct pa_dump {
	cg_task_fn fn;
	void *arg;
	pid_t tid;
	uint64_t tstate, running;
	int count;
};

static int pa_dump_one(struct py_async *a, uint64_t task, const uint8_t *buf, void *arg)
{
	struct pa_dump *pd = arg;
	char name[PA_NAME_MAX], awaiting[128] = "";
	uint32_t cap;
	struct py_raw_frame *raw = py_sampler_raw(a->sampler, &cap);
	struct cg_frame *frames = NULL;
	const struct cg_frame *shown = NULL;
	uint64_t aw = 0;
	bool executing = false;
	int n;

	if (pa_task_name(a, task, buf, name, sizeof(name)))
		snprintf(name, sizeof(name), "?");
	uint64_t running = pd->running;
	bool suspended = true;
	/* Read unpaused: the task can yield or resume between the reads. A
	 * chain whose outermost coroutine runs again is that of a task back
	 * on its thread's stack: both are read again, a few times. */
	for (int round = 0; round < PA_DUMP_TRIES; round++) {
		suspended = task != running;
		if (!suspended) {
			/* its chain is its thread's stack, down to the task's own frame */
			bool trunc = false;
			/* a walk that met the stack changing (a call, a return)
			 * is read again, a few times */
			for (int tries = 0; tries < PA_DUMP_TRIES; tries++) {
				n = py_sample_thread(a->sampler, pd->tstate, &shown, &trunc);
				if (n > 0)
					break;
			}
			uint64_t own = rd64(buf, a->off.task_size, a->off.task_coro) + a->ob.gen_iframe;
			int i = 0;
			while (i < n && raw[i].frame != own)
				i++;
			/* a whole stack without the task's frame: the task yielded
			 * since the loop named it running; its await chain is what it
			 * is now (the thread's stack belongs to another) */
			suspended = n > 0 && i == n && !trunc;
			n = i < n ? i + 1 : n;
			executing = !suspended;
		}
		if (!suspended)
			break;
		n = pa_chain(a, rd64(buf, a->off.task_size, a->off.task_coro), raw, cap, &aw,
			     &executing);
		if (!executing || !pd->tstate || round + 1 == PA_DUMP_TRIES)
			break;
		running = pa_running_task(a, pd->tstate);
	}
	if (suspended) {
		if (n > 0)
			n = py_sampler_name(a->sampler, n, &frames);
		shown = frames;
		if (aw)
			pa_type_name(a, aw, awaiting, sizeof(awaiting));
		/* `await fut` leaves the future's iterator on the stack: the
		 * future it iterates is what the task waits for (the object
		 * holds just that pointer, after its PyObject header) */
		uint64_t fut = 0;
		if (aw && !strcmp(awaiting, "_asyncio.FutureIter") &&
		    !target_read(a->pi->t, aw + a->ob.ob_type + 8, &fut, 8) && fut && !(fut & 7)) {
			aw = fut;
			pa_type_name(a, aw, awaiting, sizeof(awaiting));
		}
	}
	uint32_t nw = pa_waiters(a, buf);
	struct cg_task ct = {
		.id = task,
		.name = name,
		.running = executing,
		.tid = pd->tid,
		.nframes = n > 0 ? (uint32_t)n : 0,
		.frames = shown,
		.awaiting = awaiting,
		.awaiting_id = aw,
		.nawaited_by = nw,
		.awaited_by = a->waiters,
	};
	pd->fn(&ct, pd->arg);
	pd->count++;
	return 0;
}

int py_async_tasks(struct py_async *a, cg_task_fn fn, void *arg)
{
	const struct py_layout *L = &a->pi->L;
	uint64_t interp = 0, ts = 0;
	struct pa_dump pd = {fn, arg, 0, 0, 0, 0};
	int r = 0;

	if (!a->have)
		py_async_round(a);
	if (!a->have)
		return cg_fail(-ENOENT,
			       "process %d: no asyncio debug offsets (has it imported asyncio?)",
			       (int)target_pid(a->pi->t));
	r = py_read_interp((struct py_interp *)a->pi, &interp);
	if (!r && interp)
		r = target_read(a->pi->t, interp + (uint64_t)L->interp_tstate_head, &ts, 8);
	for (int k = 0; !r && ts && k < PA_MAX_THREADS; k++) {
		uint64_t next = 0, tid = 0;
		r = target_read(a->pi->t, ts + (uint64_t)L->tstate_next, &next, 8);
		if (!r)
			r = target_read(a->pi->t, ts + (uint64_t)L->tstate_native_thread_id, &tid, 8);
		if (r)
			break;
		pd.tid = (pid_t)tid;
		pd.tstate = ts;
		pd.running = pa_running_task(a, ts);
		r = pa_each_task(a, ts + a->off.ts_tasks_head, pa_dump_one, &pd);
		ts = next;
	}
	pd.tid = 0;
	pd.running = 0;
	if (!r && interp)
		r = pa_each_task(a, interp + a->off.interp_tasks_head, pa_dump_one, &pd);
	if (r)
		return cg_fail(r, "process %d: the asyncio task lists could not be read (%s)",
			       (int)target_pid(a->pi->t), strerror(-r));
	return pd.count;
}
