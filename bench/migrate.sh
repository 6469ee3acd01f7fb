#!/usr/bin/env bash
# Live migration benchmark: a 256 MiB guest (Debian's 6.1 cloud kernel with
# the test initramfs, no disk) moved between two phones on this machine over
# loopback, ROUNDS times, against two qemu-system-aarch64
# processes doing `migrate` to `-incoming tcp:` with the same guest in the
# same run. Both aim at their default downtime (300 ms).
#   idle: the guest at its shell.
#   load: the guest rewriting (and checking) 32 MiB at 16 MiB/s (memcheck).
# Prints total time, downtime and the RAM bytes sent, medians. Downtime as
# QEMU reports it (its `downtime`: the source's stop to the last byte sent)
# side by side with ours measured the same way; and ours from the pause to
# the target's word that the guest runs there (QEMU reports no such figure).
# The QEMU qemu-system-aarch64 (apt install qemu-system-arm) must be there.
# Usage: bench/migrate.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds="${1:-3}"
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor
pv=$root/target/release/pocketvisor
guest=$root/guests/cache/linux
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

out=$(mktemp -d /tmp/pvb.XXXXXX)
pids=()
cleanup() {
    for d in "$out"/a "$out"/b; do
        [ -S "$d/api.sock" ] && timeout 60 "$pv" phone down --phone "$d" >/dev/null 2>&1
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$out"
}
trap cleanup EXIT
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# phone_toml NAME VM AUTOSTART CMDLINE
phone_toml() {
    cat >"$out/$1.toml" <<TOML
[phone]
name = "$1"
state_dir = "$1"
memory = "1G"

[[vm]]
name = "$2"
role = "open"
kernel = "$guest/Image"
initrd = "$guest/initramfs.cpio.gz"
cmdline = "$4"
mem = "256M"
autostart = $3
TOML
}

# ours SCENARIO CMDLINE READY: appends "total downtime MB" lines to $out/ours-SCENARIO.
# Each round brings up phone a with the VM and an empty phone b, and moves it a -> b.
ours() {
    for _ in $(seq "$rounds"); do
        rm -rf "$out/a" "$out/b"
        phone_toml a mig true "$2"
        phone_toml b idle false "$2"
        "$pv" phone up --detach "$out/a.toml" >/dev/null
        "$pv" phone up --detach "$out/b.toml" >/dev/null
        wait_for "$out/a/vms/mig/console.log" "$3" 120
        sleep 1
        "$pv" phone identity --phone "$out/a" >"$out/a.key"
        "$pv" phone identity --phone "$out/b" >"$out/b.key"
        "$pv" phone receive --phone "$out/b" --listen 127.0.0.1:0 --source-key "$out/a.key" \
            --quiet 2>"$out/listen" >/dev/null &
        local rpid=$!
        until grep -q "listening on" "$out/listen" 2>/dev/null; do sleep 0.01; done
        local addr
        addr=$(sed -n 's/listening on \([^ ]*\).*/\1/p' "$out/listen")
        line=$("$pv" phone migrate mig --phone "$out/a" --to "$addr" --target-key "$out/b.key" --quiet)
        wait "$rpid"
        echo "$line" | sed -n 's/.*: \([0-9.]*\) MB of RAM in .* downtime \([0-9.]*\) ms (stop-and-copy \([0-9.]*\) ms), total \([0-9.]*\) ms/\4 \3 \1 \2/p' \
            >>"$out/ours-$1"
        # The guest goes on at b (its memory check too, under load).
        sleep 2
        if grep -aq MISMATCH "$out/b/vms/mig/console.log"; then
            fail "the guest's memory check failed after a migration"
        fi
        "$pv" phone down --phone "$out/a" >/dev/null
        "$pv" phone down --phone "$out/b" >/dev/null
    done
}

# qemu_run SCENARIO CMDLINE READY: appends "total downtime bytes" lines to $out/qemu-SCENARIO.
qemu_run() {
    for r in $(seq "$rounds"); do
        local port=$((47000 + RANDOM % 10000))
        q() {
            qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a53 -m 256M -nographic -nic none \
                -kernel "$guest/Image" -initrd "$guest/initramfs.cpio.gz" -append "$2" \
                -serial "file:$out/q$1.console" -monitor none -qmp "unix:$out/q$1.qmp,server=on,wait=off" \
                "${@:3}" </dev/null >/dev/null 2>&1 &
            pids+=($!)
        }
        rm -f "$out"/qsrc.* "$out"/qdst.*
        q src "$2"
        wait_for "$out/qsrc.console" "$3" 120
        sleep 1
        q dst "$2" -incoming "tcp:127.0.0.1:$port"
        sleep 0.5
        reply=$(qmp "$out/qsrc.qmp" \
            "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" wait-migrated | tail -1)
        python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["total-time"], r.get("downtime", 0), r["ram"]["transferred"]/1e6, "-")' \
            "$reply" >>"$out/qemu-$1"
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        pids=()
    done
}

base="console=ttyAMA0 quiet cryptomgr.notests"
echo "migrate bench: ours, idle x$rounds" >&2
ours idle "$base" "Pocketvisor guest shell"
echo "migrate bench: ours, load x$rounds" >&2
ours load "$base pv.run=memload" "MEMCHECK pass 1"
echo "migrate bench: QEMU, idle x$rounds" >&2
qemu_run idle "$base" "Pocketvisor guest shell"
echo "migrate bench: QEMU, load x$rounds" >&2
qemu_run load "$base pv.run=memload" "MEMCHECK pass 1"

col() { median $(awk -v c="$2" '{print $c}' "$out/$1"); }
printf '\n%-48s %12s %12s %8s\n' "256 MiB guest, loopback (median of $rounds)" "pocketvisor" "QEMU" "ratio"
for s in idle load; do
    for m in "total time (ms):1" "downtime, pause to last byte sent (ms):2" "RAM sent (MB):3"; do
        name=${m%:*} c=${m##*:}
        o=$(col "ours-$s" "$c") q=$(col "qemu-$s" "$c")
        printf '%-48s %12s %12s %7.2fx\n' "$s: $name" "$o" "$q" "$(echo "$o / $q" | bc -l)"
    done
    printf '%-48s %12s %12s\n' "$s: downtime, pause to running at the target (ms)" "$(col "ours-$s" 4)" "n/a"
done
