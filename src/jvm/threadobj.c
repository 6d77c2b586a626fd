/* A Java thread's name and java.lang.Thread.State read from its Thread
 * object in the heap: the field offsets HotSpot computed at start-up,
 * compressed oops decoded with the JVM's own base and shift. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/log.h"
#include "cgprof/target.h"
#include "jvm_walk.h"

#define MAX_FLAGS 8192u
#define MAX_JNAME 256u

/* The value of a bool VM flag (-XX:+Name), from the JVMFlag table; -1
 * when the flag is not there. */
static int flag_bool(struct target *t, const struct jvm_vms *v, const char *want)
{
	uint64_t fa, na, arr, num, stride;
	uint64_t name_off, addr_off;
	if (jvm_vms_static(v, "JVMFlag", "flags", &fa) || jvm_vms_static(v, "JVMFlag", "numFlags", &na) ||
	    jvm_vms_size(v, "JVMFlag", &stride) || jvm_vms_offset(v, "JVMFlag", "_name", &name_off) ||
	    jvm_vms_offset(v, "JVMFlag", "_addr", &addr_off))
		return -1;
	if (jvm_rd64(t, fa, &arr) || jvm_rd64(t, na, &num) || !arr || num > MAX_FLAGS || stride > 256 ||
	    name_off + 8 > stride || addr_off + 8 > stride)
		return -1;
	for (uint64_t i = 0; i < num; i++) {
		uint64_t np, ap;
		char name[64];
		uint8_t val;
		if (jvm_rd64(t, arr + i * stride + name_off, &np) || !np ||
		    target_read_cstr(t, np, name, sizeof(name)) || strcmp(name, want))
			continue;
		if (jvm_rd64(t, arr + i * stride + addr_off, &ap) || !ap || target_read(t, ap, &val, 1))
			return -1;
		return val != 0;
	}
	return -1;
}

static int sym_int(struct target *t, const struct jvm_vms_syms *s, int which, int32_t *out)
{
	*out = -1;
	if (!s->addr[which] || target_read(t, s->addr[which], out, 4))
		return -ENOENT;
	return *out > 0 && *out < 4096 ? 0 : -EINVAL;
}

void jvm_objlayout_resolve(struct target *t, const struct jvm_vms *v,
			   const struct jvm_vms_syms *s, struct jvm_objlayout *O)
{
	uint64_t off, a;
	memset(O, 0, sizeof(*O));
	if (jvm_vms_offset(v, "JavaThread", "_threadObj", &off) || off > 65535)
		return;
	O->jt_threadobj = (uint32_t)off;
	int coops = flag_bool(t, v, "UseCompressedOops");
	if (coops < 0)
		return;
	O->compressed = coops == 1;
	if (O->compressed) {
		uint64_t ba, sa;
		int32_t shift;
		/* JDK 17 keeps them in a struct, later ones as plain statics. */
		if ((jvm_vms_static(v, "CompressedOops", "_narrow_oop._base", &ba) &&
		     jvm_vms_static(v, "CompressedOops", "_base", &ba)) ||
		    (jvm_vms_static(v, "CompressedOops", "_narrow_oop._shift", &sa) &&
		     jvm_vms_static(v, "CompressedOops", "_shift", &sa)) ||
		    jvm_rd64(t, ba, &O->narrow_base) || target_read(t, sa, &shift, 4) || shift < 0 ||
		    shift > 8)
			return;
		O->narrow_shift = (uint32_t)shift;
	}
	if (sym_int(t, s, JVM_SYM_THREAD_STATUS, &O->status_off) &&
	    (sym_int(t, s, JVM_SYM_THREAD_HOLDER, &O->holder_off) ||
	     sym_int(t, s, JVM_SYM_HOLDER_STATUS, &O->holder_status_off)))
		return;
	O->st_runnable = jvm_vms_const_or(v, "JavaThreadStatus::RUNNABLE", 5);
	O->st_blocked = jvm_vms_const_or(v, "JavaThreadStatus::BLOCKED_ON_MONITOR_ENTER", 1025);
	O->st_wait = jvm_vms_const_or(v, "JavaThreadStatus::IN_OBJECT_WAIT", 401);
	O->st_wait_timed = jvm_vms_const_or(v, "JavaThreadStatus::IN_OBJECT_WAIT_TIMED", 417);
	O->st_park = jvm_vms_const_or(v, "JavaThreadStatus::PARKED", 657);
	O->st_park_timed = jvm_vms_const_or(v, "JavaThreadStatus::PARKED_TIMED", 673);
	O->st_sleeping = jvm_vms_const_or(v, "JavaThreadStatus::SLEEPING", 225);
	O->ok = true;

	/* Names also need the String and byte[] layouts. Array headers are
	 * only known for the usual compressed class pointers without compact
	 * headers: length after the 12-byte header, elements at 16. */
	int ccp = flag_bool(t, v, "UseCompressedClassPointers");
	int compact = flag_bool(t, v, "UseCompactObjectHeaders");
	if (ccp != 1 || compact == 1 || sym_int(t, s, JVM_SYM_THREAD_NAME, &O->name_off) ||
	    sym_int(t, s, JVM_SYM_STRING_VALUE, &O->value_off) ||
	    sym_int(t, s, JVM_SYM_STRING_CODER, &O->coder_off))
		return;
	O->array_length_off = 12;
	O->array_base_off = 16;
	O->names = true;
	(void)a;
}

