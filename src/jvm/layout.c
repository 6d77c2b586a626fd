/* The walker's view of one JVM: every offset it uses looked up by name in
 * the VMStructs tables, and each capability on only if its offsets were. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgprof/log.h"
#include "jvm_walk.h"

struct resolver {
	const struct jvm_vms *v;
	struct jvm_layout *L;
	bool ok;          /* every lookup of the current capability worked */
};

static void note_missing(struct resolver *rs, const char *type, const char *field)
{
	struct jvm_layout *L = rs->L;
	size_t len = strlen(L->missing);
	rs->ok = false;
	if (len + 4 < sizeof(L->missing))
		snprintf(L->missing + len, sizeof(L->missing) - len, "%s%s%s%s", len ? ", " : "",
			 type, field ? "::" : "", field ? field : "");
}

/* Offset of type::field, trying each type in turn (a field moves between
 * Thread and JavaThread, CompiledMethod and nmethod across releases). The
 * bound keeps a hostile table from handing us offsets far outside any
 * HotSpot object. */
static uint32_t off_of(struct resolver *rs, const char *types, const char *field)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", types);
	for (char *save = NULL, *ty = strtok_r(buf, "|", &save); ty; ty = strtok_r(NULL, "|", &save)) {
		uint64_t v;
		if (jvm_vms_offset(rs->v, ty, field, &v) == 0 && v < 65536)
			return (uint32_t)v;
	}
	note_missing(rs, types, field);
	return JVM_NO_OFF;
}

/* Like off_of but silent: for one of two alternatives. */
static uint32_t off_opt(const struct jvm_vms *v, const char *type, const char *field)
{
	uint64_t o;
	return jvm_vms_offset(v, type, field, &o) == 0 && o < 65536 ? (uint32_t)o : JVM_NO_OFF;
}

static uint64_t size_of(struct resolver *rs, const char *type)
{
	uint64_t s;
	if (jvm_vms_size(rs->v, type, &s) == 0 && s < 65536)
		return s;
	note_missing(rs, type, NULL);
	return 0;
}

/* A field of width bytes at off must lie inside an object of size bytes;
 * a table saying otherwise is not one the walker can trust. */
static void inside(struct resolver *rs, const char *type, const char *field, uint32_t off,
		   uint32_t width, uint64_t size)
{
	if (off == JVM_NO_OFF || !size) /* noted missing already */
		return;
	if (size < width || off > size - width)
		note_missing(rs, type, field);
}

static uint64_t static_of(struct resolver *rs, const char *type, const char *field)
{
	uint64_t a;
	if (jvm_vms_static(rs->v, type, field, &a) == 0)
		return a;
	note_missing(rs, type, field);
	return 0;
}

static void resolve_threads(struct resolver *rs)
{
	struct jvm_layout *L = rs->L;
	rs->ok = true;
	L->java_thread_list = static_of(rs, "ThreadsSMRSupport", "_java_thread_list");
	L->tl_length = off_of(rs, "ThreadsList", "_length");
	L->tl_threads = off_of(rs, "ThreadsList", "_threads");
	L->jt_state = off_of(rs, "JavaThread", "_thread_state");
	L->jt_osthread = off_of(rs, "JavaThread|Thread", "_osthread");
	L->os_tid = off_of(rs, "OSThread", "_thread_id");
	L->has_threads = rs->ok;
	L->jt_stack_base = off_opt(rs->v, "JavaThread", "_stack_base");
	if (L->jt_stack_base == JVM_NO_OFF)
		L->jt_stack_base = off_opt(rs->v, "Thread", "_stack_base");

	rs->ok = true;
	L->jt_anchor = off_of(rs, "JavaThread", "_anchor");
	L->anchor_sp = off_of(rs, "JavaFrameAnchor", "_last_Java_sp");
	L->anchor_pc = off_of(rs, "JavaFrameAnchor", "_last_Java_pc");
	L->anchor_fp = off_of(rs, "JavaFrameAnchor", "_last_Java_fp");
	L->has_anchor = rs->ok && L->has_threads;

	rs->ok = true;
	L->os_state = off_of(rs, "OSThread", "_state");
	L->has_os_state = rs->ok;

	const struct jvm_vms *v = rs->v;
	L->ts_in_java = jvm_vms_const_or(v, "_thread_in_Java", 8);
	L->ts_in_vm = jvm_vms_const_or(v, "_thread_in_vm", 6);
	L->ts_in_native = jvm_vms_const_or(v, "_thread_in_native", 4);
	L->ts_blocked = jvm_vms_const_or(v, "_thread_blocked", 10);
	L->os_runnable = jvm_vms_const_or(v, "RUNNABLE", 2);
	L->os_monitor_wait = jvm_vms_const_or(v, "MONITOR_WAIT", 3);
	L->os_condvar_wait = jvm_vms_const_or(v, "CONDVAR_WAIT", 4);
	L->os_object_wait = jvm_vms_const_or(v, "OBJECT_WAIT", 5);
	L->os_sleeping = jvm_vms_const_or(v, "SLEEPING", 7);
}

