#!/usr/bin/env bash
# virtio-blk benchmark: sequential direct-I/O write and read of 64 MiB in the
# guest (guests/scripts/linux/blk-bench.sh), under `pocketvisor run` and under
# qemu-system-aarch64 -M virt -cpu cortex-a53 with a virtio-blk-device on the
# same kind of raw image, in the same run. Prints MB/s and ours/QEMU ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
kernel=guests/cache/linux/Image
initrd=guests/cache/linux/initramfs.cpio.gz
out=guests/cache/bench
mkdir -p "$out"
cmdline="console=ttyAMA0 cryptomgr.notests pv.run=blk-bench"
img="$out/blk-bench.img"

run_engine() {
    truncate -s 0 "$img"
    truncate -s 128M "$img"
    if [ "$1" = qemu ]; then
        qemu-system-aarch64 -M virt -cpu cortex-a53 -m 256M -smp 1 -nographic -nic none \
            -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
            -drive "file=$img,if=none,format=raw,id=d0,cache=writeback" \
            -device virtio-blk-device,drive=d0 </dev/null 2>&1
    else
        target/release/pocketvisor run --kernel "$kernel" --initrd "$initrd" \
            --cmdline "$cmdline" --disk "$img" </dev/null 2>&1
    fi | grep -o 'BLK-BENCH.*' | tr -d '\r'
}

ours=$(run_engine ours)
qemu=$(run_engine qemu)
echo "ours: $ours"
echo "qemu: $qemu"
get() { echo "$1" | sed -n "s/.*$2=\([0-9.]*\).*/\1/p"; }
awk -v ow="$(get "$ours" write_MBps)" -v orr="$(get "$ours" read_MBps)" \
    -v qw="$(get "$qemu" write_MBps)" -v qr="$(get "$qemu" read_MBps)" 'BEGIN {
    printf "write: ours %.1f MB/s, qemu %.1f MB/s, ours/qemu %.2f\n", ow, qw, ow / qw
    printf "read:  ours %.1f MB/s, qemu %.1f MB/s, ours/qemu %.2f\n", orr, qr, orr / qr }'
rm -f "$img"
