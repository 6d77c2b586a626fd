/* Per-thread CPU-clock sampling by the kernel: one perf event per thread
 * with user registers and a user-stack copy, and its mmap'ed ring drained. */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/target.h"
#include "cgprof/util.h"
#include "target_priv.h"

/* 16 KiB of stack holds a few hundred frames; deeper callers are read
 * from the process, where they have not moved. */
#define PERF_DEFAULT_STACK (16u * 1024u)
/* A record's size is a u16: the stack copy plus the rest must fit. */
#define PERF_MAX_STACK 65000u
/* Ring of 2^n data pages per thread: 128 pages hold 31 samples of a
 * 16 KiB stack copy, so a round may come 150 ms late at 200 Hz (30 ms at
 * 1 kHz) on a loaded machine without a loss. Smaller rings are tried
 * when locked memory is short (non-root). */
#define PERF_RING_PAGES_MAX 128u
#define PERF_MAX_THREADS 4096 /* listed by target_perf_open/rescan */
#define PERF_RING_PAGES_MIN 4u /* 16 KiB: four samples of 4 KiB stack */

#if defined(__x86_64__)
/* AX..FLAGS (0-9) and R8..R15 (16-23); the segment registers are refused
 * by the kernel on x86_64 and unwinding needs none of them. */
#define PERF_REGS_MASK (0x3ffULL | (0xffULL << 16))
#define PERF_REG_IP 8
#define PERF_REG_SP 7
#define PERF_REG_FP 6
#else
#define PERF_REGS_MASK 0ULL
#define PERF_REG_IP 0
#define PERF_REG_SP 0
#define PERF_REG_FP 0
#endif

struct perf_thread {
	pid_t tid;
	int fd;
	struct perf_event_mmap_page *mp; /* header page, then the data pages */
	size_t map_len;
};

struct target_perf {
	struct target *t;
	uint64_t period_ns;
	uint32_t stack_bytes;
	uint32_t ring_pages; /* data pages per thread that worked last */
	bool with_kernel;
	bool warned_fds, warned_mem;
	size_t page;
	struct perf_thread *th;
	size_t n, cap;
	uint8_t *scratch; /* a record that wraps the ring end is joined here */
	size_t scratch_len;
};

uint64_t target_perf_regs_mask(void)
{
	return PERF_REGS_MASK;
}

static int perf_event_open(struct perf_event_attr *a, pid_t tid)
{
	long fd = syscall(SYS_perf_event_open, a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

static void attr_init(const struct target_perf *p, struct perf_event_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->type = PERF_TYPE_SOFTWARE;
	/* Per thread (cpu -1) the CPU clock runs only while the thread is on
	 * a CPU: its samples are CPU time, the same event `perf record -e
	 * cpu-clock` uses. */
	a->config = PERF_COUNT_SW_CPU_CLOCK;
	a->sample_period = p->period_ns;
	a->sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER |
			 PERF_SAMPLE_STACK_USER;
	a->sample_regs_user = PERF_REGS_MASK;
	a->sample_stack_user = p->stack_bytes;
	a->exclude_kernel = !p->with_kernel;
	a->exclude_hv = 1;
	a->use_clockid = 1;
	a->clockid = CLOCK_MONOTONIC;
}

static void thread_close(struct perf_thread *th)
{
	if (th->mp)
		munmap(th->mp, th->map_len);
	if (th->fd >= 0)
		close(th->fd);
	th->mp = NULL;
	th->fd = -1;
}

/* Open and map one thread's event. 0, or negative (-ESRCH: gone). */
static int thread_open(struct target_perf *p, pid_t tid, struct perf_thread *th)
{
	struct perf_event_attr a;
	int err = 0;
	/* Locked memory may be short (perf_event_mlock_kb for a normal user):
	 * halve the ring until it maps, and the stack copy with it, so a
	 * ring always holds four samples. */
	for (uint32_t pages = p->ring_pages; pages >= PERF_RING_PAGES_MIN; pages /= 2) {
		uint32_t stack = (uint32_t)(pages * p->page / 4) & ~7u;
		attr_init(p, &a);
		if (stack < a.sample_stack_user)
			a.sample_stack_user = stack;
		int fd = perf_event_open(&a, tid);
		if (fd < 0)
			return fd;
		size_t len = (size_t)(pages + 1) * p->page;
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m != MAP_FAILED) {
			*th = (struct perf_thread){.tid = tid, .fd = fd, .mp = m, .map_len = len};
			p->ring_pages = pages;
			return 0;
		}
		err = -errno;
		close(fd);
		if (err != -EPERM && err != -ENOMEM)
			break;
	}
	return err ? err : -ENOMEM;
}

static int grow(struct target_perf *p)
{
	if (p->n < p->cap)
		return 0;
	size_t cap = p->cap ? p->cap * 2 : 16;
	struct perf_thread *th = realloc(p->th, cap * sizeof(*th));
	if (!th)
		return -ENOMEM;
	p->th = th;
	p->cap = cap;
	return 0;
}

bool target_perf_has(const struct target_perf *p, pid_t tid)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->th[i].tid == tid)
			return true;
	return false;
}

