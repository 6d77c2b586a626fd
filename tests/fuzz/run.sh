#!/bin/sh
# Run every libFuzzer harness (build-fuzz/fuzz_NAME) for CGPROF_FUZZ_SECONDS
# (default 20), CGPROF_FUZZ_JOBS at a time (default: one per CPU), over a
# copy of tests/fuzz/corpus/NAME, with NAME.dict when there is one. One
# line per harness; a finding fails it, and its input is kept under
# build-fuzz/findings/ (add it to the corpus once fixed).
#
# Run alone (`make fuzz`) it prints "fuzz: N passed, N failed, N skipped";
# sourced by tests/run-all.sh it adds to that script's pass/fail/skip.
fz_build=${CGPROF_FUZZ_BUILD:-build-fuzz}
fz_secs=${CGPROF_FUZZ_SECONDS:-20}
fz_dir=tests/fuzz
fz_alone=0
if [ -z "${pass+x}" ]; then
	fz_alone=1
	pass=0 fail=0 skip=0
fi
fz_tmp=$(mktemp -d)
# Harnesses run side by side, one per CPU (CGPROF_FUZZ_JOBS to change):
# each libFuzzer process is single-threaded, and nothing in this phase
# is timed against the clock but the harnesses' own budgets.
fz_jobs=${CGPROF_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# One harness ($1: its name): its report lines into $fz_tmp/$1/report,
# the first of them "pass" or "fail".
fz_one() {
	fz_name=$1
	fz_bin=$fz_build/fuzz_$fz_name
	fz_rep=$fz_tmp/$fz_name/report
	mkdir -p "$fz_tmp/$fz_name/corpus" "$fz_tmp/$fz_name/out"
	if [ ! -x "$fz_bin" ]; then
		printf 'fail\nFAIL: fuzz %s: %s is not built (make fuzz-bin)\n' "$fz_name" "$fz_bin" >"$fz_rep"
		return
	fi
	# The run adds what it finds to its corpus: a copy, never the repo.
	cp "$fz_dir/corpus/$fz_name"/* "$fz_tmp/$fz_name/corpus/" 2>/dev/null
	fz_seeds=$(ls "$fz_tmp/$fz_name/corpus" | wc -l)
	set -- -max_total_time="$fz_secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$fz_tmp/$fz_name/out/"
	[ -f "$fz_dir/$fz_name.dict" ] && set -- "$@" -dict="$fz_dir/$fz_name.dict"
	fz_t0=$(date +%s)
	"$fz_bin" "$@" "$fz_tmp/$fz_name/corpus" >"$fz_tmp/$fz_name/log" 2>&1
	fz_rc=$?
	fz_t1=$(date +%s)
	fz_runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$fz_tmp/$fz_name/log" | tail -1)
	fz_found=$(ls "$fz_tmp/$fz_name/out" | head -1)
	# A timeout that does not come back on replay was the machine, not
	# the parser (a shared, loaded runner can stall one unit for >10 s);
	# a real hang is deterministic and fails again here.
	fz_note=
	case "$fz_found" in
	timeout-*)
		if [ "$(ls "$fz_tmp/$fz_name/out" | wc -l)" -eq 1 ] &&
			"$fz_bin" -timeout=10 -rss_limit_mb=2048 "$fz_tmp/$fz_name/out/$fz_found" \
				>"$fz_tmp/$fz_name/replay" 2>&1; then
			fz_note="note: fuzz $fz_name: a unit timed out under load but replays in time"
			fz_found= fz_rc=0
		fi
		;;
	esac
	if [ $fz_rc -eq 0 ] && [ -z "$fz_found" ]; then
		{
			echo pass
			[ -n "$fz_note" ] && echo "$fz_note"
			echo "ok: fuzz $fz_name: ${fz_runs:-?} runs in $((fz_t1 - fz_t0)) s from $fz_seeds seeds, no finding"
		} >"$fz_rep"
		return
	fi
	{
		echo fail
		tail -n 60 "$fz_tmp/$fz_name/log"
		if [ -n "$fz_found" ]; then
			mkdir -p "$fz_build/findings/$fz_name"
			cp "$fz_tmp/$fz_name/out"/* "$fz_build/findings/$fz_name/"
			echo "FAIL: fuzz $fz_name: $fz_found (kept in $fz_build/findings/$fz_name/;" \
				"replay: $fz_bin $fz_build/findings/$fz_name/$fz_found)"
		else
			echo "FAIL: fuzz $fz_name: libFuzzer exited $fz_rc"
		fi
	} >"$fz_rep"
}

# Batches of fz_jobs; then the reports, in name order, each counted once.
fz_names=
fz_n=0
for fz_src in "$fz_dir"/fuzz_*.c; do
	fz_name=$(basename "$fz_src" .c)
	fz_name=${fz_name#fuzz_}
	fz_names="$fz_names $fz_name"
	fz_one "$fz_name" &
	fz_n=$((fz_n + 1))
	if [ $fz_n -ge "$fz_jobs" ]; then
		wait
		fz_n=0
	fi
done
wait
for fz_name in $fz_names; do
	fz_rep=$fz_tmp/$fz_name/report
	if [ "$(head -n 1 "$fz_rep" 2>/dev/null)" = pass ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		[ -f "$fz_rep" ] || echo "FAIL: fuzz $fz_name: the harness run left no report"
	fi
	tail -n +2 "$fz_rep" 2>/dev/null
done
rm -rf "$fz_tmp"

if [ $fz_alone -eq 1 ]; then
	echo "fuzz: $pass passed, $fail failed, $skip skipped"
	[ $fail -eq 0 ]
fi
