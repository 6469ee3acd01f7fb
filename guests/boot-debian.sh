#!/usr/bin/env bash
# Boots Debian's arm64 6.1 cloud kernel with the project's busybox initramfs
# under `pocketvisor run`, fetching and building the guest parts on first use
# (about a minute, once). Extra arguments go to `pocketvisor run` (e.g.
# --mem 512M, --disk disk.img, or --cmdline "console=ttyAMA0 pv.run=boot-check");
# relative paths in them are relative to where you run this from. Ctrl-A x quits.
#
# Needs: cargo, cpio, dpkg-deb and apt-get (a Debian-like host), and
# gcc-aarch64-linux-gnu + libc6-dev-arm64-cross (guest test programs). The
# first run asks before enabling Debian's arm64 packages on the host
# (dpkg --add-architecture arm64); set PV_SETUP_HOST=1 to allow it up front.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/guests/fetch-linux-guests.sh" >&2
# Build from anywhere without leaving the caller's directory.
cargo build --release -p pocketvisor --manifest-path "$root/Cargo.toml" >&2
exec "$root/target/release/pocketvisor" run \
    --kernel "$root/guests/cache/linux/Image" \
    --initrd "$root/guests/cache/linux/initramfs.cpio.gz" \
    "$@"
