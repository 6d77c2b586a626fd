/* The wake floor: what a sampler that does nothing but wake at every tick
 * costs in CPU. It sleeps to each tick of RATE Hz for SECONDS (absolute
 * deadlines, as cgprof's loop does) and exits; the caller measures its CPU
 * time. Any timer-driven profiler pays this per round before it reads a
 * byte: bench/truth.py takes it off both profilers' figures to compare
 * the work each does per sample.
 *
 *   floor RATE SECONDS */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
	long step = (long)(1e9 / rate), ticks = (long)(rate * secs);
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	for (long i = 0; i < ticks; i++) {
		t.tv_nsec += step;
		while (t.tv_nsec >= 1000000000L) {
			t.tv_nsec -= 1000000000L;
			t.tv_sec++;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
	}
	printf("%ld\n", ticks);
	return 0;
}
