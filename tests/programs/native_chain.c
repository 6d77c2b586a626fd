/* A native workload with a known call chain, main -> outer -> middle ->
 * burn_a / burn_b, that measures its own CPU split (75% / 25%); a second
 * thread sleeps in idle_wait the whole time. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The spin is a plain loop so the leaf frame is burn_* itself, not a
 * clock call. */
__attribute__((noinline, visibility("default"))) void burn_a(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink += i;
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, visibility("default"))) void burn_b(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink ^= i;
	__asm__ volatile("" ::: "memory");
}

/* Calibration spins here, not in burn_a: every burn_* sample must sit
 * under main -> outer -> middle, the ground truth the tests check. */
__attribute__((noinline)) static void calibrate_spin(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink += i;
	__asm__ volatile("" ::: "memory");
}

static double t_a, t_b;

__attribute__((noinline, visibility("default"))) void middle(unsigned long n, int which)
{
	double t0 = cpu_now();
	if (which)
		burn_b(n);
	else
		burn_a(n);
	double dt = cpu_now() - t0;
	if (which)
		t_b += dt;
	else
		t_a += dt;
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, visibility("default"))) void outer(double seconds, unsigned long n)
{
	double end = cpu_now() + seconds;
	unsigned int seed = 12345;
	/* Random chunk lengths and order, 3:1 by CPU time in the long run: a
	 * regular pattern would alias with a regular sampling clock. The
	 * truth printed at the end is what was measured, not this ratio. */
	while (cpu_now() < end) {
		unsigned long len = n / 2 + (unsigned long)rand_r(&seed) % (n + 1);
		int which = t_a < 3.0 * t_b ? 0 : 1;
		if (rand_r(&seed) % 4 == 0)
			which = !which;
		middle(len, which);
	}
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, visibility("default"))) void idle_wait(void)
{
	for (;;) {
		struct timespec ts = {1, 0};
		nanosleep(&ts, NULL);
		__asm__ volatile("" ::: "memory");
	}
}

static void *sleeper(void *arg)
{
	(void)arg;
	idle_wait();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	if (pthread_create(&th, NULL, sleeper, NULL) == 0) {
		pthread_setname_np(th, "sleeper");
		pthread_detach(th);
	}
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	/* calibrate one chunk to about 200 us */
	unsigned long n = 1000;
	for (;;) {
		double t0 = cpu_now();
		calibrate_spin(n);
		if (cpu_now() - t0 > 200e-6 || n > (1UL << 40))
			break;
		n *= 2;
	}
	t_a = t_b = 0;
	printf("ready\n");
	fflush(stdout);
	outer(seconds, n);
	double tot = t_a + t_b;
	printf("split burn_a=%.4f burn_b=%.4f\n", tot ? t_a / tot : 0, tot ? t_b / tot : 0);
	return 0;
}
