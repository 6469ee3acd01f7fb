#!/usr/bin/env bash
# Builds the emulated ARM64 host the KVM backend is tested in, into
# guests/cache/kvm-host/ (gitignored):
#   pocketvisor        this repository's pocketvisor cross-built for aarch64 (static)
#   initramfs.cpio     the host's initramfs: busybox, pocketvisor, vsock-tool (the
#                      host side of vsock), guests/kvm-host/init and scenarios/,
#                      and the guest's parts under /guest (Debian's kernel, the
#                      test initramfs, an ext4 disk image)
#   Image-6.12         Debian 12's 6.12 cloud arm64 kernel (bookworm-security): a
#                      host kernel whose KVM lets userspace lower a vCPU's ID
#                      registers (Linux 6.7 and later), for the cross-backend tests
# The other host kernel is the guest's (Debian's 6.1 cloud arm64 kernel has KVM
# built in); QEMU runs either with -M virt,virtualization=on so it gets /dev/kvm.
# Idempotent: cargo rebuilds only what changed; the initramfs is repacked when
# any input changed. Run guests/fetch-linux-guests.sh first (tests call both).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="$here/cache/kvm-host"
linux="$here/cache/linux"
mkdir -p "$out"
# Tests run in parallel and each calls this script: one builds, the others wait.
exec 9>"$out/.lock"
flock 9

die() { echo "kvm-host: $*" >&2; exit 1; }
[ -f "$linux/Image" ] && [ -f "$linux/initramfs.cpio.gz" ] || die "run guests/fetch-linux-guests.sh first"
command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc is needed (apt-get install gcc-aarch64-linux-gnu)"
command -v mke2fs >/dev/null || die "mke2fs is needed (apt-get install e2fsprogs)"
rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
    || die "the Rust target aarch64-unknown-linux-gnu is needed (rustup target add aarch64-unknown-linux-gnu)"

if [ ! -f "$out/Image-6.12" ]; then
    # shellcheck source=guests/host-setup.sh
    . "$here/host-setup.sh"
    ensure_arm64_apt
    pkg=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+deb12-cloud-arm64-unsigned$' 2>/dev/null \
        | cut -d' ' -f1 | sort -V | tail -1)
    [ -n "$pkg" ] || die "no linux-image-6.12.*+deb12-cloud-arm64-unsigned package in apt's lists"
    work="$(mktemp -d)"
    echo "kvm-host: downloading $pkg:arm64 (about 30 MB, once)" >&2
    (cd "$work" && apt-get download -q "$pkg:arm64" >/dev/null 2>&1) || { rm -rf "$work"; die "cannot download $pkg:arm64"; }
    dpkg-deb -x "$work"/linux-image-*.deb "$work/pkg"
    cp "$work"/pkg/boot/vmlinuz-* "$out/Image-6.12.tmp"
    mv "$out/Image-6.12.tmp" "$out/Image-6.12"
    rm -rf "$work"
fi

# Its own target directory: a test may run this while `cargo test` holds the
# workspace's, and the cross build shares nothing with the host build.
echo "kvm-host: building pocketvisor for aarch64 (incremental)" >&2
CARGO_TARGET_DIR="$repo/target/cross" \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --quiet --profile kvm-host --locked -p pocketvisor --target aarch64-unknown-linux-gnu \
        --manifest-path "$repo/Cargo.toml"
aarch64-linux-gnu-strip -o "$out/pocketvisor.tmp" "$repo/target/cross/aarch64-unknown-linux-gnu/kvm-host/pocketvisor"
mv "$out/pocketvisor.tmp" "$out/pocketvisor"

busybox="$here/cache/user/busybox"
[ -x "$busybox" ] || die "run guests/fetch-user-guests.sh first"
stamp=$(cat "$busybox" "$out/pocketvisor" "$linux/Image" "$linux/initramfs.cpio.gz" "$here/kvm-host/init" \
            "$here"/kvm-host/scenarios/*.sh "$here/kvm-host/phone-lib.sh" "$here/c/vsock-tool.c" | md5sum | cut -d' ' -f1)
if [ ! -f "$out/initramfs.cpio" ] || [ "$(cat "$out/initramfs.stamp" 2>/dev/null)" != "$stamp" ]; then
    root="$(mktemp -d)"
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/guest" "$root/scenarios" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
    install -m 755 "$busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    install -m 755 "$out/pocketvisor" "$root/bin/pocketvisor"
    aarch64-linux-gnu-gcc -static -O2 -s -o "$root/bin/vsock-tool" "$here/c/vsock-tool.c"
    install -m 755 "$here/kvm-host/init" "$root/init"
    install -m 644 "$here"/kvm-host/scenarios/*.sh "$root/scenarios/"
    install -m 644 "$here/kvm-host/phone-lib.sh" "$root/phone-lib.sh"
    install -m 644 "$linux/Image" "$root/guest/Image"
    install -m 644 "$linux/initramfs.cpio.gz" "$root/guest/initramfs.cpio.gz"
    # The guest's disk, as the host-side virtio-blk tests make it (known.txt,
    # blob, blob.md5): the guest's virtio-blk.sh checks and extends it.
    disk="$(mktemp -d)"
    echo "written on the build host" > "$disk/known.txt"
    head -c 262144 /dev/urandom > "$disk/blob"
    (cd "$disk" && md5sum blob > blob.md5)
    mke2fs -q -t ext4 -d "$disk" "$root/guest/disk.img" 16M
    rm -rf "$disk"
    # Uncompressed: the host kernel unpacks it faster than it would inflate it.
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out/initramfs.cpio.tmp"
    mv "$out/initramfs.cpio.tmp" "$out/initramfs.cpio"
    echo "$stamp" > "$out/initramfs.stamp"
    echo "kvm-host: built $out/initramfs.cpio" >&2
fi
