#!/usr/bin/env bash
# Trusted-services benchmark: a phone of two open VMs (personal and other,
# 192M each, the test initramfs) and a trusted VM (keys, 128M, pv-trustd as
# /init of the trusted initramfs, a data disk), Debian's 6.1 cloud kernel.
#   1. trusted VM boot: from `phone up` to keys' `pv-trustd: starting` (its
#      /init runs) and to PV-TRUSTD-READY (modules loaded, trust device
#      answering, services listening); QEMU (-M virt -cpu cortex-a53) boots
#      the same kernel, trusted initramfs and command line to
#      `pv-trustd: starting` in the same run (it has no trust device, so
#      it goes no further).
#   2. from an open VM (guests/scripts/linux/trusted-bench.sh, pv-trust):
#      evidence round trip, auth sign and billing charge latency p50/p99,
#      requests on one vsock stream over the phone's channel, calm and while
#      the personal VM floods the billing port with garbage connections
#      (trusted-flood.sh; the phone lets through 50 new streams a second per
#      VM pair). Goal: p99 under flood <= 2x the calm p99. Then the same with
#      the client in the flooding VM itself, where the flood also takes the
#      client's own vCPU.
# Usage: bench/trusted.sh     (env: BENCH_N=200)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
n=${BENCH_N:-200}
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
pv=$root/target/release/pocketvisor
kernel=$root/guests/cache/linux/Image
cmdline="console=ttyAMA0 quiet cryptomgr.notests"

work=$(mktemp -d /tmp/pvb.XXXXXX)
qemu_pid=""
cleanup() {
    for d in "$work"/a "$work"/b; do [ -S "$d/api.sock" ] && timeout 60 "$pv" phone down --phone "$d" >/dev/null 2>&1; done; true
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
elapsed() { echo "$2 - $1" | bc; }

echo "trusted bench: QEMU boot to pv-trustd" >&2
start=$(now)
qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 1 -m 128M -nographic -nic none \
    -kernel "$kernel" -initrd guests/cache/linux/trusted-initramfs.cpio.gz -append "$cmdline" \
    </dev/null >"$work/qemu.log" 2>&1 &
qemu_pid=$!
wait_for "$work/qemu.log" "pv-trustd: starting" 120
q_init=$(elapsed "$start" "$(now)")
kill "$qemu_pid"; wait "$qemu_pid" 2>/dev/null || true; qemu_pid=""

truncate -s 1M "$work/keys.img"
# phone_toml FILE CLIENT_EXTRA: personal (CID 3) floods or benches, other
# (CID 5) benches, keys is CID 4.
phone_toml() {
    cat >"$1" <<TOML
[phone]
name = "trusted-bench"
state_dir = "$2"
memory = "768M"
background_cpu = 100

[[vm]]
name = "personal"
role = "open"
kernel = "$kernel"
initrd = "$root/guests/cache/linux/initramfs.cpio.gz"
cmdline = "$cmdline $3"
mem = "192M"
restart = "never"
foreground = true

[[vm]]
name = "keys"
role = "trusted"
kernel = "$kernel"
initrd = "$root/guests/cache/linux/trusted-initramfs.cpio.gz"
cmdline = "$cmdline"
mem = "128M"
rng = true
disks = ["keys.img"]

[[vm]]
name = "other"
role = "open"
kernel = "$kernel"
initrd = "$root/guests/cache/linux/initramfs.cpio.gz"
cmdline = "$cmdline $4"
mem = "192M"
restart = "never"
autostart = $5

[[channel]]
from = "other"
to = "personal"
port = 6000
TOML
    for from in personal other; do
        for port in 5000 5001 5002 5003; do
            printf '[[channel]]\nfrom = "%s"\nto = "keys"\nport = %s\n' "$from" "$port" >>"$1"
        done
    done
}

# run STATE CLIENT_VM: brings a phone up, waits for the client's benchmark.
run() {
    echo "trusted bench: phone up ($2 measures)" >&2
    start=$(now)
    "$pv" phone up --detach "$work/phone-$1.toml" >/dev/null
    keys_log=$work/$1/vms/keys/console.log
    wait_for "$keys_log" "pv-trustd: starting" 120
    p_init=$(elapsed "$start" "$(now)")
    wait_for "$keys_log" "PV-TRUSTD-READY" 120
    p_ready=$(elapsed "$start" "$(now)")
    if [ -n "${PV_BENCH_TOP:-}" ]; then wait_for "$work/$1/vms/$2/console.log" "FLOODED BENCH attest" 900; top -H -b -n 1 -d 3 | head -30 >&2; fi
    wait_for "$work/$1/vms/$2/console.log" "TRUSTED-BENCH done" 900
    "$pv" phone down --phone "$work/$1" >/dev/null
}

bench="pv.run=trusted-bench pv.keys_cid=4 pv.bench_n=$n"
phone_toml "$work/phone-a.toml" a "pv.run=trusted-flood pv.keys_cid=4" "$bench pv.flood_cid=3" true
run a other
boot_init=$p_init; boot_ready=$p_ready
phone_toml "$work/phone-b.toml" b "$bench" "" false
run b personal

field() { { grep -a "^$2 BENCH $3 " "$work/$1" || true; } | tail -1 | sed -n "s/.*$4=\([0-9]*\).*/\1/p"; }
printf '\n%-44s %10s %10s %8s\n' "trusted VM boot (s)" "pocketvisor" "QEMU" "ratio"
printf '%-44s %10.2f %10.2f %7.2fx\n' "to its /init (pv-trustd: starting)" "$boot_init" "$q_init" "$(echo "$boot_init / $q_init" | bc -l)"
printf '%-44s %10.2f %10s\n' "to services ready (PV-TRUSTD-READY)" "$boot_ready" "-"
for case in "a/vms/other/console.log another VM" "b/vms/personal/console.log the flooding VM itself"; do
    log=${case%% *}; who=${case#* }
    printf '\nclient in %s (us, n=%s)\n' "$who" "$n"
    printf '%-10s %9s %9s %11s %11s %10s\n' "" "calm p50" "calm p99" "flood p50" "flood p99" "p99 ratio"
    for op in attest sign charge; do
        c50=$(field "$log" CALM "$op" p50_us); c99=$(field "$log" CALM "$op" p99_us)
        f50=$(field "$log" FLOODED "$op" p50_us); f99=$(field "$log" FLOODED "$op" p99_us)
        if [ -z "$c99" ] || [ -z "$f99" ]; then
            why=$(grep -a "^FLOODED ERROR\|^CALM ERROR" "$work/$log" | tail -1)
            case "$why" in
                *"Connection reset"*) why="refused: the flood uses up this VM's new streams to keys (the phone's per-pair limit)" ;;
            esac
            printf '%-10s %s\n' "$op" "$why"
            continue
        fi
        printf '%-10s %9s %9s %11s %11s %9.2fx\n' "$op" "$c50" "$c99" "$f50" "$f99" "$(echo "$f99 / $c99" | bc -l)"
    done
done
echo "(goal: flood p99 <= 2x calm p99 for a client outside the flooding VM)"
