#!/usr/bin/env bash
# CPU benchmark: the same static aarch64 program (guests/c/cpubench.c, gcc -O2) under
# Pocketvisor's CPU (a64-run), under qemu-aarch64 and natively on the host, in one run.
# Prints wall times (best of N), the ratios ours/QEMU and ours/native, and our guest MIPS.
# Usage: bench/cpu.sh [RUNS] [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
scale="${2:-1}"
out=guests/cache/bench
mkdir -p "$out"
aarch64-linux-gnu-gcc -static -O2 -o "$out/cpubench-aarch64" guests/c/cpubench.c
cc -O2 -o "$out/cpubench-native" guests/c/cpubench.c
cargo build --release -q -p a64-run
ours=target/release/a64-run
qemu_cpu="cortex-a72" # no pointer authentication to slow QEMU down

best() { # best wall time in seconds of "$@", output to $out/last.out
    local best=""
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s.%N)
        "$@" >"$out/last.out" 2>"$out/last.err"
        t1=$(date +%s.%N)
        best=$(echo "$t0 $t1 $best" | awk '{ d = $2 - $1; if ($3 == "" || d < $3) print d; else print $3 }')
    done
    echo "$best"
}

t_native=$(best "$out/cpubench-native" "$scale"); cp "$out/last.out" "$out/native.out"
t_qemu=$(best qemu-aarch64 -cpu "$qemu_cpu" "$out/cpubench-aarch64" "$scale"); cp "$out/last.out" "$out/qemu.out"
t_ours=$(best "$ours" --stats "$out/cpubench-aarch64" "$scale"); cp "$out/last.out" "$out/ours.out"
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
