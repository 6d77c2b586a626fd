#!/bin/sh
# Run the Check unit suites and the integration tests; print one closing
# line "N passed, N failed, N skipped" and fail if anything failed.
BUILD=${CGPROF_BUILD:-build}
ONLY=${CGPROF_ONLY:-}
PY=${PYTHON:-/usr/bin/python3}
pass=0 fail=0 skip=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -z "$ONLY" ] || [ "$ONLY" = unit ]; then
	for t in "$BUILD"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		"$t" >"$tmp/out" 2>&1
		rc=$?
		cat "$tmp/out"
		# Check prints "NN%: Checks: N, Failures: F, Errors: E"
		line=$(grep -E 'Checks: [0-9]+' "$tmp/out" | tail -1)
		n=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
		f=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
		e=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
		if [ -z "$line" ]; then
			echo "FAIL: $t produced no Check summary (rc=$rc)"
			fail=$((fail + 1))
			continue
		fi
		pass=$((pass + n - f - e))
		fail=$((fail + f + e))
		[ $rc -ne 0 ] && [ $((f + e)) -eq 0 ] && fail=$((fail + 1))
	done
fi

if [ -z "$ONLY" ] || [ "$ONLY" = integration ]; then
	CGPROF="$PWD/$BUILD/cgprof" CGPROF_BUILD="$PWD/$BUILD" \
		"$PY" tests/integration/run.py >"$tmp/int" 2>&1
	rc=$?
	cat "$tmp/int"
	line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$tmp/int" | tail -1)
	if [ -z "$line" ]; then
		echo "FAIL: integration runner produced no summary (rc=$rc)"
		fail=$((fail + 1))
	else
		set -- $(echo "$line" | sed -E 's/[^0-9]+/ /g')
		pass=$((pass + $1)); fail=$((fail + $2)); skip=$((skip + $3))
		[ $rc -ne 0 ] && [ "$2" -eq 0 ] && fail=$((fail + 1))
	fi
fi

echo
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
