#!/usr/bin/env bash
# Brings up the demo phone, phones/demo.toml: three VMs side by side — the
# user's open OS, a corporate personality and a trusted key service — each
# in its own sandboxed process, fetching and building the guest parts on
# first use (about a minute, once). The terminal shows the foreground VM's
# console: Ctrl-A 1/2/3 switches VM, Ctrl-A x detaches (the phone keeps
# running), Ctrl-A q shuts the phone down. Extra arguments go to
# `pocketvisor phone up` (e.g. --detach). Then, from any terminal:
#   target/release/pocketvisor phone status --phone /tmp/pocketvisor-demo-phone
#
# Needs what guests/boot-debian.sh needs (see README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/guests/fetch-linux-guests.sh" >&2
cargo build --release -p pocketvisor --manifest-path "$root/Cargo.toml" >&2
exec "$root/target/release/pocketvisor" phone up "$root/phones/demo.toml" "$@"
