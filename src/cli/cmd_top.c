/* `cgprof top`: a live ncurses view of a run/attach session's hottest
 * functions, drawn by its own thread from top_stats snapshots. */
#include <errno.h>
#include <fcntl.h>
#include <ncurses.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgprof/log.h"
#include "cgprof/sample.h"
#include "cgprof/util.h"
#include "cli.h"
#include "top_stats.h"

#define TOP_ARGV_MAX 128
#define TOP_ONCE_ROWS 50u
#define TOP_KEY_WAIT_MS 100
#define TOP_HEAD_LINES 6 /* lines above the table */
#define TOP_LOG_MAX (1 << 20) /* messages held while the view is up */

struct top {
	/* options */
	double delay_s;
	unsigned window_s;
	bool once, spawned;
	bool idle_sampled;     /* --idle: the sampler reports idle threads */
	struct top_view view;
	/* the session */
	struct top_stats *st;
	pid_t pid;
	char label[128];
	char version[96];
	double rate_hz;
	uint64_t start_ns, end_ns;
	/* the drawing thread */
	pthread_t ui;
	bool ui_running, curses_on;
	int log_fd, saved_err; /* stderr held in a memfd while drawing */
	atomic_bool log_cut;
	SCREEN *screen;
	struct sigaction old_tstp;
	atomic_bool stop_ui;   /* sampling ended: leave the view */
	atomic_bool quit;      /* the user asked to quit */
};

static const char *sort_keys[TOP_SORT__COUNT] = {"own", "total", "own-time", "total-time",
						 "name"};

/* ---- stderr while the view is up ---- */

/* Warnings (an exec in the target, a JVM that is slow to answer) would be
 * written over the screen, and a stalled terminal would block the
 * sampling thread in write(2): while the view is up stderr goes to an
 * anonymous file, printed once the terminal is restored. */
static void log_hold(struct top *tp)
{
	tp->log_fd = tp->saved_err = -1;
	int fd = memfd_create("cgprof-top-log", MFD_CLOEXEC);
	if (fd < 0)
		return;
	int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	/* O_APPEND: a cut (log_trim) leaves the writer at the new end */
	if (saved < 0 || fcntl(fd, F_SETFL, O_APPEND) || dup2(fd, STDERR_FILENO) < 0) {
		if (saved >= 0)
			close(saved);
		close(fd);
		return;
	}
	tp->log_fd = fd;
	tp->saved_err = saved;
}

static void log_trim(struct top *tp)
{
	struct stat sb;
	if (tp->log_fd >= 0 && !fstat(tp->log_fd, &sb) && sb.st_size > TOP_LOG_MAX &&
	    !ftruncate(tp->log_fd, 0))
		atomic_store(&tp->log_cut, true);
}

static bool log_held(struct top *tp)
{
	struct stat sb;
	return tp->log_fd >= 0 && !fstat(tp->log_fd, &sb) && sb.st_size > 0;
}

static void log_release(struct top *tp)
{
	if (tp->saved_err < 0)
		return;
	dup2(tp->saved_err, STDERR_FILENO);
	close(tp->saved_err);
	tp->saved_err = -1;
	if (atomic_load(&tp->log_cut))
		fprintf(stderr, "cgprof: (earlier messages dropped: more than %d bytes)\n",
			TOP_LOG_MAX);
	char buf[4096];
	off_t off = 0;
	ssize_t n;
	while ((n = pread(tp->log_fd, buf, sizeof(buf), off)) > 0) {
		if (write(STDERR_FILENO, buf, (size_t)n) != n)
			break;
		off += n;
	}
	close(tp->log_fd);
	tp->log_fd = -1;
}

/* ---- the drawing thread ---- */

struct screen_state {
	struct top_snapshot snap;
	bool have_snap, paused, stack_mode;
	uint64_t snap_ns;
};

