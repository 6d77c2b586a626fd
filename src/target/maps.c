/* Parsing /proc/PID/maps into an array the samplers search for their
 * runtime (libpython, libjvm) and the native unwinder maps addresses with. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgprof/target.h"
#include "cgprof/util.h"
#include "target_priv.h"

#define MAPS_MAX 1000000 /* bound on lines: a hostile /proc cannot OOM us */

/* One pass over an open maps file: 0, or -ESRCH when it listed nothing. */
static int maps_parse(FILE *f, const char *path, struct target_maps *out)
{
	char *line = NULL;
	size_t cap = 0, alloc = 0;
	int err = 0;

	out->map = NULL;
	out->n = 0;
	while (getline(&line, &cap, f) > 0 && out->n < MAPS_MAX) {
		struct target_map m = {0};
		unsigned long long start, end, off, inode;
		char perms[8] = "";
		int pathpos = 0;
		if (sscanf(line, "%llx-%llx %7s %llx %*s %llu %n", &start, &end, perms, &off, &inode,
			   &pathpos) < 5)
			continue;
		m.start = start;
		m.end = end;
		m.offset = off;
		m.inode = inode;
		memcpy(m.perms, perms, 4);
		char *p = pathpos ? line + pathpos : line + strlen(line);
		p[strcspn(p, "\n")] = '\0';
		m.path = strdup(p);
		if (!m.path) {
			err = -ENOMEM;
			break;
		}
		if (cg_grow(&out->map, &alloc, out->n + 1, sizeof(*out->map), 64)) {
			free(m.path);
			err = -ENOMEM;
			break;
		}
		out->map[out->n++] = m;
	}
	/* Reading maps of a process we may not trace fails at read time. */
	if (!err && ferror(f))
		err = errno == EACCES || errno == EPERM ? -EACCES : -EIO;
	if (!err && out->n == 0)
		err = access(path, R_OK) ? -EACCES : -ESRCH;
	free(line);
	if (err)
		target_maps_free(out);
	return err;
}

#define MAPS_TRIES 8 /* execs in a row a read may land between */

int target_maps_read_from(struct target *t, struct target_maps *out, FILE *first)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)t->pid);
	int err = -ESRCH;
	/* An open maps file holds the mm it was opened on: a process that
	 * execs between the open and the read lists nothing (its old mm is
	 * gone), though it lives on. Caught in an exec chain (a launcher's sh,
	 * env, chroot), open again; only a process that is gone or a zombie
	 * is "no such process". */
	for (int i = 0; i < MAPS_TRIES; i++) {
		FILE *f = i == 0 && first ? first : fopen(path, "re");
		if (!f) {
			err = errno == ENOENT ? -ESRCH : -errno;
			break;
		}
		err = maps_parse(f, path, out);
		fclose(f);
		if (err != -ESRCH)
			break;
		if (target_thread_state(t, t->pid) == TARGET_THREAD_GONE)
			break;
	}
	return err;
}

int target_maps_read(struct target *t, struct target_maps *out)
{
	return target_maps_read_from(t, out, NULL);
}

void target_maps_free(struct target_maps *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->map[i].path);
	free(m->map);
	m->map = NULL;
	m->n = 0;
}

const struct target_map *target_maps_find(const struct target_maps *m, const char *substr)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->map[i].path && strstr(m->map[i].path, substr))
			return &m->map[i];
	return NULL;
}
