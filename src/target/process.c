/* The target process as a whole: spawn, open (with the reasons a ptrace
 * permission is refused), liveness, reaping and signal forwarding. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/util.h"
#include "target_priv.h"

static struct target *target_alloc(pid_t pid, bool child)
{
	struct target *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->pid = pid;
	t->is_child = child;
	snprintf(t->root, sizeof(t->root), "/proc/%d/root", (int)pid);
	return t;
}

pid_t target_pid(const struct target *t) { return t->pid; }
bool target_is_child(const struct target *t) { return t->is_child; }
const char *target_root(const struct target *t) { return t->root; }

/* A path the target names (maps, exe) as this process can open it. The
 * kernel writes such paths relative to the reader's root where the file
 * is reachable from it (a chroot below ours: the whole path, which is not
 * under /proc/PID/root), else relative to the target's own root (a
 * container's mount namespace). */
const char *target_path(const struct target *t, const char *path, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s", t->root, path);
	if (path[0] == '/' && access(buf, F_OK) != 0 && access(path, F_OK) == 0)
		snprintf(buf, n, "%s", path);
	return buf;
}

int target_spawn(char *const argv[], struct target **out)
{
	int pfd[2], err = 0;
	pid_t pid;

	/* The child reports a failed exec through a close-on-exec pipe, so
	 * "no such command" is our clear error, not a mystery exit 127. */
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return cg_fail(-errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		err = errno;
		close(pfd[0]);
		close(pfd[1]);
		return cg_fail(-err, "fork: %s", strerror(err));
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				signal(s, SIG_DFL);
		close(pfd[0]);
		execvp(argv[0], argv);
		err = errno;
		if (write(pfd[1], &err, sizeof(err)) < 0) {
			/* nothing more to say */
		}
		_exit(127);
	}
	close(pfd[1]);
	ssize_t r;
	do
		r = read(pfd[0], &err, sizeof(err));
	while (r < 0 && errno == EINTR);
	close(pfd[0]);
	if (r == (ssize_t)sizeof(err)) {
		waitpid(pid, NULL, 0);
		return cg_fail(-err, "cannot run '%s': %s", argv[0], strerror(err));
	}
	*out = target_alloc(pid, true);
	return *out ? 0 : -ENOMEM;
}


/* The first field of "Key:" in pid's status (pid 0: our own). */
static int status_field(pid_t pid, const char *key, char *val, size_t n)
{
	char buf[4096];
	int r = target_status_read(pid, 0, buf, sizeof(buf));
	if (r < 0)
		return r;
	const char *v = target_status_value(buf, key);
	if (!v)
		return -ENOENT;
	size_t i = 0;
	while (v[i] && v[i] != '\n' && v[i] != '\t' && i + 1 < n) {
		val[i] = v[i];
		i++;
	}
	val[i] = '\0';
	return 0;
}

static bool have_cap_sys_ptrace(void)
{
	char v[64];
	if (status_field(0, "CapEff", v, sizeof(v)))
		return geteuid() == 0;
	unsigned long long caps = strtoull(v, NULL, 16);
	return caps & (1ULL << 19); /* CAP_SYS_PTRACE */
}

static bool is_descendant(pid_t pid)
{
	pid_t self = getpid();
	for (int hops = 0; pid > 1 && hops < 4096; hops++) {
		char v[32];
		if (status_field(pid, "PPid", v, sizeof(v)))
			return false;
		pid = (pid_t)atoi(v);
		if (pid == self)
			return true;
	}
	return false;
}

/* The user namespace a process is in, "user:[4026531837]"; 0 or -errno
 * (reading another's needs the very access that may be refused). */
static int userns_of(const char *pid_dir, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "%s/ns/user", pid_dir);
	ssize_t r = readlink(path, buf, n - 1);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	return 0;
}