static void put_line(int y, const char *s, int attr)
{
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	if (y >= rows)
		return;
	if (attr)
		attron(attr);
	mvaddnstr(y, 0, s, cols);
	if (attr) {
		/* the title bar spans the width */
		for (int x = (int)strlen(s); x < cols; x++)
			addch(' ');
		attroff(attr);
	}
}

/* The first line: the process as cgprof names it, and its runtime (none
 * yet when --subprocesses watches a launcher). */
static void title(const struct top *tp, char *buf, size_t n)
{
	snprintf(buf, n, "cgprof top: process %d (%s)%s%s", (int)tp->pid, tp->label,
		 tp->version[0] ? ", " : "", tp->version);
}

static void view_thread_label(struct top *tp, char *buf, size_t n)
{
	if (tp->view.thread < 0)
		snprintf(buf, n, "all");
	else
		top_stats_thread_label(tp->st, (uint32_t)tp->view.thread, buf, n);
}

static void draw_head(struct top *tp, struct screen_state *ss)
{
	char line[512], thr[128];
	title(tp, line, sizeof(line));
	if (ss->paused)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "  [PAUSED]");
	if (log_held(tp))
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "  [messages: shown on exit]");
	put_line(0, line, A_BOLD);
	top_format_counts(&ss->snap, &tp->view, tp->rate_hz, line, sizeof(line));
	put_line(1, line, 0);
	view_thread_label(tp, thr, sizeof(thr));
	char win[32];
	snprintf(win, sizeof(win), "last %u s", tp->window_s);
	snprintf(line, sizeof(line), "view: %s   idle: %s   thread: %s   sort: %s",
		 tp->view.window ? win : "since start",
		 tp->view.idle ? "shown" : tp->idle_sampled ? "hidden" : "not sampled (--idle)",
		 thr, sort_keys[tp->view.sort]);
	put_line(2, line, 0);
	put_line(3,
		 "keys: 1-5 < > sort  p pause  i idle  t T thread  a all threads  s stack  "
		 "w window  q quit",
		 A_DIM);
}

static void draw_table(struct top *tp, struct screen_state *ss)
{
	char line[1400];
	int rows = getmaxy(stdscr);
	top_format_titles(tp->view.sort, line, sizeof(line));
	put_line(TOP_HEAD_LINES - 1, line, A_REVERSE);
	for (uint32_t i = 0; i < ss->snap.nrows && TOP_HEAD_LINES + (int)i < rows; i++) {
		/* files by base name, as py-spy shows them: full paths push
		 * the line numbers off the screen (--once keeps them) */
		top_format_row(tp->st, &ss->snap, &ss->snap.rows[i], true, line, sizeof(line));
		put_line(TOP_HEAD_LINES + (int)i, line, 0);
	}
}

static void draw_stack(struct top *tp)
{
	uint32_t funcs[TOP_STACK_MAX];
	int32_t lines[TOP_STACK_MAX];
	enum cg_state state;
	bool trunc;
	char thr[128], line[1400];
	int rows, cols;
	getmaxyx(stdscr, rows, cols);
	uint32_t slot = tp->view.thread < 0 ? 0 : (uint32_t)tp->view.thread;
	top_stats_thread_label(tp->st, slot, thr, sizeof(thr));
	int n = top_stats_stack(tp->st, slot, tp->view.idle, funcs, lines, TOP_STACK_MAX, &state,
				&trunc);
	if (n < 0) {
		snprintf(line, sizeof(line), "no %sstack of thread %s yet%s",
			 tp->view.idle ? "" : "on-CPU ", thr,
			 tp->view.idle || !tp->idle_sampled ? "" : " (i shows idle ones)");
		put_line(TOP_HEAD_LINES - 1, line, A_REVERSE);
		return;
	}
	snprintf(line, sizeof(line), "stack of thread %s, %s, innermost first%s (s: back)", thr,
		 cg_state_name(state), tp->view.thread < 0 ? "; t picks a thread" : "");
	put_line(TOP_HEAD_LINES - 1, line, A_REVERSE);
	int y = TOP_HEAD_LINES;
	for (int i = 0; i < n && y < rows; i++, y++) {
		char label[1300];
		top_stats_func_label(tp->st, funcs[i], lines[i], false, label, sizeof(label));
		if ((int)strlen(label) + 2 > cols)
			top_stats_func_label(tp->st, funcs[i], lines[i], true, label,
					     sizeof(label));
		snprintf(line, sizeof(line), "  %s", label);
		put_line(y, line, 0);
	}
	if (trunc && y < rows)
		put_line(y, "  ... deeper frames not kept", 0);
}

