#!/bin/sh
# Build, once per machine, a Debian unstable root with today's runtimes
# (CPython 3.14 and 3.15, a 3.14 debug build, OpenJDK 21) for the
# integration tests, which run them inside it (tests/rig/sid-run) and
# profile them from outside, as a container is. Reused while complete.
#
#   CGPROF_SID_ROOT  where (default /var/cache/cgprof/sid-root)
#
# A root that cannot be built is not fatal here: the tests that need it
# skip, naming the reason written to $CGPROF_SID_ROOT.failed.
set -u
ROOT=${CGPROF_SID_ROOT:-/var/cache/cgprof/sid-root}
MIRROR=${CGPROF_SID_MIRROR:-http://deb.debian.org/debian}
PKGS="python3.14,python3.15,python3.14-dbg,libpython3.14-dev,libpython3.15-dev,openjdk-21-jdk-headless"
STAMP="$ROOT/.cgprof-rig"

[ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PKGS" ] && exit 0
fail() {
	mkdir -p "$(dirname "$ROOT")"
	echo "$*" >"$ROOT.failed"
	echo "sid-root: $* (tests that need CPython 3.14/3.15 or JDK 21 will skip)" >&2
	exit 0
}
[ "$(id -u)" = 0 ] || fail "building the sid root needs root"
if ! command -v debootstrap >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends debootstrap >/dev/null 2>&1 ||
		{ apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		  --no-install-recommends debootstrap >/dev/null 2>&1; } ||
		fail "debootstrap could not be installed"
fi
# Nothing of an earlier root may stay mounted while it is rebuilt.
grep -q " $ROOT/" /proc/mounts && fail "$ROOT has mounts under it; unmount them first"
echo "sid-root: building $ROOT ($PKGS)"
tmp="$ROOT.new"
rm -rf "$tmp" "$ROOT.failed"
mkdir -p "$(dirname "$ROOT")"
if ! debootstrap --variant=minbase --include="$PKGS" sid "$tmp" "$MIRROR" \
	>"$ROOT.log" 2>&1; then
	rm -rf "$tmp"
	fail "debootstrap of sid failed: $(tail -1 "$ROOT.log")"
fi
rm -rf "$ROOT"
mv "$tmp" "$ROOT"
echo "$PKGS" >"$STAMP"
echo "sid-root: ready"
