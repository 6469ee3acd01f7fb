# One guest under the accelerator pvhost.accel= names (kvm, soft or auto):
# ext4 disk, rng, hvc0 and vsock both ways (scripts/linux/kvm-devices.sh),
# and which threads the VMM runs.
accel=$(sed -n 's/.*pvhost\.accel=\([a-z]*\).*/\1/p' /proc/cmdline)
cp /guest/disk.img /tmp/disk.img
vsock-tool host-echo /tmp/v.sock_6000 > /tmp/echo.log 2>&1 &
vsock-tool host-ping /tmp/v.sock 5000 1048576 > /tmp/ping.log 2>&1 &
# The VMM's threads once the VM is built (under KVM: the kick and
# interrupt-resampling threads of ioeventfd and irqfd).
(
    until p=$(pidof pocketvisor); do sleep 0.1; done
    sleep 1
    echo "THREADS $(cat /proc/$p/task/*/comm | sort -u | tr '\n' ' ')"
) &
pocketvisor run --accel "${accel:-auto}" --kernel /guest/Image --initrd /guest/initramfs.cpio.gz \
    --cmdline "console=ttyAMA0 quiet cryptomgr.notests pv.run=kvm-devices" \
    --disk /tmp/disk.img --rng --vconsole --vsock cid=3,uds=/tmp/v.sock </dev/null
code=$?
wait
sed 's/^/HOST /' /tmp/echo.log /tmp/ping.log
exit $code
