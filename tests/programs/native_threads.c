/* Threads that start after the profiler: main waits 0.3 s, then starts
 * two workers that each spin in worker_burn for argv[1] s of their own
 * CPU time and exit; main then spins in main_burn for 0.5 s of CPU. It
 * prints the CPU time each part measured. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static double worker_s = 1.0;
static double worker_cpu[2];

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline, visibility("default"))) void worker_burn(double seconds)
{
	double end = thread_cpu() + seconds;
	while (thread_cpu() < end)
		for (int i = 0; i < 20000; i++)
			sink += (unsigned long)i;
}

__attribute__((noinline, visibility("default"))) void main_burn(double seconds)
{
	double end = thread_cpu() + seconds;
	while (thread_cpu() < end)
		for (int i = 0; i < 20000; i++)
			sink ^= (unsigned long)i;
}

static void *worker(void *arg)
{
	int k = (int)(long)arg;
	worker_burn(worker_s);
	worker_cpu[k] = thread_cpu();
	return NULL;
}

int main(int argc, char **argv)
{
	worker_s = argc > 1 ? atof(argv[1]) : 1.0;
	printf("ready\n");
	fflush(stdout);
	usleep(300000);
	pthread_t th[2];
	for (long k = 0; k < 2; k++)
		if (pthread_create(&th[k], NULL, worker, (void *)k))
			return 1;
	for (int k = 0; k < 2; k++)
		pthread_join(th[k], NULL);
	double m0 = thread_cpu();
	main_burn(0.5);
	printf("worker_cpu=%.4f main_burn_cpu=%.4f\n", worker_cpu[0] + worker_cpu[1],
	       thread_cpu() - m0);
	return 0;
}
