/* ELF symbol tables of a target's mapped objects (.symtab, .dynsym and
 * build-id debug files), cached per file and looked up by binary search. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/native.h"
#include "cgprof/target.h"
#include "cgprof/util.h"

/* Bounds on untrusted ELF input: a hostile or corrupt file cannot make us
 * allocate without limit. */
#define ELFSYM_MAX_SYMS (8u << 20)
#define ELFSYM_MAX_STRS (256u << 20)
#define ELFSYM_MAX_LOADS 32
/* A size-0 symbol (hand-written assembly) covers at most this much. */
#define ELFSYM_ZERO_SIZE_SPAN 4096
#define ELFSYM_MAX_OBJS 4096

struct elfsym_sym {
	uint64_t addr, size;
	uint32_t name; /* offset into strs */
};

struct elfsym_load {
	uint64_t vaddr, offset, filesz;
};

struct elfsym_table {
	struct elfsym_sym *syms;
	size_t nsyms, cap;
	char *strs;
	size_t strs_len, strs_cap;
	struct elfsym_load loads[ELFSYM_MAX_LOADS];
	size_t nloads;
	uint64_t eh_hdr_vaddr; /* PT_GNU_EH_FRAME, 0 if none */
	char build_id[2 * 64 + 1];
};

static int strs_add(struct elfsym_table *tab, const char *s, size_t n, uint32_t *off)
{
	if (tab->strs_len + n + 1 > ELFSYM_MAX_STRS)
		return -EFBIG;
	if (tab->strs_len + n + 1 > tab->strs_cap) {
		size_t nc = tab->strs_cap ? tab->strs_cap * 2 : 65536;
		while (nc < tab->strs_len + n + 1)
			nc *= 2;
		char *ns = realloc(tab->strs, nc);
		if (!ns)
			return -ENOMEM;
		tab->strs = ns;
		tab->strs_cap = nc;
	}
	memcpy(tab->strs + tab->strs_len, s, n);
	tab->strs[tab->strs_len + n] = '\0';
	*off = (uint32_t)tab->strs_len;
	tab->strs_len += n + 1;
	return 0;
}

static int syms_add(struct elfsym_table *tab, uint64_t addr, uint64_t size, const char *name,
		    size_t nlen)
{
	if (tab->nsyms >= ELFSYM_MAX_SYMS)
		return -EFBIG;
	if (tab->nsyms == tab->cap) {
		size_t nc = tab->cap ? tab->cap * 2 : 1024;
		struct elfsym_sym *ns = realloc(tab->syms, nc * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		tab->syms = ns;
		tab->cap = nc;
	}
	uint32_t off;
	int r = strs_add(tab, name, nlen, &off);
	if (r)
		return r;
	tab->syms[tab->nsyms++] = (struct elfsym_sym){.addr = addr, .size = size, .name = off};
	return 0;
}

/* Read one symbol section. Every index and offset is checked against the
 * section it points into: libelf bounds the section data by the file, but
 * not what the entries say. */
static int read_symtab(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, struct elfsym_table *tab)
{
	size_t shnum;
	if (elf_getshdrnum(e, &shnum) || sh->sh_link == 0 || sh->sh_link >= shnum)
		return 0;
	if (sh->sh_entsize == 0)
		return 0;
	Elf_Data *d = elf_getdata(scn, NULL);
	Elf_Scn *sscn = elf_getscn(e, sh->sh_link);
	Elf_Data *sd = sscn ? elf_getdata(sscn, NULL) : NULL;
	if (!d || !sd || !d->d_buf || !sd->d_buf)
		return 0;
	size_t count = d->d_size / sh->sh_entsize;
	if (count > ELFSYM_MAX_SYMS)
		count = ELFSYM_MAX_SYMS;
	const char *strs = sd->d_buf;
	size_t strs_size = sd->d_size;
	for (size_t i = 0; i < count; i++) {
		GElf_Sym s;
		if (!gelf_getsym(d, (int)i, &s))
			break;
		int type = GELF_ST_TYPE(s.st_info);
		if (type != STT_FUNC && type != STT_GNU_IFUNC)
			continue;
		if (s.st_shndx == SHN_UNDEF || s.st_value == 0 || s.st_name == 0 ||
		    s.st_name >= strs_size)
			continue;
		const char *name = strs + s.st_name;
		const char *end = memchr(name, '\0', strs_size - s.st_name);
		if (!end || end == name)
			continue;
		int r = syms_add(tab, s.st_value, s.st_size, name, (size_t)(end - name));
		if (r)
			return r;
	}
	return 0;
}

static void read_build_id(Elf *e, struct elfsym_table *tab)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		size_t off = 0, name_off, desc_off;
		GElf_Nhdr nh;
		while (off < d->d_size && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
			if (nh.n_type != NT_GNU_BUILD_ID || nh.n_namesz != 4 ||
			    memcmp((char *)d->d_buf + name_off, "GNU", 4) || nh.n_descsz == 0 ||
			    nh.n_descsz > 64)
				continue;
			const unsigned char *id = (const unsigned char *)d->d_buf + desc_off;
			for (size_t i = 0; i < nh.n_descsz; i++)
				snprintf(tab->build_id + 2 * i, 3, "%02x", id[i]);
			return;
		}
	}
}