static void resolve_names(struct resolver *rs)
{
	struct jvm_layout *L = rs->L;
	const struct jvm_vms *v = rs->v;
	rs->ok = true;
	L->m_constmethod = off_of(rs, "Method", "_constMethod");
	L->cm_constants = off_of(rs, "ConstMethod", "_constants");
	L->cm_name_idx = off_of(rs, "ConstMethod", "_name_index");
	L->cm_sig_idx = off_of(rs, "ConstMethod", "_signature_index");
	L->cm_size = size_of(rs, "ConstMethod");
	L->cp_holder = off_of(rs, "ConstantPool", "_pool_holder");
	L->cp_size = size_of(rs, "ConstantPool");
	L->k_name = off_of(rs, "Klass", "_name");
	L->sym_length = off_of(rs, "Symbol", "_length");
	L->sym_body = off_of(rs, "Symbol", "_body");
	/* The walker copies the ConstMethod header whole and reads its fields
	 * from the copy: the header must be small and each field inside it. */
	if (L->cm_size > JVM_MAX_CONSTMETHOD)
		note_missing(rs, "ConstMethod", NULL);
	inside(rs, "ConstMethod", "_constants", L->cm_constants, 8, L->cm_size);
	inside(rs, "ConstMethod", "_name_index", L->cm_name_idx, 2, L->cm_size);
	L->has_names = rs->ok;
	L->cp_srcfile_idx = off_opt(v, "ConstantPool", "_source_file_name_index");

	/* Line numbers: the compressed table follows the bytecodes when a
	 * flag says it is there. The flags word was a u2 "_flags" up to JDK
	 * 20 and is a ConstMethodFlags "_flags._flags" since. */
	rs->ok = L->has_names;
	L->cm_code_size = off_of(rs, "ConstMethod", "_code_size");
	L->cm_flags = off_opt(v, "ConstMethod", "_flags._flags");
	if (L->cm_flags == JVM_NO_OFF)
		L->cm_flags = off_of(rs, "ConstMethod", "_flags");
	inside(rs, "ConstMethod", "_code_size", L->cm_code_size, 2, L->cm_size);
	inside(rs, "ConstMethod", "_flags", L->cm_flags, 2, L->cm_size);
	int64_t bit = jvm_vms_const_or(v, "ConstMethodFlags::_misc_has_linenumber_table",
			       jvm_vms_const_or(v, "ConstMethod::_has_linenumber_table", 0));
	if (bit <= 0 || bit > 0xffff || (bit & (bit - 1)))
		note_missing(rs, "ConstMethod::_has_linenumber_table", NULL);
	L->cm_linenumber_flag = (uint32_t)bit;
	L->has_lines = rs->ok;
}

