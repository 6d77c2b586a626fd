/* A program with no Python or Java in it, for the torture tests: a Python
 * target execs into it. Spins for argv[1] milliseconds, prints one line and
 * exits with status argv[2]. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double ms = argc > 1 ? atof(argv[1]) : 300;
	int status = argc > 2 ? atoi(argv[2]) : 0;
	volatile unsigned long x = 0;
	double end = now() + ms / 1000.0;
	while (now() < end)
		for (int i = 0; i < 10000; i++)
			x += (unsigned long)i * 2654435761u;
	printf("spin_exit done\n");
	return status;
}
