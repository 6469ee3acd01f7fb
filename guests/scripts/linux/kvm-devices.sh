# Runs inside the guest (pv.run=kvm-devices) in the KVM tests, with vda = the
# ext4 disk guests/build-kvm-host.sh makes, hvc0 and a vsock device whose
# host side echoes on port 6000 and pings guest port 5000. Checks the disk
# read and written (the new file read back from the device after dropping
# the page cache), hvc0, and vsock both ways. Prints CHECK lines.
fail=0
check() { echo "CHECK $1 $2 $3"; [ "$2" = ok ] || fail=1; }
mount -t ext4 /dev/vda /mnt && check mount ok || { check mount FAIL; exit 1; }
(cd /mnt && md5sum -c blob.md5 >/dev/null 2>&1) && check disk-read ok "$(cat /mnt/known.txt)" || check disk-read FAIL
dd if=/dev/urandom of=/mnt/guest.bin bs=1k count=512 2>/dev/null
sum=$(md5sum < /mnt/guest.bin | cut -d' ' -f1)
umount /mnt && check umount ok || check umount FAIL
echo 3 > /proc/sys/vm/drop_caches
mount -t ext4 /dev/vda /mnt || check remount FAIL
got=$(md5sum < /mnt/guest.bin | cut -d' ' -f1)
[ "$got" = "$sum" ] && check disk-write ok "$sum" || check disk-write FAIL "$got != $sum"
umount /mnt
echo "via-hvc0" > /dev/hvc0 && check hvc0 ok || check hvc0 FAIL
[ -c /dev/vsock ] && check vsock-dev ok || check vsock-dev FAIL
vsock-tool echo 5000 | grep -q "VSOCK-ECHOED 1048576" && check vsock-host-to-guest ok || check vsock-host-to-guest FAIL
vsock-tool ping 2 6000 1048576 | grep -q "VSOCK-PING ok" && check vsock-guest-to-host ok || check vsock-guest-to-host FAIL
exit $fail
