# SMP under KVM. First one VM with 2 vCPUs (scripts/linux/smp.sh: both
# online, hotplug, exact atomics; no litmus tests: under KVM here they run
# on QEMU's emulated CPU, whose memory model they would test, not ours). Then a phone whose VM has
# 2 vCPUs under KVM, the second offline (scripts/linux/smp-snapshot.sh),
# snapshotted and restored as a clone on the software CPU and as a clone
# under KVM; the software clone is snapshotted in turn (CPU still offline)
# and that snapshot restored under KVM. Each clone continues the count with
# the CPU offline; the KVM clones bring it back online at count 40. (The
# software CPU inside an emulated host is too slow for Linux's 5 s wait for
# a CPU coming online; crates/pocketvisor/tests/phone_smp.rs covers that.)
pocketvisor run --accel kvm --cpus 2 --kernel /guest/Image --initrd /guest/initramfs.cpio.gz \
    --cmdline "console=ttyAMA0 quiet cryptomgr.notests pv.run=smp pv.cpus=2 pv.litmus=skip" </dev/null
echo "SMP-RUN-EXIT=$?"

. /phone-lib.sh
report() { # vm
    grep -aE '^(COUNT|BACK)' "$st/vms/$1/console.log" | sed "s/^/$1 /" | tr -d '\r'
    echo "BOOTS $1 $(grep -ac POCKETVISOR-GUEST-READY "$st/vms/$1/console.log")"
}

start_phone 800M smp-snapshot "cpus = 2" || exit 1
wait_count open 8 180 || exit 1
freeze open /tmp/snap-smp || exit 1
phone restore /tmp/snap-smp --as softclone --copy-disks --accel soft || exit 1
wait_count softclone 20 300 || exit 1
freeze softclone /tmp/snap-soft || exit 1
phone restore /tmp/snap-smp --as kvmclone --copy-disks --accel kvm || exit 1
wait_count kvmclone 42 180 || exit 1
phone stop kvmclone
report open
report softclone
report kvmclone
phone restore /tmp/snap-soft --as back --copy-disks --accel kvm || exit 1
wait_count back 46 180 || exit 1
report back
pocketvisor phone status --phone "$st"
grep "vCPUs on" "$st/phone.log"
pocketvisor phone down --phone "$st"
