# A VM booted under KVM on a host whose KVM cannot hide its features (Linux
# 6.1) is snapshotted and restored as a clone on the software CPU: the clone
# must be refused, naming the CPU features the software CPU lacks.
. /phone-lib.sh
start_phone 512M || exit 1
t=0
until grep -q "^COUNT 5 " "$st/vms/open/console.log" 2>/dev/null; do
    t=$((t + 1)); [ $t -lt 240 ] || { echo "TIMEOUT open"; exit 1; }; sleep 0.5
done
phone pause open && phone snapshot --out /tmp/snap-kvm open && phone stop open || exit 1
phone restore /tmp/snap-kvm --as softclone --copy-disks --accel soft
t=0
until grep -q "VM softclone: worker ended" "$st/phone.log"; do
    t=$((t + 1)); [ $t -lt 120 ] || { echo "TIMEOUT softclone"; break; }; sleep 0.5
done
grep "softclone" "$st/phone.log" | sed 's/^/LOG /'
pocketvisor phone status --phone "$st"
pocketvisor phone down --phone "$st"
