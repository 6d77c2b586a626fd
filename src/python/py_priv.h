/* State shared by the CPython sampler's files: the interpreter found in a
 * target, and the caches the walker keeps. */
#ifndef CGPROF_PY_PRIV_H
#define CGPROF_PY_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "cgprof/sample.h"
#include "cgprof/util.h"
#include "layout.h"

struct target;

/* A word of a window read from the target (an object's or a frame's
 * first bytes): 0 where off is -1 (no such field) or past the window. */
static inline uint64_t py_rd64(const uint8_t *buf, size_t len, int32_t off)
{
	uint64_t v = 0;
	if (off >= 0 && (size_t)off + 8 <= len)
		memcpy(&v, buf + off, 8);
	return v;
}

static inline uint32_t py_rd32(const uint8_t *buf, size_t len, int32_t off)
{
	uint32_t v = 0;
	if (off >= 0 && (size_t)off + 4 <= len)
		memcpy(&v, buf + off, 4);
	return v;
}
struct py_async;

/* What is read while the thread is paused: just enough to name the frame
 * later, since code objects do not change. */
struct py_raw_frame {
	uint64_t code;
	int addr; /* byte offset of the current instruction, -1 unknown */
	bool entry; /* outermost frame of one eval-loop C call (native merge) */
	bool maybe_not_code; /* 3.13: f_executable, checked when named */
	uint64_t frame; /* the frame's address (asyncio: a task's own frame) */
};

/* Addresses of the interpreter's own type objects, to check what an
 * object claims to be (0: the symbol was not found, the check is off). */
struct py_types {
	uint64_t dict, module, integer, str;
};

struct py_interp {
	struct target *t;
	int major, minor, micro;
	char version[32];
	char object[512];       /* libpython or the executable */
	struct py_layout L;
	enum py_linetable_kind lt_kind;
	int lasti_scale;        /* f_lasti units -> bytes */
	uint64_t runtime;       /* &_PyRuntime (3.7+) */
	uint64_t interp_head_var; /* &interp_head (3.6) */
	uint64_t tstate_current;  /* &_PyThreadState_Current (3.6) */
	uint64_t pycode_type;     /* &PyCode_Type */
	struct py_types types;
};

/* 0 when CPython is present and initialised (pi filled); -ENOENT when not
 * (yet); -ENOTSUP (with cg_fail) when it never will be usable. */
int py_discover(struct target *t, struct py_interp *pi);
/* 0 when CPython pi->major.pi->minor is one cgprof reads; else -ENOTSUP
 * with a message that names it and the range. */
int py_version_supported(const struct py_interp *pi, struct target *t);
/* pi->L for pi->minor: on 3.13+ from the _Py_DebugOffsets at pi->runtime
 * (refused, naming why, when they do not validate or describe a
 * free-threaded build), else the generated row. 0 or -ENOTSUP. */
int py_layout_for_target(struct py_interp *pi, struct target *t);
/* Take layout L (a table row, or one built from _Py_DebugOffsets) and
 * what follows from it: the line-table format and f_lasti's unit. */
void py_interp_set_layout(struct py_interp *pi, const struct py_layout *L);
/* The main interpreter's address. */
int py_read_interp(struct py_interp *pi, uint64_t *interp);

/* The sampler over an interpreter already described (py_discover() does
 * it for a real process; tests and the fuzzer fill pi by hand over a fake
 * memory target). Close with python_sampler_ops.close. */
int py_sampler_new(const struct py_interp *pi, const struct cg_sampler_opts *o, void **priv);
/* The frames of the thread whose PyThreadState is at tstate, leaf first,
 * exactly as a sample reads and names them (no pausing, no native
 * merge). The number of frames (*frames valid until the next call), or
 * negative: -EFAULT unreadable, -ELOOP a chain that loops, -EINVAL bad
 * object. */
int py_sample_thread(void *priv, uint64_t tstate, const struct cg_frame **frames,
		     bool *truncated);

/* For asyncio.c: the sampler's string reader (a str object, UTF-8,
 * bounded), and its naming of frames put in py_sampler_raw()'s array
 * (at most *cap of them): 0..n named into the returned frames, which
 * have room for one more (a task root). The number named, or negative. */
int py_sampler_read_str(void *priv, uint64_t addr, char *out, size_t n);
struct py_raw_frame *py_sampler_raw(void *priv, uint32_t *cap);
int py_sampler_name(void *priv, int n, struct cg_frame **frames);

/* struct _Py_AsyncioModuleDebugOffsets (CPython 3.14+, the _asyncio
 * module's .AsyncioDebug section): thirteen 64-bit words. */
#define PY_ASYNC_OFFSETS_WORDS 13
struct py_async_offsets {
	uint64_t task_size, task_name, task_awaited_by, task_is_task, task_awaited_by_is_set,
		task_coro, task_node;
	uint64_t interp_size, interp_tasks_head;
	uint64_t ts_size, ts_running_loop, ts_running_task, ts_tasks_head;
};
/* Decode and check len raw bytes of them: 0, or -EINVAL when a size is
 * absurd or a member lies outside its struct. */
int py_async_offsets_parse(const void *raw, size_t len, struct py_async_offsets *o);

/* asyncio tasks (asyncio.c), CPython 3.14+, from the _asyncio module's
 * debug offsets (.AsyncioDebug section). NULL-safe where it says so. */
/* New state for --async over pi (kept by reference: it outlives a). When
 * the target's CPython has none of what asyncio.c reads (<= 3.13), one
 * warning says so and *a is NULL: the caller profiles threads as usual. */
