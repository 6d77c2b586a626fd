/* A C loop that makes one cheap system call (getppid) after every chunk of
 * computation (argv[2] us, default 16) and measures the share of its CPU
 * time spent inside call_kernel(): the ground truth of the syscall-site
 * bias. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
	/* the vDSO clock: reading it is no system call */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline, visibility("default"))) void compute(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		sink += i;
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline, visibility("default"))) void call_kernel(void)
{
	sink += (unsigned long)syscall(SYS_getppid);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 3.0;
	double chunk = (argc > 2 ? atof(argv[2]) : 16.0) * 1e-6;
	/* calibrate compute() to one chunk: the fastest of a few tries, so a
	 * preemption during calibration does not shorten every chunk */
	unsigned long n = 64;
	for (;;) {
		double best = 1e9;
		for (int k = 0; k < 5; k++) {
			double t0 = now();
			compute(n);
			double dt = now() - t0;
			best = dt < best ? dt : best;
		}
		if (best >= chunk || n > (1UL << 40)) {
			n = (unsigned long)((double)n * chunk / (best > 0 ? best : chunk));
			break;
		}
		n *= 2;
	}
	printf("ready\n");
	fflush(stdout);
	/* A call that took over 20 us was descheduled (getppid itself takes
	 * well under 1 us): that wait is no CPU time, so such calls count
	 * at the mean of the others. The share is of the thread's CPU time. */
	double in_call = 0, start = now(), end = start + seconds, t = start;
	double cpu0 = thread_cpu();
	unsigned long calls = 0, slow = 0;
	while (t < end) {
		compute(n);
		double t0 = now();
		call_kernel();
		t = now();
		if (t - t0 < 20e-6)
			in_call += t - t0;
		else
			slow++;
		calls++;
	}
	double cpu = thread_cpu() - cpu0;
	if (calls > slow)
		in_call += in_call / (double)(calls - slow) * (double)slow;
	printf("calls=%lu slow=%lu chunk_us=%.1f syscall_share=%.5f\n", calls, slow,
	       calls ? (cpu - in_call) / (double)calls * 1e6 : 0.0, cpu > 0 ? in_call / cpu : 0);
	return 0;
}
