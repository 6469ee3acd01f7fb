# Runs inside the guest (pv.run=snapshot) with vda = an ext4 image, hvc0 and
# a vsock device, to be saved and restored while it runs: counts, and for
# each n writes /mnt/c<n> holding n, syncs, and prints
# "COUNT <n> <date +%s> <uptime>" on the console and "HVC <n>" on hvc0.
# A vsock echo service on port 5000 is restarted whenever a stream ends
# (a restored VM's streams are reset).
mount -t ext4 /dev/vda /mnt || { echo "MOUNT FAILED"; exit 1; }
( while :; do vsock-tool echo 5000 >/dev/null 2>&1; done ) &
i=1
while [ $i -le 100000 ]; do
    echo $i > /mnt/c$i
    sync
    echo "COUNT $i $(date +%s) $(cut -d' ' -f1 /proc/uptime)"
    echo "HVC $i" > /dev/hvc0
    i=$((i + 1))
done
