/* HotSpot's self-description read from outside: libjvm.so's exported
 * gHotSpotVMStructs/VMTypes/constants tables, into name -> value lookups. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"
#include "jvm_walk.h"

const char *const jvm_vms_sym_names[JVM_SYM__COUNT] = {
	"gHotSpotVMStructs",
	"gHotSpotVMStructEntryTypeNameOffset",
	"gHotSpotVMStructEntryFieldNameOffset",
	"gHotSpotVMStructEntryIsStaticOffset",
	"gHotSpotVMStructEntryOffsetOffset",
	"gHotSpotVMStructEntryAddressOffset",
	"gHotSpotVMStructEntryArrayStride",
	"gHotSpotVMTypes",
	"gHotSpotVMTypeEntryTypeNameOffset",
	"gHotSpotVMTypeEntrySizeOffset",
	"gHotSpotVMTypeEntryArrayStride",
	"gHotSpotVMIntConstants",
	"gHotSpotVMIntConstantEntryNameOffset",
	"gHotSpotVMIntConstantEntryValueOffset",
	"gHotSpotVMIntConstantEntryArrayStride",
	"gHotSpotVMLongConstants",
	"gHotSpotVMLongConstantEntryNameOffset",
	"gHotSpotVMLongConstantEntryValueOffset",
	"gHotSpotVMLongConstantEntryArrayStride",
	"_ZN16java_lang_Thread12_name_offsetE",
	"_ZN16java_lang_Thread21_thread_status_offsetE",
	"_ZN16java_lang_Thread14_holder_offsetE",
	"_ZN28java_lang_Thread_FieldHolder21_thread_status_offsetE",
	"_ZN16java_lang_String13_value_offsetE",
	"_ZN16java_lang_String13_coder_offsetE",
};

int jvm_vms_find_syms(struct target *t, struct jvm_vms_syms *out, char *libjvm, size_t n)
{
	struct target_maps m = {0};
	uint64_t vals[JVM_SYM__COUNT] = {0};
	char path[4096];
	int r = target_maps_read(t, &m);
	memset(out, 0, sizeof(*out));
	if (r)
		return r;
	/* The load bias: where the file's offset 0 is mapped (libjvm's first
	 * PT_LOAD has vaddr 0, as for every shared object the JDK ships). */
	const struct target_map *jm = NULL;
	for (size_t i = 0; i < m.n; i++)
		if (m.map[i].offset == 0 && strstr(m.map[i].path, "/libjvm.so")) {
			jm = &m.map[i];
			break;
		}
	if (!jm) {
		r = cg_fail(-ENOENT, "no libjvm.so mapped in process %d", (int)target_pid(t));
		goto out;
	}
	snprintf(libjvm, n, "%s", jm->path);
	out->lo = jm->start;
	for (size_t i = 0; i < m.n; i++)
		if (!strcmp(m.map[i].path, jm->path)) {
			out->lo = m.map[i].start < out->lo ? m.map[i].start : out->lo;
			out->hi = m.map[i].end > out->hi ? m.map[i].end : out->hi;
		}
	/* The path as the JVM sees it, under its root; for a chroot the
	 * kernel shows maps paths from our root, so also try it as it is. */
	/* The tables are exported data (.dynsym), the Thread/String field
	 * offsets in .symtab when not stripped. */
	struct elfsym_want w = {.names = jvm_vms_sym_names, .n = JVM_SYM__COUNT, .vals = vals};
	if ((r = elfsym_file_values(target_path(t, jm->path, path, sizeof(path)), &w)) &&
	    (r = elfsym_file_values(jm->path, &w))) {
		r = cg_fail(-ENOENT, "cannot read the symbols of %s", jm->path);
		goto out;
	}
	for (int i = 0; i < JVM_SYM__COUNT; i++)
		if (vals[i])
			out->addr[i] = jm->start + vals[i];
	/* Constants are optional extras; the struct and type tables are not. */
	for (int i = JVM_SYM_STRUCTS; i <= JVM_SYM_T_STRIDE; i++)
		if (!out->addr[i]) {
			r = cg_fail(-ENOENT, "%s does not export %s", jm->path, jvm_vms_sym_names[i]);
			goto out;
		}
	r = 0;
out:
	target_maps_free(&m);
	return r;
}

static int read_u64(struct target *t, uint64_t addr, uint64_t *v)
{
	return target_read(t, addr, v, sizeof(*v));
}

/* Layout of one table: where it is, its stride, and field offsets within
 * an entry, all checked to fit inside the stride. */
struct table {
	uint64_t base, stride;
	uint64_t off[5];
	size_t noff;
};

