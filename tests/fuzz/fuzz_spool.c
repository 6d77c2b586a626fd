/* Fuzz the spool batch reader (spool_parse_batch, what `cgprof upload`
 * does to each file in the spool), without and with a spool key. */
#include <stdlib.h>
#include <string.h>

#include "cgprof/spool.h"
#include "fuzz.h"

/* The key tests/fuzz/corpus/spool's encrypted seeds were sealed with. */
static volatile uint8_t sink;
static const unsigned char key[32] = "cgprof-fuzz-spool-key-32-bytes!!";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

static void one(const uint8_t *data, size_t size, const unsigned char *k)
{
	struct cg_batch b;
	cg_clearerr();
	if (spool_parse_batch(data, size, "20240101T000000Z-1", k, &b) == 0) {
		if (b.len && !b.body)
			__builtin_trap();
		/* touch every byte: ASan checks the body really is that long */
		uint8_t sum = 0;
		for (size_t i = 0; i < b.len; i++)
			sum += ((const uint8_t *)b.body)[i];
		sink = sum;
		(void)strlen(b.profiling_group);
		(void)strlen(b.profile_token);
		(void)strlen(b.content_type);
		free(b.body);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size, NULL);
	one(data, size, key);
	return 0;
}
