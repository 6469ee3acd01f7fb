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
# Tests run in parallel and each calls this script: one builds, the others
# wait for it and then find everything up to date.
exec 9>"$out/.lock"
flock 9
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# shellcheck source=guests/host-setup.sh
. "$here/host-setup.sh"
ensure_arm64_apt
cd "$work"
echo "guests: downloading busybox-static:arm64"
apt-get download busybox-static:arm64 || { echo "guests: cannot download busybox-static:arm64" >&2; exit 1; }
dpkg-deb -x busybox-static_*_arm64.deb pkg
install -m 755 pkg/bin/busybox "$out/busybox"
echo "guests: busybox $(dpkg-deb -f busybox-static_*_arm64.deb Version) -> $out/busybox"
