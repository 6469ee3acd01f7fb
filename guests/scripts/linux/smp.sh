# Runs inside the guest (pv.run=smp pv.cpus=N): checks the N CPUs the VM
# was given are online, takes the last one offline and back through sysfs,
# runs smp-atomics (one thread per CPU, every kind of atomic, exact
# totals) and the litmus tests. Prints one CHECK line each; exits non-zero
# if any fails.
fail=0
check() { # name ok|FAIL detail
    echo "CHECK $1 $2 $3"
    [ "$2" = ok ] || fail=1
}

want=$(sed -n 's/.*pv\.cpus=\([0-9]*\).*/\1/p' /proc/cmdline)
last=$((want - 1))
online=$(cat /sys/devices/system/cpu/online)
n=$(grep -c '^processor' /proc/cpuinfo)
[ "$online" = "0-$last" ] && [ "$n" = "$want" ] && check cpus-online ok "online=$online cpuinfo=$n" \
    || check cpus-online FAIL "online=$online cpuinfo=$n want=$want"

# Hotplug: off, then on again, and the CPU runs work after it came back.
cpu=/sys/devices/system/cpu/cpu$last/online
if echo 0 > "$cpu"; then
    off=$(cat /sys/devices/system/cpu/online)
    echo 1 > "$cpu"
    back=$(cat /sys/devices/system/cpu/online)
    ran=$(taskset -c "$last" sh -c 'echo ran') 2>&1
    [ "$off" != "$online" ] && [ "$back" = "$online" ] && [ "$ran" = ran ] \
        && check hotplug ok "off=$off back=$back" \
        || check hotplug FAIL "off=$off back=$back ran=$ran"
else
    check hotplug FAIL "cpu$last cannot go offline"
fi

out=$(smp-atomics "$want" 20000 5)
echo "$out"
echo "$out" | grep -q '^SMP-ATOMICS ok' && check atomics ok "$(echo "$out" | tail -n 1)" \
    || check atomics FAIL "$(echo "$out" | tail -n 1)"

# Litmus tests (4 CPUs for IRIW): no forbidden outcome in pv.litmus= runs
# of each (default 1000000); the relaxed outcomes seen are reported.
# pv.litmus=skip leaves them out (under KVM in an emulated host they would
# test the emulator's memory model, not ours).
runs=$(sed -n 's/.*pv\.litmus=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
if [ "$runs" = skip ]; then
    echo "CHECK litmus skipped"
else
    out=$(litmus "${runs:-1000000}")
    echo "$out"
    echo "$out" | grep -q '^LITMUS-DONE ok' && check litmus ok "$(echo "$out" | grep -c '^LITMUS ')" \
        || check litmus FAIL "$(echo "$out" | grep -E 'FORBIDDEN' | tr '\n' ';')"
fi

exit $fail
