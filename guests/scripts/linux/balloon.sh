# Runs inside the guest (pv.run=balloon) with a virtio-balloon: dirties 70 MiB
# of memory, frees it (free page reporting should hand it back to the host),
# then waits while the host inflates the balloon.
mount -t tmpfs -o size=200m tmpfs /tmp
dd if=/dev/zero of=/tmp/fill bs=1M count=70 2>/dev/null
echo "BALLOON-FILLED"
sleep 2
rm /tmp/fill
echo "BALLOON-FREED"
# The host watches its RSS and sets a balloon target; give it time.
for i in $(seq 1 60); do
    [ -f /tmp/stop ] && break
    sleep 1
done
