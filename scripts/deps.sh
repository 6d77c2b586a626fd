#!/bin/sh
# Install the Debian packages cgprof builds and tests with, if missing.
# Idempotent and quiet when everything is there already.
set -e
PKGS="build-essential pkg-config libunwind-dev libelf-dev libssl-dev libjansson-dev
libcurl4-openssl-dev zlib1g-dev check python3 python3-botocore python3-jsonschema
protobuf-compiler openssl openjdk-17-jdk-headless debhelper dpkg-dev lintian
clang llvm libclang-rt-14-dev valgrind libncurses-dev tmux strace"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "cgprof: missing Debian packages:$missing (run as root, or apt-get install them)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
