/* Internal pieces of the out-of-process HotSpot walker shared by the
 * src/jvm/ files, the unit tests and the fuzz harness. */
#ifndef CGPROF_JVM_WALK_H
#define CGPROF_JVM_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgprof/sample.h"
#include "cgprof/target.h"
#include "cgprof/util.h"

/* One word of the target at a, read whole or not at all: 0 or negative
 * (see target_read). The one reader every src/jvm/ file uses. */
static inline int jvm_rd64(struct target *t, uint64_t a, uint64_t *v)
{
	return target_read(t, a, v, 8);
}

static inline int jvm_rd32(struct target *t, uint64_t a, uint32_t *v)
{
	return target_read(t, a, v, 4);
}

/* ---- VMStructs / VMTypes tables (src/jvm/vmstructs.c) ---------------- */

/* Bounds for tables read from the target (untrusted): a JDK 25 has about
 * 1,300 field entries, 900 types and 800 constants. */
#define JVM_VMS_MAX_ENTRIES 16384u
#define JVM_VMS_MAX_STRIDE 256u
#define JVM_VMS_MAX_NAME 128u

/* Absolute addresses, in the target, of the variables libjvm.so exports to
 * describe its tables (gHotSpotVMStructs and its layout symbols). 0: the
 * symbol was not found. */
enum jvm_vms_sym {
	JVM_SYM_STRUCTS = 0,     /* VMStructEntry *gHotSpotVMStructs */
	JVM_SYM_S_TYPE,          /* ...EntryTypeNameOffset */
	JVM_SYM_S_FIELD,         /* ...EntryFieldNameOffset */
	JVM_SYM_S_STATIC,        /* ...EntryIsStaticOffset */
	JVM_SYM_S_OFFSET,        /* ...EntryOffsetOffset */
	JVM_SYM_S_ADDRESS,       /* ...EntryAddressOffset */
	JVM_SYM_S_STRIDE,        /* ...EntryArrayStride */
	JVM_SYM_TYPES,           /* VMTypeEntry *gHotSpotVMTypes */
	JVM_SYM_T_NAME,
	JVM_SYM_T_SIZE,
	JVM_SYM_T_STRIDE,
	JVM_SYM_INTS,            /* VMIntConstantEntry *gHotSpotVMIntConstants */
	JVM_SYM_I_NAME,
	JVM_SYM_I_VALUE,
	JVM_SYM_I_STRIDE,
	JVM_SYM_LONGS,           /* VMLongConstantEntry *gHotSpotVMLongConstants */
	JVM_SYM_L_NAME,
	JVM_SYM_L_VALUE,
	JVM_SYM_L_STRIDE,
	/* optional, from .symtab: where the JVM keeps the field offsets of
	 * java.lang.Thread and String it computed at start-up (int each) */
	JVM_SYM_THREAD_NAME,     /* java_lang_Thread::_name_offset */
	JVM_SYM_THREAD_STATUS,   /* java_lang_Thread::_thread_status_offset (<= 18) */
	JVM_SYM_THREAD_HOLDER,   /* java_lang_Thread::_holder_offset (19+) */
	JVM_SYM_HOLDER_STATUS,   /* java_lang_Thread_FieldHolder::_thread_status_offset */
	JVM_SYM_STRING_VALUE,    /* java_lang_String::_value_offset */
	JVM_SYM_STRING_CODER,    /* java_lang_String::_coder_offset */
	JVM_SYM__COUNT
};
extern const char *const jvm_vms_sym_names[JVM_SYM__COUNT];

struct jvm_vms_syms {
	uint64_t addr[JVM_SYM__COUNT];
	uint64_t lo, hi;  /* where libjvm.so is mapped, all its segments */
};

struct jvm_vms_field {
	char *type, *field;
	uint64_t value;  /* offset in the type, or for a static its address */
	bool is_static;
};

struct jvm_vms_named {
	char *name;
	int64_t value;   /* a type's size, or a constant */
};

struct jvm_vms {
	struct jvm_vms_field *fields;
	size_t nfields;
	struct jvm_vms_named *types, *consts;
	size_t ntypes, nconsts;
};

/* Find libjvm.so among the target's mappings and its table symbols. 0, or
 * -ENOENT (no libjvm / symbols absent: an unexported build) with cg_fail. */