static void take_snapshot(struct top *tp, struct screen_state *ss)
{
	struct top_snapshot s;
	uint64_t now = cg_now_ns();
	if (top_stats_snapshot(tp->st, &tp->view, now, &s))
		return; /* out of memory: keep showing the last one */
	if (ss->have_snap)
		top_snapshot_free(&ss->snap);
	ss->snap = s;
	ss->have_snap = true;
	ss->snap_ns = now;
}

static void draw(struct top *tp, struct screen_state *ss)
{
	erase();
	if (ss->have_snap) {
		draw_head(tp, ss);
		if (ss->stack_mode)
			draw_stack(tp);
		else
			draw_table(tp, ss);
	}
	/* ncurses paints a frame in many writes (it flushes at each cursor
	 * move), so a terminal can show a frame half painted. The cursor,
	 * hidden, parks at home when a frame is done: the last thing
	 * painted, which tells a reader of the terminal (the tests' tmux)
	 * a whole frame from one in progress. */
	move(0, 0);
	refresh();
}

/* One key. Returns true when the view must be recomputed now. */
static bool on_key(struct top *tp, struct screen_state *ss, int ch)
{
	uint32_t nt = top_stats_thread_count(tp->st);
	switch (ch) {
	case 'q':
	case 'Q':
		atomic_store(&tp->quit, true);
		return false;
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
		tp->view.sort = (enum top_sort)(ch - '1');
		return true;
	case '<':
		tp->view.sort = (enum top_sort)((tp->view.sort + TOP_SORT__COUNT - 1) % TOP_SORT__COUNT);
		return true;
	case '>':
		tp->view.sort = (enum top_sort)((tp->view.sort + 1) % TOP_SORT__COUNT);
		return true;
	case 'p':
	case ' ':
		ss->paused = !ss->paused;
		return !ss->paused;
	case 'i':
		/* without --idle there is nothing to show: the sampler skips
		 * idle threads, as attach does, at the same cost */
		if (tp->idle_sampled)
			tp->view.idle = !tp->view.idle;
		return true;
	case 'w':
		tp->view.window = !tp->view.window;
		return true;
	case 't':
		tp->view.thread = tp->view.thread + 1 >= (int)nt ? -1 : tp->view.thread + 1;
		return true;
	case 'T':
		tp->view.thread = tp->view.thread < 0 ? (int)nt - 1 : tp->view.thread - 1;
		return true;
	case 'a':
		tp->view.thread = -1;
		return true;
	case 's':
		ss->stack_mode = !ss->stack_mode;
		return true;
	case 27: /* Esc leaves the stack view */
		ss->stack_mode = false;
		return true;
	case KEY_RESIZE:
		return false;
	default:
		return false;
	}
}

static void *ui_main(void *arg)
{
	struct top *tp = arg;
	struct screen_state ss = {0};
	uint64_t next = 0;

	while (!atomic_load(&tp->stop_ui) && !atomic_load(&tp->quit)) {
		uint64_t now = cg_now_ns();
		bool redraw = false;
		if (!ss.paused && now >= next) {
			log_trim(tp);
			take_snapshot(tp, &ss);
			next = now + (uint64_t)(tp->delay_s * 1e9);
			redraw = true;
		}
		if (redraw)
			draw(tp, &ss);
		int ch = getch();
		if (ch == ERR)
			continue;
		if (on_key(tp, &ss, ch)) {
			/* a changed view shows at once, paused or not */
			take_snapshot(tp, &ss);
			if (!ss.paused)
				next = cg_now_ns() + (uint64_t)(tp->delay_s * 1e9);
		}
		draw(tp, &ss);
	}
	if (ss.have_snap)
		top_snapshot_free(&ss.snap);
	return NULL;
}

