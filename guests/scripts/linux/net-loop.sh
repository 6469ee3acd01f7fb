# Runs inside the guest (pv.run=net-loop) on one of two VMs sharing an
# Ethernet: pv.ip=A.B.C.D/N is this VM's address, pv.peer=A.B.C.D the other's,
# pv.role=serve|fetch. The server offers a 1 MiB file and its md5 over HTTP
# and takes uploads with nc; the fetcher, over and over, downloads the file
# and checks its md5, uploads it back, and pings the server, printing
# "NET-ROUND <n> ok" or "NET-ROUND <n> FAIL <why>" — so the host can pause
# either VM again and again and the guests check nothing was lost or doubled.
arg() { sed -n "s/.*pv\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
ip=$(arg ip); peer=$(arg peer); role=$(arg role)
ip link set lo up
ip link set eth0 up || { echo "NET-ROUND 0 FAIL link"; exit 1; }
ip addr add "$ip" dev eth0
case "$role" in
serve)
    mkdir -p /www
    dd if=/dev/urandom of=/www/f.bin bs=1k count=1024 2>/dev/null
    md5sum < /www/f.bin | cut -d' ' -f1 > /www/f.md5
    httpd -p 80 -h /www
    echo "NET-SERVING $(cat /www/f.md5)"
    while :; do
        nc -l -p 5555 > /tmp/up.bin
        echo "NET-UPLOAD $(md5sum < /tmp/up.bin | cut -d' ' -f1) $(wc -c < /tmp/up.bin)"
    done
    ;;
fetch)
    n=0
    until wget -q -O /tmp/want "http://$peer/f.md5" 2>/dev/null; do
        n=$((n + 1)); [ $n -lt 120 ] || { echo "NET-ROUND 0 FAIL no server"; exit 1; }
        sleep 1
    done
    want=$(cat /tmp/want)
    n=1
    while :; do
        if ! wget -q -O /tmp/f.bin "http://$peer/f.bin"; then
            echo "NET-ROUND $n FAIL wget"
        elif [ "$(md5sum < /tmp/f.bin | cut -d' ' -f1)" != "$want" ]; then
            echo "NET-ROUND $n FAIL md5"
        elif ! nc "$peer" 5555 < /tmp/f.bin; then
            echo "NET-ROUND $n FAIL upload"
        elif ! ping -c 2 -W 2 "$peer" > /tmp/ping 2>&1 || grep -q DUP /tmp/ping \
            || ! grep -q '2 packets received' /tmp/ping; then
            echo "NET-ROUND $n FAIL ping $(tail -2 /tmp/ping | tr '\n' ' ')"
        else
            echo "NET-ROUND $n ok"
        fi
        n=$((n + 1))
    done
    ;;
esac
