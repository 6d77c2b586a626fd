/* Shared bits of the libFuzzer harnesses: quiet logging, outside input
 * handed to code that only reads files as an anonymous file (memfd), and
 * input decoded into the regions of a fake target's memory. */
#ifndef CGPROF_FUZZ_H
#define CGPROF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "target_priv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Errors only: a parser's warnings on every input would drown the run. */
static inline void fuzz_quiet(void)
{
	cg_log_init("cgprof-fuzz", CG_LOG_ERROR, 0);
}

/* An anonymous file holding data[0..size); *path names it for code that
 * opens a path. The fd, or -1. */
static inline int fuzz_memfd(const uint8_t *data, size_t size, char *path, size_t n)
{
	int fd = memfd_create("cgprof-fuzz", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	for (size_t off = 0; off < size;) {
		ssize_t w = write(fd, data + off, size - off);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	snprintf(path, n, "/proc/self/fd/%d", fd);
	return fd;
}

/* Where region i of fuzz_regions() lies in the fake target's memory. */
#define FUZZ_REGION_BASE(i) (0x100000ULL * ((uint64_t)(i) + 1))

/* Decode data[off..size) as up to max regions, each [length, lenbytes
 * bytes little-endian][bytes] (the last one cut to what is left), region
 * i at FUZZ_REGION_BASE(i), pointing into data. How many there are. */
static inline size_t fuzz_regions(const uint8_t *data, size_t size, size_t off,
				  unsigned lenbytes, struct cg_fake_region *reg, size_t max)
{
	size_t n = 0;
	while (n < max && off + lenbytes <= size) {
		size_t len = 0;
		for (unsigned b = 0; b < lenbytes; b++)
			len |= (size_t)data[off + b] << (8 * b);
		off += lenbytes;
		if (len > size - off)
			len = size - off;
		reg[n] = (struct cg_fake_region){FUZZ_REGION_BASE(n), data + off, len};
		n++;
		off += len;
	}
	return n;
}

#endif