/* A reference field of the object at obj. */
static int ref_field(struct target *t, const struct jvm_objlayout *O, uint64_t obj, int32_t off,
		     uint64_t *out)
{
	if (O->compressed) {
		uint32_t n;
		if (target_read(t, obj + (uint64_t)off, &n, 4) || !n)
			return -EFAULT;
		*out = O->narrow_base + ((uint64_t)n << O->narrow_shift);
		return 0;
	}
	return jvm_rd64(t, obj + (uint64_t)off, out) || !*out ? -EFAULT : 0;
}

/* The java.lang.Thread of a JavaThread: its OopHandle points to a slot
 * holding a full (uncompressed) oop. */
static int thread_oop(struct target *t, const struct jvm_objlayout *O, uint64_t jt, uint64_t *oop)
{
	uint64_t h;
	if (jvm_rd64(t, jt + O->jt_threadobj, &h) || !h || h & 7 || jvm_rd64(t, h, oop) || !*oop ||
	    *oop & 7)
		return -EFAULT;
	return 0;
}

int jvm_thread_status(struct target *t, const struct jvm_objlayout *O, uint64_t jt, int ts)
{
	uint64_t obj, holder;
	int32_t st;
	if (!O->ok || thread_oop(t, O, jt, &obj))
		return -1;
	if (O->status_off > 0) {
		if (target_read(t, obj + (uint64_t)O->status_off, &st, 4))
			return -1;
	} else if (ref_field(t, O, obj, O->holder_off, &holder) ||
		   target_read(t, holder + (uint64_t)O->holder_status_off, &st, 4)) {
		return -1;
	}
	if (st == O->st_runnable)
		return ts == JVM_TS_IN_NATIVE || ts == JVM_TS_BLOCKED ? CG_ST_NATIVE : CG_ST_RUNNING;
	if (st == O->st_blocked)
		return CG_ST_BLOCKED;
	if (st == O->st_wait || st == O->st_park)
		return CG_ST_WAITING;
	if (st == O->st_wait_timed || st == O->st_park_timed || st == O->st_sleeping)
		return CG_ST_TIMED_WAITING;
	return -1;
}

int jvm_thread_jname(struct target *t, const struct jvm_objlayout *O, uint64_t jt, char *buf,
		     size_t n)
{
	uint64_t obj, str, arr;
	int32_t len;
	int8_t coder;
	uint8_t raw[2 * MAX_JNAME];
	if (!O->names || n < 2 || thread_oop(t, O, jt, &obj) || ref_field(t, O, obj, O->name_off, &str) ||
	    ref_field(t, O, str, O->value_off, &arr) ||
	    target_read(t, str + (uint64_t)O->coder_off, &coder, 1) ||
	    target_read(t, arr + O->array_length_off, &len, 4))
		return -EFAULT;
	/* A GC may move the objects under us: a length or coder that makes
	 * no sense is a torn read. */
	if (len < 0 || len > (int32_t)sizeof(raw) || (coder != 0 && coder != 1) || (coder && len & 1))
		return -EFAULT;
	if (len && target_read(t, arr + O->array_base_off, raw, (size_t)len))
		return -EFAULT;
	size_t k = 0, chars = coder ? (size_t)len / 2 : (size_t)len;
	for (size_t i = 0; i < chars && k + 1 < n; i++) {
		unsigned c = coder ? raw[2 * i] | raw[2 * i + 1] << 8 : raw[i];
		buf[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[k] = '\0';
	return 0;
}
