/* target: reading a child's memory, listing threads, pausing and resuming
 * a thread without disturbing it, and the errors for bad PIDs. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_main.h"
#include "cgprof/log.h"
#include "cgprof/target.h"

static char secret_buf[64] = "the quick brown fox";
static volatile uint64_t counter;

static pid_t spawn_spinner(int pfd[2])
{
	pid_t pid = fork();
	if (pid == 0) {
		/* Check's own SIGTERM handler would be inherited otherwise. */
		signal(SIGTERM, SIG_DFL);
		/* a failed check ends the test before its kill: die with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		if (write(pfd[1], "x", 1) != 1)
			_exit(3);
		for (;;)
			counter++;
	}
	char c;
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	return pid;
}

START_TEST(read_child_memory)
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = spawn_spinner(pfd);
	struct target *t;
	ck_assert_int_eq(target_open(pid, &t), 0);

	char buf[64];
	ck_assert_int_eq(target_read(t, (uintptr_t)secret_buf, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "the quick brown fox");
	ck_assert_int_eq(target_read_cstr(t, (uintptr_t)secret_buf, buf, 10), 0);
	ck_assert_str_eq(buf, "the quick");
	ck_assert_int_eq(target_read(t, 8, buf, 8), -EFAULT);

	/* the counter moves while running, stays put while paused */
	uint64_t a, b;
	ck_assert_int_eq(target_pause(t, pid), 0);
	ck_assert_int_eq(target_read(t, (uintptr_t)&counter, &a, 8), 0);
	usleep(20000);
	ck_assert_int_eq(target_read(t, (uintptr_t)&counter, &b, 8), 0);
	ck_assert_uint_eq(a, b);
	ck_assert_int_eq(target_resume(t, pid), 0);
	usleep(20000);
	ck_assert_int_eq(target_read(t, (uintptr_t)&counter, &b, 8), 0);
	ck_assert_uint_gt(b, a);
	ck_assert(target_thread_state(t, pid) == TARGET_THREAD_RUNNING);

	double mean, p99;
	uint64_t n;
	target_pause_stats(t, &mean, &p99, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert(mean > 0);

	pid_t tids[8];
	ck_assert_int_eq(target_threads(t, tids, 8), 1);
	ck_assert_int_eq(tids[0], pid);

	struct target_maps m;
	ck_assert_int_eq(target_maps_read(t, &m), 0);
	ck_assert_ptr_nonnull(target_maps_find(&m, "test_target"));
	target_maps_free(&m);

	target_close(t);
	/* the child still runs after close */
	ck_assert_int_eq(kill(pid, 0), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(signal_during_pause_is_delivered)
{
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = spawn_spinner(pfd);
	struct target *t;
	ck_assert_int_eq(target_open(pid, &t), 0);
	ck_assert_int_eq(target_pause(t, pid), 0);
	ck_assert_int_gt(pid, 1);
	kill(pid, SIGTERM);
	usleep(10000);
	ck_assert_int_eq(target_resume(t, pid), 0);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGTERM);
	target_close(t);
}
END_TEST

START_TEST(no_such_pid)
{
	struct target *t;
	cg_clearerr();
	ck_assert_int_eq(target_open(999999999, &t), -ESRCH);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "no such process"));
	cg_clearerr();
	ck_assert_int_eq(target_open(getpid(), &t), -EINVAL);
}
END_TEST

START_TEST(spawn_and_reap)
{
	struct target *t;
	char *argv[] = {"sh", "-c", "exit 7", NULL};
	ck_assert_int_eq(target_spawn(argv, &t), 0);
	int st;
	ck_assert_int_eq(target_reap(t, true, &st), 1);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 7);
	target_close(t);

	char *bad[] = {"/nonexistent/cgprof-no-such-cmd", NULL};
	cg_clearerr();
	ck_assert_int_eq(target_spawn(bad, &t), -ENOENT);
	ck_assert_ptr_nonnull(strstr(cg_lasterr(), "cannot run"));
}
END_TEST

static Suite *target_suite(void)
{
	Suite *s = suite_create("target");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, read_child_memory);
	tcase_add_test(tc, signal_during_pause_is_delivered);
	tcase_add_test(tc, no_such_pid);
	tcase_add_test(tc, spawn_and_reap);
	suite_add_tcase(s, tc);
	return s;
}

CG_CHECK_MAIN(target_suite)