bool target_perf_with_kernel(const struct target_perf *p)
{
	return p->with_kernel;
}

static const char *refusal(int err)
{
	switch (err) {
	case -EACCES:
	case -EPERM:
		return "not permitted (kernel.perf_event_paranoid, a seccomp filter, or no "
		       "ptrace right over the process)";
	case -ENOSYS:
		return "no perf_event_open on this kernel";
	case -ENOENT:
	case -ENODEV:
	case -EOPNOTSUPP:
		return "this kernel has no software CPU-clock event with user stacks";
	default:
		return strerror(-err);
	}
}

int target_perf_open(struct target *t, double rate_hz, uint32_t stack_bytes, const pid_t *tids,
		     size_t ntids, struct target_perf **out)
{
	int r = 0;
	if (!PERF_REGS_MASK)
		return cg_fail(-EOPNOTSUPP, "perf sampling: registers of this architecture "
					    "are not supported");
	if (!(rate_hz > 0) || (tids && ntids == 0))
		return -EINVAL;
	struct target_perf *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pid_t *listed_tids = NULL;
	if (!tids) {
		listed_tids = calloc(PERF_MAX_THREADS, sizeof(*listed_tids));
		int n = listed_tids ? target_threads(t, listed_tids, PERF_MAX_THREADS) : -ENOMEM;
		if (n <= 0) {
			r = n < 0 ? n : -ESRCH;
			goto out;
		}
		tids = listed_tids;
		ntids = (size_t)n;
	}
	p->t = t;
	p->page = (size_t)sysconf(_SC_PAGESIZE);
	p->period_ns = (uint64_t)(1e9 / rate_hz);
	if (p->period_ns < 10000)
		p->period_ns = 10000; /* the kernel's own floor for hrtimer events */
	p->stack_bytes = stack_bytes ? stack_bytes : PERF_DEFAULT_STACK;
	if (p->stack_bytes > PERF_MAX_STACK)
		p->stack_bytes = PERF_MAX_STACK;
	p->stack_bytes &= ~7u; /* the kernel wants it 8-aligned */
	p->ring_pages = PERF_RING_PAGES_MAX;
	p->scratch_len = 65536;
	p->scratch = malloc(p->scratch_len);
	if (!p->scratch) {
		r = -ENOMEM;
		goto out;
	}
	/* Kernel time too where allowed, so a thread inside a system call is
	 * sampled (at its call site) as the CPU time it is; otherwise user
	 * time only, which perf_event_paranoid 2 still permits. */
	p->with_kernel = true;
	struct perf_thread th;
	int first = -ESRCH;
	size_t i;
	for (i = 0; i < ntids; i++) {
		first = thread_open(p, tids[i], &th);
		if (first == -EACCES || first == -EPERM) {
			p->with_kernel = false;
			first = thread_open(p, tids[i], &th);
		}
		if (first != -ESRCH)
			break;
	}
	if (first) {
		r = cg_fail(first == -ESRCH ? -ESRCH : first, "perf sampling of process %d: %s",
			    (int)target_pid(t), refusal(first));
		goto out;
	}
	p->th = calloc(16, sizeof(*p->th));
	if (!p->th) {
		thread_close(&th);
		r = -ENOMEM;
		goto out;
	}
	p->cap = 16;
	p->th[p->n++] = th;
	r = target_perf_sync(p, tids, ntids, NULL, NULL);
	r = r < 0 ? r : 0;
out:
	free(listed_tids);
	if (r) {
		target_perf_close(p);
		return r;
	}
	*out = p;
	return 0;
}

