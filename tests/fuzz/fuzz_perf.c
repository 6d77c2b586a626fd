/* Fuzz the decoder of the kernel's perf sample records
 * (target_perf_parse_sample): any bytes, under the register mask cgprof
 * asks for and under one chosen by the input. */
#include <string.h>

#include "cgprof/target.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet();
	return 0;
}

static void use(const struct target_perf_sample *s)
{
	/* touch every byte the decoder says is the stack copy */
	volatile uint8_t x = 0;
	for (uint64_t i = 0; i < s->stack_len; i++)
		x ^= s->stack[i];
	(void)x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct target_perf_sample s;
	if (target_perf_parse_sample(data, size, target_perf_regs_mask(), &s) == 0)
		use(&s);
	if (size >= 8) {
		uint64_t mask;
		memcpy(&mask, data, 8);
		if (target_perf_parse_sample(data + 8, size - 8, mask, &s) == 0)
			use(&s);
	}
	return 0;
}
