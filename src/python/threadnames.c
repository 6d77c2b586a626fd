/* Python thread names as the program knows them: the threading module's
 * registry of live threads (threading._active), cached by thread ident. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgprof/log.h"
#include "cgprof/target.h"
#include "py_priv.h"

#define TN_REFRESH_NS 1000000000ULL /* read the registry at most this often */
#define TN_MISS_MAX 64              /* idents without a name, per period */
/* A thread is sampled before threading registers it, or threading never
 * knows it (a thread made in C). An ident not in the names read looks at
 * the registry's stamp (py_dict_stamp: one small read) at most once a
 * millisecond, and reads the registry again as soon as a thread was added
 * to it: the sample after a thread registers carries its name, however
 * long it ran unknown. A read that fails waits twice as long each time.
 * Before threading is found, an unknown ident looks for it after 10 ms,
 * then 20, 40... */
#define TN_CHECK_NS 1000000ULL
#define TN_RETRY_NS 10000000ULL

/* A dict's stamp: its keys object and that object's entry count. Adding
 * a key moves one or the other (a resize makes a new keys object);
 * keys 0: unknown. */
struct tn_stamp {
	uint64_t keys, n;
};

struct tn_entry {
	uint64_t ident;
	char name[PY_TNAME_MAX];
};

struct py_tnames {
	const struct py_interp *pi;
	uint64_t active;                 /* threading._active, 0: not found yet */
	uint64_t key_threading, key_active, key_name; /* interned keys seen */
	uint64_t modules_seen;           /* sys.modules that had no threading */
	struct tn_stamp modules_stamp;   /* ... and its stamp, taken before */
	uint64_t last_ns;
	struct tn_stamp active_stamp; /* _active's stamp at the last good read */
	uint64_t checked_ns;          /* when a miss last looked at it */
	unsigned fails;               /* reads failed in a row */
	bool refreshed;
	uint32_t n, nmiss;
	/* PY_TNAMES_MAX each, allocated at the first read (a sampler made
	 * and closed without sampling costs nothing): the names in force,
	 * and the read in progress */
	struct tn_entry *e, *fresh;
	struct {
		uint64_t ident, at; /* when the registry last lacked it */
		unsigned tries;
	} miss[TN_MISS_MAX];
};

/* dict's stamp now into *now; was (the last one, or keys 0) saves a
 * read when the keys object is the same. 0 or negative. */
static int stamp_take(const struct py_interp *pi, uint64_t dict, const struct tn_stamp *was,
		      struct tn_stamp *now)
{
	*now = (struct tn_stamp){was->keys, 0};
	return py_dict_stamp(pi, dict, &now->keys, &now->n);
}

