# Runs inside the guest (pv.run=blk-bench): sequential direct-I/O write and
# read of 64 MiB on /dev/vda; prints MB/s as measured by the guest's clock.
rate() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 64 / (b - a) }'; }
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/zero of=/dev/vda bs=1M count=64 oflag=direct 2>/dev/null
t1=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/vda of=/dev/null bs=1M count=64 iflag=direct 2>/dev/null
t2=$(cut -d' ' -f1 /proc/uptime)
echo "BLK-BENCH write_MBps=$(rate "$t0" "$t1") read_MBps=$(rate "$t1" "$t2")"
