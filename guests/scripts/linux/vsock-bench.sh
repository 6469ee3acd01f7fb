# Runs inside the guest (pv.run=vsock-bench): receives one stream from the
# host on port 5001 (VSOCK-SINK ... MB/s), then sends pv.bytes= bytes to the
# host's port 6001 (VSOCK-SOURCE ... MB/s).
bytes=$(sed -n 's/.*pv\.bytes=\([0-9]*\).*/\1/p' /proc/cmdline)
vsock-tool sink 5001
vsock-tool source 2 6001 "${bytes:-67108864}"
