# Runs inside the guest (pv.run=cpu-bench): a CPU-bound job (md5 of 16 MiB
# of zeros, in a pipe from dd) timed with the guest's clock; prints
# "CPU-BENCH <milliseconds> <md5>".
t0=$(cut -d' ' -f1 /proc/uptime)
sum=$(dd if=/dev/zero bs=65536 count=256 2>/dev/null | md5sum | cut -d' ' -f1)
t1=$(cut -d' ' -f1 /proc/uptime)
echo "CPU-BENCH $(echo "$t0 $t1" | awk '{printf "%d", ($2 - $1) * 1000}') $sum"