/* Are we in the first user namespace (uid_map maps every id)? */
static bool in_initial_userns(void)
{
	char map[256];
	unsigned long a, b, c;
	if (cg_read_small_file("/proc/self/uid_map", map, sizeof(map)) <= 0)
		return true;
	const char *nl = strchr(map, '\n');
	return sscanf(map, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 &&
	       c == 4294967295UL && (!nl || !nl[1]); /* one line: the identity */
}

/* A process that is not dumpable has its /proc/PID files owned by root
 * whatever its uid: the kernel's sign of setuid/setcap programs and of
 * prctl(PR_SET_DUMPABLE, 0). Only visible when its euid is not root. */
static bool is_non_dumpable(pid_t pid, uid_t euid)
{
	char path[64];
	struct stat st;
	/* a file inside: the kernel updates its owner at each lookup, the
	 * directory's may lag */
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	return euid != 0 && euid != (uid_t)-1 && stat(path, &st) == 0 && st.st_uid == 0;
}

/* A user namespace the process is outside of: cgprof runs in a container
 * or under `unshare -U`, or the process runs in one we are not above. */
static int explain_userns(pid_t pid)
{
	char mine[64], theirs[64], dir[32];
	snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
	if (userns_of("/proc/self", mine, sizeof(mine)))
		return 0;
	int r = userns_of(dir, theirs, sizeof(theirs));
	if (r == 0 && strcmp(mine, theirs))
		return cg_fail(-EPERM,
			       "permission denied: process %d is in another user namespace (%s; "
			       "cgprof is in %s); run cgprof inside it (nsenter -t %d -U -m) or "
			       "from a namespace above it",
			       (int)pid, theirs, mine, (int)pid);
	if (r && !in_initial_userns())
		return cg_fail(-EPERM,
			       "permission denied: process %d is outside cgprof's user namespace "
			       "(%s: a container or `unshare -U`); run cgprof in the namespace the "
			       "process runs in",
			       (int)pid, mine);
	return 0;
}

/* Explain why we may not read pid's memory, as precisely as we can, for
 * the user we run as: the first cause that holds is the one named. */
static int explain_eperm(pid_t pid)
{
	char v[64];
	uid_t tuid = (uid_t)-1;
	int scope = -1;

	if (!status_field(pid, "Uid", v, sizeof(v)))
		tuid = (uid_t)strtoul(v, NULL, 10);
	if (cg_read_small_file("/proc/sys/kernel/yama/ptrace_scope", v, sizeof(v)) > 0)
		scope = atoi(v);
	bool cap = have_cap_sys_ptrace();
	int r = explain_userns(pid);
	if (r)
		return r;
	if (tuid != (uid_t)-1 && tuid != geteuid() && !cap)
		return cg_fail(-EPERM,
			       "permission denied: process %d belongs to another user (uid %u); "
			       "run cgprof as that user or as root",
			       (int)pid, (unsigned)tuid);
	if (scope == 3)
		return cg_fail(-EPERM, "permission denied: yama ptrace_scope is 3 (ptrace disabled "
				       "until reboot)");
	if (scope == 2 && !cap)
		return cg_fail(-EPERM, "permission denied: yama ptrace_scope is 2 (admin only); run "
				       "as root or grant CAP_SYS_PTRACE");
	if (!cap && is_non_dumpable(pid, tuid))
		return cg_fail(-EPERM,
			       "permission denied: process %d is not dumpable (a setuid or setcap "
			       "program, or it called prctl(PR_SET_DUMPABLE, 0)); only a tracer with "
			       "CAP_SYS_PTRACE may read it: run cgprof as root",
			       (int)pid);
	if (scope == 1 && !cap && !is_descendant(pid))
		return cg_fail(-EPERM,
			       "permission denied: yama ptrace_scope is 1 (only descendants may be "
			       "traced); use `cgprof run`, run as root, grant CAP_SYS_PTRACE, or set "
			       "kernel.yama.ptrace_scope=0");
	if (geteuid() == 0 && !cap)
		return cg_fail(-EPERM, "permission denied: running as root without CAP_SYS_PTRACE "
				       "(in a container? add --cap-add SYS_PTRACE)");
	if (!status_field(0, "Seccomp", v, sizeof(v)) && atoi(v) == 2)
		return cg_fail(-EPERM, "permission denied: a seccomp filter blocks ptrace/"
				       "process_vm_readv (in a container? allow them in its seccomp "
				       "profile or add --cap-add SYS_PTRACE)");
	if (cap)
		return cg_fail(-EPERM,
			       "permission denied reading process %d although cgprof has "
			       "CAP_SYS_PTRACE: a security module (AppArmor, SELinux) or the "
			       "sandbox's policy forbids tracing it",
			       (int)pid);
	return cg_fail(-EPERM,
		       "permission denied reading process %d (no cause found: not another "
		       "user's, dumpable, no yama or seccomp limit); try as root",
		       (int)pid);
}

/* Kernel threads have no user memory: PF_KTHREAD in /proc/PID/stat's
 * flags (the ninth field). */
static bool is_kernel_thread(const char *stat_line)
{
	const char *rp = strrchr(stat_line, ')');
	unsigned long flags = 0;
	if (!rp || sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %lu", &flags) != 1)
		return false;
	return flags & 0x00200000UL;
}

/* The start time in a /proc/PID/stat line from its last ')' on (0 if
 * unparsable): field 22, after state, five ids, flags, four fault counts,
 * utime, stime, two child times, priority, nice, threads, itrealvalue. */
static unsigned long long stat_start_ticks(const char *rp)
{
	unsigned long long start = 0;
	if (!rp || sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u"
				  " %*d %*d %*d %*d %*d %*d %llu", &start) != 1)
		return 0;
	return start;
}

/* t's /proc/PID/stat from its last ')' on (the name before it may hold
 * spaces and parentheses), or NULL when the PID is gone or now names
 * another process. */
static const char *target_stat(const struct target *t, char *st, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)t->pid);
	if (cg_read_small_file(path, st, n) < 0)
		return NULL;
	const char *rp = strrchr(st, ')');
	if (!rp || (t->start_ticks && stat_start_ticks(rp) != t->start_ticks))
		return NULL;
	return rp;
}

