/* Native stacks: ELF symbolization of a target's mapped objects, libunwind
 * over ptrace, and merging native frames with the Python frames they run. */
#ifndef CGPROF_NATIVE_H
#define CGPROF_NATIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgprof/sample.h"

struct target;

/* ---- symbolization (src/native/elfsym.c) ---------------------------- */

/* Symbols of the objects mapped by one process, cached per object file
 * (path, inode, mtime) and refreshed when the process's maps change. */
struct elfsym_proc;

int elfsym_proc_new(struct target *t, struct elfsym_proc **out);
void elfsym_proc_free(struct elfsym_proc *p);
/* Re-read the target's maps; objects whose file is unchanged keep their
 * symbol tables. Returns 1 if the mapping changed, 0 if not, negative on
 * error (-ESRCH: process gone). */
int elfsym_proc_refresh(struct elfsym_proc *p);

struct elfsym_result {
	const char *sym;    /* NULL if no symbol covers the address */
	const char *object; /* basename of the mapped object; NULL if unmapped */
	uint64_t rel;       /* address as the object's own vaddr (for addr2line) */
	uint64_t sym_off;   /* rel - symbol start */
};
/* Look up an absolute address of the target. 0, or -ENOENT when it is in
 * no file-backed mapping we know (the caller may refresh and retry).
 * Strings live until the next refresh that drops the object. */
int elfsym_lookup(struct elfsym_proc *p, uint64_t addr, struct elfsym_result *r);

/* Where the unwinder finds the binary-search table of the object mapped
 * at addr: the absolute address of its .eh_frame_hdr in the target and the
 * executable range it covers. 0, or -ENOENT. */
int elfsym_eh_frame_hdr(struct elfsym_proc *p, uint64_t addr, uint64_t *hdr, uint64_t *start,
			uint64_t *end);

/* Symbols of one ELF file on its own (tests, and the Python sampler if it
 * wants the same reader). Reads .symtab and .dynsym and, when the file has
 * a build-id with a separate debug file under debug_root (NULL: the
 * default /usr/lib/debug), that file's .symtab as well. */
struct elfsym_table;
int elfsym_table_load(const char *path, const char *debug_root, struct elfsym_table **out);
/* The same from an ELF image in memory (the vDSO read from a target; the
 * fuzzer), without a debug file. img must stay valid and writable until
 * this returns (libelf may convert it in place); the table copies what it
 * keeps. */
int elfsym_table_load_mem(void *img, size_t len, struct elfsym_table **out);
void elfsym_table_free(struct elfsym_table *tab);
size_t elfsym_table_count(const struct elfsym_table *tab);
/* Symbol covering a file vaddr, or NULL; *off gets vaddr - symbol start. */
const char *elfsym_table_find(const struct elfsym_table *tab, uint64_t vaddr, uint64_t *off);
/* vaddr of a named symbol (first match); 0 and -ENOENT if absent. */
int elfsym_table_addr(const struct elfsym_table *tab, const char *name, uint64_t *vaddr);
/* Hex build-id ("" if none) of the loaded file. */
const char *elfsym_table_build_id(const struct elfsym_table *tab);

/* What a runtime's discovery reads of one ELF file: the st_value of each
 * of names[0..n) in .symtab and .dynsym, data and functions alike (the
 * table above keeps functions only), into vals (0: absent or undefined;
 * the first definition wins); the vaddr of the first PT_LOAD, for the
 * load bias (UINT64_MAX: none); and, if section is set, that section's
 * sh_addr (0: absent). */
struct elfsym_want {
	const char *const *names;
	size_t n;
	uint64_t *vals;
	const char *section;
	uint64_t section_addr;
	uint64_t first_load;
};
/* 0 once the file is read (whatever it holds), -errno if it cannot be
 * opened, -ENOEXEC if it is no ELF file. */
int elfsym_file_values(const char *path, struct elfsym_want *w);

/* ---- unwinding (src/native/unwind.c) -------------------------------- */

/* One native frame: the cg_frame to report plus what merging needs. */
enum native_frame_flags {
	NATIVE_F_EVAL = 1u << 0,     /* a CPython eval-loop frame */
	NATIVE_F_PLUMBING = 1u << 1, /* interpreter call machinery / startup */
	NATIVE_F_EXACT = 1u << 2,    /* ip is where the frame stopped (leaf, or
					above a signal frame), not a return
					address */
	NATIVE_F_UNKNOWN = 1u << 3,  /* no symbol covers ip */
};

struct native_frame {
	struct cg_frame f; /* kind CG_FK_NATIVE; name "sym" or "0xREL"; file
			      object basename or NULL */
	uint64_t ip;       /* absolute instruction pointer (return address
			      for callers) */
	uint32_t flags;    /* enum native_frame_flags */
};

struct native_ctx;

/* One per target process: a libunwind address space and the process's
 * symbols. */