int jvm_vms_find_syms(struct target *t, struct jvm_vms_syms *out, char *libjvm, size_t n);
/* Read the tables the symbols describe into out. Each stride and offset is
 * checked, strings are bounded, the number of entries is bounded. 0,
 * -EPROTO (tables that do not make sense, with cg_fail), -ENOMEM, or a
 * read error. Free with jvm_vms_free() either way. */
int jvm_vms_read(struct target *t, const struct jvm_vms_syms *sym, struct jvm_vms *out);
void jvm_vms_free(struct jvm_vms *v);
/* Lookups: 0 and *val, or -ENOENT. */
int jvm_vms_offset(const struct jvm_vms *v, const char *type, const char *field, uint64_t *val);
int jvm_vms_static(const struct jvm_vms *v, const char *type, const char *field, uint64_t *addr);
int jvm_vms_size(const struct jvm_vms *v, const char *type, uint64_t *size);
int jvm_vms_const(const struct jvm_vms *v, const char *name, int64_t *val);
/* The constant called name, or dflt where the tables do not have it. */
static inline int64_t jvm_vms_const_or(const struct jvm_vms *v, const char *name, int64_t dflt)
{
	int64_t c;
	return jvm_vms_const(v, name, &c) == 0 ? c : dflt;
}

/* ---- java.lang.Thread objects (src/jvm/threadobj.c) ----------------- */

/* How to read a thread's Java name and java.lang.Thread.State from its
 * Thread object. Off (ok false) when any piece is missing. */
struct jvm_objlayout {
	bool ok, names;
	bool compressed;             /* UseCompressedOops */
	uint64_t narrow_base;
	uint32_t narrow_shift;
	uint32_t jt_threadobj;       /* JavaThread::_threadObj (an OopHandle) */
	int32_t name_off, status_off, holder_off, holder_status_off;
	int32_t value_off, coder_off;
	uint32_t array_length_off, array_base_off;
	int64_t st_runnable, st_blocked, st_wait, st_wait_timed, st_park, st_park_timed,
		st_sleeping;
};

/* Resolve from the tables, the optional symbols and the JVM's flags. */
void jvm_objlayout_resolve(struct target *t, const struct jvm_vms *v,
			   const struct jvm_vms_syms *s, struct jvm_objlayout *O);
/* The java.lang.Thread.State of a JavaThread as a dump prints it (NATIVE
 * for RUNNABLE outside Java); -1 when unreadable. */
int jvm_thread_status(struct target *t, const struct jvm_objlayout *O, uint64_t jt, int ts);
/* The Java name of a JavaThread into buf (printable ASCII); 0 or
 * negative. */
int jvm_thread_jname(struct target *t, const struct jvm_objlayout *O, uint64_t jt, char *buf,
		     size_t n);

/* ---- resolved layout and capabilities (src/jvm/layout.c) ------------ */

#define JVM_NO_OFF UINT32_MAX
/* The walker copies a ConstMethod header whole; HotSpot's is ~56 bytes. */
#define JVM_MAX_CONSTMETHOD 128u

/* Every offset the walker uses, looked up by name once. JVM_NO_OFF: not
 * described by this JVM, and the capability using it is off. */
