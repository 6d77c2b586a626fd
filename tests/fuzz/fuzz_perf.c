/* Fuzz the decoders of the kernel's perf records: sample records
 * (target_perf_parse_sample), any bytes, under the register mask cgprof
 * asks for and under one chosen by the input; and a context-switch ring
 * (target_sw_state), its header page and data chosen by the input. */
#include <linux/perf_event.h>
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

/* Input: head (8 bytes), data_size (4), cpu (4), tick (8), now (8),
 * then the data pages' bytes. */
static void switch_ring(const uint8_t *data, size_t size)
{
	static uint8_t ring[2 * 4096] __attribute__((aligned(4096)));
	if (size < 32)
		return;
	struct perf_event_mmap_page *mp = (void *)ring;
	uint64_t head, tick, now;
	uint32_t dsize, cpu;
	memcpy(&head, data, 8);
	memcpy(&dsize, data + 8, 4);
	memcpy(&cpu, data + 12, 4);
	memcpy(&tick, data + 16, 8);
	memcpy(&now, data + 24, 8);
	memset(ring, 0, sizeof(ring));
	size_t n = size - 32 < 4096 ? size - 32 : 4096;
	memcpy(ring + 4096, data + 32, n);
	mp->data_offset = 4096;
	mp->data_size = dsize;
	mp->data_head = head;
	struct target_task e = {.tid = 1, .sw_fd = -1, .sw_mp = ring, .sw_len = sizeof(ring)};
	int r = target_sw_state(&e, tick, now, (int)(cpu & 0xff) - 1);
	if (r < -2 || r > 1)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	switch_ring(data, size);
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
