#!/usr/bin/env bash
# SMP benchmark: Debian's arm64 6.1 cloud kernel + the project's initramfs
# under `pocketvisor run --cpus N` and under qemu-system-aarch64 -smp N
# (MTTCG: one host thread per vCPU, QEMU's default here) in the same run.
#   1. boot to the POCKETVISOR-GUEST-READY marker with 1, 2 and 4 vCPUs;
#   2. a parallel workload in the guest (guests/scripts/linux/smp-bench.sh:
#      two CPU-bound processes at once) on 1 and on 2 vCPUs: the speed-up
#      2 vCPUs give (goal >= 1.7x on a 2-core host).
# Prints medians of RUNS runs and ours/QEMU ratios. Not a test: numbers only.
# Usage: bench/smp.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
runs="${1:-3}"
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
kernel=guests/cache/linux/Image
initrd=guests/cache/linux/initramfs.cpio.gz
log=$(mktemp /tmp/pvb.XXXXXX)
trap 'rm -f "$log"' EXIT

# run ENGINE CPUS CMDLINE: boots to power-off with the output in $log;
# prints the seconds from launch to the ready marker.
run() {
    local engine="$1" cpus="$2" cmdline="$3" start pid marker=""
    start=$(now)
    if [ "$engine" = qemu ]; then
        qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a53 -m 256M -smp "$cpus" \
            -nographic -nic none -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
            </dev/null >"$log" 2>&1 &
    else
        target/release/pocketvisor run --mem 256M --cpus "$cpus" --kernel "$kernel" \
            --initrd "$initrd" --cmdline "$cmdline" </dev/null >"$log" 2>&1 &
    fi
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        if [ -z "$marker" ] && grep -q POCKETVISOR-GUEST-READY "$log" 2>/dev/null; then
            marker=$(now)
        fi
        sleep 0.01
    done
    wait "$pid" || true
    [ -n "$marker" ] || fail "$engine --cpus $cpus did not reach the ready marker; see $log"
    echo "$start $marker" | awk '{ printf "%.2f\n", $2 - $1 }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

boot=(console=ttyAMA0 cryptomgr.notests pv.run=poweroff)
printf "%-26s %10s %10s %8s\n" "boot to marker" "ours s" "qemu s" "ours/qemu"
for cpus in 1 2 4; do
    ours=$(for _ in $(seq "$runs"); do run ours "$cpus" "${boot[*]}"; done | median)
    qemu=$(for _ in $(seq "$runs"); do run qemu "$cpus" "${boot[*]}"; done | median)
    awk -v n="$cpus vCPUs" -v o="$ours" -v q="$qemu" \
        'BEGIN { printf "%-26s %10.2f %10.2f %8.2f\n", n, o, q, o / q }'
done

# workload ENGINE CPUS -> median milliseconds of smp-bench.sh
workload() {
    for _ in $(seq "$runs"); do
        run "$1" "$2" "console=ttyAMA0 cryptomgr.notests pv.run=smp-bench" >/dev/null
        grep -q "SMP-BENCH mismatch" "$log" && fail "$1 --cpus $2: the two processes disagree"
        awk '/^SMP-BENCH [0-9]/ { print $2 }' "$log"
    done | median
}
printf "\n%-26s %10s %10s %10s\n" "parallel workload (ms)" "1 vCPU" "2 vCPUs" "speed-up"
for engine in ours qemu; do
    one=$(workload "$engine" 1)
    two=$(workload "$engine" 2)
    awk -v n="$engine" -v a="$one" -v b="$two" \
        'BEGIN { printf "%-26s %10d %10d %9.2fx\n", n, a, b, a / b }'
done
echo "(median of $runs; boot = launch to the guest's ready marker; workload = two md5sum processes at once, twice, timed in the guest)"