static void read_loads(Elf *e, struct elfsym_table *tab)
{
	size_t phnum;
	if (elf_getphdrnum(e, &phnum))
		return;
	for (size_t i = 0; i < phnum && tab->nloads < ELFSYM_MAX_LOADS; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, (int)i, &ph))
			continue;
		if (ph.p_type == PT_GNU_EH_FRAME)
			tab->eh_hdr_vaddr = ph.p_vaddr;
		if (ph.p_type != PT_LOAD)
			continue;
		tab->loads[tab->nloads++] =
			(struct elfsym_load){.vaddr = ph.p_vaddr, .offset = ph.p_offset, .filesz = ph.p_filesz};
	}
}

/* Symbols of one ELF image into tab; with_meta also takes its segments
 * and build-id (the main file, not the debug file). */
static int load_elf(Elf *e, struct elfsym_table *tab, bool with_meta)
{
	if (!e || elf_kind(e) != ELF_K_ELF)
		return -ENOEXEC;
	if (with_meta) {
		read_loads(e, tab);
		read_build_id(e, tab);
	}
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;
	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)
			continue;
		int r = read_symtab(e, scn, &sh, tab);
		if (r)
			return r;
	}
	return 0;
}

static int load_file(const char *path, struct elfsym_table *tab, bool with_meta)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	int r = load_elf(e, tab, with_meta);
	if (e)
		elf_end(e);
	close(fd);
	return r;
}

static int elf_init(void)
{
	static bool elf_ready;
	if (!elf_ready) {
		if (elf_version(EV_CURRENT) == EV_NONE)
			return cg_fail(-ENOSYS, "libelf: %s", elf_errmsg(-1));
		elf_ready = true;
	}
	return 0;
}

static uint64_t first_load_vaddr(Elf *e)
{
	size_t nph;
	if (elf_getphdrnum(e, &nph))
		return UINT64_MAX;
	for (size_t i = 0; i < nph && i < 256; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD)
			return ph.p_vaddr & ~0xfffULL;
	}
	return UINT64_MAX;
}

/* Every defined symbol of one table that w wants, into w->vals. */
static void want_symbols(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, struct elfsym_want *w)
{
	Elf_Data *d = elf_getdata(scn, NULL);
	size_t n = d && sh->sh_entsize ? sh->sh_size / sh->sh_entsize : 0;
	for (size_t i = 0; i < n && i < ELFSYM_MAX_SYMS; i++) {
		GElf_Sym s;
		if (!gelf_getsym(d, (int)i, &s) || s.st_shndx == SHN_UNDEF || !s.st_value)
			continue;
		const char *name = elf_strptr(e, sh->sh_link, s.st_name);
		if (!name || !name[0])
			continue;
		for (size_t k = 0; k < w->n; k++)
			if (!w->vals[k] && !strcmp(name, w->names[k]))
				w->vals[k] = s.st_value;
	}
}

int elfsym_file_values(const char *path, struct elfsym_want *w)
{
	size_t shstrndx = 0;
	int r = elf_init();
	memset(w->vals, 0, w->n * sizeof(*w->vals));
	w->section_addr = 0;
	w->first_load = UINT64_MAX;
	if (r)
		return r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	Elf *e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	r = -ENOEXEC;
	if (!e || elf_kind(e) != ELF_K_ELF)
		goto out;
	w->first_load = first_load_vaddr(e);
	if (elf_getshdrstrndx(e, &shstrndx))
		shstrndx = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		const char *sname = shstrndx ? elf_strptr(e, shstrndx, sh.sh_name) : NULL;
		if (w->section && sname && !strcmp(sname, w->section) && sh.sh_addr)
			w->section_addr = sh.sh_addr;
		if (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM)
			want_symbols(e, scn, &sh, w);
	}
	r = 0;
