# Runs inside the guest (pv.run=net-pair) on one of two VMs sharing an
# Ethernet: pv.ip=A.B.C.D/N is this VM's address, pv.peer=A.B.C.D the other's,
# pv.role=serve|fetch|push. The server offers a file over HTTP and receives one with
# nc; the fetcher downloads the first with wget and sends the second with nc.
# Both print the md5 of what they sent and received (NET-SENT / NET-GOT).
# push is for a host peer on a TAP device: ping it and send it a file on port 7777.
arg() { sed -n "s/.*pv\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
ip=$(arg ip); peer=$(arg peer); role=$(arg role)
ip link set lo up
ip link set eth0 up || { echo "CHECK net-link FAIL"; exit 1; }
ip addr add "$ip" dev eth0
echo "CHECK net-link ok $(cat /sys/class/net/eth0/address)"
mkdir -p /www
case "$role" in
serve)
    dd if=/dev/urandom of=/www/served.bin bs=1k count=768 2>/dev/null
    echo "NET-SENT $(md5sum < /www/served.bin | cut -d' ' -f1)"
    httpd -p 80 -h /www
    nc -l -p 5555 > /tmp/got.bin
    echo "NET-GOT $(md5sum < /tmp/got.bin | cut -d' ' -f1) $(wc -c < /tmp/got.bin)"
    ;;
fetch)
    # The server may still be booting: retry for up to two minutes.
    n=0
    until wget -q -O /tmp/got.bin "http://$peer/served.bin" 2>/dev/null; do
        n=$((n + 1)); [ $n -lt 120 ] || { echo "CHECK net-wget FAIL"; exit 1; }
        sleep 1
    done
    echo "NET-GOT $(md5sum < /tmp/got.bin | cut -d' ' -f1) $(wc -c < /tmp/got.bin)"
    ping -c 3 "$peer" | grep -q '3 packets received' && echo "CHECK net-ping ok" || echo "CHECK net-ping FAIL"
    dd if=/dev/urandom of=/tmp/sent.bin bs=1k count=640 2>/dev/null
    echo "NET-SENT $(md5sum < /tmp/sent.bin | cut -d' ' -f1)"
    nc "$peer" 5555 < /tmp/sent.bin || { echo "CHECK net-nc FAIL"; exit 1; }
    ;;
push)
    # The peer is a host (TAP backend): ping it, then send it a file.
    ping -c 3 "$peer" | grep -q '3 packets received' && echo "CHECK net-ping ok" || echo "CHECK net-ping FAIL"
    dd if=/dev/urandom of=/tmp/sent.bin bs=1k count=256 2>/dev/null
    echo "NET-SENT $(md5sum < /tmp/sent.bin | cut -d' ' -f1)"
    nc "$peer" 7777 < /tmp/sent.bin || { echo "CHECK net-nc FAIL"; exit 1; }
    ;;
*)
    echo "CHECK net-role FAIL '$role'"; exit 1 ;;
esac
