# Runs inside the guest (pv.run=virtio-blk) with vda = an ext4 image made on
# the host (known.txt, blob, blob.md5), optionally vdb = a read-only disk and
# a virtio-rng. Prints CHECK lines; "SYNCED <md5>" once the new files are on disk.
fail=0
check() { echo "CHECK $1 $2 $3"; [ "$2" = ok ] || fail=1; }

if mount -t ext4 /dev/vda /mnt; then check mount ok; else check mount FAIL; exit 1; fi
if (cd /mnt && md5sum -c blob.md5 >/dev/null 2>&1); then
    check read ok "$(cat /mnt/known.txt)"
else
    check read FAIL
fi
dd if=/dev/urandom of=/mnt/guest.bin bs=1k count=300 2>/dev/null
sum=$(md5sum /mnt/guest.bin | cut -d' ' -f1)
echo "guest wrote this" > /mnt/new.txt
sync
echo "SYNCED $sum"

if [ -b /dev/vdb ]; then
    if dd if=/dev/zero of=/dev/vdb bs=512 count=1 conv=fsync 2>/dev/null; then
        check read-only FAIL "write to vdb succeeded"
    else
        check read-only ok
    fi
    check vdb-read "$(dd if=/dev/vdb bs=512 count=1 2>/dev/null | wc -c | grep -q '^512$' && echo ok || echo FAIL)"
fi
if [ -c /dev/hwrng ]; then
    n=$(head -c 4096 /dev/hwrng | wc -c)
    [ "$n" = 4096 ] && check rng ok "$(head -c 8 /dev/hwrng | od -A n -t x1 | tr -d ' ')" || check rng FAIL "$n bytes"
fi
# Discard through the file system, then unmount cleanly.
fstrim /mnt >/dev/null 2>&1 || true
umount /mnt && check umount ok || check umount FAIL
exit $fail
