#!/usr/bin/env bash
# Builds the bare-metal test guests (arm64 Image format) into OUT_DIR
# (default guests/cache/baremetal). Needs gcc-aarch64-linux-gnu.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../cache/baremetal}"
mkdir -p "$out"
cc=aarch64-linux-gnu-gcc
flags=(-O2 -ffreestanding -nostdlib -nostartfiles -fno-pic -static -mgeneral-regs-only
       -fno-stack-protector -Wall -Wextra -Werror -Wl,--no-warn-rwx-segments -Wl,--build-id=none)
$cc "${flags[@]}" -T "$here/link.ld" -o "$out/hostile.elf" "$here/start.S" "$here/hostile.c"
aarch64-linux-gnu-objcopy -O binary "$out/hostile.elf" "$out/hostile.img"
echo "$out/hostile.img"