out:
	if (e)
		elf_end(e);
	close(fd);
	return r;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct elfsym_sym *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	/* Prefer the sized symbol, then the earlier (symtab before dynsym
	 * order is not meaningful; the name offset keeps it stable). */
	if ((x->size == 0) != (y->size == 0))
		return x->size == 0 ? 1 : -1;
	return x->name < y->name ? -1 : x->name > y->name;
}

static void sort_unique(struct elfsym_table *tab)
{
	if (!tab->nsyms)
		return;
	qsort(tab->syms, tab->nsyms, sizeof(*tab->syms), sym_cmp);
	size_t k = 0;
	for (size_t i = 0; i < tab->nsyms; i++) {
		if (k && tab->syms[k - 1].addr == tab->syms[i].addr)
			continue; /* aliases (e.g. .dynsym and .symtab): keep the first */
		tab->syms[k++] = tab->syms[i];
	}
	tab->nsyms = k;
}

int elfsym_table_load(const char *path, const char *debug_root, struct elfsym_table **out)
{
	int r = elf_init();
	if (r)
		return r;
	struct elfsym_table *tab = calloc(1, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	r = load_file(path, tab, true);
	if (r)
		goto out;
	/* Distributions strip .symtab into /usr/lib/debug/.build-id/xx/yyy.debug;
	 * it has the same vaddrs, so its symbols simply join the table. */
	if (strlen(tab->build_id) > 2) {
		char dbg[4096];
		snprintf(dbg, sizeof(dbg), "%s/.build-id/%.2s/%s.debug",
			 debug_root ? debug_root : "/usr/lib/debug", tab->build_id, tab->build_id + 2);
		if (access(dbg, R_OK) == 0) {
			int dr = load_file(dbg, tab, false);
			if (dr && dr != -ENOEXEC)
				cg_debug("native: debug file %s: %s", dbg, strerror(-dr));
		}
	}
	sort_unique(tab);
out:
	if (r) {
		elfsym_table_free(tab);
		return r;
	}
	*out = tab;
	return 0;
}

int elfsym_table_load_mem(void *img, size_t len, struct elfsym_table **out)
{
	int r = elf_init();
	if (r)
		return r;
	struct elfsym_table *tab = calloc(1, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	Elf *e = elf_memory(img, len);
	r = load_elf(e, tab, true);
	if (e)
		elf_end(e);
	if (r) {
		elfsym_table_free(tab);
		return r;
	}
	sort_unique(tab);
	*out = tab;
	return 0;
}

void elfsym_table_free(struct elfsym_table *tab)
{
	if (!tab)
		return;
	free(tab->syms);
	free(tab->strs);
	free(tab);
}

size_t elfsym_table_count(const struct elfsym_table *tab) { return tab->nsyms; }
const char *elfsym_table_build_id(const struct elfsym_table *tab) { return tab->build_id; }

const char *elfsym_table_find(const struct elfsym_table *tab, uint64_t vaddr, uint64_t *off)
{
	size_t lo = 0, hi = tab->nsyms;
	/* last symbol with addr <= vaddr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (tab->syms[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	/* A sized symbol just below may not cover vaddr while a bigger one
	 * starting earlier (a function containing a local label) does: look
	 * back a few entries. */
	for (size_t i = lo, k = 0; i > 0 && k < 8; i--, k++) {
		const struct elfsym_sym *s = &tab->syms[i - 1];
		uint64_t span = s->size ? s->size : (k == 0 ? ELFSYM_ZERO_SIZE_SPAN : 0);
		if (vaddr - s->addr < span) {
			if (off)
				*off = vaddr - s->addr;
			return tab->strs + s->name;
		}
	}
	return NULL;
}

int elfsym_table_addr(const struct elfsym_table *tab, const char *name, uint64_t *vaddr)
{
	for (size_t i = 0; i < tab->nsyms; i++)
		if (!strcmp(tab->strs + tab->syms[i].name, name)) {
			*vaddr = tab->syms[i].addr;
			return 0;
		}
	*vaddr = 0;
	return -ENOENT;
}

/* ---- per-process view ---------------------------------------------- */

/* One object file, shared by all its mappings. */
struct elfsym_obj {
	char *path;      /* as the target sees it */
	const char *base;
	char *base_own; /* base without " (deleted)", for gone files */
	uint64_t inode, mtime_ns, size;
	dev_t dev;
	struct elfsym_table *tab; /* NULL if the file could not be read */
};

/* One executable mapping of an object. */
struct elfsym_region {
	uint64_t start, end;
	int64_t vaddr_delta; /* file vaddr = addr + vaddr_delta */
	struct elfsym_obj *obj;
};

struct elfsym_proc {
	struct target *t;
	struct elfsym_obj **objs;
	size_t nobjs;
	struct elfsym_region *regions;
	size_t nregions;
	uint64_t maps_hash; /* of the executable mappings, to notice change */
};

int elfsym_proc_new(struct target *t, struct elfsym_proc **out)
{
	struct elfsym_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->t = t;
	*out = p;
	return 0;
}

static void obj_free(struct elfsym_obj *o)
{
	if (!o)
		return;
	elfsym_table_free(o->tab);
	free(o->base_own);
	free(o->path);
	free(o);
}

void elfsym_proc_free(struct elfsym_proc *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nobjs; i++)
		obj_free(p->objs[i]);
	free(p->objs);
	free(p->regions);
	free(p);
}

static bool mapping_is_code(const struct target_map *m)
{
	return m->perms[2] == 'x' && m->path && m->path[0] == '/' && m->inode != 0;
}

static bool mapping_is_vdso(const struct target_map *m)
{
	return m->perms[2] == 'x' && m->path && !strcmp(m->path, "[vdso]");
}

/* The vDSO has no file: its ELF image is read from the target (a page or
 * two) so its functions (clock_gettime...) get names and unwind info. */
static struct elfsym_obj *vdso_load(struct elfsym_proc *p, const struct target_map *m)
{
	for (size_t k = 0; k < p->nobjs; k++) {
		struct elfsym_obj *q = p->objs[k];
		if (q && q->inode == m->start && !strcmp(q->path, "[vdso]")) {
			p->objs[k] = NULL;
			return q;
		}
	}
	struct elfsym_obj *o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup("[vdso]"))) {
		free(o);
		return NULL;
	}
	o->base = o->path;
	o->inode = m->start; /* its key: one vDSO per address */
	size_t len = m->end - m->start;
	char *img = len <= (1u << 20) ? malloc(len) : NULL;
	if (img && target_read(p->t, m->start, img, len) == 0)
		elfsym_table_load_mem(img, len, &o->tab);
	free(img);
	return o;
}