/* ---- the session hooks (sampling thread) ---- */

static int curses_open(struct top *tp)
{
	/* Ctrl-Z would stop cgprof, perhaps with a target thread paused for
	 * a sample, and ncurses' handler for it would draw from the
	 * sampling thread: the view ignores it (ncurses then leaves it). */
	struct sigaction ign;
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGTSTP, &ign, &tp->old_tstp);
	/* newterm, unlike initscr, reports an unusable terminal instead of
	 * exiting. */
	tp->screen = newterm(NULL, stdout, stdin);
	if (!tp->screen) {
		sigaction(SIGTSTP, &tp->old_tstp, NULL);
		return cg_fail(-ENOTTY, "cannot drive this terminal (TERM=%s)",
			       getenv("TERM") ? getenv("TERM") : "");
	}
	tp->curses_on = true;
	/* cbreak keeps ISIG: Ctrl-C is a SIGINT that ends the session the
	 * same way as for run and attach. */
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	timeout(TOP_KEY_WAIT_MS);
	set_escdelay(25);
	curs_set(0);
	return 0;
}

static void curses_close(struct top *tp)
{
	if (!tp->curses_on)
		return;
	endwin();
	delscreen(tp->screen);
	sigaction(SIGTSTP, &tp->old_tstp, NULL);
	tp->curses_on = false;
	log_release(tp);
}

static int hook_start(void *arg, pid_t pid, const char *label, const char *version,
		      double rate_hz)
{
	struct top *tp = arg;
	tp->pid = pid;
	snprintf(tp->label, sizeof(tp->label), "%s", label ? label : "");
	snprintf(tp->version, sizeof(tp->version), "%s", version ? version : "");
	tp->rate_hz = rate_hz;
	tp->start_ns = cg_now_ns();
	tp->end_ns = tp->once ? tp->start_ns + (uint64_t)(tp->delay_s * 1e9) : UINT64_MAX;
	int r = top_stats_new(tp->window_s, tp->start_ns, &tp->st);
	if (r)
		return cg_fail(r, "cannot set up the view: %s", strerror(-r));
	if (tp->once)
		return 0;
	log_hold(tp);
	r = curses_open(tp);
	if (r) {
		log_release(tp);
		return r;
	}
	/* Signals stay with the sampling thread, whose loop they end. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	r = pthread_create(&tp->ui, NULL, ui_main, tp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		curses_close(tp);
		return cg_fail(-r, "cannot start the view: %s", strerror(r));
	}
	tp->ui_running = true;
	return 0;
}

static void hook_sample(void *arg, const struct cg_sample *s)
{
	struct top *tp = arg;
	if (tp->st)
		top_stats_add(tp->st, s, cg_now_ns());
}

static bool hook_round(void *arg, const struct cg_sample_stats *ss)
{
	struct top *tp = arg;
	uint64_t now = cg_now_ns();
	top_stats_round(tp->st, ss, now);
	if (tp->once)
		return now < tp->end_ns;
	return !atomic_load(&tp->quit);
}

static void print_once(struct top *tp)
{
	struct top_snapshot snap;
	char line[1400];
	if (top_stats_snapshot(tp->st, &tp->view, cg_now_ns(), &snap)) {
		fprintf(stderr, "cgprof: out of memory\n");
		return;
	}
	title(tp, line, sizeof(line));
	printf("%s\n", line);
	top_format_counts(&snap, &tp->view, tp->rate_hz, line, sizeof(line));
	printf("%s\n", line);
	top_format_titles(tp->view.sort, line, sizeof(line));
	printf("%s\n", line);
	for (uint32_t i = 0; i < snap.nrows && i < TOP_ONCE_ROWS; i++) {
		top_format_row(tp->st, &snap, &snap.rows[i], false, line, sizeof(line));
		printf("%s\n", line);
	}
	fflush(stdout);
	top_snapshot_free(&snap);
}

static void hook_finish(void *arg)
{
	struct top *tp = arg;
	if (tp->once) {
		print_once(tp);
		return;
	}
	atomic_store(&tp->stop_ui, true);
	if (tp->ui_running)
		pthread_join(tp->ui, NULL);
	tp->ui_running = false;
	curses_close(tp);
	if (tp->spawned && atomic_load(&tp->quit))
		fprintf(stderr, "cgprof: view closed; waiting for process %d (%s) to exit\n",
			(int)tp->pid, tp->label);
}

/* ---- options ---- */

static bool is_opt(const char *a, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(a, name, n))
		return false;
	if (a[n] == '\0') {
		*val = NULL;
		return true;
	}
	if (a[n] == '=') {
		*val = a + n + 1;
		return true;
	}
	return false;
}

