#!/usr/bin/env bash
# Timer benchmark: how long after its deadline a guest's virtual-timer
# interrupt handler runs while the guest is busy in plain code, ours and
# qemu-system-aarch64 (-M virt,gic-version=3 -cpu cortex-a53) in the same
# run, with the same bare-metal guest (guests/baremetal, hostile=timer: 64
# one-millisecond timers, latency = handler's counter - CVAL). Also prints
# how often an interrupt was already taken when the guest saw ISTATUS = 1
# (must be 100/100). Usage: bench/timer.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
cargo build --release -q -p pocketvisor
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
guests/baremetal/build.sh "$out" >/dev/null
img="$out/hostile.img"

# run ENGINE -> the guest's "HOSTILE timer ..." line
run() {
    if [ "$1" = qemu ]; then
        qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a53 -m 128M -nographic -nic none \
            -kernel "$img" -append hostile=timer </dev/null 2>&1
    else
        target/release/pocketvisor run --mem 128M --kernel "$img" --cmdline hostile=timer </dev/null 2>&1
    fi | tr -d '\r' | grep -a '^HOSTILE timer'
}

field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p"; }

declare -A p50 p99
for engine in ours qemu; do p50[$engine]=""; p99[$engine]=""; done
for ((i = 0; i < runs; i++)); do
    for engine in ours qemu; do   # take turns: the host's load drifts
        line="$(run "$engine")"
        echo "$engine: $line"
        p50[$engine]+="$(echo "$line" | field p50) "
        p99[$engine]+="$(echo "$line" | field p99) "
    done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
o50=$(echo "${p50[ours]}" | median); q50=$(echo "${p50[qemu]}" | median)
o99=$(echo "${p99[ours]}" | median); q99=$(echo "${p99[qemu]}" | median)
printf 'timer latency (median of %d runs)   ours us   qemu us   ours/qemu\n' "$runs"
printf 'p50                                  %7s   %7s   %9s\n' "$o50" "$q50" "$(awk "BEGIN {printf \"%.2f\", $o50 / $q50}")"
printf 'p99                                  %7s   %7s   %9s\n' "$o99" "$q99" "$(awk "BEGIN {printf \"%.2f\", $o99 / $q99}")"
