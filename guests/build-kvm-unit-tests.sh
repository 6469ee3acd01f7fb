#!/usr/bin/env bash
# Builds kvm-unit-tests (the conformance suite QEMU's and KVM's developers
# use; GPL-2.0, someone else's code: only built here, never copied into the
# repository) for arm64 into guests/cache/kvm-unit-tests/ (gitignored):
#   arm/*.flat    the bare-metal test programs (raw, linked at 0)
#   environ.txt   the environment the suite reads from its initrd
#
# The source is the pinned commit below, taken from (first found):
#   $PV_KVM_UNIT_TESTS       a kvm-unit-tests-*.tar.xz (a `git archive`)
#   ../shared/kvm-unit-tests/kvm-unit-tests-*.tar.xz beside the project, or
#   beside the local repository this checkout was cloned from
#   a clone of the upstream repository at that commit.
# Rebuilt only when the source or this script changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/cache/kvm-unit-tests"
commit=1da1819e49fc
upstream=https://gitlab.com/kvm-unit-tests/kvm-unit-tests.git

die() { echo "kvm-unit-tests: $*" >&2; exit 1; }
command -v aarch64-linux-gnu-gcc >/dev/null \
    || die "aarch64-linux-gnu-gcc is needed (apt-get install gcc-aarch64-linux-gnu)"

tarball="${PV_KVM_UNIT_TESTS:-}"
if [ -z "$tarball" ]; then
    places=("$here/../..")
    origin="$(git -C "$here/.." config --get remote.origin.url 2>/dev/null || true)"
    [ -d "$origin" ] && places+=("$origin/..")
    for place in "${places[@]}"; do
        for t in "$place"/shared/kvm-unit-tests/kvm-unit-tests-*.tar.xz; do
            [ -z "$tarball" ] && [ -f "$t" ] && tarball="$t"
        done
    done
fi
if [ -n "$tarball" ]; then
    [ -f "$tarball" ] || die "no such file: $tarball"
    source_id="$(basename "$tarball") $(stat -c %s "$tarball")"
else
    source_id="git $commit"
fi
stamp="$( (echo "$source_id"; cat "$0") | md5sum | cut -d' ' -f1)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -n "$tarball" ]; then
    echo "kvm-unit-tests: building from $tarball"
    tar -xJf "$tarball" -C "$work"
else
    echo "kvm-unit-tests: fetching $upstream at $commit"
    git clone -q "$upstream" "$work/kvm-unit-tests"
    git -C "$work/kvm-unit-tests" checkout -q "$commit"
fi
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)"
(
    cd "$src"
    ./configure --arch=arm64 --cross-prefix=aarch64-linux-gnu- --page-size=4k >/dev/null
    make -j2 >/dev/null
)
rm -rf "$out.tmp"
mkdir -p "$out.tmp/arm"
cp "$src"/arm/*.flat "$out.tmp/arm/"
# What the suite's own runner (arm/run) puts in the initrd for QEMU's TCG.
printf 'TARGET=qemu\nQEMU_ACCEL=tcg\nERRATA_FORCE=y\n' >"$out.tmp/environ.txt"
echo "$stamp" >"$out.tmp/stamp"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "kvm-unit-tests: built $out"
