/* Fuzz what a JVM sends back over the attach socket (the "<code>\n<text>"
 * reply, jvm_attach_parse_reply) and the HotSpot perf data file read to
 * tell whether attach is disabled (jvm_perf_long). */
#include <string.h>

#include "fuzz.h"
#include "jvm_priv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_buf out = {0};
	int status;
	int64_t v;
	cg_clearerr();
	if (jvm_attach_parse_reply((const char *)data, size, &status, &out) == 0) {
		if (!out.data || out.data[out.len] != '\0')
			__builtin_trap();
	}
	cg_buf_free(&out);
	(void)jvm_perf_long((const char *)data, size, "sun.rt.createVmEndTime", &v);
	(void)jvm_perf_long((const char *)data, size, "java.rt.vmArgs", &v);
	return 0;
}
