# Snapshots across backends, in a phone: VM "open" counts under KVM
# (scripts/linux/snapshot.sh writes and syncs a file per count). It is
# paused, snapshotted and stopped; the snapshot then continues as a clone
# under KVM (whose own snapshot continues under KVM again), and as a clone
# on the software CPU; that clone is snapshotted in turn and continues
# under KVM again. Each clone must continue the
# count (no reboot) and keep counting.
. /phone-lib.sh
report() {
    echo "CLONE $1 first $(counts "$1" | head -1) last $(last "$1") boots $(grep -c POCKETVISOR-GUEST-READY "$st/vms/$1/console.log")"
    echo "SEQ $1 $(counts "$1" | tr '\n' ' ')"
}

start_phone 800M || exit 1
wait_count open 20 120 || exit 1
freeze open /tmp/snap-kvm || exit 1
n=$(last open)
phone restore /tmp/snap-kvm --as kvmclone --copy-disks || exit 1
wait_count kvmclone $((n + 20)) 120 || exit 1
report kvmclone
# A restored KVM VM snapshotted in turn continues under KVM again.
freeze kvmclone /tmp/snap-kvm2 || exit 1
k=$(last kvmclone)
phone restore /tmp/snap-kvm2 --as kvm2 --copy-disks || exit 1
wait_count kvm2 $((k + 10)) 120 || exit 1
report kvm2
phone stop kvm2
phone restore /tmp/snap-kvm --as softclone --copy-disks --accel soft || exit 1
wait_count softclone $((n + 5)) 300 || exit 1
report softclone
freeze softclone /tmp/snap-soft || exit 1
m=$(last softclone)
phone restore /tmp/snap-soft --as back --copy-disks --accel kvm || exit 1
wait_count back $((m + 20)) 120 || exit 1
report back
grep "vCPUs on" "$st/phone.log"
pocketvisor phone down --phone "$st"