static void resolve_code(struct resolver *rs)
{
	struct jvm_layout *L = rs->L;
	const struct jvm_vms *v = rs->v;
	rs->ok = true;
	L->code_heaps = static_of(rs, "CodeCache", "_heaps");
	L->ga_len = off_of(rs, "GrowableArrayBase", "_len");
	L->ga_data = off_of(rs, "GrowableArray<int>", "_data");
	L->ch_memory = off_of(rs, "CodeHeap", "_memory");
	L->ch_segmap = off_of(rs, "CodeHeap", "_segmap");
	L->ch_log2_seg = off_of(rs, "CodeHeap", "_log2_segment_size");
	L->vs_low_b = off_of(rs, "VirtualSpace", "_low_boundary");
	L->vs_high_b = off_of(rs, "VirtualSpace", "_high_boundary");
	L->vs_low = off_of(rs, "VirtualSpace", "_low");
	L->vs_high = off_of(rs, "VirtualSpace", "_high");
	L->heapblock_size = size_of(rs, "HeapBlock");
	L->cb_name = off_of(rs, "CodeBlob", "_name");
	L->cb_frame_size = off_of(rs, "CodeBlob", "_frame_size");
	L->cb_size = off_of(rs, "CodeBlob", "_size");
	L->nm_method = off_of(rs, "nmethod|CompiledMethod", "_method");
	L->interp_code = static_of(rs, "AbstractInterpreter", "_code");
	L->sq_buffer = off_of(rs, "StubQueue", "_stub_buffer");
	L->sq_limit = off_of(rs, "StubQueue", "_buffer_limit");
	/* Optional: without it a walk ends at the first frame that is not
	 * Java, and cannot tell the thread's entry from a lost frame. */
	if (jvm_vms_static(v, "StubRoutines", "_call_stub_return_address", &L->call_stub_ret))
		L->call_stub_ret = 0;
	L->cb_kind = off_opt(v, "CodeBlob", "_kind");
	L->kind_nmethod = jvm_vms_const_or(v, "CodeBlobKind::Nmethod", -1);
	L->has_code = rs->ok && L->has_names;

	/* Inlining: the PcDesc table and scope data, found either as offsets
	 * from the nmethod (JDK 17-22) or from its immutable data (23+). */
	rs->ok = L->has_code;
	L->pc_pc_off = off_of(rs, "PcDesc", "_pc_offset");
	L->pc_scope_off = off_of(rs, "PcDesc", "_scope_decode_offset");
	L->pcdesc_size = size_of(rs, "PcDesc");
	L->nm_pcs_off = off_of(rs, "nmethod", "_scopes_pcs_offset");
	L->cb_code_begin = off_opt(v, "CodeBlob", "_code_begin");
	L->cb_code_offset = off_opt(v, "CodeBlob", "_code_offset");
	L->nm_deps_off = off_opt(v, "nmethod", "_dependencies_offset");
	L->nm_meta_off = off_opt(v, "nmethod", "_metadata_offset");
	L->nm_scopes_ptr = off_opt(v, "CompiledMethod", "_scopes_data_begin");
	if (L->nm_scopes_ptr == JVM_NO_OFF)
		L->nm_scopes_ptr = off_opt(v, "nmethod", "_scopes_data_begin");
	L->nm_scopes_off = off_opt(v, "nmethod", "_scopes_data_offset");
	L->nm_immutable = off_opt(v, "nmethod", "_immutable_data");
	L->nm_imm_size = off_opt(v, "nmethod", "_immutable_data_size");
	L->cb_mutable = off_opt(v, "CodeBlob", "_mutable_data");
	L->cb_reloc_size = off_opt(v, "CodeBlob", "_relocation_size");
	bool old_shape = L->nm_deps_off != JVM_NO_OFF && L->nm_meta_off != JVM_NO_OFF &&
			 L->nm_scopes_ptr != JVM_NO_OFF && L->cb_code_begin != JVM_NO_OFF;
	bool new_shape = L->nm_scopes_off != JVM_NO_OFF && L->nm_immutable != JVM_NO_OFF &&
			 L->cb_mutable != JVM_NO_OFF && L->cb_reloc_size != JVM_NO_OFF &&
			 L->cb_code_offset != JVM_NO_OFF;
	if (!old_shape && !new_shape)
		note_missing(rs, "nmethod scope data", NULL);
	L->has_scopes = rs->ok && L->pcdesc_size >= 8;
}

int jvm_layout_resolve(const struct jvm_vms *v, struct jvm_layout *L)
{
	struct resolver rs = {v, L, true};
	memset(L, 0, sizeof(*L));
	resolve_threads(&rs);
	resolve_names(&rs);
	resolve_code(&rs);
	if (!L->has_threads || !L->has_anchor || !L->has_names)
		return cg_fail(-ENOTSUP, "this JVM's VMStructs lack what the stack walker needs (%s)",
			       L->missing);
	return 0;
}
