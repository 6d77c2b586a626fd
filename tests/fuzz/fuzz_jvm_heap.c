/* Fuzz the JVM class histogram parser (jvm_heap_parse, the text of an
 * inspectheap / GC.class_histogram reply) and its JSON rendering. */
#include <string.h>

#include "cgprof/jvm.h"
#include "cgprof/util.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jvm_heap h;
	if (jvm_heap_parse((const char *)data, size, &h) == 0) {
		struct cg_buf out = {0};
		(void)jvm_heap_to_json(&h, 1234, 3, &out);
		out.len = 0;
		(void)jvm_heap_to_json(&h, 0, 0, &out);
		cg_buf_free(&out);
		jvm_heap_free(&h);
	}
	return 0;
}
