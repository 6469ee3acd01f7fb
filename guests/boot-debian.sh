#!/usr/bin/env bash
# Boots Debian's arm64 6.1 cloud kernel with the project's busybox initramfs
# under `pocketvisor run`, fetching and building the guest parts on first use.
# Extra arguments go to `pocketvisor run` (e.g. --mem 512M, or
# --cmdline "console=ttyAMA0 pv.run=boot-check"). Ctrl-A x quits.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/guests/fetch-linux-guests.sh" >&2
cd "$root"
cargo build --release -q -p pocketvisor
exec "$root/target/release/pocketvisor" run \
    --kernel "$root/guests/cache/linux/Image" \
    --initrd "$root/guests/cache/linux/initramfs.cpio.gz" \
    "$@"