int native_open(struct target *t, struct native_ctx **out);
void native_close(struct native_ctx *c);

/* Unwind thread tid, which the caller has paused (target_pause) for the
 * whole call. Frames are leaf first, at most max; *truncated is set when
 * the stack went on beyond max. Names are valid until the next call on
 * this ctx. 0 (with *n >= 1), or -ESRCH (thread gone), -EFAULT (no
 * registers/stack could be read). */
int native_unwind_thread(struct native_ctx *c, pid_t tid, struct native_frame *frames,
			 uint32_t max, uint32_t *n, bool *truncated);
/* The same in two halves, so the thread is paused only for the first:
 * unwind_ips reads registers and stack (frames get ip and flags only);
 * symbolize names them afterwards, with the thread running again. */
int native_unwind_ips(struct native_ctx *c, pid_t tid, struct native_frame *frames, uint32_t max,
		      uint32_t *n, bool *truncated);
/* The same from a kernel sample of a running thread (target_perf):
 * registers from the sample, the stack from its copy (beyond the copy,
 * from the process's memory), unwind tables from the target's memory.
 * Nothing is stopped or ptraced. 0, or -EFAULT (no user registers, or
 * no frame could be unwound). */
struct target_perf_sample;
int native_unwind_sample(struct native_ctx *c, const struct target_perf_sample *smp,
			 struct native_frame *frames, uint32_t max, uint32_t *n, bool *truncated);
/* Where a walker of code that has no unwind tables (HotSpot's JIT and
 * interpreter) takes over from a kernel sample's native frames: the
 * first caller of the leaf whose ip stop() accepts, with the sp and
 * rbp libunwind recovered for it. */
struct native_handoff {
	uint64_t ip, sp, fp;
};
/* Unwind smp (as native_unwind_sample does) at most max frames out to
 * that caller. 0, -ENOENT (none within max, or the stack ended first),
 * -EFAULT (no user registers, nothing unwound). x86_64 only (-ENOENT
 * elsewhere). */
int native_unwind_sample_to(struct native_ctx *c, const struct target_perf_sample *smp,
			    bool (*stop)(void *arg, uint64_t ip), void *arg, uint32_t max,
			    struct native_handoff *out);
/* Names frames[0..*n). A thread's first function (clone, _start) is its
 * root: frames past it are stack garbage (a thread caught before its entry
 * code marked the end of the chain) and are dropped, lowering *n. */
int native_symbolize(struct native_ctx *c, struct native_frame *frames, uint32_t *n);
/* Once per sampling round, before pausing anything, with the target's
 * live thread ids: forgets state of threads that are gone and, about once
 * a second, re-reads the maps (so that cost is never inside a pause). */
void native_round(struct native_ctx *c, const pid_t *tids, size_t n);

/* CPython's eval loop: _PyEval_EvalFrameDefault, _PyEval_EvalFrame,
 * PyEval_EvalFrameEx, PyEval_EvalFrame and their compiler clones
 * (".cold", ".isra.0"...). */
bool native_is_eval_frame(const char *sym);
/* Interpreter call machinery and process/thread start-up that a merged
 * stack drops (vectorcall, PyObject_Call, Py_RunMain, start_thread...). */
bool native_is_plumbing_frame(const char *sym);

/* ---- merging (src/native/merge.c) ----------------------------------- */

/* Merge a native stack with the Python stack of the same thread, both
 * leaf first. py_entry[i] is true when Python frame i is the outermost one
 * run by one C call of the eval loop (<= 3.10: every frame; 3.11:
 * _PyInterpreterFrame.is_entry; 3.12+: the frame just above a C-stack
 * shim frame). So: each eval-loop native frame is replaced by its group of
 * Python frames (leaf-most first, up to and including the next entry
 * frame); plumbing frames are dropped; other native frames stay, except
 * unnamed frames of the interpreter's own object (a stripped python) that
 * sit root-ward of an eval frame or of code outside the interpreter:
 * there they can only be call machinery. cut_root says either walk
 * stopped short of the root (max depth): then running out of Python
 * groups or of eval frames ends the merged stack (*truncated) instead of
 * being a mismatch. Returns
 * 0 with *nout set (truncated to max, *truncated set if so), or -EPROTO
 * when the eval frames and the Python entry groups do not correspond one
 * to one (count that sample as CG_LOST_MERGE). */
int native_merge(const struct native_frame *nat, uint32_t nnat, const struct cg_frame *py,
		 const bool *py_entry, uint32_t npy, bool cut_root, struct cg_frame *out,
		 uint32_t max, uint32_t *nout, bool *truncated);

/* ---- sampler (src/native/sampler.c) --------------------------------- */

/* Plain native programs (`cgprof run --native -- ./prog`): every thread
 * paused in turn, unwound, symbolized. Needs pausing: open fails with
 * --nonblocking. */
extern const struct cg_sampler_ops native_sampler_ops;

#endif
