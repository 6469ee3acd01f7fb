# Runs inside the guest (pv.run=smp-bench): a parallel workload — two
# CPU-bound processes at once, each the md5 of a 32 MiB file in RAM,
# twice — timed with the guest's clock; prints "SMP-BENCH <milliseconds>".
dd if=/dev/urandom of=/tmp/data bs=1M count=32 2>/dev/null
md5sum /tmp/data >/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
for _ in 1 2; do
    md5sum /tmp/data >/tmp/a &
    md5sum /tmp/data >/tmp/b &
    wait
done
t1=$(cut -d' ' -f1 /proc/uptime)
cmp -s /tmp/a /tmp/b || echo "SMP-BENCH mismatch"
echo "SMP-BENCH $(echo "$t0 $t1" | awk '{printf "%d", ($2 - $1) * 1000}')"