/* Nothing added between the two stamps (both known). */
static bool stamp_same(const struct tn_stamp *a, const struct tn_stamp *b)
{
	return a->keys && a->keys == b->keys && a->n == b->n;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int py_tnames_new(const struct py_interp *pi, struct py_tnames **out)
{
	struct py_tnames *tn = calloc(1, sizeof(*tn));
	if (!tn)
		return -ENOMEM;
	tn->pi = pi;
	*out = tn;
	return 0;
}

void py_tnames_free(struct py_tnames *tn)
{
	if (!tn)
		return;
	free(tn->e);
	free(tn->fresh);
	free(tn);
}

/* threading._active, found through sys.modules of the main interpreter. */
static int find_active(struct py_tnames *tn)
{
	const struct py_interp *pi = tn->pi;
	const struct py_layout *L = &pi->L;
	uint64_t interp = 0, modules = 0, mod = 0, md = 0, active = 0, type = 0;
	if (L->interp_modules < 0 || L->module_dict < 0)
		return -ENOTSUP;
	int r = py_read_interp((struct py_interp *)pi, &interp);
	if (!r)
		r = interp ? target_read(pi->t, interp + (uint64_t)L->interp_modules, &modules, 8)
			   : -ENOENT;
	if (r)
		return r;
	/* Searched before without finding threading: only again once
	 * something was imported. The stamp is taken before the search, so
	 * an import during it is a change the next look sees (a count taken
	 * after a miss took threading in, and it was never looked for
	 * again). */
	struct tn_stamp st;
	r = modules ? stamp_take(pi, modules, &tn->modules_stamp, &st) : -ENOENT;
	if (r)
		return r;
	if (modules == tn->modules_seen && stamp_same(&st, &tn->modules_stamp))
		return -ENOENT;
	r = py_dict_get_str(pi, modules, "threading", &tn->key_threading, &mod);
	if (r == -ENOENT) {
		tn->modules_seen = modules;
		tn->modules_stamp = st;
	}
	if (r)
		return r;
	r = target_read(pi->t, mod + (uint64_t)L->object_type, &type, 8);
	if (r)
		return r;
	if (pi->types.module && type != pi->types.module)
		return -EINVAL;
	r = target_read(pi->t, mod + (uint64_t)L->module_dict, &md, 8);
	if (!r)
		r = py_dict_get_str(pi, md, "_active", &tn->key_active, &active);
	if (r)
		return r;
	cg_debug("python: threading._active at %#llx", (unsigned long long)active);
	tn->active = active;
	return 0;
}

struct tn_fill {
	struct py_tnames *tn;
	struct tn_entry *e;
	uint32_t n;
};

/* One item of _active: {ident: Thread}; the name is Thread._name. */
static int add_thread(uint64_t key, uint64_t value, void *arg)
{
	struct tn_fill *f = arg;
	const struct py_interp *pi = f->tn->pi;
	uint64_t ident, name;
	if (f->n >= PY_TNAMES_MAX)
		return 1;
	if (py_long_read(pi, key, &ident) || !ident)
		return 0;
	if (py_attr_get(pi, value, "_name", &f->tn->key_name, &name))
		return 0;
	struct tn_entry *e = &f->e[f->n];
	if (py_str_read(pi, name, e->name, sizeof(e->name)) || !e->name[0])
		return 0;
	e->ident = ident;
	f->n++;
	return 0;
}

/* The names in the registry at tn->active into f, its stamp (taken
 * first, from was) into *st. */
static int read_active(struct py_tnames *tn, struct tn_fill *f, const struct tn_stamp *was,
		       struct tn_stamp *st)
{
	int r = stamp_take(tn->pi, tn->active, was, st);
	return r ? r : py_dict_scan(tn->pi, tn->active, add_thread, f);
}

int py_tnames_refresh(struct py_tnames *tn)
{
	struct tn_fill f = {tn, NULL, 0};
	int r;

	tn->refreshed = true;
	if (!tn->e) {
		tn->e = calloc(PY_TNAMES_MAX, sizeof(*tn->e));
		tn->fresh = calloc(PY_TNAMES_MAX, sizeof(*tn->fresh));
		if (!tn->e || !tn->fresh) {
			free(tn->e);
			free(tn->fresh);
			tn->e = tn->fresh = NULL;
			return -ENOMEM;
		}
	}
	f.e = tn->fresh;
	/* The registry is made once, when threading is imported: a cached
	 * address is used again while it still reads as a dict. Its stamp
	 * is taken before the scan, so a thread added during it is a change
	 * the next look sees. */
	struct tn_stamp st;
	r = tn->active ? read_active(tn, &f, &tn->active_stamp, &st) : -ENOENT;
	if (r < 0) {
		tn->active = 0;
		f.n = 0;
		r = find_active(tn);
		if (!r)
			r = read_active(tn, &f, &(struct tn_stamp){0, 0}, &st);
	}
	if (r < 0) {
		if (tn->fails < 16)
			tn->fails++;
		tn->active_stamp.keys = 0; /* unknown: the next look reads again */
		cg_debug("python: no thread names from threading._active: %s", strerror(-r));
		/* A torn read keeps the names of the last good one; no
		 * registry (threading not imported) has none. */
		if (r == -ENOENT || r == -ENOTSUP)
			tn->n = 0;
		return r;
	}
	tn->fails = 0;
	tn->active_stamp = st;
	f.e = tn->e; /* the new read is now the one in force */
	tn->e = tn->fresh;
	tn->fresh = f.e;
	tn->n = f.n;
	return (int)f.n;
}

static const char *lookup(const struct py_tnames *tn, uint64_t ident)
{
	for (uint32_t i = 0; i < tn->n; i++)
		if (tn->e[i].ident == ident)
			return tn->e[i].name;
	return NULL;
}

const char *py_tnames_get(struct py_tnames *tn, uint64_t ident)
{
	uint64_t now = now_ns();
	if (!ident)
		return NULL;
	if (!tn->refreshed || now - tn->last_ns >= TN_REFRESH_NS) {
		tn->last_ns = now;
		tn->nmiss = 0;
		py_tnames_refresh(tn);
	}
	const char *name = lookup(tn, ident);
	if (name)
		return name;
	if (tn->active) {
		/* fails <= 16: a wait of at most 65 s */
		if (now - tn->checked_ns < (TN_CHECK_NS << tn->fails))
			return NULL;
		tn->checked_ns = now;
		struct tn_stamp st;
		if (tn->active_stamp.keys && !stamp_take(tn->pi, tn->active, &tn->active_stamp, &st) &&
		    stamp_same(&st, &tn->active_stamp))
			return NULL; /* no thread added since the names were read */
		py_tnames_refresh(tn);
		return lookup(tn, ident);
	}
	/* No registry yet: look for it again, backing off per ident, so a
	 * program that never imports threading costs little. */
	uint32_t i;
	for (i = 0; i < tn->nmiss && tn->miss[i].ident != ident; i++)
		;
	if (i == tn->nmiss) {
		if (tn->nmiss >= TN_MISS_MAX)
			return NULL;
		tn->miss[tn->nmiss++] = (__typeof__(tn->miss[0])){ident, 0, 0};
	} else if (now - tn->miss[i].at < (TN_RETRY_NS << tn->miss[i].tries)) {
		return NULL;
	}
	py_tnames_refresh(tn);
	tn->miss[i].at = now;
	if (tn->miss[i].tries < 7)
		tn->miss[i].tries++;
	return lookup(tn, ident);
}

/* Cut s at its first byte that does not continue valid UTF-8 (the OS
 * keeps 15 bytes of a name, which may end inside a character). */
static void utf8_trim(char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (p[i]) {
		size_t len = p[i] < 0x80 ? 1 : (p[i] & 0xe0) == 0xc0 ? 2 : (p[i] & 0xf0) == 0xe0 ? 3
				: (p[i] & 0xf8) == 0xf0 ? 4 : 0;
		size_t k = 1;
		while (len && k < len && (p[i + k] & 0xc0) == 0x80)
			k++;
		if (!len || k < len)
			break;
		i += len;
	}
	s[i] = '\0';
}

void py_tnames_name(struct py_tnames *tn, uint64_t ident, pid_t tid, char *out, size_t n)
{
	const char *name = py_tnames_get(tn, ident);
	if (!n)
		return;
	out[0] = '\0';
	if (name)
		snprintf(out, n, "%s", name);
	else if (tid > 0 && target_thread_name(tn->pi->t, tid, out, n) == 0)
		utf8_trim(out);
}
