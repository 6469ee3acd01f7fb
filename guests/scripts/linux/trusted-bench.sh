# Runs inside a client VM (pv.run=trusted-bench) of bench/trusted.sh: waits
# for the trusted VM's services (CID pv.keys_cid=), enrols a PIN, times
# pv.bench_n= evidence round trips, signatures and charges (CALM), then
# tells the flooding VM (CID pv.flood_cid=, port 6000) to start and times
# them again while it floods (FLOODED). Without pv.flood_cid= it floods the
# billing port itself, from the same VM.
cid=$(sed -n 's/.*pv\.keys_cid=\([0-9]*\).*/\1/p' /proc/cmdline)
flood_cid=$(sed -n 's/.*pv\.flood_cid=\([0-9]*\).*/\1/p' /proc/cmdline)
n=$(sed -n 's/.*pv\.bench_n=\([0-9]*\).*/\1/p' /proc/cmdline)
n=${n:-200}
i=0
until pv-trust --cid "$cid" attest 00 >/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 600 ] || { echo "TRUSTED-BENCH no services"; exit 1; }
    sleep 0.1
done
echo "TRUSTED-BENCH services-up"
pv-trust --cid "$cid" auth enroll 1234 >/dev/null
for op in attest sign charge; do
    pv-trust --cid "$cid" bench "$op" "$n" | sed 's/^/CALM /'
done
if [ -n "$flood_cid" ]; then
    vsock-tool source "$flood_cid" 6000 1 >/dev/null
else
    pv-trust --cid "$cid" flood 5003 100000000 >/dev/null &
    flood=$!
fi
sleep 2
for op in attest sign charge; do
    pv-trust --cid "$cid" bench "$op" "$n" | sed 's/^/FLOODED /'
done
[ -n "$flood_cid" ] || kill "$flood"
echo "TRUSTED-BENCH done"
