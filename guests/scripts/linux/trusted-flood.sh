# Runs inside the flooding VM (pv.run=trusted-flood) of bench/trusted.sh:
# once a stream arrives on port 6000 (the client VM's signal), floods the
# trusted VM's (CID pv.keys_cid=) billing port with garbage connections
# until the phone goes down.
cid=$(sed -n 's/.*pv\.keys_cid=\([0-9]*\).*/\1/p' /proc/cmdline)
vsock-tool sink 6000 >/dev/null
echo "TRUSTED-FLOOD started"
pv-trust --cid "$cid" flood 5003 100000000