struct jvm_layout {
	/* thread list */
	uint64_t java_thread_list;   /* &ThreadsSMRSupport::_java_thread_list */
	uint32_t tl_length, tl_threads;
	uint32_t jt_anchor, jt_state, jt_osthread, jt_threadobj;
	uint32_t anchor_sp, anchor_pc, anchor_fp;
	uint32_t os_tid, os_state;
	uint32_t jt_stack_base;      /* JVM_NO_OFF: walks bounded by size only */
	/* methods */
	uint32_t m_constmethod;
	uint32_t cm_constants, cm_name_idx, cm_sig_idx, cm_code_size, cm_flags, cm_flags_size;
	uint64_t cm_size;            /* sizeof(ConstMethod): bytecodes follow; <= JVM_MAX_CONSTMETHOD */
	uint32_t cm_linenumber_flag; /* bit of _flags */
	uint32_t cp_holder;
	uint64_t cp_size;            /* sizeof(ConstantPool): slots follow */
	uint32_t k_name;
	uint32_t cp_srcfile_idx;     /* JVM_NO_OFF: frames without a file */
	uint32_t sym_length, sym_body;
	/* code cache */
	uint64_t code_heaps;         /* &CodeCache::_heaps */
	uint32_t ga_len, ga_data;
	uint32_t ch_memory, ch_segmap, ch_log2_seg;
	uint32_t vs_low_b, vs_high_b, vs_low, vs_high;
	uint64_t heapblock_size;
	uint32_t cb_name, cb_frame_size, cb_size;
	uint32_t nm_method;
	/* inlining: PcDesc -> ScopeDesc (JDK 17/21 and 23+ shapes) */
	uint32_t pc_pc_off, pc_scope_off;
	uint64_t pcdesc_size;
	uint32_t nm_pcs_off, nm_deps_off, nm_meta_off, nm_scopes_ptr;   /* 17 */
	uint32_t nm_scopes_off, nm_immutable, cb_mutable, cb_reloc_size; /* 25 */
	uint32_t cb_code_begin, cb_code_offset, nm_imm_size;
	bool has_scopes;
	uint32_t cb_kind;            /* JDK 23+: a kind byte; else by name */
	int64_t kind_nmethod;
	uint64_t call_stub_ret;      /* &StubRoutines::_call_stub_return_address, 0 if
					not described: where every Java stack ends */
	uint64_t interp_code;        /* &AbstractInterpreter::_code (StubQueue*) */
	uint32_t sq_buffer, sq_limit;
	/* values */
	int64_t ts_in_java, ts_in_vm, ts_in_native, ts_blocked;
	int64_t os_monitor_wait, os_object_wait, os_condvar_wait, os_sleeping, os_runnable;
	/* capabilities, each from what was found */
	bool has_threads, has_anchor, has_names, has_lines, has_code, has_os_state;
	char missing[256];           /* what switched something off, for -v */
};

/* Resolve L from the tables. 0 when at least thread listing and anchored
 * interpreted frames work; -ENOTSUP with cg_fail naming what is missing. */
int jvm_layout_resolve(const struct jvm_vms *v, struct jvm_layout *L);

/* ---- the walker (src/jvm/walker.c) ---------------------------------- */

#define JVM_WALK_MAX_THREADS 4096u
#define JVM_WALK_MAX_DEPTH 2048u
#define JVM_NAME_MAX 512u

/* HotSpot's JavaThreadState values we distinguish. */
enum jvm_tstate {
	JVM_TS_OTHER = 0,
	JVM_TS_IN_JAVA,
	JVM_TS_IN_VM,
	JVM_TS_IN_NATIVE,
	JVM_TS_BLOCKED,
};

struct jvm_jthread {
	uint64_t addr;         /* JavaThread* */
	pid_t tid;             /* OS thread id, in the JVM's PID namespace */
	enum jvm_tstate ts;
	enum cg_state state;   /* as a Java thread dump would say */
	uint64_t sp, pc, fp;   /* last Java frame anchor, sp 0: none */
	uint64_t stack_base;   /* highest stack address, 0 if unknown */
};

/* Where a walk starts: a thread's registers (pc, sp, fp, and the
 * interpreter's bcp register r13 when pc is in the interpreter; 0 if not
 * known), or its frame anchor. stack, when set, is a copy of the
 * thread's stack [sp, sp + stack_len) taken with the registers (a perf
 * sample's): frame reads inside it are served from the copy, deeper
 * ones from the target. */
struct jvm_regs {
	uint64_t pc, sp, fp, bcp;
	const uint8_t *stack;
	uint64_t stack_len;
	/* pc is a return address (the caller of native frames unwound
	 * first), not where a running thread stood: its frame is whole */
	bool caller;
};

/* How a walk ended. Only ENTRY and DEPTH are whole stacks. */
enum jvm_walk_end {
	JVM_END_ENTRY = 0,  /* at the call stub the thread entered Java from */
	JVM_END_DEPTH,      /* at the depth bound: the root side is cut */
	JVM_END_LOST,       /* anywhere else: a frame that did not check out */
};

