/* libFuzzer harness for top's counts (src/cli/top_stats.c): samples whose
 * names, files, lines, states, thread ids and depths come from the
 * target, interleaved with rounds, clock jumps and snapshots of every
 * view, each formatted as the screen would. */
#include <stdlib.h>
#include <string.h>

#include "../../src/cli/top_stats.h"
#include "fuzz.h"

#define MAX_FRAMES 600 /* beyond TOP_STACK_MAX: the cut is exercised */
#define ARENA 65536

struct input {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* A NUL-terminated string of up to 255 bytes of input, or NULL. */
static const char *take_str(struct input *in, char *arena, size_t *used)
{
	unsigned len = take(in);
	if (len == 255)
		return NULL;
	if (len > in->n)
		len = (unsigned)in->n;
	if (*used + len + 1 > ARENA)
		return "x";
	char *s = arena + *used;
	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len;
	in->n -= len;
	*used += len + 1;
	return s;
}

static void snapshot_all(struct top_stats *st, struct input *in, uint64_t now)
{
	unsigned b = take(in);
	uint32_t nt = top_stats_thread_count(st);
	struct top_view v = {
		.thread = (int)(take(in) % (nt + 1)) - 1,
		.idle = b & 1,
		.window = b & 2,
		.idle_sampled = b & 4,
		.sort = (enum top_sort)((b >> 3) % TOP_SORT__COUNT),
	};
	struct top_snapshot snap;
	char line[2048];
	if (top_stats_snapshot(st, &v, now, &snap))
		return;
	top_format_counts(&snap, &v, 100, line, sizeof(line));
	top_format_titles(v.sort, line, sizeof(line));
	for (uint32_t i = 0; i < snap.nrows; i++)
		top_format_row(st, &snap, &snap.rows[i], b & 8, line, sizeof(line));
	top_snapshot_free(&snap);
	if (nt) {
		uint32_t funcs[TOP_STACK_MAX];
		int32_t lines[TOP_STACK_MAX];
		enum cg_state state;
		bool trunc;
		uint32_t slot = take(in) % nt;
		int n = top_stats_stack(st, slot, b & 32, funcs, lines, TOP_STACK_MAX, &state,
					&trunc);
		for (int i = 0; i < n; i++)
			top_stats_func_label(st, funcs[i], lines[i], b & 16, line, sizeof(line));
		top_stats_thread_label(st, slot, line, sizeof(line));
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	struct top_stats *st;
	static struct cg_frame frames[MAX_FRAMES];
	static char arena[ARENA];
	struct cg_sample_stats ss = {0};
	uint64_t now = 0;

	if (top_stats_new(1 + take(&in) % 4, 0, &st))
		return 0;
	while (in.n) {
		unsigned op = take(&in);
		if (op < 160) {
			size_t used = 0;
			unsigned n = take(&in) | (take(&in) & 1) << 8;
			if (n > MAX_FRAMES)
				n = MAX_FRAMES;
			for (unsigned i = 0; i < n && in.n; i++) {
				frames[i].name = take_str(&in, arena, &used);
				frames[i].file = take_str(&in, arena, &used);
				frames[i].line = (int32_t)(int16_t)(take(&in) | take(&in) << 8);
				frames[i].kind = (uint8_t)(take(&in) % 6);
			}
			struct cg_sample s = {
				.pid = (pid_t)(op & 3),
				.tid = (pid_t)(take(&in) | (take(&in) & 7) << 8),
				.thread_name = take_str(&in, arena, &used),
				.state = (enum cg_state)(take(&in) % CG_ST__COUNT),
				.truncated = op & 4,
				.nframes = n,
				.frames = n ? frames : NULL,
			};
			top_stats_add(st, &s, now);
		} else if (op < 200) {
			ss.taken++;
			ss.lost[op % CG_LOST__COUNT] += op & 1;
			top_stats_round(st, &ss, now);
		} else if (op < 230) {
			/* the clock moves on: up to ~25 s, across windows */
			now += (uint64_t)take(&in) * 100000000ULL;
		} else {
			snapshot_all(st, &in, now);
		}
	}
	snapshot_all(st, &in, now);
	top_stats_free(st);
	return 0;
}