static int table_read(struct target *t, const struct jvm_vms_syms *s, int first, size_t noff,
		      const char *what, struct table *tb)
{
	int r;
	memset(tb, 0, sizeof(*tb));
	tb->noff = noff;
	if ((r = read_u64(t, s->addr[first], &tb->base)))
		return r;
	for (size_t i = 0; i < noff; i++)
		if ((r = read_u64(t, s->addr[first + 1 + i], &tb->off[i])))
			return r;
	if ((r = read_u64(t, s->addr[first + 1 + noff], &tb->stride)))
		return r;
	if (!tb->base || tb->stride < 8 || tb->stride > JVM_VMS_MAX_STRIDE)
		return cg_fail(-EPROTO, "HotSpot %s table: base %#llx stride %llu make no sense", what,
			       (unsigned long long)tb->base, (unsigned long long)tb->stride);
	for (size_t i = 0; i < noff; i++)
		if (tb->off[i] > tb->stride - 4 || (tb->off[i] & 3))
			return cg_fail(-EPROTO, "HotSpot %s table: field offset %llu outside its %llu-byte entry",
				       what, (unsigned long long)tb->off[i], (unsigned long long)tb->stride);
	return 0;
}

static uint64_t entry_u64(const uint8_t *e, const struct table *tb, size_t i)
{
	uint64_t v = 0;
	if (tb->off[i] + 8 <= tb->stride)
		memcpy(&v, e + tb->off[i], 8);
	return v;
}

static uint32_t entry_u32(const uint8_t *e, const struct table *tb, size_t i)
{
	uint32_t v;
	memcpy(&v, e + tb->off[i], 4);
	return v;
}

/* A name from the target; NULL with *err set when it cannot be read. */
static char *read_name(struct target *t, uint64_t addr, int *err)
{
	char buf[JVM_VMS_MAX_NAME];
	int r = target_read_cstr(t, addr, buf, sizeof(buf));
	if (r) {
		*err = r;
		return NULL;
	}
	char *s = strdup(buf);
	if (!s)
		*err = -ENOMEM;
	return s;
}

/* Walk a table entry by entry until its NULL-name terminator; fn stores
 * one entry. Bounded by JVM_VMS_MAX_ENTRIES. */
typedef int (*entry_fn)(struct target *t, const uint8_t *e, const struct table *tb, struct jvm_vms *v);

static int table_walk(struct target *t, const struct table *tb, const char *what, entry_fn fn,
		      struct jvm_vms *v)
{
	uint8_t e[JVM_VMS_MAX_STRIDE];
	for (size_t i = 0; i < JVM_VMS_MAX_ENTRIES; i++) {
		int r = target_read(t, tb->base + i * tb->stride, e, (size_t)tb->stride);
		if (r)
			return cg_fail(r, "cannot read HotSpot's %s table (entry %zu)", what, i);
		if (!entry_u64(e, tb, 0))
			return 0;
		if ((r = fn(t, e, tb, v)))
			return r;
	}
	return cg_fail(-EPROTO, "HotSpot %s table has no end within %u entries", what,
		       JVM_VMS_MAX_ENTRIES);
}