/* A Method* the walk found, leaf first; named afterwards. */
struct jvm_rawframe {
	uint64_t method;
	uint64_t bcp;          /* interpreted: the bytecode pointer, else 0 */
	int32_t bci;           /* compiled: from the scope, -1 unknown */
	uint8_t compiled;      /* 1: from compiled code */
};

/* What naming a Method* found, kept: name, source file, code range for
 * bci, and the raw line table. */
struct jvm_minfo {
	char *name;            /* "pkg.Class.method" */
	char *file;            /* "Class.java" or NULL */
	uint64_t code;         /* address of bytecode 0 */
	uint32_t code_size;
	uint8_t *lines;        /* compressed line table, NULL if none */
	uint32_t nlines;
	/* What the name was read through, compared again before the entry
	 * is believed (a class unload frees a Method* and a new one may take
	 * its address): Method::_constMethod, ConstMethod::_constants and
	 * _name_index, ConstantPool::_pool_holder. checked: the walker's check_gen it last matched. */
	uint64_t key_cm, key_cp, key_holder;
	uint32_t key_name;
	uint64_t checked;
};

/* An nmethod's debug information, copied once: PcDescs and scope data. */
struct jvm_nminfo {
	uint64_t method;       /* nmethod::_method when read: reuse check */
	uint64_t code_begin, metadata;
	uint8_t *pcs, *scopes;
	uint32_t npcs, nscopes; /* bytes */
};

/* The code heaps' address ranges, read once per sample round. */
#define JVM_MAX_HEAPS 8
struct jvm_codeheap {
	uint64_t low, high;    /* reserved range */
	uint64_t segmap;       /* segment map (one byte per segment) */
	uint32_t log2_seg;
};

struct jvm_walker {
	struct target *t;
	struct jvm_layout L;
	struct jvm_codeheap heaps[JVM_MAX_HEAPS];
	size_t nheaps;
	uint64_t interp_lo, interp_hi;  /* the interpreter's code blob */
	uint64_t call_stub_ret;         /* the pc every Java stack returns to; 0 unknown */
	const uint8_t *copy;            /* the current walk's stack copy, if any */
	uint64_t copy_lo, copy_len;
	/* caches by remote address */
	struct cg_map methods;          /* Method* -> 1 + index into minfo */
	struct jvm_minfo *minfo;
	size_t nminfo;
	struct cg_map blob_names;       /* CodeBlob name char* -> blob kind */
	struct cg_map nms;              /* nmethod* -> 1 + index in nm */
	struct jvm_nminfo *nm;
	size_t nnm;
	uint64_t check_gen;             /* bumped by each jvm_methods_check */
	int line_enc;                   /* 0 unknown, 1 UNSIGNED5, 2 older */
	uint64_t lost_reason[8];        /* counts by enum jvm_walk_err */
};

enum jvm_walk_err {
	JVM_WE_READ = 0,    /* a pointer we followed was not readable */
	JVM_WE_BADFRAME,    /* a frame failed validation */
	JVM_WE_NOCODE,      /* a pc in no code blob we know */
	JVM_WE_DEPTH,       /* deeper than the bound */
	JVM_WE__COUNT
};

int jvm_walker_init(struct jvm_walker *w, struct target *t, const struct jvm_layout *L);
void jvm_walker_free(struct jvm_walker *w);

/* ---- inlined frames (src/jvm/scopes.c) ------------------------------ */

/* The Java frames (innermost first) of the compiled frame at pc in the
 * nmethod at blob whose method is nm_method: one per inlined method, each
 * with its bci. Returns the count, or negative (no debug info: the caller
 * reports nm_method alone). */
int jvm_scopes(struct jvm_walker *w, uint64_t blob, uint64_t pc, uint64_t nm_method,
	       struct jvm_rawframe *out, size_t max);
void jvm_scopes_free(struct jvm_walker *w);

/* ---- code blobs (src/jvm/codeheap.c) -------------------------------- */

enum jvm_blob_kind {
	JVM_BLOB_BAD = 0,   /* unreadable */
	JVM_BLOB_NMETHOD,   /* compiled Java method */
	JVM_BLOB_STUB,      /* adapter, runtime stub, buffer blob... */
};
/* Re-read the code heaps and the interpreter range (the heaps can grow).
 * 0, -ENOTSUP without the code capability, or a read error. */
