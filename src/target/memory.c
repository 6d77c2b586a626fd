/* Reading the target's memory with process_vm_readv: exact reads, scatter
 * reads (many pieces, one system call) and bounded C strings. */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "cgprof/target.h"
#include "target_priv.h"

int target_read(struct target *t, uint64_t addr, void *buf, size_t len)
{
	if (!len)
		return 0;
	if (!addr || addr + len < addr)
		return -EFAULT;
	struct iovec l = {buf, len}, r = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_readv(t->pid, &l, 1, &r, 1, 0);
	if (n < 0)
		return errno == ESRCH ? -ESRCH : errno == EPERM ? -EPERM : -EFAULT;
	return (size_t)n == len ? 0 : -EFAULT;
}

ssize_t target_readv(struct target *t, const struct iovec *local, size_t nlocal,
		     const struct iovec *remote, size_t nremote)
{
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