int target_open(pid_t pid, struct target **out)
{
	char path[64], st[512];

	if (pid <= 0)
		return cg_fail(-EINVAL, "invalid PID %d", (int)pid);
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return cg_fail(-ESRCH, "no such process: %d", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (cg_read_small_file(path, st, sizeof(st)) < 0)
		return cg_fail(-ESRCH, "no such process: %d", (int)pid);
	char *rp = strrchr(st, ')');
	if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
		return cg_fail(-ESRCH, "process %d has exited", (int)pid);
	if (pid == getpid())
		return cg_fail(-EINVAL, "cgprof cannot profile itself");
	if (is_kernel_thread(st))
		return cg_fail(-EINVAL, "process %d is a kernel thread: it has no user-space "
					"code or memory to profile", (int)pid);

	struct target *t = target_alloc(pid, false);
	if (!t)
		return -ENOMEM;
	t->start_ticks = stat_start_ticks(rp);

	/* Probe read access on the first readable mapping: this is the check
	 * the kernel applies to process_vm_readv (PTRACE_MODE_ATTACH). */
	struct target_maps m = {0};
	int r = target_maps_read(t, &m);
	if (r == -EACCES || r == -EPERM) {
		r = explain_eperm(pid);
		goto fail;
	}
	if (r) {
		r = cg_fail(r, "cannot read maps of process %d: %s", (int)pid, strerror(-r));
		goto fail;
	}
	for (size_t i = 0; i < m.n; i++) {
		if (m.map[i].perms[0] != 'r' || !strcmp(m.map[i].path, "[vvar]") ||
		    !strcmp(m.map[i].path, "[vsyscall]"))
			continue;
		char b;
		r = target_read(t, m.map[i].start, &b, 1);
		if (r == -EPERM) {
			r = explain_eperm(pid);
			goto fail;
		}
		break;
	}
	target_maps_free(&m);
	*out = t;
	return 0;
fail:
	target_maps_free(&m);
	free(t);
	return r;
}

void target_close(struct target *t)
{
	if (!t)
		return;
	if (t->paused_tid)
		target_resume(t, t->paused_tid);
	target_tasks_clear(t);
	free(t);
}

bool target_alive(struct target *t)
{
	char st[512];
	if (t->proc)
		return !t->proc->gone;
	if (t->exited)
		return false;
	if (t->is_child) {
		int status;
		if (target_reap(t, false, &status) == 1)
			return false;
	}
	const char *rp = target_stat(t, st, sizeof(st));
	return rp && !(rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

int target_reap(struct target *t, bool block, int *status)
{
	if (!t->is_child)
		return -ECHILD;
	if (t->exited) {
		*status = t->exit_status;
		return 1;
	}
	for (;;) {
		int st;
		/* __WALL is not passed: the leader's ptrace stops (only while we
		 * pause it, and then we wait for it ourselves) are not ours here. */
		pid_t r = waitpid(t->pid, &st, block ? 0 : WNOHANG);
		if (r < 0 && errno == EINTR) {
			if (!block)
				return 0;
			continue;
		}
		if (r <= 0)
			return r < 0 ? -errno : 0;
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			t->exited = true;
			t->exit_status = st;
			*status = st;
			return 1;
		}
		if (!block)
			return 0;
	}
}

int target_signal(struct target *t, int sig)
{
	if (t->proc)
		return target_fake_signal(t->proc, sig);
	if (t->exited)
		return -ESRCH;
	return kill(t->pid, sig) < 0 ? -errno : 0;
}

int target_cpu_ns(struct target *t, uint64_t *ns)
{
	char st[1024];
	unsigned long long ut, stime;
	const char *rp = target_stat(t, st, sizeof(st));
	if (!rp)
		return -ESRCH;
	/* utime and stime are fields 14 and 15 */
	if (sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) != 2)
		return -EINVAL;
	long hz = sysconf(_SC_CLK_TCK);
	*ns = (ut + stime) * (1000000000ULL / (unsigned long long)(hz > 0 ? hz : 100));
	return 0;
}

/* The target of the symbolic link /proc/PID/name (exe, cwd). */
static int proc_link(const struct target *t, const char *name, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)t->pid, name);
	ssize_t r = readlink(path, buf, n - 1);
	if (r < 0)
		return -errno;
	buf[r] = '\0';
	return 0;
}