int jvm_codeheap_refresh(struct jvm_walker *w);
/* Start of the CodeBlob holding pc, through the heap's segment map; 0 if
 * pc is in no blob (or the map does not check out). */
uint64_t jvm_codeheap_find(struct jvm_walker *w, uint64_t pc);
/* What a blob is, and its frame size in words. */
enum jvm_blob_kind jvm_codeheap_kind(struct jvm_walker *w, uint64_t blob, int32_t *frame_words);
/* Every JavaThread on HotSpot's thread list into th (at most max).
 * Returns the count, or negative. */
int jvm_walk_threads(struct jvm_walker *w, struct jvm_jthread *th, size_t max);
/* Read th's anchor and thread state again (th->addr kept): a walk from
 * an anchor is believed only if the anchor did not move meanwhile. */
int jvm_thread_reread(struct jvm_walker *w, struct jvm_jthread *th);
/* Walk the Java stack from r, storing at most max frames leaf first.
 * Returns the number of frames (>= 0) or a negative error, and in *end
 * how it ended: JVM_END_ENTRY at the call stub the thread entered Java
 * from (when this JVM does not describe it: at the first frame that is
 * not Java), JVM_END_DEPTH at max, JVM_END_LOST at a frame that did not
 * check out (the frames before it are still stored). */
int jvm_walk_stack(struct jvm_walker *w, const struct jvm_regs *r, bool from_anchor,
		   struct jvm_rawframe *out, size_t max, enum jvm_walk_end *end,
		   uint64_t stack_base);
/* Where a compiled leaf frame stands when its pc is exact (a sample, a
 * pause): HotSpot builds and tears down a compiled frame in a few fixed
 * x86-64 instructions (stack bang; push rbp; sub rsp ... add rsp; pop
 * rbp; return poll; ret; a native wrapper's leave), and between them the
 * frame size does not describe the stack. Read from the code at pc. */
enum jvm_leaf_shape {
	JVM_LEAF_BUILT = 0,  /* the frame is whole: its size finds the caller */
	JVM_LEAF_RET_AT_SP,  /* none of it on the stack: [sp] is the return */
	JVM_LEAF_RBP_AT_SP,  /* the caller's rbp pushed only: [sp], return [sp+8] */
	JVM_LEAF_VIA_RBP,    /* at a leave: rbp is the frame's base */
};
enum jvm_leaf_shape jvm_leaf_shape(const uint8_t *code, size_t n);

/* Is pc in code the walker walks (the interpreter or a code heap)? */
bool jvm_pc_in_java(struct jvm_walker *w, uint64_t pc);
/* Name a frame: "pkg.Class.method" into name, the source line of bci
 * into *line (0 when unknown). 0 or negative. Cached by Method*. */
const struct jvm_minfo *jvm_method_info(struct jvm_walker *w, uint64_t method);
/* Revalidate the cached names of frames f[0..n) in one scatter read: an
 * entry whose Method, ConstMethod or name index changed is read afresh
 * by jvm_method_info. Returns the number of entries found changed. */
int jvm_methods_check(struct jvm_walker *w, const struct jvm_rawframe *f, size_t n);
/* bci of a frame: from its bcp for an interpreted frame; -1 unknown. */
int32_t jvm_frame_bci(const struct jvm_minfo *mi, const struct jvm_rawframe *f);
/* Source line of bci in a method, 0 if unknown. */
int32_t jvm_method_line(struct jvm_walker *w, const struct jvm_minfo *mi, int32_t bci);

/* Decode a HotSpot compressed line-number table (untrusted bytes) and
 * return the line of bci, 0 if none. unsigned5 selects the JDK 20+
 * encoding of escaped pairs (no zero bytes) over the older one. */
int32_t jvm_linetable_lookup(const uint8_t *tab, size_t len, int32_t bci, bool unsigned5);
/* One unsigned int of a HotSpot CompressedReadStream at p[*pos]. */
bool jvm_compressed_uint(const uint8_t *p, size_t len, size_t *pos, bool u5, uint32_t *out);
/* Which encoding a table uses: 1 UNSIGNED5, 2 older, 0 cannot tell. */
int jvm_linetable_encoding(const uint8_t *tab, size_t len);

#endif
