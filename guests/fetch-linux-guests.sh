#!/usr/bin/env bash
# Fetches and builds the Linux guest parts into guests/cache/linux/ (gitignored):
#   Image               Debian's arm64 cloud kernel (a raw arm64 Image)
#   modules/            its lib/modules tree (virtio drivers are modules)
#   initramfs.cpio.gz   busybox + guests/linux/init + guests/scripts/linux/*.sh
#                       + guests/c/vsock-tool.c, memcheck.c, smp-atomics.c and
#                       litmus.c built for aarch64 + pv-trust
#   trusted-initramfs.cpio.gz
#                       the trusted VM's: pv-trustd as /init and the virtio and
#                       vsock modules it loads, nothing else (reproducible:
#                       fixed times and owners, so the same inputs measure the same)
#   trusted/            pv-trustd and pv-trust (guests/trusted) built for aarch64
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

# The reference trusted services and their client (guests/trusted), static
# aarch64 Rust programs; rebuilt when their sources or the lockfile change.
repo="$(cd "$here/.." && pwd)"
trusted="$out/trusted"
src_stamp=$(cat "$repo/Cargo.lock" "$here"/trusted/Cargo.toml $(find "$here/trusted/src" "$repo/crates/trust/src" -name '*.rs' | LC_ALL=C sort) | md5sum | cut -d' ' -f1)
if [ ! -x "$trusted/pv-trustd" ] || [ "$(cat "$trusted/stamp" 2>/dev/null)" != "$src_stamp" ]; then
    rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
        || die "the Rust target aarch64-unknown-linux-gnu is needed (rustup target add aarch64-unknown-linux-gnu)"
    echo "guests: building pv-trustd and pv-trust for aarch64"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --quiet --release --locked -p pv-trust --target aarch64-unknown-linux-gnu \
        --manifest-path "$repo/Cargo.toml" >&2
    mkdir -p "$trusted"
    for b in pv-trustd pv-trust; do
        aarch64-linux-gnu-strip -o "$trusted/$b.tmp" "$repo/target/aarch64-unknown-linux-gnu/release/$b"
        mv "$trusted/$b.tmp" "$trusted/$b"
    done
    echo "$src_stamp" > "$trusted/stamp"
fi

# Packs directory $1 into the gzipped cpio $2, the same bytes for the same files.
pack() {
    find "$1" -exec touch -h -d @0 {} +
    (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n > "$2.tmp"
    mv "$2.tmp" "$2"
}

# The trusted VM's initramfs: pv-trustd and the modules it needs, no shell.
trusted_modules=(drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio
                 drivers/block/virtio_blk drivers/char/hw_random/virtio-rng drivers/char/virtio_console
                 net/vmw_vsock/vsock net/vmw_vsock/vmw_vsock_virtio_transport_common
                 net/vmw_vsock/vmw_vsock_virtio_transport)
tstamp=$( (cat "$trusted/pv-trustd"; echo "${trusted_modules[*]}") | md5sum | cut -d' ' -f1)
if [ ! -f "$out/trusted-initramfs.cpio.gz" ] || [ "$(cat "$out/trusted-initramfs.stamp" 2>/dev/null)" != "$tstamp" ]; then
    root="$(mktemp -d)"
    mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/lib/modules"
    install -m 755 "$trusted/pv-trustd" "$root/init"
    for m in "${trusted_modules[@]}"; do
        [ -f "$kdir/$m.ko" ] || die "module $m.ko missing from the kernel package"
        install -m 644 "$kdir/$m.ko" "$root/lib/modules/"
        basename "$m" >> "$root/lib/modules/load-order"
    done
    pack "$root" "$out/trusted-initramfs.cpio.gz"
    echo "$tstamp" > "$out/trusted-initramfs.stamp"
    rm -rf "$root"
    echo "guests: built $out/trusted-initramfs.cpio.gz"
fi

# Rebuild the initramfs when busybox, /init, the scripts, the module list or pv-trust change.
stamp=$( (cat "$busybox" "$here/linux/init" "$here"/scripts/linux/*.sh "$here"/c/vsock-tool.c "$here"/c/memcheck.c "$here"/c/smp-atomics.c "$here"/c/litmus.c "$trusted/pv-trust"; echo "${modules[*]}") | md5sum | cut -d' ' -f1)
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
    aarch64-linux-gnu-gcc -static -O2 -s -o "$root/bin/memcheck" "$here/c/memcheck.c"
    aarch64-linux-gnu-gcc -static -O2 -s -pthread -o "$root/bin/smp-atomics" "$here/c/smp-atomics.c"
    aarch64-linux-gnu-gcc -static -O2 -s -pthread -o "$root/bin/litmus" "$here/c/litmus.c"
    install -m 755 "$trusted/pv-trust" "$root/bin/pv-trust"
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