static int number(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = s ? strtod(s, &end) : 0;
	if (!s || errno || end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "cgprof: invalid %s '%s' (expected a number from %g to %g)\n", opt,
			s ? s : "", lo, hi);
		return CLI_EXIT_USAGE;
	}
	*out = v;
	return 0;
}

/* Options of the session that take a value: passed on with it. */
static const char *const pass_valued[] = {"-r", "--rate", "-d", "--duration", "--max-depth",
					  "--config"};
/* Options of run/attach that mean nothing for a live view. */
static const char *const not_for_top[] = {
	"-o", "--output", "--threads", "--heap", "--profiling-group", "--region", "--endpoint",
	"--reporting-interval", "--ca-file", "--pin-sha256", "--no-upload", "--spool",
	"--spool-key", "--spool-max-mb", "--syslog"};

/* Take top's own options out of argv (from "top" on) and build the
 * run/attach argv in out. 0 or an exit code after the message. */
/* The value of an option at argv[*i]: after '=' or the next argument. */
static const char *opt_value(const char *val, int argc, char **argv, int *i)
{
	if (!val && *i + 1 < argc)
		val = argv[++*i];
	return val;
}

static int parse_sort(struct top *tp, const char *val)
{
	for (int k = 0; k < TOP_SORT__COUNT; k++) {
		if (val && !strcmp(val, sort_keys[k])) {
			tp->view.sort = (enum top_sort)k;
			return 0;
		}
	}
	fprintf(stderr, "cgprof: unknown --sort '%s' (own, total, own-time, total-time, name)\n",
		val ? val : "");
	return -1;
}

/* One of top's own options at argv[*i], its value maybe the next
 * argument: 1 taken, 0 not top's (passed on to the session), -1 a usage
 * error, said. --idle is top's and passed on too: 0. */
static int top_own_option(struct top *tp, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *val;
	double v;
	if (is_opt(a, "--delay", &val))
		return number("--delay", opt_value(val, argc, argv, i), 0.1, 3600, &tp->delay_s)
			       ? -1
			       : 1;
	if (is_opt(a, "--window", &val)) {
		if (number("--window", opt_value(val, argc, argv, i), 1, TOP_WINDOW_MAX, &v))
			return -1;
		tp->window_s = (unsigned)v;
		return 1;
	}
	if (is_opt(a, "--once", &val) && !val) {
		tp->once = true;
		return 1;
	}
	if (is_opt(a, "--format", &val) || is_opt(a, "-f", &val)) {
		val = opt_value(val, argc, argv, i);
		if (!val || strcmp(val, "text")) {
			fprintf(stderr, "cgprof: top prints only --format text, not '%s'\n",
				val ? val : "");
			return -1;
		}
		tp->once = true;
		return 1;
	}
	if (is_opt(a, "--sort", &val))
		return parse_sort(tp, opt_value(val, argc, argv, i)) ? -1 : 1;
	if (is_opt(a, "--idle", &val) && !val) {
		tp->view.idle = true;
		tp->idle_sampled = true; /* and passed on */
		tp->view.idle_sampled = true;
	}
	return 0;
}

