#!/usr/bin/env bash
# Snapshot and image benchmark: a phone with one open VM (256M, Debian's 6.1
# cloud kernel with the test initramfs, at its shell, a 64 MiB disk),
# against qemu-system-aarch64 with the same guest in the same run.
#   1. phone snapshot: how long the guest is paused, state and RAM bytes
#      written (median of ROUNDS) vs QEMU `migrate` to a file, VM stopped.
#   2. phone restore: from the command to the VM running again, vs a new
#      QEMU with -incoming from that file until it is ready to run.
#   3. image export (recipient key) and import into a second phone: MB/s of
#      VM data (kernel, initrd, RAM, disk), image size. QEMU has no
#      equivalent.
# Usage: bench/image.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds="${1:-3}"
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
pv=$root/target/release/pocketvisor
guest=$root/guests/cache/linux
cmdline="console=ttyAMA0 quiet cryptomgr.notests"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

out=$(mktemp -d /tmp/pvb.XXXXXX)
qemu_pid=""
cleanup() {
    for d in "$out"/a "$out"/b; do
        [ -S "$d/api.sock" ] && timeout 60 "$pv" phone down --phone "$d" >/dev/null 2>&1
    done
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms_since() { echo "($(date +%s%N) - $1) / 1000000" | bc; }

truncate -s 64M "$out/disk.img" "$out/qdisk.img"
phone_toml() {
    cat >"$out/$1.toml" <<TOML
[phone]
name = "$1"
state_dir = "$1"
memory = "512M"

[[vm]]
name = "$2"
role = "open"
kernel = "$guest/Image"
initrd = "$guest/initramfs.cpio.gz"
cmdline = "$cmdline"
mem = "256M"
disks = ["disk.img"]
TOML
}
phone_toml a personal
phone_toml b home
"$pv" phone up --detach "$out/a.toml" >/dev/null
wait_for "$out/a/vms/personal/console.log" "Pocketvisor guest shell" 120
sleep 1

echo "image bench: phone snapshot and restore x$rounds" >&2
paused=() restored=()
for r in $(seq "$rounds"); do
    line=$("$pv" phone snapshot personal --phone "$out/a" --out "$out/snap$r")
    paused+=("$(echo "$line" | sed -n 's/.*paused \([0-9]*\) ms.*/\1/p')")
    state_bytes=$(echo "$line" | sed -n 's/.*: \([0-9]*\) bytes of state.*/\1/p')
    ram_bytes=$(echo "$line" | sed -n 's/.*, \([0-9]*\) bytes of RAM.*/\1/p')
    "$pv" phone stop personal --phone "$out/a"
    start=$(date +%s%N)
    "$pv" phone restore "$out/snap$r" --phone "$out/a" >/dev/null
    until "$pv" phone status --phone "$out/a" --json | grep -q '"state":"running"'; do sleep 0.002; done
    restored+=("$(ms_since "$start")")
done

echo "image bench: QEMU migrate to file and -incoming x$rounds" >&2
qemu() {
    qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a53 -m 256M -nographic -nic none \
        -kernel "$guest/Image" -initrd "$guest/initramfs.cpio.gz" -append "$cmdline" \
        -drive "file=$out/qdisk.img,format=raw,if=none,id=d0" -device virtio-blk-device,drive=d0 \
        -serial "file:$out/qconsole" -monitor none -qmp "unix:$out/qmp,server=on,wait=off" "$@" \
        </dev/null >/dev/null 2>&1 &
    qemu_pid=$!
}
q_save=() q_restore=()
for _ in $(seq "$rounds"); do
    rm -f "$out/qconsole"
    qemu
    wait_for "$out/qconsole" "Pocketvisor guest shell" 120
    sleep 1
    reply=$(qmp "$out/qmp" '{"execute":"stop"}' \
        "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"exec:cat > $out/qstate\"}}" wait-migrated | tail -1)
    q_save+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["total-time"])' "$reply")")
    kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true
    start=$(date +%s%N)
    qemu -S -incoming "exec:cat $out/qstate"
    qmp "$out/qmp" wait-incoming >/dev/null
    q_restore+=("$(ms_since "$start")")
    kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=""
done
q_size=$(stat -c %s "$out/qstate")

echo "image bench: export and import" >&2
"$pv" phone up --detach "$out/b.toml" >/dev/null
key=$("$pv" phone identity --recipient --phone "$out/b")
"$pv" phone identity --phone "$out/a" >"$out/a.key"
start=$(date +%s%N)
export_line=$("$pv" image export personal --phone "$out/a" --out "$out/p.pvi" --recipient "$key")
export_ms=$(ms_since "$start")
data=$(echo "$export_line" | sed -n 's/.*bytes for \([0-9]*\) bytes of VM files.*/\1/p')
size=$(stat -c %s "$out/p.pvi")
start=$(date +%s%N)
"$pv" image import "$out/p.pvi" --phone "$out/b" --trust-signer "$out/a.key" >/dev/null
import_ms=$(ms_since "$start")

p_pause=$(median "${paused[@]}"); p_restore=$(median "${restored[@]}")
q_pause=$(median "${q_save[@]}"); q_rest=$(median "${q_restore[@]}")
printf '\n%-46s %12s %12s %8s\n' "256 MiB guest at its shell (median of $rounds)" "pocketvisor" "QEMU" "ratio"
printf '%-46s %12s %12s %7.2fx\n' "snapshot: guest paused (ms)" "$p_pause" "$q_pause" "$(echo "$p_pause / $q_pause" | bc -l)"
printf '%-46s %12s %12s\n' "snapshot: bytes written (state + RAM data)" "$((state_bytes + ram_bytes))" "$q_size"
printf '%-46s %12s %12s %7.2fx\n' "restore: command to running (ms)" "$p_restore" "$q_rest" "$(echo "$p_restore / $q_rest" | bc -l)"
printf '%-46s %12s\n' "export: VM files (bytes)" "$data"
printf '%-46s %12s\n' "export: image (bytes)" "$size"
printf '%-46s %12.1f\n' "export: MB/s of VM files" "$(echo "$data / $export_ms / 1000" | bc -l)"
printf '%-46s %12.1f\n' "import (verify, then write): MB/s of VM files" "$(echo "$data / $import_ms / 1000" | bc -l)"
