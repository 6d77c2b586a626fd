/* Finding CPython in a target: the ELF object that holds the interpreter
 * (libpython or a static python), its symbols read with libelf, the
 * version, the layout in force, and whether the runtime is up yet. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"
#include "py_priv.h"

enum {
	SYM_PYRUNTIME = 0,
	SYM_PY_VERSION,
	SYM_INTERP_HEAD,     /* 3.6: static, .symtab only */
	SYM_TSTATE_CURRENT,  /* 3.6: _PyThreadState_Current */
	SYM_PYCODE_TYPE,
	SYM_PYDICT_TYPE,     /* the object readers check ob_type against these */
	SYM_PYMODULE_TYPE,
	SYM_PYLONG_TYPE,
	SYM_PYUNICODE_TYPE,
	SYM__COUNT
};
static const char *const sym_names[SYM__COUNT] = {
	"_PyRuntime",  "Py_Version",	"interp_head", "_PyThreadState_Current", "PyCode_Type",
	"PyDict_Type", "PyModule_Type", "PyLong_Type", "PyUnicode_Type",
};

/* Symbols of one ELF file: st_value of each wanted name (0 if absent), and
 * the vaddr of its first PT_LOAD, for the load bias. 3.13+ also keep
 * _PyRuntime in a section of its own, .PyRuntime, which is where it is
 * found when the symbol tables are stripped. 0, or -ENOENT when none is
 * found. */
static int elf_symbols(const char *path, uint64_t vals[SYM__COUNT], uint64_t *first_load)
{
	struct elfsym_want w = {.names = sym_names, .n = SYM__COUNT, .vals = vals,
				.section = ".PyRuntime"};
	int r = elfsym_file_values(path, &w);
	*first_load = w.first_load;
	if (r)
		return r;
	if (!vals[SYM_PYRUNTIME])
		vals[SYM_PYRUNTIME] = w.section_addr;
	for (int k = 0; k < SYM__COUNT; k++)
		if (vals[k])
			return 0;
	return -ENOENT;
}

/* "libpython3.11.so.1.0" -> 3, 11 */
static bool version_from_name(const char *path, int *major, int *minor)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *p = strstr(b, "python");
	if (!p)
		return false;
	return sscanf(p, "python%d.%d", major, minor) == 2;
}

/* The ELF object that holds the interpreter: a mapped libpythonX.Y, else
 * the executable if it exports the runtime (static builds). */
static const struct target_map *find_interp_object(const struct target_maps *m, const char *exe)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].offset == 0 && strstr(m->map[i].path, "/libpython"))
			return &m->map[i];
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].offset == 0 && !strcmp(m->map[i].path, exe))
			return &m->map[i];
	return NULL;
}

void py_interp_set_layout(struct py_interp *pi, const struct py_layout *L)
{
	if (&pi->L != L)
		pi->L = *L;
	pi->lt_kind = L->code_adaptive >= 0 ? PY_LOCATIONS
		      : L->minor >= 10	     ? PY_LINETABLE310
					     : PY_LNOTAB;
	pi->lasti_scale = L->minor == 10 ? 2 : 1; /* 3.10 counts code units */
}

/* 3.6 up to the newest version cgprof has a layout for; any other is
 * named in the refusal, never "not a Python process". */
int py_version_supported(const struct py_interp *pi, struct target *t)
{
	int newest = py_layout_newest_minor();
	if (pi->major == 3 && pi->minor >= 6 && pi->minor <= newest)
		return 0;
	if (pi->major == 3 && pi->minor > newest)
		return cg_fail(-ENOTSUP,
			       "process %d runs CPython %d.%d, which is not supported yet; cgprof "
			       "reads CPython 3.6-3.%d",
			       (int)target_pid(t), pi->major, pi->minor, newest);
	return cg_fail(-ENOTSUP,
		       "process %d runs CPython %d.%d, which is not supported; cgprof reads "
		       "CPython 3.6-3.%d",
		       (int)target_pid(t), pi->major, pi->minor, newest);
}

/* The layout in force: on 3.13+ the target describes itself, since
 * _PyRuntime starts with _Py_DebugOffsets (read with the map of its
 * minor version, so a point release cgprof has never seen works); older
 * ones take the generated row. */
int py_layout_for_target(struct py_interp *pi, struct target *t)
{
	const struct py_debug_offsets_map *map = py_debug_map_find(pi->minor);
	const struct py_layout *row = py_layout_find(3, pi->minor);
	int pid = (int)target_pid(t);

	if (!map) {
		if (!row)
			return cg_fail(-ENOTSUP,
				       "CPython 3.%d: this cgprof was built without its layout "
				       "(run `make layouts` on a machine that has its headers)",
				       pi->minor);
		pi->L = *row;
		return 0;
	}
	uint8_t raw[4096];
	struct py_debug_header hdr = {0};
	if (!pi->runtime || map->struct_size > sizeof(raw) ||
	    target_read(t, pi->runtime, raw, map->struct_size))
		return cg_fail(-ENOTSUP, "CPython 3.%d in process %d: _Py_DebugOffsets unreadable",
			       pi->minor, pid);
	int r = py_layout_from_debug_offsets(raw, map->struct_size, pi->minor, &pi->L, &hdr);
	/* The words before the offsets are read even when an offset is off:
	 * a free-threaded build is refused for what it is. */
	if (hdr.free_threaded)
		return cg_fail(-ENOTSUP,
			       "process %d runs a free-threaded CPython 3.%d (built without the "
			       "GIL), which cgprof does not read yet",
			       pid, pi->minor);
	if (r || (hdr.version >> 24) != 3 || ((hdr.version >> 16) & 0xff) != (uint64_t)pi->minor)
		return cg_fail(-ENOTSUP,
			       "CPython 3.%d in process %d: its _Py_DebugOffsets (version %#llx) "
			       "do not validate",
			       pi->minor, pid, (unsigned long long)hdr.version);
	return 0;
}

