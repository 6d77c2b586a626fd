/* Reading the target's memory with process_vm_readv: exact reads, scatter
 * reads (many pieces, one system call) and bounded C strings; or, for
 * tests and fuzzing, from an in-memory image (target_fake_memory). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "cgprof/target.h"
#include "target_priv.h"

int target_fake_memory(struct target **out, const struct cg_fake_mem *mem)
{
	struct target *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->fake = mem;
	*out = t;
	return 0;
}

/* How many bytes from addr on are readable in the image (within the one
 * region holding addr), and where they are. */
static size_t fake_span(const struct cg_fake_mem *m, uint64_t addr, const uint8_t **p)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct cg_fake_region *r = &m->regions[i];
		if (addr >= r->base && addr - r->base < r->len) {
			*p = (const uint8_t *)r->data + (addr - r->base);
			return r->len - (size_t)(addr - r->base);
		}
	}
	return 0;
}

/* Like process_vm_readv: copy the remote pieces in order into the local
 * pieces, stopping at the first byte that is not mapped. */
static ssize_t fake_readv(const struct cg_fake_mem *m, const struct iovec *local, size_t nlocal,
			  const struct iovec *remote, size_t nremote)
{
	size_t li = 0, loff = 0, total = 0;
	for (size_t ri = 0; ri < nremote; ri++) {
		uint64_t a = (uint64_t)(uintptr_t)remote[ri].iov_base;
		size_t left = remote[ri].iov_len;
		while (left) {
			while (li < nlocal && loff == local[li].iov_len) {
				li++;
				loff = 0;
			}
			if (li == nlocal)
				return (ssize_t)total;
			const uint8_t *src;
			size_t n = fake_span(m, a, &src);
			if (!n)
				return total ? (ssize_t)total : -EFAULT;
			if (n > left)
				n = left;
			if (n > local[li].iov_len - loff)
				n = local[li].iov_len - loff;
			memcpy((uint8_t *)local[li].iov_base + loff, src, n);
			loff += n;
			a += n;
			left -= n;
			total += n;
		}
	}
	return (ssize_t)total;
}

int target_read(struct target *t, uint64_t addr, void *buf, size_t len)
{
	if (!len)
		return 0;
	if (!addr || addr + len < addr)
		return -EFAULT;
	struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
	if (t->fake)
		t->fake_calls++;
	ssize_t n = t->fake ? fake_readv(t->fake, &l, 1, &r, 1)
			    : process_vm_readv(t->pid, &l, 1, &r, 1, 0);
	if (n < 0 && t->fake)
		return (int)n;
	if (n < 0)
		return errno == ESRCH ? -ESRCH : errno == EPERM ? -EPERM : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

ssize_t target_readv(struct target *t, const struct iovec *local, size_t nlocal,
		     const struct iovec *remote, size_t nremote)
{
	if (t->fake) {
		t->fake_calls++;
		return fake_readv(t->fake, local, nlocal, remote, nremote);
	}
	ssize_t n = process_vm_readv(t->pid, local, nlocal, remote, nremote, 0);
	if (n < 0)
		return errno == ESRCH ? -ESRCH : errno == EPERM ? -EPERM : -EFAULT;
	return n;
}

int target_read_cstr(struct target *t, uint64_t addr, char *buf, size_t n)
{
	/* Read in chunks that do not cross a page, so a string ending just
	 * before an unmapped page still reads. */
	size_t got = 0;
	if (!n)
		return -EINVAL;
	while (got + 1 < n) {
		uint64_t a = addr + got;
		size_t chunk = 4096 - (size_t)(a & 4095);
		if (chunk > n - 1 - got)
			chunk = n - 1 - got;
		int r = target_read(t, a, buf + got, chunk);
		if (r)
			return r;
		char *z = memchr(buf + got, '\0', chunk);
		if (z)
			return 0;
		got += chunk;
	}
	buf[n - 1] = '\0';
	return 0;
}
