# Two guests under pvhost.accel= on one virtual Ethernet (a socket switch):
# each downloads from / uploads to the other (scripts/linux/net-pair.sh).
accel=$(sed -n 's/.*pvhost\.accel=\([a-z]*\).*/\1/p' /proc/cmdline)
mkdir -p /tmp/lan
vm() {
    pocketvisor run --accel "${accel:-auto}" --mem 160M --kernel /guest/Image \
        --initrd /guest/initramfs.cpio.gz --net socket=/tmp/lan \
        --cmdline "console=ttyAMA0 quiet cryptomgr.notests pv.run=net-pair $1" </dev/null
}
vm "pv.ip=10.0.0.1/24 pv.peer=10.0.0.2 pv.role=serve" > /tmp/a.log 2>&1 &
vm "pv.ip=10.0.0.2/24 pv.peer=10.0.0.1 pv.role=fetch" > /tmp/b.log 2>&1
b=$?
wait $!
a=$?
sed 's/^/A: /' /tmp/a.log
sed 's/^/B: /' /tmp/b.log
[ $a = 0 ] && [ $b = 0 ]
