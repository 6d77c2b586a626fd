/* A paused thread's registers (x86-64): what a stack walker that does not
 * use libunwind needs to start from. */
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>

#include "target_priv.h"

int target_thread_regs(struct target *t, pid_t tid, struct target_regs *out)
{
	memset(out, 0, sizeof(*out));
	/* Only a thread we hold in a ptrace stop has registers to read. */
	if (t->fake || t->paused_tid != tid)
		return -EINVAL;
#if defined(__x86_64__)
	struct user_regs_struct r;
	if (ptrace(PTRACE_GETREGS, tid, 0, &r) < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	out->pc = r.rip;
	out->sp = r.rsp;
	out->fp = r.rbp;
	out->r13 = r.r13;
	return 0;
#else
	return -ENOTSUP;
#endif
}