/* An object whose file is gone or replaced since it was mapped (an
 * upgrade under a running program): its symbol tables are out of reach,
 * but its ELF and program headers are in the target's memory, at the
 * mapping of file offset 0, and say where .eh_frame_hdr is, so its frames
 * still unwind (and are named by address). */
static struct elfsym_obj *gone_load(struct elfsym_proc *p, const struct target_map *m,
				    const struct target_maps *maps)
{
	uint64_t base = 0, base_end = 0;
	for (size_t i = 0; i < maps->n && !base; i++) {
		const struct target_map *q = &maps->map[i];
		if (q->offset == 0 && q->inode == m->inode && q->path && !strcmp(q->path, m->path)) {
			base = q->start;
			base_end = q->end;
		}
	}
	if (!base)
		return NULL;
	for (size_t k = 0; k < p->nobjs; k++) {
		struct elfsym_obj *q = p->objs[k];
		if (q && q->mtime_ns == 0 && q->inode == m->inode && q->size == base &&
		    !strcmp(q->path, m->path)) {
			p->objs[k] = NULL;
			return q;
		}
	}
	struct elfsym_obj *o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup(m->path))) {
		free(o);
		return NULL;
	}
	const char *slash = strrchr(o->path, '/');
	o->base = slash ? slash + 1 : o->path;
	/* "prog (deleted)" would nest parentheses in "sym (object)" */
	size_t bl = strlen(o->base);
	if (bl > 10 && !strcmp(o->base + bl - 10, " (deleted)") &&
	    (o->base_own = strndup(o->base, bl - 10)))
		o->base = o->base_own;
	o->inode = m->inode;
	o->size = base; /* its key, with mtime_ns 0 */
	Elf64_Ehdr eh;
	Elf64_Phdr ph[ELFSYM_MAX_LOADS];
	if (target_read(p->t, base, &eh, sizeof(eh)) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) ||
	    eh.e_phnum == 0 || eh.e_phnum > ELFSYM_MAX_LOADS ||
	    eh.e_phoff + eh.e_phnum * sizeof(Elf64_Phdr) > base_end - base ||
	    target_read(p->t, base + eh.e_phoff, ph, eh.e_phnum * sizeof(Elf64_Phdr)))
		return o; /* a name without a table: frames get 0xADDR (object) */
	struct elfsym_table *tab = calloc(1, sizeof(*tab));
	if (!tab)
		return o;
	for (size_t i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type == PT_GNU_EH_FRAME)
			tab->eh_hdr_vaddr = ph[i].p_vaddr;
		else if (ph[i].p_type == PT_LOAD && tab->nloads < ELFSYM_MAX_LOADS)
			tab->loads[tab->nloads++] = (struct elfsym_load){
				.vaddr = ph[i].p_vaddr, .offset = ph[i].p_offset, .filesz = ph[i].p_filesz};
	}
	o->tab = tab;
	return o;
}

