# Live migration under KVM: on phone A, VM "open" rewrites and checks
# 32 MiB of its memory at 16 MiB/s (memcheck, scripts/linux/memload.sh)
# under KVM. It moves live to phone B in the same host, under KVM there
# too, and its checker keeps passing on B: a page KVM's dirty log missed
# would be a mismatch. A stays with the VM stopped, "migrated".
manifest() { # NAME STATE_DIR VM AUTOSTART
    cat > "/tmp/$1.toml" <<EOT
[phone]
name = "$1"
state_dir = "$2"
memory = "400M"

[[vm]]
name = "$3"
role = "open"
kernel = "/guest/Image"
initrd = "/guest/initramfs.cpio.gz"
cmdline = "console=ttyAMA0 quiet cryptomgr.notests pv.run=memload"
mem = "160M"
accel = "kvm"
autostart = $4
EOT
}
passes() { cat "$1/vms/open/console.log" 2>/dev/null | grep -c "MEMCHECK pass"; }
numbers() { sed -n 's/.*MEMCHECK pass \([0-9]*\).*/\1/p' "$1/vms/open/console.log"; }
# Waits until phone $1's VM has passed $2 times (at most $3 seconds).
wait_passes() {
    t=0
    while [ "$(passes "$1")" -lt "$2" ]; do
        t=$((t + 1))
        [ $t -lt $(($3 * 2)) ] || { echo "TIMEOUT at $(passes "$1") passes"; tail -5 "$1/vms/open/console.log"; return 1; }
        sleep 0.5
    done
}
manifest a /tmp/a open true
# B's own VM stays stopped (the emulated host has two cores).
manifest b /tmp/b home false
pocketvisor phone up --detach /tmp/a.toml || exit 1
pocketvisor phone up --detach /tmp/b.toml || exit 1
pocketvisor phone identity --phone /tmp/a > /tmp/a.key || exit 1
pocketvisor phone identity --phone /tmp/b > /tmp/b.key || exit 1
wait_passes /tmp/a 3 180 || exit 1
pocketvisor phone receive --phone /tmp/b --listen 127.0.0.1:7070 --source-key /tmp/a.key --quiet &
receiver=$!
sleep 1
echo "PASSES-ON-A $(passes /tmp/a)"
pocketvisor phone migrate open --phone /tmp/a --to 127.0.0.1:7070 --target-key /tmp/b.key --quiet || exit 1
wait "$receiver" || exit 1
wait_passes /tmp/b 4 120 || exit 1
echo "PASSES-ON-B $(passes /tmp/b) last on A $(numbers /tmp/a | tail -1) first on B $(numbers /tmp/b | head -1)"
grep -h "MEMCHECK MISMATCH" /tmp/a/vms/open/console.log /tmp/b/vms/open/console.log
grep -c "POCKETVISOR-GUEST-READY\|MEMLOAD" /tmp/b/vms/open/console.log | sed 's/^/BOOTS-ON-B /'
pocketvisor phone status --phone /tmp/a | grep " open " | sed 's/^/A-STATUS /'
grep "VM open: migrated to" /tmp/a/phone.log | sed 's/^/A-LOG /'
grep "vCPUs on" /tmp/b/phone.log
pocketvisor phone down --phone /tmp/a
pocketvisor phone down --phone /tmp/b
