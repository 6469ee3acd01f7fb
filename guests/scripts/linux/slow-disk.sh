# Runs inside the guest (pv.run=slow-disk) with vda = a raw disk the host
# makes slow on purpose: three writers keep requests queued behind each
# other in the background while the foreground prints "TICK <uptime>" every
# 50 ms for 6 seconds. The host checks the gaps: a slow disk must not hold
# up the guest's timer and console.
writers=""
for at in 0 100 200; do
    ( while :; do dd if=/dev/zero of=/dev/vda bs=4k count=1 seek=$at oflag=direct 2>/dev/null; done ) &
    writers="$writers $!"
done
n=0
while [ $n -lt 120 ]; do
    echo "TICK $(cut -d' ' -f1 /proc/uptime)"
    usleep 50000
    n=$((n + 1))
done
kill $writers
echo "TICKS DONE"