/* A hash of the mappings symbolization cares about: a change is a new
 * generation of objects and regions. */
static uint64_t code_maps_hash(const struct target_maps *maps)
{
	uint64_t h = 0x12345;
	for (size_t i = 0; i < maps->n; i++) {
		const struct target_map *m = &maps->map[i];
		if (!mapping_is_code(m) && !mapping_is_vdso(m))
			continue;
		uint64_t v[4] = {m->start, m->end, m->offset, m->inode};
		h = cg_hash_bytes(v, sizeof(v), h);
		h = cg_hash_bytes(m->path, strlen(m->path), h);
	}
	return h;
}

/* The object of the previous generation for the file st describes, taken
 * out of it (so it is not freed with the rest), or NULL: keyed by what
 * stat says now, so a rebuilt library is a new object. */
static struct elfsym_obj *obj_reuse(struct elfsym_proc *p, const struct target_map *m,
				    const struct stat *st, uint64_t mtime_ns)
{
	for (size_t k = 0; k < p->nobjs; k++) {
		struct elfsym_obj *q = p->objs[k];
		if (q && q->inode == m->inode && q->dev == st->st_dev && q->mtime_ns == mtime_ns &&
		    q->size == (uint64_t)st->st_size && !strcmp(q->path, m->path)) {
			p->objs[k] = NULL;
			return q;
		}
	}
	return NULL;
}

/* A new object for the file at fpath (m's file), its symbols loaded; a
 * file without readable symbols is still an object (named by file). */
static int obj_load(const struct target_map *m, const char *fpath, const struct stat *st,
		    uint64_t mtime_ns, struct elfsym_obj **out)
{
	struct elfsym_obj *o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup(m->path))) {
		free(o);
		return -ENOMEM;
	}
	const char *slash = strrchr(o->path, '/');
	o->base = slash ? slash + 1 : o->path;
	o->inode = m->inode;
	o->dev = st->st_dev;
	o->mtime_ns = mtime_ns;
	o->size = (uint64_t)st->st_size;
	int lr = elfsym_table_load(fpath, NULL, &o->tab);
	if (lr)
		cg_debug("native: no symbols from %s: %s", fpath, strerror(-lr));
	*out = o;
	return 0;
}

/* The object a code mapping shows, for this generation: one taken this
 * round already, the previous generation's if its file is unchanged, a
 * deleted or replaced file's (from memory), or a new one. *out NULL: none
 * (the mapping is skipped). 0 or -ENOMEM. */
static int obj_for_map(struct elfsym_proc *p, const struct target_map *m,
		       const struct target_maps *maps, struct elfsym_obj **objs, size_t *nobjs,
		       struct elfsym_obj **out)
{
	char fpath[4096];
	struct stat st;
	*out = NULL;
	if (mapping_is_vdso(m)) {
		if ((*out = vdso_load(p, m)))
			objs[(*nobjs)++] = *out;
		return 0;
	}
	for (size_t k = 0; k < *nobjs; k++) {
		if (objs[k]->inode == m->inode && !strcmp(objs[k]->path, m->path)) {
			*out = objs[k];
			return 0;
		}
	}
	target_path(p->t, m->path, fpath, sizeof(fpath));
	if (stat(fpath, &st) || (uint64_t)st.st_ino != m->inode) {
		if ((*out = gone_load(p, m, maps)))
			objs[(*nobjs)++] = *out;
		return 0;
	}
	uint64_t mt = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
	*out = obj_reuse(p, m, &st, mt);
	if (!*out) {
		int r = obj_load(m, fpath, &st, mt, out);
		if (r)
			return r;
	}
	objs[(*nobjs)++] = *out;
	return 0;
}

