/* A native workload that recurses to a known depth (argv[2], default 500)
 * through recurse() and spins at the bottom in spin_bottom(). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) void spin_bottom(double seconds)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	do {
		for (int i = 0; i < 100000; i++)
			sink += (unsigned long)i;
		clock_gettime(CLOCK_MONOTONIC, &b);
	} while ((double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9 < seconds);
}

__attribute__((noinline)) int recurse(int depth, double seconds)
{
	if (depth <= 1)
		spin_bottom(seconds);
	else
		recurse(depth - 1, seconds);
	/* work after the call keeps it from being a tail call */
	sink++;
	return depth;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	int depth = argc > 2 ? atoi(argv[2]) : 500;
	printf("ready\n");
	fflush(stdout);
	recurse(depth, seconds);
	printf("done depth=%d\n", depth);
	return 0;
}
