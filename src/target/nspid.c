/* Thread ids as a process in another PID namespace sees them (NSpid), so
 * a runtime that reports its own thread ids (a JVM's nid) can be matched
 * to ours. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "target_priv.h"

int target_thread_nstid(struct target *t, pid_t tid, pid_t *nstid)
{
	char path[96], buf[4096];
	if (t->fake)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)t->pid, (int)tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	char *v = strstr(buf, "\nNSpid:");
	if (!v)
		return -ENOENT; /* a kernel before 4.1: one namespace as far as we know */
	v += 7;
	long last = 0;
	/* the last field is the id in the innermost namespace */
	for (int i = 0; i < 32; i++) {
		char *end;
		long x = strtol(v, &end, 10);
		if (end == v)
			break;
		last = x;
		v = end;
	}
	if (last <= 0)
		return -EIO;
	*nstid = (pid_t)last;
	return 0;
}
