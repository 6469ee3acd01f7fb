# Runs inside the guest (pv.run=vconsole) with a virtio-console whose port 1
# is named "chan": writes to hvc0, greets the host on the port and reads its answer.
echo "via-hvc0 $(cat /sys/class/tty/hvc0/dev 2>/dev/null)" > /dev/hvc0
dev=""
for p in /sys/class/virtio-ports/*; do
    [ "$(cat "$p/name" 2>/dev/null)" = chan ] && dev=/dev/$(basename "$p")
done
[ -n "$dev" ] || { echo "CHECK vport-name FAIL"; exit 1; }
echo "CHECK vport-name ok $dev"
# Keep the port open throughout: Linux drops input for a port nobody has open.
exec 3<>"$dev"
echo "guest-to-host" >&3
read -r line <&3
[ "$line" = "host-to-guest" ] && echo "CHECK vport-read ok" || { echo "CHECK vport-read FAIL '$line'"; exit 1; }
# The host stops reading: 4 MiB more must not stall the VM (the VMM drops
# what the client's socket cannot take).
head -c 4194304 /dev/zero >&3 && echo "CHECK vport-flood ok"