/* The mapping covers file offsets [offset, offset + len); the PT_LOAD
 * segment holding that offset gives its vaddr. */
static int64_t map_vaddr_delta(const struct elfsym_obj *o, const struct target_map *m)
{
	for (size_t k = 0; o->tab && k < o->tab->nloads; k++) {
		const struct elfsym_load *l = &o->tab->loads[k];
		uint64_t seg_off = l->offset & ~0xfffULL;
		if (m->offset >= seg_off && m->offset < l->offset + l->filesz)
			return (int64_t)(l->vaddr - l->offset + m->offset - m->start);
	}
	return (int64_t)(m->offset - m->start);
}

int elfsym_proc_refresh(struct elfsym_proc *p)
{
	struct target_maps maps;
	int r = target_maps_read(p->t, &maps);
	if (r)
		return r;
	uint64_t h = code_maps_hash(&maps);
	if (h == p->maps_hash && p->regions) {
		target_maps_free(&maps);
		return 0;
	}

	struct elfsym_obj **objs = calloc(maps.n ? maps.n : 1, sizeof(*objs));
	struct elfsym_region *regions = calloc(maps.n ? maps.n : 1, sizeof(*regions));
	size_t nobjs = 0, nregions = 0;
	if (!regions || !objs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < maps.n; i++) {
		const struct target_map *m = &maps.map[i];
		struct elfsym_obj *o;
		if (!mapping_is_code(m) && !mapping_is_vdso(m))
			continue;
		if ((r = obj_for_map(p, m, &maps, objs, &nobjs, &o)))
			goto out;
		if (o)
			regions[nregions++] = (struct elfsym_region){
				.start = m->start, .end = m->end,
				.vaddr_delta = map_vaddr_delta(o, m), .obj = o};
	}
	/* /proc/PID/maps is sorted by address, so regions are too. */
	for (size_t k = 0; k < p->nobjs; k++)
		obj_free(p->objs[k]);
	free(p->objs);
	free(p->regions);
	p->objs = objs;
	p->nobjs = nobjs;
	p->regions = regions;
	p->nregions = nregions;
	p->maps_hash = h;
	objs = NULL;
	regions = NULL;
	r = 1;
out:
	if (objs) {
		for (size_t k = 0; k < nobjs; k++)
			obj_free(objs[k]);
		free(objs);
	}
	free(regions);
	target_maps_free(&maps);
	return r;
}

/* The mapped region holding addr (regions are sorted and disjoint), or
 * NULL. */
static const struct elfsym_region *region_of(const struct elfsym_proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->nregions;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->regions[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 || addr >= p->regions[lo - 1].end ? NULL : &p->regions[lo - 1];
}

int elfsym_lookup(struct elfsym_proc *p, uint64_t addr, struct elfsym_result *res)
{
	memset(res, 0, sizeof(*res));
	const struct elfsym_region *rg = region_of(p, addr);
	if (!rg)
		return -ENOENT;
	res->object = rg->obj->base;
	res->rel = (uint64_t)((int64_t)addr + rg->vaddr_delta);
	if (rg->obj->tab)
		res->sym = elfsym_table_find(rg->obj->tab, res->rel, &res->sym_off);
	return 0;
}

int elfsym_eh_frame_hdr(struct elfsym_proc *p, uint64_t addr, uint64_t *hdr, uint64_t *start,
			uint64_t *end)
{
	const struct elfsym_region *rg = region_of(p, addr);
	if (!rg)
		return -ENOENT;
	if (!rg->obj->tab || !rg->obj->tab->eh_hdr_vaddr)
		return -ENOENT;
	/* every segment of an object shares one load bias */
	*hdr = (uint64_t)((int64_t)rg->obj->tab->eh_hdr_vaddr - rg->vaddr_delta);
	*start = rg->start;
	*end = rg->end;
	return 0;
}
