#!/bin/sh
# Run every test phase and print one closing line
# "N passed, N failed, N skipped"; fail if anything failed.
#
# Phases (CGPROF_ONLY=name runs one; unset runs all of them):
#   unit         the Check suites of $CGPROF_BUILD
#   integration  tests/integration against $CGPROF_BUILD/cgprof
#   valgrind     the Check suites again under valgrind memcheck
#   asan         unit + integration again against build-asan (ASan+UBSan);
#                any sanitizer report fails the phase
#   fuzz         each libFuzzer harness for a bounded time (tests/fuzz)
BUILD=${CGPROF_BUILD:-build}
ASAN_BUILD=${CGPROF_ASAN_BUILD:-build-asan}
ONLY=${CGPROF_ONLY:-}
PY=${PYTHON:-/usr/bin/python3}
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# Count one Check binary's output ($1: file, $2: exit status, $3: name).
count_check() {
	# Check prints "NN%: Checks: N, Failures: F, Errors: E"
	line=$(grep -E 'Checks: [0-9]+' "$1" | tail -1)
	if [ -z "$line" ]; then
		echo "FAIL: $3 produced no Check summary (rc=$2)"
		fail=$((fail + 1))
		return
	fi
	n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
	f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
	e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
	pass=$((pass + n - f - e))
	fail=$((fail + f + e))
	if [ "$2" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
		echo "FAIL: $3 exited $2 with every check passing"
		fail=$((fail + 1))
	fi
}

# $1: build dir; $2: command prefix (valgrind) or empty.
run_unit() {
	for t in "$1"/tests/unit/test_*; do
		case "$t" in *.d) continue ;; esac
		[ -x "$t" ] || continue
		$2 "$t" >"$tmp/out" 2>&1
		rc=$?
		cat "$tmp/out"
		count_check "$tmp/out" $rc "${2:+valgrind }$t"
	done
}

# $1: build dir; $2: the phase's name (the runner leaves out, under asan,
# the tests that never run the build under test).
run_integration() {
	CGPROF="$PWD/$1/cgprof" CGPROF_BUILD="$PWD/$1" CGPROF_PHASE="$2" \
		"$PY" tests/integration/run.py >"$tmp/int" 2>&1
	rc=$?
	cat "$tmp/int"
	line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$tmp/int" | tail -1)
	if [ -z "$line" ]; then
		echo "FAIL: integration runner produced no summary (rc=$rc)"
		fail=$((fail + 1))
		return
	fi
	set -- $(echo "$line" | sed -E 's/[^0-9]+/ /g')
	pass=$((pass + $1)); fail=$((fail + $2)); skip=$((skip + $3))
	[ $rc -ne 0 ] && [ "$2" -eq 0 ] && fail=$((fail + 1))
}

phase() { echo; echo "=== $1"; }

if want unit; then
	phase "unit ($BUILD)"
	run_unit "$BUILD" ""
fi

if want integration; then
	phase "integration ($BUILD/cgprof)"
	run_integration "$BUILD" integration
fi

if want valgrind; then
	phase "unit under valgrind memcheck"
	if ! command -v valgrind >/dev/null; then
		echo "FAIL: valgrind is not installed (scripts/deps.sh installs it)"
		fail=$((fail + 1))
	else
		# In-process (CK_FORK=no) so memcheck sees every test; a definite
		# or indirect leak or any memory error is a failing exit.
		CK_FORK=no run_unit "$BUILD" "valgrind -q --error-exitcode=99 --leak-check=full \
			--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect"
	fi
fi

if want asan; then
	phase "unit + integration under AddressSanitizer/UBSan ($ASAN_BUILD)"
	if [ ! -x "$ASAN_BUILD/cgprof" ]; then
		echo "FAIL: $ASAN_BUILD/cgprof is missing (make asan-bin)"
		fail=$((fail + 1))
	else
		# Reports go to files, not stderr: the tests check cgprof's
		# stderr, and a report from any process must count.
		mkdir -p "$tmp/san"
		export ASAN_OPTIONS="log_path=$tmp/san/asan:detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1"
		export UBSAN_OPTIONS="log_path=$tmp/san/ubsan:print_stacktrace=1:halt_on_error=1"
		run_unit "$ASAN_BUILD" ""
		run_integration "$ASAN_BUILD" asan
		unset ASAN_OPTIONS UBSAN_OPTIONS
		reports=$(ls "$tmp/san" 2>/dev/null | wc -l)
		if [ "$reports" -ne 0 ]; then
			for r in "$tmp"/san/*; do
				echo "--- sanitizer report $r"
				cat "$r"
			done
			echo "FAIL: $reports sanitizer report(s)"
			fail=$((fail + 1))
		else
			echo "sanitizer reports: 0"
		fi
	fi
fi

if want fuzz && [ -f tests/fuzz/run.sh ]; then
	phase "fuzz"
	. tests/fuzz/run.sh
fi

echo
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