int py_discover(struct target *t, struct py_interp *pi)
{
	struct target_maps m = {0};
	char exe[512] = "", path[1024];
	uint64_t sym[SYM__COUNT], first_load = 0;
	int major = 0, minor = 0, r;

	memset(pi, 0, sizeof(*pi));
	pi->t = t;
	r = target_maps_read(t, &m);
	if (r)
		return r == -ESRCH ? r : -ENOENT;
	target_exe(t, exe, sizeof(exe));
	/* exe is how the target names it; maps show the same path. */
	const struct target_map *obj = find_interp_object(&m, exe);
	if (!obj) {
		r = -ENOENT;
		goto out;
	}
	snprintf(pi->object, sizeof(pi->object), "%s", obj->path);
	if (elf_symbols(target_path(t, obj->path, path, sizeof(path)), sym, &first_load)) {
		r = -ENOENT;
		goto out;
	}
	uint64_t bias = first_load == UINT64_MAX ? 0 : obj->start - first_load;

	/* Version: Py_Version (3.11+) is the truth; older ones say it in the
	 * library's (or executable's) name. */
	if (sym[SYM_PY_VERSION]) {
		uint32_t hex;
		if (target_read(t, bias + sym[SYM_PY_VERSION], &hex, 4)) {
			r = -ENOENT;
			goto out;
		}
		major = (int)(hex >> 24);
		minor = (int)((hex >> 16) & 0xff);
		pi->micro = (int)((hex >> 8) & 0xff);
	} else if (!version_from_name(obj->path, &major, &minor)) {
		r = -ENOENT; /* an executable without Python in it */
		goto out;
	}
	pi->major = major;
	pi->minor = minor;
	r = py_version_supported(pi, t);
	if (r)
		goto out;
	if (!sym[SYM_PYRUNTIME] && !sym[SYM_INTERP_HEAD] && !sym[SYM_TSTATE_CURRENT]) {
		r = cg_fail(-ENOTSUP,
			    "CPython %d.%d in process %d: %s has no interpreter symbols (stripped?)",
			    major, minor, (int)target_pid(t), obj->path);
		goto out;
	}
	pi->runtime = sym[SYM_PYRUNTIME] ? bias + sym[SYM_PYRUNTIME] : 0;
	pi->interp_head_var = sym[SYM_INTERP_HEAD] ? bias + sym[SYM_INTERP_HEAD] : 0;
	pi->tstate_current = sym[SYM_TSTATE_CURRENT] ? bias + sym[SYM_TSTATE_CURRENT] : 0;
	pi->pycode_type = sym[SYM_PYCODE_TYPE] ? bias + sym[SYM_PYCODE_TYPE] : 0;
	pi->types.dict = sym[SYM_PYDICT_TYPE] ? bias + sym[SYM_PYDICT_TYPE] : 0;
	pi->types.module = sym[SYM_PYMODULE_TYPE] ? bias + sym[SYM_PYMODULE_TYPE] : 0;
	pi->types.integer = sym[SYM_PYLONG_TYPE] ? bias + sym[SYM_PYLONG_TYPE] : 0;
	pi->types.str = sym[SYM_PYUNICODE_TYPE] ? bias + sym[SYM_PYUNICODE_TYPE] : 0;

	r = py_layout_for_target(pi, t);
	if (r)
		goto out;
	py_interp_set_layout(pi, &pi->L);
	if (sym[SYM_PY_VERSION])
		snprintf(pi->version, sizeof(pi->version), "CPython %d.%d.%d", major, minor, pi->micro);
	else
		snprintf(pi->version, sizeof(pi->version), "CPython %d.%d", major, minor);

	/* Up yet? The interpreter and its first thread must exist. */
	uint64_t interp = 0;
	r = py_read_interp(pi, &interp);
	if (r || !interp) {
		r = -ENOENT;
		goto out;
	}
	uint64_t head = 0;
	if (target_read(t, interp + (uint64_t)pi->L.interp_tstate_head, &head, 8) || !head) {
		r = -ENOENT;
		goto out;
	}
	r = 0;
out:
	target_maps_free(&m);
	return r;
}

int py_read_interp(struct py_interp *pi, uint64_t *interp)
{
	*interp = 0;
	if (pi->runtime && pi->L.runtime_interp_head >= 0)
		return target_read(pi->t, pi->runtime + (uint64_t)pi->L.runtime_interp_head, interp, 8);
	if (pi->interp_head_var)
		return target_read(pi->t, pi->interp_head_var, interp, 8);
	if (pi->tstate_current) {
		/* 3.6 without .symtab: the thread holding the GIL knows it. */
		uint64_t ts = 0;
		int r = target_read(pi->t, pi->tstate_current, &ts, 8);
		if (r || !ts)
			return r ? r : -ENOENT;
		return target_read(pi->t, ts + (uint64_t)pi->L.tstate_interp, interp, 8);
	}
	return -ENOENT;
}
