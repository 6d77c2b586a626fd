/* Seeds for fuzz_jvm_walker: the fake JVM image of tests/unit/fakejvm.h
 * (JDK 17 offsets, a blocked thread over interpreted and compiled frames)
 * as region 0, and the same with a frame that links to itself.
 *   cc -Iinclude -Isrc/jvm -Isrc/target -o /tmp/seeds tests/fuzz/seeds/jvm_walker_seeds.c
 *   /tmp/seeds tests/fuzz/corpus/jvm_walker */
#include <assert.h>
#include <stdio.h>

#define FJ_CHECK(x) assert(x)
#include "../../unit/fakejvm.h"

static void write_seed(const char *dir, const char *name, uint8_t flags, const struct fakejvm *j)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert(f);
	uint8_t hdr[4] = {flags, FJ_SIZE & 0xff, (FJ_SIZE >> 8) & 0xff, (FJ_SIZE >> 16) & 0xff};
	fwrite(hdr, 1, sizeof(hdr), f);
	fwrite(j->mem, 1, FJ_SIZE, f);
	fclose(f);
}

/* The image, then a second region: a perf sample's stack copy of the
 * thread's frames [sp, sp + n), which the memory no longer holds. */
static void write_copy_seed(const char *dir, const char *name, struct fakejvm *j)
{
	enum { SP = 0xC080, N = 0x300 };
	uint8_t copy[N];
	char path[512];
	memcpy(copy, j->mem + SP, N);
	memset(j->mem + SP, 0x5a, N);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert(f);
	uint8_t hdr[4] = {5, FJ_SIZE & 0xff, (FJ_SIZE >> 8) & 0xff, (FJ_SIZE >> 16) & 0xff};
	uint8_t hdr2[3] = {N & 0xff, (N >> 8) & 0xff, 0};
	fwrite(hdr, 1, sizeof(hdr), f);
	fwrite(j->mem, 1, FJ_SIZE, f);
	fwrite(hdr2, 1, sizeof(hdr2), f);
	fwrite(copy, 1, N, f);
	fclose(f);
	memcpy(j->mem + SP, copy, N);
}

int main(int argc, char **argv)
{
	assert(argc == 2);
	struct fakejvm *j = fakejvm_new();
	write_seed(argv[1], "seed-fakejvm17", 0, j);
	write_seed(argv[1], "seed-fakejvm17-regs", 1, j);
	write_copy_seed(argv[1], "seed-fakejvm17-stackcopy", j);
	fj_put64(j, 0xC200, FJ(0xC200)); /* B links to itself */
	write_seed(argv[1], "seed-fakejvm17-loop", 0, j);
	free(j);
	return 0;
}