/* What follows the options: one PID, or -- and a command; said here, in
 * top's words, rather than as run's or attach's. */
static int check_target_args(const struct top *tp, int rest)
{
	if (tp->spawned && rest < 1) {
		fprintf(stderr, "cgprof: top -- needs a command: cgprof top [options] -- COMMAND...\n");
		return CLI_EXIT_USAGE;
	}
	if (!tp->spawned && rest != 1) {
		fprintf(stderr, "cgprof: top needs one PID or -- COMMAND: cgprof top [options] PID\n");
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static int parse_top(struct top *tp, int argc, char **argv, char **out, int *nout)
{
	int n = 0, i;
	const char *val;
	out[n++] = "top";
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			tp->spawned = true;
			i++;
			break;
		}
		if (a[0] != '-' || !a[1])
			break;
		if (n + 3 >= TOP_ARGV_MAX) {
			fprintf(stderr, "cgprof: too many options for top\n");
			return CLI_EXIT_USAGE;
		}
		int own = top_own_option(tp, argc, argv, &i);
		if (own < 0)
			return CLI_EXIT_USAGE;
		if (own)
			continue;
		for (size_t k = 0; k < CG_ARRAY_LEN(not_for_top); k++)
			if (is_opt(a, not_for_top[k], &val)) {
				fprintf(stderr, "cgprof: %s does not apply to top\n", not_for_top[k]);
				return CLI_EXIT_USAGE;
			}
		out[n++] = argv[i];
		for (size_t k = 0; k < CG_ARRAY_LEN(pass_valued); k++)
			if (!strcmp(a, pass_valued[k]) && i + 1 < argc)
				out[n++] = argv[++i];
	}
	if (tp->spawned)
		out[n++] = "--";
	int first_arg = i;
	for (; i < argc && n < TOP_ARGV_MAX - 1; i++)
		out[n++] = argv[i];
	if (i < argc) {
		fprintf(stderr, "cgprof: too many arguments for top\n");
		return CLI_EXIT_USAGE;
	}
	out[n] = NULL;
	*nout = n;
	return check_target_args(tp, argc - first_arg);
}

int cmd_top(int argc, char **argv)
{
	struct top tp = {.delay_s = 1.0, .window_s = 10, .view = {.thread = -1}, .log_fd = -1,
			 .saved_err = -1};
	char *av[TOP_ARGV_MAX];
	int ac = 0;
	struct cli_opts o;

	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cli_usage(stdout);
			return 0;
		}
	int r = parse_top(&tp, argc, argv, av, &ac);
	if (r)
		return r;
	r = cli_parse(tp.spawned ? "run" : "top", ac, av, &o);
	if (r)
		return r;
	if (!tp.once && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
		fprintf(stderr, "cgprof: top needs a terminal; use --once for a plain snapshot\n");
		return CLI_EXIT_USAGE;
	}
	/* --once: one span of --duration, else --delay, then the table */
	if (tp.once && o.duration_s > 0)
		tp.delay_s = o.duration_s + 1;
	struct cli_hooks h = {
		.arg = &tp,
		.start = hook_start,
		.sample = hook_sample,
		.round = hook_round,
		.finish = hook_finish,
	};
	o.hooks = &h;
	r = tp.spawned ? cmd_run(&o) : cmd_attach(&o);
	/* an error before the view started (or while it ran) */
	if (tp.curses_on)
		curses_close(&tp);
	top_stats_free(tp.st);
	return r;
}
