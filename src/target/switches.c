/* Where a thread was at a round's instant, on a CPU or not, from the
 * kernel's context-switch records: one perf dummy event per thread whose
 * ring is read without a system call.
 *
 * Why: /proc says R for a thread on a CPU and for one waiting for a CPU
 * alike, and its run time moves only at scheduler ticks (4 ms at HZ=250).
 * On a busy machine a thread preempted at a system call's return (where
 * the kernel checks its time slice) waits there for milliseconds, and a
 * sampler that trusts R counts that wait as CPU time on the call's line
 * (measured: 45% of the samples on a line whose CPU share is 1.5%). The
 * switch records say when the thread left and came back, to the
 * nanosecond, so the round asks "was it on a CPU at the tick?". */
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/util.h"
#include "target_priv.h"

/* One data page: 256 records of 16 bytes. Only the newest few matter (the
 * ones around the tick); the ring is overwritten, never drained. */
#define SW_DATA_PAGES 1u
/* Records examined per look: far more switches than a thread makes
 * between a tick and the look that follows it. */
#define SW_LOOK_BYTES 1024u
#define SW_RECORD_MIN 8u
#define SW_RECORD_SIZE 24u /* header, time, cpu and its pad */

static int sw_event_open(pid_t tid)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_DUMMY; /* counts nothing: records only */
	a.context_switch = 1;
	a.sample_id_all = 1;
	/* each record ends with its time and the CPU it happened on */
	a.sample_type = PERF_SAMPLE_TIME | PERF_SAMPLE_CPU;
	a.use_clockid = 1;
	a.clockid = CLOCK_MONOTONIC; /* the clock rounds are timed with */
	/* Newest record at the head, older ones after it: the ring holds the
	 * latest history and needs no reader to make room. */
	a.write_backward = 1;
	a.exclude_kernel = 1; /* perf_event_paranoid 2 permits it */
	a.exclude_hv = 1;
	long fd = syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

void target_sw_close(struct target_task *e)
{
	if (e->sw_mp)
		munmap(e->sw_mp, e->sw_len);
	if (e->sw_fd >= 0)
		close(e->sw_fd);
	e->sw_mp = NULL;
	e->sw_fd = -1;
}

int target_sw_open(struct target *t, struct target_task *e)
{
	if (t->sw_refused)
		return t->sw_refused;
	int fd = sw_event_open(e->tid);
	if (fd < 0) {
		/* a refusal (paranoid, seccomp, no such event) holds for every
		 * thread: asked once; a thread that ended is its own matter */
		if (fd != -ESRCH) {
			t->sw_refused = fd;
			cg_info("process %d: no context-switch records (%s): whether a thread is "
				"on a CPU comes from /proc, where one waiting for a CPU looks "
				"running for up to two scheduler ticks",
				(int)t->pid, strerror(-fd));
		}
		return fd;
	}
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t len = (SW_DATA_PAGES + 1) * page;
	/* read-only: the kernel overwrites the oldest records */
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err; /* locked memory short for this one: /proc then */
	}
	e->sw_fd = fd;
	e->sw_mp = m;
	e->sw_len = len;
	return 0;
}

/* Where the thread is now (`now`, CLOCK_MONOTONIC ns), for a round whose
 * instant is `tick`: 1 on a CPU, 0 not, -2 no record yet (no switch since
 * the event opened), -1 the records cannot say (the history is gone).
 *
 * A thread that left its CPU after the tick was on one at the tick, but
 * its stack now is where it left: at the system call it blocked in, or
 * where the kernel preempted it, which on a busy machine is most often a
 * system call's return. That stack would put CPU time on the call, so it
 * is not taken (0), unless it is our own doing: preempted on the CPU we
 * run on, as our wake-up does, it stopped at an arbitrary instruction. */
/* n bytes of the ring from offset off (any u64: it wraps), in place. */
static void ring_get(const uint8_t *data, uint64_t size, uint64_t off, void *dst, size_t n)
{
	size_t at = (size_t)(off & (size - 1));
	size_t first = n < size - at ? n : (size_t)(size - at);
	memcpy(dst, data + at, first);
	memcpy((uint8_t *)dst + first, data, n - first);
}

int target_sw_state(const struct target_task *e, uint64_t tick, uint64_t now, int our_cpu)
{
	const struct perf_event_mmap_page *mp = e->sw_mp;
	if (!mp)
		return -1;
	uint64_t size = mp->data_size, off0 = mp->data_offset;
	if (!size || (size & (size - 1)) || off0 + size > e->sw_len || size < SW_RECORD_SIZE)
		return -1;
	const uint8_t *data = (const uint8_t *)mp + off0;
	uint64_t head = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
	/* Written backward from 0: what the ring has ever held is -head. */
	uint64_t written = (uint64_t)0 - head;
	if (!written)
		return -2;
	uint64_t avail = written < size ? written : size;
	uint64_t want = avail < SW_LOOK_BYTES ? avail : SW_LOOK_BYTES;
	/* Newest first, in place; most looks end at the first record. */
	int verdict = -1, oldest_out = -1; /* direction of the oldest record seen */
	uint64_t pos = 0;
	while (pos + SW_RECORD_MIN <= want) {
		struct perf_event_header h;
		ring_get(data, size, head + pos, &h, sizeof(h));
		if (h.size < SW_RECORD_MIN || pos + h.size > want)
			break;
		if (h.type == PERF_RECORD_SWITCH && h.size >= SW_RECORD_SIZE) {
			/* sample_id at the end: time, then cpu and a reserved u32 */
			uint64_t when;
			uint32_t cpu;
			ring_get(data, size, head + pos + h.size - 16, &when, sizeof(when));
			ring_get(data, size, head + pos + h.size - 8, &cpu, sizeof(cpu));
			bool out = h.misc & PERF_RECORD_MISC_SWITCH_OUT;
			if (when <= now) {
				pos += h.size;
				if (!out)
					verdict = 1;
				else if (when < tick)
					verdict = 0;
				else
					verdict = (h.misc & PERF_RECORD_MISC_SWITCH_OUT_PREEMPT) &&
						  our_cpu >= 0 && cpu == (uint32_t)our_cpu;
				break;
			}
			oldest_out = out;
		}
		pos += h.size;
	}
	/* Every record is newer than now (clocks read a hair apart): before
	 * the oldest one the thread was where that record took it from. */
	if (verdict < 0 && oldest_out >= 0 && pos == written)
		verdict = oldest_out ? 1 : 0;
	/* The kernel writes below head; what was read is intact unless it
	 * went all the way round the ring meanwhile. */
	uint64_t head2 = __atomic_load_n(&mp->data_head, __ATOMIC_ACQUIRE);
	if (head - head2 > size - pos)
		return -1;
	return verdict;
}