static bool listed(const pid_t *tids, size_t n, pid_t tid)
{
	for (size_t i = 0; i < n; i++)
		if (tids[i] == tid)
			return true;
	return false;
}

static int drain_one(struct target_perf *p, struct perf_thread *th, target_perf_fn fn, void *arg,
		     uint64_t *lost);

int target_perf_sync(struct target_perf *p, const pid_t *tids, size_t ntids, target_perf_fn fn,
		     void *arg)
{
	/* Threads that ended: what they left in the ring is still theirs. */
	for (size_t i = 0; i < p->n;) {
		if (listed(tids, ntids, p->th[i].tid)) {
			i++;
			continue;
		}
		if (fn)
			drain_one(p, &p->th[i], fn, arg, NULL);
		thread_close(&p->th[i]);
		p->th[i] = p->th[--p->n];
	}
	for (size_t i = 0; i < ntids; i++) {
		if (tids[i] <= 0 || target_perf_has(p, tids[i]))
			continue;
		if (grow(p))
			return -ENOMEM;
		int r = thread_open(p, tids[i], &p->th[p->n]);
		if (r == 0) {
			p->n++;
			continue;
		}
		if ((r == -EMFILE || r == -ENFILE) && !p->warned_fds) {
			cg_warn("perf sampling: out of file descriptors; threads beyond %zu are not "
				"sampled",
				p->n);
			p->warned_fds = true;
		}
		if ((r == -EPERM || r == -ENOMEM) && !p->warned_mem) {
			cg_warn("perf sampling: no locked memory left for another ring "
				"(kernel.perf_event_mlock_kb, ulimit -l); threads beyond %zu are not "
				"sampled",
				p->n);
			p->warned_mem = true;
		}
		/* -ESRCH: ended between the listing and now */
	}
	return (int)p->n;
}

int target_perf_rescan(struct target_perf *p, target_perf_fn fn, void *arg)
{
	pid_t *tids = calloc(PERF_MAX_THREADS, sizeof(*tids));
	if (!tids)
		return -ENOMEM;
	int n = target_threads(p->t, tids, PERF_MAX_THREADS);
	int r = n < 0 ? n : n == 0 ? -ESRCH : target_perf_sync(p, tids, (size_t)n, fn, arg);
	free(tids);
	return r;
}

