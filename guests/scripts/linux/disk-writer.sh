# Runs inside the guest (pv.run=disk-writer) with vda = an ext4 image: keeps
# writing 128 KiB files f1, f2, ... and after each one syncs and prints
# "SYNCED <n> <md5>", so the host can stop the VM in the middle of writes and
# then check that every synced file is intact. Ends after 1000 files.
mount -t ext4 /dev/vda /mnt || { echo "MOUNT FAILED"; exit 1; }
i=1
while [ $i -le 1000 ]; do
    dd if=/dev/urandom of=/mnt/f$i bs=16k count=8 2>/dev/null
    sum=$(md5sum /mnt/f$i | cut -d' ' -f1)
    sync
    echo "SYNCED $i $sum"
    i=$((i + 1))
done
umount /mnt
