/* Memory bench of the profile model: a 5-minute window at 100 Hz of a
 * 50-thread target with 10,000 distinct stacks, and the peak RSS of the
 * whole process against the 32 MB budget of issue 5. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cgprof/encode.h"
#include "cgprof/profile.h"
#include "cgprof/util.h"

#define THREADS 50
#define RATE_HZ 100
#define SECONDS 300
#define STACKS 10000
#define FUNCS 4000
#define FILES 300
#define MAX_DEPTH 64
#define BUDGET_MB 32.0

static char fn_name[FUNCS][48];
static char file_name[FILES][64];

/* A function lives in one file at one place; a call site is one of a few
 * lines in it. */
static struct cg_frame frame_of(uint64_t h)
{
	uint32_t f = (uint32_t)(h % FUNCS);
	return (struct cg_frame){fn_name[f], file_name[f % FILES],
				 (int32_t)(f * 7 % 900 + 1 + (h >> 40) % 4), CG_FK_PYTHON};
}

/* Stack i: like a real service, stacks share a framework prefix and fan
 * out below it: 8 frames common to groups of 1000, 8 more to groups of
 * 100, 8 more to groups of 10, then a tail of 6-29 frames of its own. */
static uint32_t make_stack(uint32_t i, struct cg_frame *out)
{
	uint32_t d = 0;
	uint32_t groups[3] = {i / 1000, i / 100, i / 10};
	for (int level = 0; level < 3; level++)
		for (int k = 0; k < 8; k++) {
			uint64_t h = cg_hash64((uint64_t)level << 40 | (uint64_t)groups[level] << 8 | (uint64_t)k);
			out[d++] = frame_of(h);
		}
	uint32_t tail = 6 + (uint32_t)(cg_hash64(i) % 24);
	for (uint32_t k = 0; k < tail; k++) {
		uint64_t h = cg_hash64((uint64_t)i << 8 | k | 1ULL << 60);
		out[d++] = frame_of(h);
	}
	/* Samplers deliver the leaf first. */
	for (uint32_t a = 0, b = d - 1; a < b; a++, b--) {
		struct cg_frame t = out[a];
		out[a] = out[b];
		out[b] = t;
	}
	return d;
}

static double rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

int main(int argc, char **argv)
{
	int threads = 0, sticky = 0;
	for (int a = 1; a < argc; a++) {
		threads |= !strcmp(argv[a], "--threads");
		/* Half the time a thread is where it was a tick ago (idle,
		 * blocked, in a loop), as in most real services. */
		sticky |= !strcmp(argv[a], "--sticky");
	}
	uint32_t prev[THREADS] = {0};
	/* Stacks are made as they are sampled, like a sampler reading the
	 * target: holding all 10,000 here would be the bench's memory, not
	 * the profile's. */
	struct cg_frame frames[MAX_DEPTH + 1]; /* + the thread root */
	double rss0 = rss_mb();

	for (int i = 0; i < FUNCS; i++)
		snprintf(fn_name[i], sizeof(fn_name[i]), "Handler%d.process_item_%d", i % 97, i);
	for (int i = 0; i < FILES; i++)
		snprintf(file_name[i], sizeof(file_name[i]), "/srv/app/lib/python3.12/site-packages/pkg%d/mod%d.py",
			 i % 17, i);

	struct cg_profile *p = profile_new(CG_RT_PYTHON, NULL);
	if (!p)
		return 1;
	profile_set_interval_ms(p, 1000.0 / RATE_HZ);
	uint64_t n = 0, full = 0, t0 = cg_now_ns(), in_add = 0;
	char tname[THREADS][16], troot[THREADS][48];
	for (int t = 0; t < THREADS; t++) {
		snprintf(tname[t], sizeof(tname[t]), "worker-%d", t);
		snprintf(troot[t], sizeof(troot[t]), "thread worker-%d (%d)", t, 1000 + t);
	}
	for (uint64_t round = 0; round < (uint64_t)RATE_HZ * SECONDS; round++) {
		profile_add_round(p);
		for (int t = 0; t < THREADS; t++) {
			/* Skewed: a few hot stacks, a long tail, every stack seen.
			 * With --threads a stack belongs to one thread, so there
			 * are still 10,000 distinct (thread, stack) pairs. */
			uint64_t h = cg_hash64(round * THREADS + (uint64_t)t);
			uint32_t s = (h & 3) ? (uint32_t)(h >> 8) % 200 : (uint32_t)(h >> 8) % STACKS;
			if (threads)
				s = s - s % THREADS + (uint32_t)t;
			if (s >= STACKS)
				s = (uint32_t)t;
			if (sticky && round && (h >> 60) & 1)
				s = prev[t];
			prev[t] = s;
			uint32_t nf = make_stack(s, frames);
			if (threads) /* rooted as the session roots --threads */
				frames[nf++] = (struct cg_frame){.name = troot[t], .kind = CG_FK_THREAD};
			struct cg_sample smp = {.pid = 1, .tid = 1000 + t, .thread_name = tname[t],
						.state = (h >> 4) & 1 ? CG_ST_RUNNING : CG_ST_IDLE,
						.nframes = nf, .frames = frames};
			uint64_t a0 = cg_now_ns();
			full += profile_add_sample(p, &smp) != 0;
			in_add += cg_now_ns() - a0;
			n++;
		}
	}
	uint64_t ns = in_add;
	(void)t0;
	double rss_after_window = rss_mb();

	/* Encoding is part of the window's life: measure its peak too. */
	FILE *devnull = fopen("/dev/null", "w");
	struct cg_encode_opts o = {.title = "bench"};
	for (int f = CG_FMT_COLLAPSED; f <= CG_FMT_CODEGURU && devnull; f++) {
		uint64_t e0 = cg_now_ns();
		if (encode_profile(f, p, &o, devnull))
			fprintf(stderr, "encode %s failed\n", encode_format_name(f));
		printf("  %-10s encoded in %5.0f ms, peak RSS now %.1f MB\n", encode_format_name(f),
		       (double)(cg_now_ns() - e0) / 1e6, rss_mb());
	}
	if (devnull)
		fclose(devnull);
	double rss_peak = rss_mb();

	printf("profile memory bench: %llu samples (%d threads x %d Hz x %d s), %d distinct stacks%s%s\n",
	       (unsigned long long)n, THREADS, RATE_HZ, SECONDS, STACKS,
	       threads ? ", thread roots" : "", sticky ? ", threads repeat half their stacks" : "");
	printf("  nodes %u, frames %u, profile holds %.1f MB, full %llu\n", profile_node_count(p),
	       profile_frame_count(p), (double)profile_memory_bytes(p) / 1048576.0,
	       (unsigned long long)full);
	printf("  add_sample: %.0f ns per sample, clock reads included (%.2f us per 50-thread round)\n",
	       (double)ns / (double)n, (double)ns / (double)n * THREADS / 1000.0);
	printf("  peak RSS: %.1f MB at start, %.1f MB after the window, %.1f MB after encoding all five formats\n",
	       rss0, rss_after_window, rss_peak);
	printf("  budget %.0f MB: %s (%.0f%%)\n", BUDGET_MB, rss_peak < BUDGET_MB ? "OK" : "OVER",
	       100.0 * rss_peak / BUDGET_MB);
	profile_free(p);
	return rss_peak < BUDGET_MB ? 0 : 2;
}
