#!/usr/bin/env bash
# Boot benchmark: Debian's arm64 6.1 cloud kernel + the project's busybox
# initramfs, booted to the POCKETVISOR-GUEST-READY marker and powered off,
# under `pocketvisor run` and under qemu-system-aarch64 -M virt -cpu cortex-a53
# in the same run, with the same kernel, initramfs, memory and command line.
# Prints boot-to-marker wall time and peak RSS for each, and ours/QEMU ratios,
# for the full boot and for one without the kernel's crypto self-tests.
# Usage: bench/boot.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
kernel=guests/cache/linux/Image
initrd=guests/cache/linux/initramfs.cpio.gz
out=guests/cache/bench
mkdir -p "$out"

# measure CMDLINE ENGINE -> "seconds-to-marker peak-rss-kib"
measure() {
    local cmdline="$1" engine="$2" log="$out/boot-$2.log"
    local start pid marker_t="" hwm=0
    start=$(date +%s.%N)
    if [ "$engine" = qemu ]; then
        qemu-system-aarch64 -M virt -cpu cortex-a53 -m 256M -smp 1 -nographic -nic none \
            -kernel "$kernel" -initrd "$initrd" -append "$cmdline" </dev/null >"$log" 2>&1 &
    else
        target/release/pocketvisor run --mem 256M --kernel "$kernel" --initrd "$initrd" \
            --cmdline "$cmdline" </dev/null >"$log" 2>&1 &
    fi
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        local h
        h=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
        if [ -z "$marker_t" ] && grep -q POCKETVISOR-GUEST-READY "$log" 2>/dev/null; then
            marker_t=$(date +%s.%N)
        fi
        sleep 0.01
    done
    wait "$pid" || true
    if [ -z "$marker_t" ]; then
        echo "bench: $engine did not reach the marker; see $log" >&2
        echo "nan $hwm"
        return
    fi
    echo "$(echo "$start $marker_t" | awk '{ printf "%.2f", $2 - $1 }') $hwm"
}

best() { # best of $runs: "time rss"
    local bt="" br=""
    for _ in $(seq "$runs"); do
        read -r t r < <(measure "$1" "$2")
        bt=$(echo "$t $bt" | awk '{ if ($2 == "" || $1 < $2) print $1; else print $2 }')
        br=$(echo "$r $br" | awk '{ if ($2 == "" || $1 < $2) print $1; else print $2 }')
    done
    echo "$bt $br"
}

printf "%-28s %10s %12s %10s %12s %8s %8s\n" "boot" "ours s" "ours MiB" "qemu s" "qemu MiB" "time x" "rss x"
for variant in "full:console=ttyAMA0 pv.run=poweroff" \
               "no-selftests:console=ttyAMA0 pv.run=poweroff cryptomgr.notests"; do
    name="${variant%%:*}"
    cmdline="${variant#*:}"
    read -r ot orss < <(best "$cmdline" ours)
    read -r qt qrss < <(best "$cmdline" qemu)
    awk -v n="$name" -v ot="$ot" -v or="$orss" -v qt="$qt" -v qr="$qrss" 'BEGIN {
        printf "%-28s %10.2f %12.1f %10.2f %12.1f %8.2f %8.2f\n", n, ot, or / 1024, qt, qr / 1024, ot / qt, or / qr }'
done
echo "(best of $runs; time = launch to the guest's ready marker; RSS = peak resident set of the VMM process)"