int py_async_new(const struct py_interp *pi, void *sampler, struct py_async **a);
/* The same with the offsets read at address at (tests and the fuzzer,
 * whose fake targets have no maps): -EINVAL when they do not validate. */
int py_async_new_at(const struct py_interp *pi, void *sampler, uint64_t at,
		    struct py_async **a);
void py_async_free(struct py_async *a);
/* A round begins: looks for the offsets again (at most every 250 ms)
 * while the program has not imported asyncio yet. */
void py_async_round(struct py_async *a);
/* The thread at tstate ran frames[0..n) (raw[i].frame their addresses):
 * when it runs a task whose coroutine frame is among them, the frames
 * above that one (the event loop) are replaced by the root "task NAME".
 * The new number of frames (*truncated cleared when the cut removed what
 * max_depth cut), else n. */
int py_async_root(struct py_async *a, uint64_t tstate, struct cg_frame *frames,
		  const struct py_raw_frame *raw, int n, bool *truncated);
/* The round saw thread tstate (kernel tid) of the interpreter at interp. */
void py_async_note_thread(struct py_async *a, uint64_t interp, uint64_t tstate, pid_t tid);
/* --idle: one sample for every suspended task of the threads noted this
 * round: its await chain, innermost first, under "task NAME". */
void py_async_sample_suspended(struct py_async *a, cg_sample_fn fn, void *arg,
			       struct cg_sample_stats *st);
/* Every task (running ones with the stack of their thread), for dump. */
int py_async_tasks(struct py_async *a, cg_task_fn fn, void *arg);

/* objects.c: reading a few kinds of Python object out of the target.
 * Everything read is untrusted: types are checked against pi->types,
 * lengths and loops bounded. 0 or negative: -EFAULT unreadable, -EINVAL
 * not what it should be, -ENOENT no such key. */

/* The str at addr as UTF-8 in out (NUL-terminated, cut at n-1 bytes). */
int py_str_read(const struct py_interp *pi, uint64_t addr, char *out, size_t n);
/* 0 when the str at addr is exactly the ASCII string want (one read). */
int py_str_eq(const struct py_interp *pi, uint64_t addr, const char *want);
/* A non-negative int that fits in 64 bits. */
int py_long_read(const struct py_interp *pi, uint64_t addr, uint64_t *val);
/* Call fn(key, value, arg) for each live item of the dict at addr (at
 * most PY_DICT_MAX_ITEMS); fn returns 0 to go on, else the scan stops
 * and returns that. */
#define PY_DICT_MAX_ITEMS 65536
typedef int (*py_dict_item_fn)(uint64_t key, uint64_t value, void *arg);
int py_dict_scan(const struct py_interp *pi, uint64_t dict, py_dict_item_fn fn, void *arg);
/* The stamp of the dict at addr that any added key changes: its keys
 * object and that object's entry count. *keys: the last stamp's keys
 * object (0: none), so a steady dict costs one system call. */
int py_dict_stamp(const struct py_interp *pi, uint64_t dict, uint64_t *keys, uint64_t *nentries);
/* The value for str key `key` in the dict at addr. *hint, if not NULL
 * and set, is the address of an interned copy of the key, compared
 * before any string is read; on success it is set to the key found. */
int py_dict_get_str(const struct py_interp *pi, uint64_t dict, const char *key, uint64_t *hint,
		    uint64_t *val);
/* The instance attribute `name` of the object at obj, wherever this
 * version keeps it (a __dict__, or values shared with the type's keys). */
int py_attr_get(const struct py_interp *pi, uint64_t obj, const char *name, uint64_t *hint,
		uint64_t *val);

/* threadnames.c: Python thread names from threading._active, cached by
 * thread ident (the pthread_t in PyThreadState.thread_id). */
#define PY_TNAME_MAX 128
#define PY_TNAMES_MAX 1024
struct py_tnames;
/* pi must outlive the reader. 0 or -ENOMEM. */
int py_tnames_new(const struct py_interp *pi, struct py_tnames **out);
void py_tnames_free(struct py_tnames *tn);
/* The interpreter's name of thread ident, or NULL (fall back to the OS
 * name). Reads the registry again at most once a second, or when an
 * ident never seen since the last read appears. */
const char *py_tnames_get(struct py_tnames *tn, uint64_t ident);
/* The name for a sample into out: the interpreter's name of thread
 * ident, else the OS name of tid cut to valid UTF-8, else "". */
void py_tnames_name(struct py_tnames *tn, uint64_t ident, pid_t tid, char *out, size_t n);
/* Read the registry now: the number of names known, or negative. */
int py_tnames_refresh(struct py_tnames *tn);

/* Learning where glibc's struct pthread keeps the kernel tid (<= 3.10
 * know a thread by its pthread_t only), from the first PY_PTID_WORDS
 * 32-bit words of the structs seen. */
#define PY_PTID_WORDS 256
struct py_ptid_learn {
	uint64_t cand[4];                /* words that may be the tid */
	uint32_t seen;                   /* structs that narrowed them so far */
	uint64_t first_addr;             /* the first of them, and its words */
	int32_t first[PY_PTID_WORDS];
};
/* Narrow by the struct at addr (its words in buf); tids: the process's
 * threads. 0 and *off (bytes) once learnt, else -EAGAIN. */
int py_ptid_learn(struct py_ptid_learn *l, uint64_t addr, const int32_t *buf, size_t nwords,
		  const pid_t *tids, int ntids, int *off);

#endif
