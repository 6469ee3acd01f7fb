# Sourced by the phone scenarios (/phone-lib.sh in the emulated host): a
# phone in /tmp/phone whose one VM, "open", counts under KVM
# (scripts/linux/snapshot.sh on a copy of the test disk), and `phone`, the
# phone CLI aimed at it. `start_phone MEMORY [SCRIPT [LINE]]` writes the
# manifest and starts it: the guest runs scripts/linux/SCRIPT.sh (default
# snapshot), and LINE (e.g. "cpus = 2") is added to the VM's table.
# `wait_count VM N SECONDS` waits for a counting guest to reach N, and
# `freeze VM DIR` pauses, snapshots and stops it.
st=/tmp/phone
phone() { pocketvisor phone "$@" --phone "$st"; }
start_phone() {
    cp /guest/disk.img /tmp/disk.img
    cat > /tmp/phone.toml <<EOT
[phone]
name = "nested"
state_dir = "$st"
memory = "$1"
background_cpu = 100

[[vm]]
name = "open"
role = "open"
kernel = "/guest/Image"
initrd = "/guest/initramfs.cpio.gz"
cmdline = "console=ttyAMA0 quiet cryptomgr.notests pv.run=${2:-snapshot}"
mem = "160M"
disks = ["/tmp/disk.img"]
accel = "kvm"
${3:-}
EOT
    pocketvisor phone up --detach /tmp/phone.toml
}

# The counts VM $1 has printed ("COUNT n ..." lines), and the last of them.
counts() { sed -n 's/^COUNT \([0-9]*\) .*/\1/p' "$st/vms/$1/console.log" 2>/dev/null; }
last() { counts "$1" | tail -1 | tr -cd '0-9'; }
# Waits until VM $1 has counted to $2 (at most $3 seconds). The count is
# read once per round: reading it twice raced a console log that was
# still empty on the first read.
wait_count() {
    t=0
    n=$(last "$1")
    while [ -z "$n" ] || [ "$n" -lt "$2" ]; do
        t=$((t + 1))
        [ $t -lt $(($3 * 2)) ] || { echo "TIMEOUT $1 at $n (wanted $2)"; diagnose "$1"; return 1; }
        sleep 0.5
        n=$(last "$1")
    done
    echo "REACHED $1 $n"
}
diagnose() {
    pocketvisor phone status --phone "$st"
    sed 's/^/LOG /' "$st/phone.log"
    tail -20 "$st/vms/$1/console.log" | sed "s/^/$1 /"
}
# Pause, snapshot into $2, stop: the disk stays as the snapshot saw it.
freeze() {
    phone pause "$1" && phone snapshot --out "$2" "$1" && echo "SNAP $1 $(last "$1")" && phone stop "$1"
}
