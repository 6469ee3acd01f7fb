# Runs inside the guest (pv.run=vsock) with a virtio-vsock device: first a
# host program's stream to guest port 5000 is echoed back, then the guest
# sends 1 MiB to the host's port 6000 and checks the echo.
[ -c /dev/vsock ] && echo "CHECK vsock-dev ok" || echo "CHECK vsock-dev FAIL"
vsock-tool echo 5000 || echo "CHECK vsock-echo FAIL"
vsock-tool ping 2 6000 1048576 || echo "CHECK vsock-ping FAIL"
