#!/usr/bin/env bash
# CPU benchmark: the same static aarch64 program (guests/c/cpubench.c, gcc -O2) under
# Pocketvisor's CPU (a64-run), under qemu-aarch64 and natively on the host, in one run.
# Prints wall times (best of N, the engines taking turns), the ratios ours/QEMU and ours/native, and our guest MIPS.
# Usage: bench/cpu.sh [RUNS] [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
scale="${2:-1}"
out=guests/cache/bench
mkdir -p "$out"
aarch64-linux-gnu-gcc -static -O2 -o "$out/cpubench-aarch64" guests/c/cpubench.c
cc -O2 -o "$out/cpubench-native" guests/c/cpubench.c
cargo build --release -q -p a64-run
ours=target/release/a64-run
qemu_cpu="cortex-a72" # no pointer authentication to slow QEMU down

# One timed run of "$@" in seconds; its output goes to $out/last.out and .err.
timed() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$out/last.out" 2>"$out/last.err"
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{ print $2 - $1 }'
}
min() { echo "$1 $2" | awk '{ if ($2 == "" || $1 < $2) print $1; else print $2 }'; }

# The engines take turns, so a slow spell of the host falls on all of them alike.
t_native="" t_qemu="" t_ours=""
for _ in $(seq "$runs"); do
    t_native=$(min "$(timed "$out/cpubench-native" "$scale")" "$t_native")
    cp "$out/last.out" "$out/native.out"
    t_qemu=$(min "$(timed qemu-aarch64 -cpu "$qemu_cpu" "$out/cpubench-aarch64" "$scale")" "$t_qemu")
    cp "$out/last.out" "$out/qemu.out"
    t_ours=$(min "$(timed "$ours" --stats "$out/cpubench-aarch64" "$scale")" "$t_ours")
    cp "$out/last.out" "$out/ours.out"
done
stats=$(cat "$out/last.err")

if ! cmp -s "$out/ours.out" "$out/qemu.out" || ! cmp -s "$out/ours.out" "$out/native.out"; then
    echo "bench: checksums differ between ours, QEMU and native" >&2
    diff "$out/ours.out" "$out/qemu.out" >&2 || true
    exit 1
fi
insns=$(echo "$stats" | awk '{ print $2 }')
awk -v n="$t_native" -v q="$t_qemu" -v o="$t_ours" -v i="$insns" 'BEGIN {
    printf "cpubench (checksums agree)\n"
    printf "  native x86-64      %8.3f s\n", n
    printf "  qemu-aarch64       %8.3f s\n", q
    printf "  pocketvisor a64    %8.3f s   %d guest instructions, %.1f MIPS\n", o, i, i / o / 1e6
    printf "  ours/QEMU   %6.2fx\n", o / q
    printf "  ours/native %6.2fx\n", o / n
}'
