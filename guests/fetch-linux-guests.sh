#!/usr/bin/env bash
# Fetches and builds the Linux guest parts into guests/cache/linux/ (gitignored):
#   Image               Debian's arm64 cloud kernel (a raw arm64 Image)
#   modules/            its lib/modules tree (virtio drivers are modules)
#   initramfs.cpio.gz   busybox + guests/linux/init + guests/scripts/linux/*.sh
#                       + guests/c/vsock-tool.c built for aarch64
# Idempotent: downloads once, rebuilds the initramfs when its inputs change.
# KERNEL_PACKAGE overrides the kernel package (default: newest 6.1 cloud arm64).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/cache/linux"
mkdir -p "$out"
# Tests run in parallel and each calls this script: one builds, the others
# wait for it and then find everything up to date.
exec 9>"$out/.lock"
flock 9

die() { echo "guests: $*" >&2; exit 1; }
command -v cpio >/dev/null || die "cpio is needed to build the initramfs (apt-get install cpio)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed (a Debian-like host)"

"$here/fetch-user-guests.sh"
busybox="$here/cache/user/busybox"
# shellcheck source=guests/host-setup.sh
. "$here/host-setup.sh"

if [ ! -f "$out/Image" ]; then
    pkg="${KERNEL_PACKAGE:-}"
    if [ -z "$pkg" ]; then
        ensure_arm64_apt
        pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-arm64-unsigned$' 2>/dev/null \
            | cut -d' ' -f1 | sort -V | tail -1)
    fi
    [ -n "$pkg" ] || die "no linux-image-6.1.0-*-cloud-arm64-unsigned package in apt's lists"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    echo "guests: downloading $pkg:arm64 (about 30 MB, once)"
    (cd "$work" && apt-get download "$pkg:arm64") \
        || die "cannot download $pkg:arm64 (is the arm64 architecture enabled? see guests/host-setup.sh)"
    dpkg-deb -x "$work"/linux-image-*.deb "$work/pkg"
    rm -rf "$out/modules"
    mkdir -p "$out/modules"
    cp -a "$work"/pkg/lib/modules/. "$out/modules/"
    cp "$work"/pkg/boot/config-* "$out/config"
    dpkg-deb -f "$work"/linux-image-*.deb Package Version > "$out/package"
    cp "$work"/pkg/boot/vmlinuz-* "$out/Image.tmp"
    mv "$out/Image.tmp" "$out/Image"
fi

# The virtio drivers are modules in Debian's kernel: /init loads these, in this
# order (dependencies first), from /lib/modules.
modules=(drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio
         drivers/block/virtio_blk drivers/char/hw_random/virtio-rng drivers/char/virtio_console
         drivers/virtio/virtio_balloon net/core/failover drivers/net/net_failover
         drivers/net/virtio_net net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common
         net/vmw_vsock/vmw_vsock_virtio_transport)
kdir=$(echo "$out"/modules/*/kernel)

# Rebuild the initramfs when busybox, /init, the scripts or the module list change.
stamp=$( (cat "$busybox" "$here/linux/init" "$here"/scripts/linux/*.sh "$here"/c/vsock-tool.c; echo "${modules[*]}") | md5sum | cut -d' ' -f1)
if [ ! -f "$out/initramfs.cpio.gz" ] || [ "$(cat "$out/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "guests: building the initramfs (busybox, scripts, virtio modules)"
    root="$(mktemp -d)"
    mkdir -p "$root/bin" "$root/scripts" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
    install -m 755 "$busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    install -m 755 "$here/linux/init" "$root/init"
    install -m 644 "$here"/scripts/linux/*.sh "$root/scripts/"
    # Guest-side test programs (the cross compiler is also what the CPU tests use).
    command -v aarch64-linux-gnu-gcc >/dev/null \
        || die "aarch64-linux-gnu-gcc is needed (apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)"
    aarch64-linux-gnu-gcc -static -O2 -s -o "$root/bin/vsock-tool" "$here/c/vsock-tool.c"
    mkdir -p "$root/lib/modules"
    for m in "${modules[@]}"; do
        [ -f "$kdir/$m.ko" ] || die "module $m.ko missing from the kernel package"
        install -m 644 "$kdir/$m.ko" "$root/lib/modules/"
        basename "$m" >> "$root/lib/modules/load-order"
    done
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 > "$out/initramfs.cpio.gz.tmp"
    mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
    echo "$stamp" > "$out/initramfs.stamp"
    rm -rf "$root"
    echo "guests: built $out/initramfs.cpio.gz"
fi
echo "guests: $(head -2 "$out/package" | tr '\n' ' ')-> $out"