int target_perf_parse_sample(const void *rec, size_t len, uint64_t regs_mask,
			     struct target_perf_sample *s)
{
	const uint8_t *b = rec;
	struct perf_event_header h;
	uint64_t v;
	size_t off = sizeof(h);

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, b, sizeof(h));
	if (h.type != PERF_RECORD_SAMPLE || h.size > len || h.size < sizeof(h))
		return -EINVAL;
	len = h.size;
	memset(s, 0, sizeof(*s));
	uint32_t ids[2];
	if (len - off < 8 + 8 + 8)
		return -EINVAL;
	memcpy(ids, b + off, 8);
	s->pid = (pid_t)ids[0];
	s->tid = (pid_t)ids[1];
	off += 8;
	memcpy(&s->time_ns, b + off, 8);
	off += 8;
	memcpy(&v, b + off, 8); /* abi: 0 when the thread had no user registers */
	off += 8;
	if (v != PERF_SAMPLE_REGS_ABI_NONE) {
		for (unsigned bit = 0; bit < 64; bit++) {
			if (!(regs_mask & (1ULL << bit)))
				continue;
			if (len - off < 8)
				return -EINVAL;
			memcpy(&v, b + off, 8);
			off += 8;
			if (bit < TARGET_PERF_MAX_REGS) {
				s->regs[bit] = v;
				s->regs_mask |= 1ULL << bit;
			}
		}
	}
	if (len - off < 8)
		return -EINVAL;
	uint64_t size;
	memcpy(&size, b + off, 8);
	off += 8;
	if (size) {
		if (size > len - off || len - off - size < 8)
			return -EINVAL;
		uint64_t dyn;
		memcpy(&dyn, b + off + size, 8);
		s->stack = b + off;
		s->stack_len = dyn < size ? dyn : size; /* what the kernel could copy */
	}
	if (s->regs_mask & (1ULL << PERF_REG_IP)) {
		s->ip = s->regs[PERF_REG_IP];
		s->sp = s->regs[PERF_REG_SP];
		s->fp = s->regs[PERF_REG_FP];
	}
	return 0;
}

static int drain_one(struct target_perf *p, struct perf_thread *th, target_perf_fn fn, void *arg,
		     uint64_t *lost)
{
	struct perf_event_mmap_page *mp = th->mp;
	if (!mp)
		return 0;
	uint64_t size = mp->data_size ? mp->data_size : th->map_len - p->page;
	uint64_t doff = mp->data_offset ? mp->data_offset : p->page;
	if (doff + size > th->map_len || size == 0 || (size & (size - 1)))
		return 0;
	const uint8_t *data = (const uint8_t *)mp + doff;
	uint64_t head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = mp->data_tail;
	int n = 0;
	/* A writer can never be more than one ring ahead; if it looks so, the
	 * header is not what we think: drop everything. */
	if (head - tail > size)
		tail = head;
	while (tail < head) {
		struct perf_event_header h;
		uint64_t at = tail & (size - 1);
		const uint8_t *rec = data + at;
		if (at + sizeof(h) <= size) {
			memcpy(&h, rec, sizeof(h));
		} else {
			size_t first = (size_t)(size - at);
			memcpy(&h, rec, first);
			memcpy((uint8_t *)&h + first, data, sizeof(h) - first);
		}
		if (h.size < sizeof(h) || h.size > head - tail)
			break;
		if (at + h.size > size) {
			/* The record wraps: join its two pieces. */
			size_t first = (size_t)(size - at);
			if (h.size > p->scratch_len)
				break;
			memcpy(p->scratch, rec, first);
			memcpy(p->scratch + first, data, h.size - first);
			rec = p->scratch;
		}
		if (h.type == PERF_RECORD_SAMPLE && fn) {
			struct target_perf_sample s;
			if (target_perf_parse_sample(rec, h.size, PERF_REGS_MASK, &s) == 0) {
				s.tid = th->tid; /* the event's own thread, whatever the record says */
				fn(&s, arg);
				n++;
			}
		} else if (h.type == PERF_RECORD_LOST && h.size >= sizeof(h) + 16 && lost) {
			uint64_t nl;
			memcpy(&nl, rec + sizeof(h) + 8, 8);
			*lost += nl;
		}
		tail += h.size;
	}
	__atomic_store_n(&mp->data_tail, head, __ATOMIC_RELEASE);
	return n;
}

int target_perf_drain(struct target_perf *p, target_perf_fn fn, void *arg, uint64_t *lost)
{
	int n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += drain_one(p, &p->th[i], fn, arg, lost);
	return n;
}

void target_perf_close(struct target_perf *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		thread_close(&p->th[i]);
	free(p->th);
	free(p->scratch);
	free(p);
}