static int grow(void *arrp, size_t n, size_t elem)
{
	void **arr = arrp;
	if (n & (n - 1) && n) /* grow at powers of two */
		return 0;
	size_t cap = n ? n * 2 : 64;
	void *p = realloc(*arr, cap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	return 0;
}

static int struct_entry(struct target *t, const uint8_t *e, const struct table *tb, struct jvm_vms *v)
{
	int err = 0;
	uint64_t fname = entry_u64(e, tb, 1);
	if (!fname) /* a type listed without fields */
		return 0;
	if (grow(&v->fields, v->nfields, sizeof(*v->fields)))
		return -ENOMEM;
	struct jvm_vms_field *f = &v->fields[v->nfields];
	f->type = read_name(t, entry_u64(e, tb, 0), &err);
	f->field = f->type ? read_name(t, fname, &err) : NULL;
	if (!f->field) {
		free(f->type);
		/* An unreadable name is a broken table, not one missing field. */
		return err == -ENOMEM ? err : cg_fail(-EPROTO, "HotSpot field table: unreadable name");
	}
	f->is_static = entry_u32(e, tb, 2) != 0;
	f->value = entry_u64(e, tb, f->is_static ? 4 : 3);
	v->nfields++;
	return 0;
}

static int type_entry(struct target *t, const uint8_t *e, const struct table *tb, struct jvm_vms *v)
{
	int err = 0;
	if (grow(&v->types, v->ntypes, sizeof(*v->types)))
		return -ENOMEM;
	struct jvm_vms_named *n = &v->types[v->ntypes];
	if (!(n->name = read_name(t, entry_u64(e, tb, 0), &err)))
		return err == -ENOMEM ? err : cg_fail(-EPROTO, "HotSpot type table: unreadable name");
	n->value = (int64_t)entry_u64(e, tb, 1);
	v->ntypes++;
	return 0;
}

/* Int constants are 32-bit, long constants 64-bit: told apart by which
 * table walks them (noff 2 with the value read at its own width). */
static int const_entry(struct target *t, const uint8_t *e, const struct table *tb, struct jvm_vms *v,
		       bool wide)
{
	int err = 0;
	if (grow(&v->consts, v->nconsts, sizeof(*v->consts)))
		return -ENOMEM;
	struct jvm_vms_named *n = &v->consts[v->nconsts];
	if (!(n->name = read_name(t, entry_u64(e, tb, 0), &err)))
		return err == -ENOMEM ? err : cg_fail(-EPROTO, "HotSpot constant table: unreadable name");
	n->value = wide ? (int64_t)entry_u64(e, tb, 1) : (int64_t)(int32_t)entry_u32(e, tb, 1);
	v->nconsts++;
	return 0;
}

static int int_entry(struct target *t, const uint8_t *e, const struct table *tb, struct jvm_vms *v)
{
	return const_entry(t, e, tb, v, false);
}

static int long_entry(struct target *t, const uint8_t *e, const struct table *tb, struct jvm_vms *v)
{
	return const_entry(t, e, tb, v, true);
}

int jvm_vms_read(struct target *t, const struct jvm_vms_syms *s, struct jvm_vms *v)
{
	struct table tb;
	int r;
	memset(v, 0, sizeof(*v));
	if ((r = table_read(t, s, JVM_SYM_STRUCTS, 5, "field", &tb)) ||
	    (r = table_walk(t, &tb, "field", struct_entry, v)))
		return r;
	if ((r = table_read(t, s, JVM_SYM_TYPES, 2, "type", &tb)) ||
	    (r = table_walk(t, &tb, "type", type_entry, v)))
		return r;
	/* Constants only refine (thread-state values); without them the
	 * defaults HotSpot has used since JDK 6 stand. */
	if (s->addr[JVM_SYM_INTS] && s->addr[JVM_SYM_I_STRIDE] &&
	    table_read(t, s, JVM_SYM_INTS, 2, "int constant", &tb) == 0)
		(void)table_walk(t, &tb, "int constant", int_entry, v);
	if (s->addr[JVM_SYM_LONGS] && s->addr[JVM_SYM_L_STRIDE] &&
	    table_read(t, s, JVM_SYM_LONGS, 2, "long constant", &tb) == 0)
		(void)table_walk(t, &tb, "long constant", long_entry, v);
	cg_clearerr();
	if (!v->nfields || !v->ntypes)
		return cg_fail(-EPROTO, "HotSpot's VMStructs tables are empty");
	return 0;
}

void jvm_vms_free(struct jvm_vms *v)
{
	for (size_t i = 0; i < v->nfields; i++) {
		free(v->fields[i].type);
		free(v->fields[i].field);
	}
	for (size_t i = 0; i < v->ntypes; i++)
		free(v->types[i].name);
	for (size_t i = 0; i < v->nconsts; i++)
		free(v->consts[i].name);
	free(v->fields);
	free(v->types);
	free(v->consts);
	memset(v, 0, sizeof(*v));
}

static const struct jvm_vms_field *find_field(const struct jvm_vms *v, const char *type,
					      const char *field, bool is_static)
{
	for (size_t i = 0; i < v->nfields; i++)
		if (v->fields[i].is_static == is_static && !strcmp(v->fields[i].field, field) &&
		    !strcmp(v->fields[i].type, type))
			return &v->fields[i];
	return NULL;
}

int jvm_vms_offset(const struct jvm_vms *v, const char *type, const char *field, uint64_t *val)
{
	const struct jvm_vms_field *f = find_field(v, type, field, false);
	if (!f)
		return -ENOENT;
	*val = f->value;
	return 0;
}

int jvm_vms_static(const struct jvm_vms *v, const char *type, const char *field, uint64_t *addr)
{
	const struct jvm_vms_field *f = find_field(v, type, field, true);
	if (!f || !f->value)
		return -ENOENT;
	*addr = f->value;
	return 0;
}

static int find_named(const struct jvm_vms_named *a, size_t n, const char *name, int64_t *val)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].name, name)) {
			*val = a[i].value;
			return 0;
		}
	return -ENOENT;
}

int jvm_vms_size(const struct jvm_vms *v, const char *type, uint64_t *size)
{
	int64_t s;
	if (find_named(v->types, v->ntypes, type, &s) || s <= 0)
		return -ENOENT;
	*size = (uint64_t)s;
	return 0;
}

int jvm_vms_const(const struct jvm_vms *v, const char *name, int64_t *val)
{
	return find_named(v->consts, v->nconsts, name, val);
}
