# The KVM benchmark inside the emulated host (bench/kvm.sh): for each
# backend, boot to the guest's ready marker (timed on the host) and a
# CPU-bound guest job (timed by the guest), three runs each.
uptime() { cut -d' ' -f1 /proc/uptime; }
for run in 1 2 3; do
    for accel in kvm soft; do
        log=/tmp/$accel.log
        t0=$(uptime)
        pocketvisor run --accel $accel --kernel /guest/Image --initrd /guest/initramfs.cpio.gz \
            --cmdline "console=ttyAMA0 quiet cryptomgr.notests pv.run=cpu-bench" </dev/null >"$log" 2>&1 &
        pid=$!
        until grep -q POCKETVISOR-GUEST-READY "$log"; do
            kill -0 $pid 2>/dev/null || break
            sleep 0.05
        done
        t1=$(uptime)
        wait $pid
        echo "BENCH $accel run $run ready_ms $(echo "$t0 $t1" | awk '{printf "%d", ($2 - $1) * 1000}') cpu_ms $(sed -n 's/^CPU-BENCH \([0-9]*\) .*/\1/p' "$log")"
    done
done
