/* Who the target is, from /proc/PID/status: its ids as the kernel and as
 * its own PID namespace see them (NSpid), its effective user and group,
 * and the signals it catches. One reader of the file for all of them. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgprof/util.h"
#include "target_priv.h"

int target_status_read(pid_t pid, pid_t tid, char *buf, size_t n)
{
	char path[96];
	if (!pid)
		snprintf(path, sizeof(path), "/proc/self/status");
	else if (!tid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	int r = cg_read_small_file(path, buf, n);
	if (r == -ENOENT)
		return -ESRCH;
	return r == 0 ? -EIO : r;
}

const char *target_status_value(const char *status, const char *key)
{
	size_t klen = strlen(key);
	for (const char *l = status; l && *l;) {
		if (!strncmp(l, key, klen) && l[klen] == ':') {
			l += klen + 1;
			while (*l == ' ' || *l == '\t')
				l++;
			return l;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return NULL;
}

/* NSpid lists the id in every nested namespace, the reader's first and
 * the innermost (the program's own) last. -ENOENT on a kernel before 4.1
 * (no NSpid: one namespace as far as we know). */
static int nspid_last(const char *status, pid_t *out)
{
	const char *v = target_status_value(status, "NSpid");
	if (!v)
		return -ENOENT;
	long last = 0;
	for (int i = 0; i < 32 && *v != '\n'; i++) {
		char *end;
		long x = strtol(v, &end, 10);
		if (end == v)
			break;
		last = x;
		v = end;
	}
	if (last <= 0 || last > INT_MAX)
		return -EIO;
	*out = (pid_t)last;
	return 0;
}

int target_thread_nstid(struct target *t, pid_t tid, pid_t *nstid)
{
	char buf[4096];
	if (t->fake)
		return -EINVAL;
	int r = target_status_read(t->pid, tid, buf, sizeof(buf));
	return r < 0 ? r : nspid_last(buf, nstid);
}

/* The second of "real effective saved fs" on a Uid:/Gid: line. */
static int effective_id(const char *status, const char *key, unsigned long *out)
{
	const char *v = target_status_value(status, key);
	unsigned long real;
	return v && sscanf(v, "%lu %lu", &real, out) == 2 ? 0 : -EIO;
}

int target_ids(struct target *t, struct target_ids *out)
{
	char buf[4096];
	unsigned long uid, gid;
	if (t->proc)
		return target_fake_ids(t->proc, out);
	int r = target_status_read(t->pid, 0, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (effective_id(buf, "Uid", &uid) || effective_id(buf, "Gid", &gid))
		return -EIO;
	out->euid = (uid_t)uid;
	out->egid = (gid_t)gid;
	out->nspid = t->pid;
	r = nspid_last(buf, &out->nspid);
	return r == -ENOENT ? 0 : r;
}

int target_catches(struct target *t, int sig)
{
	char buf[4096];
	if (sig < 1 || sig > 64)
		return -EINVAL;
	if (t->proc)
		return target_fake_catches(t->proc, sig);
	int r = target_status_read(t->pid, 0, buf, sizeof(buf));
	if (r < 0)
		return r;
	const char *v = target_status_value(buf, "SigCgt");
	if (!v)
		return -EIO;
	return strtoull(v, NULL, 16) & (1ULL << (sig - 1)) ? 1 : 0;
}
