/* Shared bits of the libFuzzer harnesses: quiet logging, and outside input
 * handed to code that only reads files as an anonymous file (memfd). */
#ifndef CGPROF_FUZZ_H
#define CGPROF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cgprof/log.h"

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

#endif
