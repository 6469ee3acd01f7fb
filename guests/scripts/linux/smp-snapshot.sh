# Runs inside the guest (pv.run=smp-snapshot): an SMP guest counts with its
# last CPU offline, printing "COUNT n online=LIST" twice a second; at count
# 40 it brings that CPU back online, runs work on it and says "BACK ...".
# A snapshot taken before count 40 and restored (under either backend)
# must still show the CPU offline, then bring it back.
last=$(($(grep -c '^processor' /proc/cpuinfo) - 1))
cpu=/sys/devices/system/cpu/cpu$last/online
echo 0 > "$cpu" || echo "OFFLINE FAIL"
n=0
while :; do
    n=$((n + 1))
    if [ "$n" -eq 40 ]; then
        echo 1 > "$cpu"
        ran=$(taskset -c "$last" sh -c 'echo ran')
        echo "BACK online=$(cat /sys/devices/system/cpu/online) ran=$ran"
    fi
    echo "COUNT $n online=$(cat /sys/devices/system/cpu/online)"
    sleep 0.5
done
