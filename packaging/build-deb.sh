#!/bin/sh
# Build the .deb from this checkout: copy the tracked tree to a scratch
# directory, put packaging/debian in place as debian/, dpkg-buildpackage.
# usage: packaging/build-deb.sh OUTDIR   (prints the .deb path)
set -eu
out=${1:?usage: build-deb.sh OUTDIR}
top=$(cd "$(dirname "$0")/.." && pwd)
ver=$(dpkg-parsechangelog -l "$top/packaging/debian/changelog" -S Version)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/cgprof-$ver"
mkdir -p "$src"
# Only what git tracks (plus untracked, not ignored, files): no build dirs.
(cd "$top" && git ls-files -co --exclude-standard -z) |
	(cd "$top" && xargs -0 cp --parents -t "$src")
cp -r "$top/packaging/debian" "$src/debian"
(cd "$src" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
	tail -40 "$work/build.log" >&2
	exit 1
}
mkdir -p "$out"
cp "$work"/cgprof_*.deb "$out"/
ls "$out"/cgprof_*.deb
