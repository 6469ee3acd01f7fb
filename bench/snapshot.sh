#!/usr/bin/env bash
# Snapshot benchmark: save and restore times of a 256 MiB guest (Debian's
# 6.1 cloud kernel with the test initramfs, at its shell), ours and
# qemu-system-aarch64 in the same run.
#   ours: crates/vmm/examples/snapshot_timing.rs — pause + VmState bytes +
#         sparse RAM image; restore = build the VM from them (median of N).
#   QEMU: `migrate` to a file with the VM stopped (QMP total-time), and a
#         new QEMU with -incoming from that file until it is ready to run.
# Usage: bench/snapshot.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
guests/fetch-linux-guests.sh >/dev/null
guest=guests/cache/linux
cargo build --release -q -p vmm --example snapshot_timing
ours=$(target/release/examples/snapshot_timing "$guest" 256 "$rounds" | grep '^SNAPSHOT')
echo "ours: $ours"

out="$(mktemp -d)"
qemu_pid=""
cleanup() { [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT
qemu() {
    qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a53 -m 256M -nographic -nic none \
        -kernel "$guest/Image" -initrd "$guest/initramfs.cpio.gz" \
        -append "console=ttyAMA0 quiet cryptomgr.notests" \
        -serial "file:$out/console" -monitor none -qmp "unix:$out/qmp,server=on,wait=off" "$@" \
        </dev/null >/dev/null 2>&1 &
    qemu_pid=$!
}
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

qemu_save=() qemu_restore=()
for _ in $(seq "$rounds"); do
    qemu
    for _ in $(seq 3000); do grep -q "Pocketvisor guest shell" "$out/console" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    r=$(qmp "$out/qmp" '{"execute":"stop"}' \
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $out/state\"}}" wait-migrated | tail -1)
    qemu_save+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total-time"])' "$r")")
    kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true
    start=$(date +%s%N)
    qemu -S -incoming "exec:cat $out/state"
    qmp "$out/qmp" wait-incoming >/dev/null
    qemu_restore+=("$(( ($(date +%s%N) - start) / 1000000 ))")
    kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
qs=$(median "${qemu_save[@]}") qr=$(median "${qemu_restore[@]}")
qsize=$(du -k "$out/state" | cut -f1)
echo "qemu: save_ms=$qs restore_ms=$qr state_file_MiB=$((qsize / 1024))"
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$ours"; }
os=$(field save_ms) or=$(field restore_ms)
awk -v os="$os" -v or="$or" -v qs="$qs" -v qr="$qr" 'BEGIN {
    printf "SNAPSHOT-RATIO save ours/qemu %.2fx (%.1f vs %s ms), restore ours/qemu %.2fx (%.1f vs %s ms)\n",
        os / qs, os, qs, or / qr, or, qr }'
