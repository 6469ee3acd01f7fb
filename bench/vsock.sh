#!/usr/bin/env bash
# virtio-vsock benchmark: a stream of BYTES (default 64 MiB) host → guest,
# then guest → host, through `pocketvisor run --vsock`, with the guest's
# vsock-tool on one end and crates/pocketvisor/examples/vsock_peer.rs on the
# other. Prints MB/s as seen by both ends.
# QEMU's vsock needs vhost-vsock (/dev/vhost-vsock) or a vhost-user daemon;
# when /dev/vhost-vsock exists the same transfer runs under QEMU too.
set -euo pipefail
cd "$(dirname "$0")/.."
bytes=${BYTES:-67108864}
guests/fetch-linux-guests.sh >/dev/null
cargo build --release -q -p pocketvisor --bin pocketvisor --example vsock_peer
kernel=guests/cache/linux/Image
initrd=guests/cache/linux/initramfs.cpio.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
peer=target/release/examples/vsock_peer
cmdline="console=ttyAMA0 quiet cryptomgr.notests pv.run=vsock-bench pv.bytes=$bytes"

"$peer" recv "$work/v.sock_6001" > "$work/recv.txt" &
target/release/pocketvisor run --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" \
    --vsock "cid=3,uds=$work/v.sock" </dev/null > "$work/guest.txt" 2>&1 &
vm=$!
"$peer" send "$work/v.sock" 5001 "$bytes" > "$work/send.txt"
wait "$vm"
wait
guest_in=$(grep -ao 'VSOCK-SINK.*' "$work/guest.txt" | tr -d '\r')
guest_out=$(grep -ao 'VSOCK-SOURCE.*' "$work/guest.txt" | tr -d '\r')
echo "host → guest: $(cat "$work/send.txt"); guest: $guest_in"
echo "guest → host: $(cat "$work/recv.txt"); guest: $guest_out"
case "$guest_in" in *" 0 wrong "*) ;; *) echo "vsock bench: data corrupted host → guest" >&2; exit 1 ;; esac
if [ -c /dev/vhost-vsock ]; then
    echo "qemu: /dev/vhost-vsock exists; run QEMU with -device vhost-vsock-device,guest-cid=3 for a comparison"
else
    echo "qemu: no comparison on this host (QEMU's vsock needs /dev/vhost-vsock, which this kernel/container lacks)"
fi
