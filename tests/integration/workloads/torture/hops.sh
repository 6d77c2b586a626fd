#!/bin/sh
# hops.sh N PROGRAM ARGV...: this process execs itself N times, at once
# each time, then execs PROGRAM: a launcher chain (sh, unshare, chroot,
# env ...) stretched so that a profiler looking for the runtime keeps
# finding the process inside an exec.
n=$1
shift
if [ "$n" -gt 0 ]; then
	exec /bin/sh "$0" $((n - 1)) "$@"
fi
exec "$@"
