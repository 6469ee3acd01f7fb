#!/usr/bin/env bash
# KVM backend benchmark, inside an emulated ARM64 host (QEMU -M
# virt,virtualization=on, a Cortex-A72 with Debian 12's 6.12 kernel): boot
# to the guest's ready marker and a CPU-bound guest job (md5 of 16 MiB) with
# `--accel kvm` against `--accel soft`, three runs each, the same guest.
# Both run under QEMU's emulation here, so only the ratios mean anything:
# on real ARM hardware the KVM path runs at native speed.
# The QEMU qemu-system-aarch64 (apt install qemu-system-arm) must be there.
# Usage: bench/kvm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
guests/fetch-linux-guests.sh >/dev/null
guests/build-kvm-host.sh >/dev/null
cache=guests/cache
out=$(mktemp /tmp/pvb.XXXXXX)
trap 'rm -f "$out"' EXIT
timeout 1800 qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a72 -m 1G -smp 2 \
    -nographic -nodefaults -serial stdio -no-reboot -kernel "$cache/kvm-host/Image-6.12" \
    -initrd "$cache/kvm-host/initramfs.cpio" -append "console=ttyAMA0 quiet pvhost.run=bench" \
    </dev/null >"$out" 2>&1
grep '^BENCH' "$out" || { echo "kvm bench: no results:"; cat "$out"; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for what in ready_ms cpu_ms; do
    kvm=$(awk -v w=$what '$2=="kvm" {for(i=1;i<NF;i++) if($i==w) print $(i+1)}' "$out" | median)
    soft=$(awk -v w=$what '$2=="soft" {for(i=1;i<NF;i++) if($i==w) print $(i+1)}' "$out" | median)
    echo "$what (median of 3): kvm $kvm, soft $soft, soft/kvm $(awk -v a="$soft" -v b="$kvm" 'BEGIN {printf "%.2f", a / b}')"
done