int target_cwd(struct target *t, char *buf, size_t n) { return proc_link(t, "cwd", buf, n); }

int target_cmdline(struct target *t, char *buf, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)t->pid);
	int r = cg_read_small_file(path, buf, n);
	if (r < 0)
		return r;
	for (int i = 0; i < r; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	while (r > 0 && buf[r - 1] == ' ')
		buf[--r] = '\0';
	return 0;
}

/* /proc/PID/name whole (cmdline, environ), or the fake's copy of it. */
static int proc_text(struct target *t, const char *name, const char *fake, size_t fake_len,
		     char *buf, size_t n)
{
	char path[64];
	if (t->proc)
		return target_fake_text(t->proc, fake, fake_len, buf, n);
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)t->pid, name);
	return cg_read_small_file(path, buf, n);
}

int target_argv(struct target *t, char *buf, size_t n)
{
	const struct cg_fake_proc *f = t->proc;
	return proc_text(t, "cmdline", f ? f->argv : NULL, f ? f->argv_len : 0, buf, n);
}

int target_environ(struct target *t, char *buf, size_t n)
{
	const struct cg_fake_proc *f = t->proc;
	return proc_text(t, "environ", f ? f->environ : NULL, f ? f->environ_len : 0, buf, n);
}

int target_cwd_open(struct target *t)
{
	char path[64];
	if (t->proc)
		return target_fake_cwd_open(t->proc);
	snprintf(path, sizeof(path), "/proc/%d/cwd", (int)t->pid);
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int target_path_pin(const char *path, char *name, size_t n)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(name, n, "/proc/self/fd/%d", fd);
	return fd;
}

int target_exe(struct target *t, char *buf, size_t n) { return proc_link(t, "exe", buf, n); }

/* The AT_RANDOM address of the program the process runs now, or 0. */
static int image_random_addr(const struct target *t, uint64_t *addr)
{
	char path[64];
	uint64_t aux[2 * 64];
	*addr = 0;
	snprintf(path, sizeof(path), "/proc/%d/auxv", (int)t->pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, aux, sizeof(aux));
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	for (size_t i = 0; i + 1 < (size_t)n / 8 && aux[i] != AT_NULL; i += 2)
		if (aux[i] == AT_RANDOM)
			*addr = aux[i + 1];
	return *addr ? 0 : -ENOENT;
}

int target_image_get(struct target *t, struct target_image *img)
{
	/* An exec between reading the address and the bytes there leaves an
	 * address of one program and bytes (or a failed read) of another,
	 * and no later exec would be seen: the address is read again after
	 * the bytes and must not have moved. */
	int r = -EAGAIN;
	for (int tries = 0; tries < 4; tries++) {
		uint64_t addr, again;
		memset(img, 0, sizeof(*img));
		r = image_random_addr(t, &addr);
		if (r)
			return r;
		int rr = target_read(t, addr, img->random, sizeof(img->random));
		r = image_random_addr(t, &again);
		if (r)
			return r;
		if (!rr && again == addr) {
			img->addr = addr;
			return 0;
		}
		r = rr ? rr : -EAGAIN;
	}
	memset(img, 0, sizeof(*img));
	return r;
}

int target_image_changed(struct target *t, const struct target_image *img)
{
	uint8_t now[sizeof(img->random)];
	if (!img->addr)
		return 0;
	int r = target_read(t, img->addr, now, sizeof(now));
	if (r == -ESRCH || (r && !target_alive(t)))
		return -ESRCH;
	/* Unreadable where the old stack was, or other bytes: a new image. */
	return r || memcmp(now, img->random, sizeof(now)) ? 1 : 0;
}

int target_children(pid_t pid, pid_t *out, size_t max)
{
	/* /proc/PID/task/TID/children lists a thread's children (the kernel
	 * keeps it when CONFIG_PROC_CHILDREN); walk every thread's list. */
	char path[96], buf[4096];
	size_t n = 0;
	pid_t tids[1024];
	struct target tmp = {.pid = pid};
	int nt = target_threads(&tmp, tids, (size_t)(sizeof(tids) / sizeof(tids[0])));
	for (int i = 0; i < nt && n < max; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)tids[i]);
		if (cg_read_small_file(path, buf, sizeof(buf)) <= 0)
			continue;
		char *p = buf, *end;
		while (n < max) {
			long c = strtol(p, &end, 10);
			if (end == p)
				break;
			out[n++] = (pid_t)c;
			p = end;
		}
	}
	return (int)n;
}
