/* The wake floor: what a sampler that does nothing but wake at every tick
 * costs in CPU, and how many ticks it misses. It sleeps to each tick of
 * RATE Hz for SECONDS (absolute deadlines, timer slack 1 us, as cgprof's
 * loop does) and exits; the caller measures its CPU time. Any timer-driven
 * profiler pays this per round before it reads a byte: bench/truth.py
 * takes it off both profilers' figures to compare the work each does per
 * sample.
 *
 * It prints "ROUNDS LOST": the ticks it woke for and the ticks it missed,
 * counted by cgprof's rule (a tick whose deadline is a whole period past
 * when the loop gets to it is skipped and counted lost, not made up for).
 * A loop that reads nothing can miss a tick only by waking late, so LOST
 * is the machine's own share of any sampler's late ticks at that rate.
 *
 *   floor RATE SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static unsigned long long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (unsigned long long)t.tv_sec * 1000000000ULL + (unsigned long long)t.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: floor RATE SECONDS\n");
		return 2;
	}
	double rate = atof(argv[1]), secs = atof(argv[2]);
	if (rate <= 0 || rate > 100000 || secs <= 0 || secs > 3600) {
		fprintf(stderr, "floor: bad rate or duration\n");
		return 2;
	}
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	unsigned long long step = (unsigned long long)(1e9 / rate);
	unsigned long long next = now_ns(), end = next + (unsigned long long)(secs * 1e9);
	long rounds = 0, lost = 0;
	for (;;) {
		next += step;
		unsigned long long now = now_ns();
		if (now >= end)
			break;
		if (now < next) {
			unsigned long long until = next < end ? next : end;
			struct timespec t = {(time_t)(until / 1000000000ULL),
					     (long)(until % 1000000000ULL)};
			clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
		} else if (now - next >= step) {
			unsigned long long missed = (now - next) / step;
			lost += (long)missed;
			next += missed * step;
		}
		rounds++;
	}
	printf("%ld %ld\n", rounds, lost);
	return 0;
}
