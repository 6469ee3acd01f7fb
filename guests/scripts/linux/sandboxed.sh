# Runs inside the guest (pv.run=sandboxed) of a VM whose VMM has entered
# its worker sandbox (seccomp): touches every device — writes and syncs the
# raw disk vda, reads the entropy device, sends on eth0, sends 64 KiB to
# host vsock port 6000 and checks the echo — then powers off.
dd if=/dev/urandom of=/dev/vda bs=64k count=16 oflag=direct 2>/dev/null && sync \
    && echo "CHECK disk ok" || echo "CHECK disk FAIL"
head -c 1024 /dev/hwrng > /tmp/r 2>/dev/null
[ "$(wc -c < /tmp/r)" = 1024 ] && echo "CHECK rng ok" || echo "CHECK rng FAIL"
ip link set eth0 up && ip addr add 10.9.9.1/24 dev eth0 \
    && { ping -c 2 -W 1 10.9.9.2 >/dev/null 2>&1; true; } \
    && echo "CHECK net ok" || echo "CHECK net FAIL"
vsock-tool ping 2 6000 65536 && echo "CHECK vsock ok" || echo "CHECK vsock FAIL"
