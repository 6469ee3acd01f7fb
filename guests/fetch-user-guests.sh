#!/usr/bin/env bash
# Fetches the user-mode guest parts from Debian's arm64 packages into
# guests/cache/user/ (gitignored): today, busybox-static's busybox binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/cache/user"
if [ -x "$out/busybox" ]; then
    echo "guests: busybox already at $out/busybox"
    exit 0
fi
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "guests: enabling the arm64 architecture for apt"
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -q
fi
cd "$work"
if ! apt-get download -q busybox-static:arm64 >/dev/null 2>&1; then
    # The package lists may predate the arm64 architecture: refresh once and retry.
    $SUDO apt-get update -q
    apt-get download -q busybox-static:arm64 || { echo "guests: cannot download busybox-static:arm64" >&2; exit 1; }
fi
dpkg-deb -x busybox-static_*_arm64.deb pkg
install -m 755 pkg/bin/busybox "$out/busybox"
echo "guests: busybox $(dpkg-deb -f busybox-static_*_arm64.deb Version) -> $out/busybox"
