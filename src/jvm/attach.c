/* HotSpot dynamic attach from outside: readiness, the .attach_pid + SIGQUIT
 * trigger, and one request/reply over the /tmp/.java_pid<nspid> socket. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/target.h"
#include "cgprof/util.h"
#include "jvm_priv.h"

#define JVM_POLL_MS 20
#define JVM_SETTLE_NS 300000000ULL /* no perf data: the dispatcher has run this long */

int jvm_timeout_ms(int dflt)
{
	const char *e = getenv("CGPROF_JVM_TIMEOUT_MS");
	if (e && *e) {
		char *end;
		long v = strtol(e, &end, 10);
		if (*end == '\0' && v > 0 && v < 3600 * 1000)
			return (int)v;
	}
	return dflt;
}

int jvm_attach_init(struct target *t, struct jvm_attach *a)
{
	struct target_ids ids;
	pid_t pid = target_pid(t);

	memset(a, 0, sizeof(*a));
	a->t = t;
	a->pid = pid;
	int r = target_ids(t, &ids);
	if (r == -ESRCH)
		return cg_fail(r, "process %d is gone", (int)pid);
	if (r)
		return cg_fail(r, "cannot read the user and group of process %d", (int)pid);
	/* Its socket and attach file carry the pid the JVM sees itself as;
	 * it checks a peer against its effective ids. */
	a->nspid = ids.nspid;
	a->uid = ids.euid;
	a->gid = ids.egid;

	snprintf(a->root, sizeof(a->root), "%s", target_root(t));
	int n = snprintf(a->sock, sizeof(a->sock), "%s/tmp/.java_pid%d", a->root, (int)a->nspid);
	if (n < 0 || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return cg_fail(-ENAMETOOLONG, "attach socket path too long");
	return 0;
}

static bool socket_present(const struct jvm_attach *a)
{
	struct stat st;
	return stat(a->sock, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Does text (cmdline with NULs, or perf data) leave attach disabled? The
 * last mention wins, as in the JVM's own flag parsing. */
static bool says_attach_disabled(const char *text, size_t len)
{
	static const char flag[] = "DisableAttachMechanism";
	const char *last = NULL;
	for (const char *p = text; p && (size_t)(p - text) < len;) {
		p = memmem(p, len - (size_t)(p - text), flag, sizeof(flag) - 1);
		if (!p)
			break;
		last = p;
		p += sizeof(flag) - 1;
	}
	if (!last)
		return false;
	if (last > text && last[-1] == '+')
		return true;
	/* -XX:DisableAttachMechanism=true (flags file / perf data form) */
	const char *eq = last + sizeof(flag) - 1;
	return (size_t)(eq - text) + 5 <= len && !strncmp(eq, "=true", 5);
}

/* The JVM's perf data file (hsperfdata_<user>/<nspid> under its /tmp) into
 * buf: its size, or -ENOENT (-XX:-UsePerfData, not created yet). */
static int perf_read(const struct jvm_attach *a, char *buf, size_t n)
{
	char path[PATH_MAX];
	int r = -ENOENT, guard = 0;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/tmp", a->root);
	DIR *d = opendir(path);
	if (!d)
		return -ENOENT;
	while (r < 0 && (de = readdir(d)) && guard++ < 4096) {
		if (strncmp(de->d_name, "hsperfdata_", 11))
			continue;
		snprintf(path, sizeof(path), "%s/tmp/%s/%d", a->root, de->d_name, (int)a->nspid);
		r = cg_read_small_file(path, buf, n);
		if (r == 0)
			r = -ENOENT;
	}
	closedir(d);
	return r;
}

static int32_t perf_i32(const char *p, bool le)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t v = le ? (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 |
				  (uint32_t)u[3] << 24
			: (uint32_t)u[3] | (uint32_t)u[2] << 8 | (uint32_t)u[1] << 16 |
				  (uint32_t)u[0] << 24;
	return (int32_t)v;
}

/* Value of the long counter `want` in perf data (HotSpot's PerfDataPrologue
 * then PerfDataEntry records), read as untrusted: 0 and *val, or -ENOENT. */
int jvm_perf_long(const char *buf, size_t n, const char *want, int64_t *val)
{
	static const unsigned char magic[4] = {0xca, 0xfe, 0xc0, 0xc0};
	if (n < 32 || memcmp(buf, magic, 4))
		return -ENOENT;
	bool le = buf[4] == 1;
	int32_t off = perf_i32(buf + 24, le), count = perf_i32(buf + 28, le);
	size_t wlen = strlen(want);
	for (int32_t i = 0; i < count && i < 100000; i++) {
		if (off < 32 || (size_t)off + 20 > n)
			return -ENOENT;
		const char *e = buf + off;
		int32_t len = perf_i32(e, le), name = perf_i32(e + 4, le);
		int32_t vec = perf_i32(e + 8, le), data = perf_i32(e + 16, le);
		if (len < 20 || (size_t)off + (size_t)len > n)
			return -ENOENT;
		if (name >= 20 && name < len && (size_t)(len - name) > wlen &&
		    !memcmp(e + name, want, wlen + 1) && e[12] == 'J' && vec == 0 && data >= 20 &&
		    data <= len - 8) {
			uint64_t v = 0;
			for (int b = 0; b < 8; b++)
				v |= (uint64_t)(unsigned char)e[data + (le ? b : 7 - b)] << (8 * b);
			*val = (int64_t)v;
			return 0;
		}
		off += len;
	}
	return -ENOENT;
}

static char perf_buf[256 * 1024];

/* The flag may come from the command line, from JAVA_TOOL_OPTIONS and
 * friends, or from a flags file; the JVM's perf data (hsperfdata) repeats
 * the effective arguments. Any of them saying so is enough. */
static bool attach_disabled(const struct jvm_attach *a)
{
	char *buf = perf_buf;
	int n;

	if ((n = target_argv(a->t, buf, sizeof(perf_buf))) > 0 &&
	    says_attach_disabled(buf, (size_t)n))
		return true;
	if ((n = target_environ(a->t, buf, sizeof(perf_buf))) > 0 &&
	    says_attach_disabled(buf, (size_t)n))
		return true;
	return (n = perf_read(a, buf, sizeof(perf_buf))) > 0 && says_attach_disabled(buf, (size_t)n);
}

/* HotSpot's "Signal Dispatcher" (comm keeps 15 bytes of it), or 0. */
static pid_t find_dispatcher(struct target *t)
{
	pid_t *tids = malloc(JVM_MAX_THREADS * sizeof(*tids)), found = 0;
	if (!tids)
		return 0;
	int n = target_threads(t, tids, JVM_MAX_THREADS);
	for (int i = 0; i < n && !found; i++) {
		char comm[32];
		if (target_thread_name(t, tids[i], comm, sizeof(comm)) == 0 &&
		    !strcmp(comm, "Signal Dispatch"))
			found = tids[i];
	}
	free(tids);
	return found;
}

/* Does the JVM catch SIGQUIT yet, and is the thread that reacts to it
 * (HotSpot's "Signal Dispatcher") running? Before that SIGQUIT's default
 * action would kill the JVM. Then, to be safe from the rest of start-up
 * (which, among others, removes stale attach sockets), wait for the perf
 * data to say the VM is created (sun.rt.createVmEndTime); without perf
 * data (-XX:-UsePerfData) for the dispatcher to have run a while. A JVM
 * that never catches SIGQUIT (-Xrs) starts its attach listener at
 * start-up instead, so waiting for the socket is right there too. */
static int signals_ready(const struct jvm_attach *a)
{
	int r = target_catches(a->t, SIGQUIT);
	if (r <= 0)
		return r == -ESRCH ? -ESRCH : -ENOENT;
	pid_t dispatcher = find_dispatcher(a->t);
	if (!dispatcher)
		return -ENOENT;

	int64_t end = 0;
	uint64_t age_ns = 0;
	int n = perf_read(a, perf_buf, sizeof(perf_buf));
	if (n > 0 && jvm_perf_long(perf_buf, (size_t)n, "sun.rt.createVmEndTime", &end) == 0)
		return end > 0 ? 0 : -ENOENT;
	if (target_thread_age_ns(a->t, dispatcher, &age_ns))
		return -ENOENT;
	return age_ns >= JVM_SETTLE_NS ? 0 : -ENOENT;
}

int jvm_attach_ready(struct jvm_attach *a)
{
	/* A listener already up (earlier attach, -XX:+StartAttachListener)
	 * needs no signal at all. */
	if (socket_present(a))
		return 0;
	int r = signals_ready(a);
	if (r == -ESRCH)
		return cg_fail(-ESRCH, "process %d is gone", (int)a->pid);
	if (r)
		return r; /* -Xrs included: its listener starts without a signal */
	if (attach_disabled(a))
		return cg_fail(-EPERM,
			       "JVM %d was started with -XX:+DisableAttachMechanism: "
			       "cgprof cannot attach to it",
			       (int)a->pid);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Create the trigger file where the JVM looks: its working directory, else
 * its /tmp. Owned by the JVM's user so the JVM accepts it also when our
 * root is not root in its user namespace. The directory is held open
 * (*dfd) so the file can be removed even after the process is gone, when
 * its working directory no longer resolves. 0 or -errno. */
static int create_trigger(const struct jvm_attach *a, int *dfd, char *name, size_t n)
{
	char dir[PATH_MAX];
	int err = 0;

	snprintf(name, n, ".attach_pid%d", (int)a->nspid);
	for (int i = 0; i < 2; i++) {
		if (i == 0) {
			snprintf(dir, sizeof(dir), "its working directory");
			*dfd = target_cwd_open(a->t);
		} else {
			snprintf(dir, sizeof(dir), "%s/tmp", a->root);
			*dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (*dfd < 0)
				*dfd = -errno;
		}
		if (*dfd < 0) {
			err = *dfd;
			*dfd = -1;
			continue;
		}
		int fd = openat(*dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
		if (fd >= 0) {
			if (geteuid() == 0 && (a->uid != 0 || a->gid != 0) && fchown(fd, a->uid, a->gid))
				cg_debug("jvm: chown %s/%s: %s", dir, name, strerror(errno));
			close(fd);
			return 0;
		}
		err = -errno;
		close(*dfd);
		*dfd = -1;
	}
	return err;
}

int jvm_attach_start(struct jvm_attach *a)
{
	char name[64];
	int r = 0, dfd = -1;

	if (socket_present(a))
		return 0;
	r = jvm_attach_ready(a);
	if (r == -ENOENT)
		return cg_fail(-EAGAIN, "JVM %d is still starting up (not ready for attach yet)",
			       (int)a->pid);
	if (r)
		return r;

	r = create_trigger(a, &dfd, name, sizeof(name));
	if (r)
		return cg_fail(r, "cannot create the attach trigger file for JVM %d: %s",
			       (int)a->pid, strerror(-r));

	if ((r = target_signal(a->t, SIGQUIT))) {
		r = cg_fail(r, "cannot signal JVM %d: %s", (int)a->pid, strerror(-r));
		goto out;
	}
	int waited = 0, limit = jvm_timeout_ms(JVM_START_TIMEOUT_MS);
	while (!socket_present(a)) {
		if (waited >= limit) {
			r = cg_fail(-ETIMEDOUT,
				    "JVM %d did not start its attach listener within %d ms "
				    "(busy, hung, or attach disabled)",
				    (int)a->pid, limit);
			goto out;
		}
		if (!target_alive(a->t)) {
			r = cg_fail(-ESRCH, "JVM %d exited while cgprof attached", (int)a->pid);
			goto out;
		}
		sleep_ms(JVM_POLL_MS);
		waited += JVM_POLL_MS;
	}
out:
	if (unlinkat(dfd, name, 0) && errno != ENOENT)
		cg_warn("could not remove %s of JVM %d: %s", name, (int)a->pid, strerror(errno));
	close(dfd);
	return r;
}

/* Connect as the JVM's own user when we are root: the JVM accepts a peer
 * with its effective uid and gid, or root -- but our root may not be root
 * in the JVM's user namespace (containers). The path is resolved first,
 * with our full rights, through an O_PATH descriptor. */
static int attach_connect(const struct jvm_attach *a, uint64_t deadline_ns, int *out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int pfd = -1, s = -1, r = 0;
	bool switched = false;
	uid_t euid = geteuid();
	gid_t egid = getegid();

	pfd = target_path_pin(a->sock, sa.sun_path, sizeof(sa.sun_path));
	if (pfd < 0) {
		r = cg_fail(pfd, "cannot open the attach socket of JVM %d (%s): %s", (int)a->pid,
			    a->sock, strerror(-pfd));
		goto out;
	}
	/* Non-blocking: a JVM that stopped accepting fills its backlog (of
	 * 5), and a blocking connect would then wait forever. */
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		r = cg_fail(-errno, "socket: %s", strerror(errno));
		goto out;
	}
	if (euid == 0 && (a->uid != euid || a->gid != egid)) {
		if (setegid(a->gid) || seteuid(a->uid)) {
			r = cg_fail(-EPERM, "cannot switch to the JVM's user %u:%u: %s",
				    (unsigned)a->uid, (unsigned)a->gid, strerror(errno));
			goto out;
		}
		switched = true;
	}
	int e = 0;
	while (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
		e = errno;
		if (e == EINTR)
			continue;
		if (e != EAGAIN || cg_now_ns() >= deadline_ns)
			break;
		sleep_ms(JVM_POLL_MS / 2); /* backlog full: the JVM is not accepting */
		e = 0;
	}
	if (e) {
		if (e == EAGAIN)
			r = cg_fail(-ETIMEDOUT, "JVM %d does not accept attach connections (hung?)",
				    (int)a->pid);
		else if (e == EACCES || e == EPERM)
			r = cg_fail(-EPERM,
				    "permission denied on the attach socket of JVM %d: it runs as "
				    "user %u, cgprof as %u (run cgprof as that user or root)",
				    (int)a->pid, (unsigned)a->uid, (unsigned)euid);
		else
			r = cg_fail(-e, "cannot connect to JVM %d: %s", (int)a->pid, strerror(e));
	}
out:
	if (switched) {
		/* Back to root first: only root may set the group back. */
		if (seteuid(euid) || setegid(egid)) {
			cg_error("cannot switch back to uid %u: %s", (unsigned)euid, strerror(errno));
			abort(); /* never go on with the wrong identity */
		}
	}
	if (pfd >= 0)
		close(pfd);
	if (r) {
		if (s >= 0)
			close(s);
		return r;
	}
	*out = s;
	return 0;
}

static int64_t ms_left(uint64_t deadline_ns)
{
	uint64_t now = cg_now_ns();
	return now >= deadline_ns ? 0 : (int64_t)((deadline_ns - now) / 1000000ULL) + 1;
}

int jvm_attach_parse_reply(const char *data, size_t len, int *status, struct cg_buf *out)
{
	/* "<code>\n<output>": an optional '-', decimal digits, a newline. */
	const char *nl = len ? memchr(data, '\n', len) : NULL;
	const char *p = data;
	bool neg = p < nl && *p == '-';
	long code = 0;
	if (neg)
		p++;
	if (!nl || p == nl)
		return -EPROTO;
	for (; p < nl; p++) {
		if (*p < '0' || *p > '9' || code > (INT_MAX - 9) / 10)
			return -EPROTO;
		code = code * 10 + (*p - '0');
	}
	*status = (int)(neg ? -code : code);
	out->len = 0;
	return cg_buf_append(out, nl + 1, len - (size_t)(nl + 1 - data));
}

/* The whole request down the socket by the deadline. 0 or cg_fail(). */
static int attach_send(const struct jvm_attach *a, int s, const char *req, size_t n,
		       uint64_t deadline, const char *cmd, int timeout_ms)
{
	for (size_t off = 0; off < n;) {
		/* The JVM closes the connection on a peer it refuses: never
		 * die of SIGPIPE for it. */
		ssize_t w = send(s, req + off, n - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN && ms_left(deadline) > 0) {
			struct pollfd pf = {.fd = s, .events = POLLOUT};
			poll(&pf, 1, (int)ms_left(deadline));
			continue;
		}
		if (w < 0 && errno == EAGAIN)
			return cg_fail(-ETIMEDOUT, "JVM %d did not take the '%s' request within %d ms",
				       (int)a->pid, cmd, timeout_ms);
		if (w <= 0)
			return cg_fail(errno == EPIPE || errno == ECONNRESET ? -EPERM : -EIO,
				       "JVM %d closed the attach connection (it accepts only its own "
				       "user %u and group %u, or root)",
				       (int)a->pid, (unsigned)a->uid, (unsigned)a->gid);
		off += (size_t)w;
	}
	return 0;
}

/* Everything the JVM answers, until it closes, by the deadline and
 * within JVM_MAX_REPLY. 0 or cg_fail(). */
static int attach_recv(const struct jvm_attach *a, int s, uint64_t deadline, const char *cmd,
		       int timeout_ms, struct cg_buf *reply)
{
	for (;;) {
		struct pollfd pf = {.fd = s, .events = POLLIN};
		int64_t left = ms_left(deadline);
		if (left <= 0)
			return cg_fail(-ETIMEDOUT, "JVM %d did not answer '%s' within %d ms",
				       (int)a->pid, cmd, timeout_ms);
		int pr = poll(&pf, 1, (int)(left > INT_MAX ? INT_MAX : left));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return cg_fail(-errno, "poll: %s", strerror(errno));
		if (pr == 0)
			continue;
		int r = cg_buf_reserve(reply, 65536);
		if (r)
			return r;
		ssize_t got = recv(s, reply->data + reply->len, reply->cap - reply->len - 1, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0 && errno != ECONNRESET)
			return cg_fail(-errno, "reading from JVM %d: %s", (int)a->pid, strerror(errno));
		if (got <= 0)
			return 0; /* the JVM closes after the whole reply */
		reply->len += (size_t)got;
		reply->data[reply->len] = '\0';
		if (reply->len > JVM_MAX_REPLY)
			return cg_fail(-EFBIG, "reply of JVM %d to '%s' exceeds %u bytes", (int)a->pid,
				       cmd, JVM_MAX_REPLY);
	}
}

int jvm_attach_request(struct jvm_attach *a, const char *cmd, const char *const args[3],
		       int timeout_ms, int *status, struct cg_buf *out)
{
	char req[1024];
	size_t n = 0;
	int s = -1, r;
	uint64_t deadline = cg_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	struct cg_buf reply = {0};

	/* "1\0cmd\0arg0\0arg1\0arg2\0": protocol version 1, always three
	 * arguments, empty when absent. */
	const char *parts[5] = {"1", cmd, args ? args[0] : NULL, args ? args[1] : NULL,
				args ? args[2] : NULL};
	for (int i = 0; i < 5; i++) {
		const char *p = parts[i] ? parts[i] : "";
		size_t l = strlen(p) + 1;
		if (n + l > sizeof(req))
			return cg_fail(-EINVAL, "attach request too long");
		memcpy(req + n, p, l);
		n += l;
	}

	if ((r = attach_connect(a, deadline, &s)))
		return r;
	if ((r = attach_send(a, s, req, n, deadline, cmd, timeout_ms)) ||
	    (r = attach_recv(a, s, deadline, cmd, timeout_ms, &reply)))
		goto out;
	if (!reply.len) {
		r = cg_fail(-EPERM,
			    "JVM %d closed the attach connection without a reply (it accepts only "
			    "its own user and group, or root)",
			    (int)a->pid);
		goto out;
	}
	r = jvm_attach_parse_reply(reply.data, reply.len, status, out);
	if (r == -EPROTO)
		r = cg_fail(r, "JVM %d sent a malformed attach reply", (int)a->pid);
out:
	if (s >= 0)
		close(s);
	cg_buf_free(&reply);
	return r;
}
