#!/usr/bin/env bash
# Brings up the demo phone, phones/demo.toml: three VMs side by side — the
# user's open OS, a corporate personality and a trusted key service — each
# in its own sandboxed process, fetching and building the guest parts on
# first use (about a minute, once). The terminal shows the foreground VM's
# console: Ctrl-A 1/2/3 switches VM, Ctrl-A x detaches (the phone keeps
# running), Ctrl-A q shuts the phone down. Extra arguments go to
# `pocketvisor phone up` (e.g. --detach). Then, from any terminal:
#   target/release/pocketvisor phone status --phone /tmp/pocketvisor-demo-phone
# In the personal VM's shell, the trusted services (CID 5, docs/TRUST.md):
#   pv-trust attest 0123abcd; pv-trust auth enroll 1234; pv-trust auth sign c0ffee 1234
#   pv-trust billing charge 250 cafe; pv-trust billing ledger
#
# Needs what guests/boot-debian.sh needs (see README.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/guests/fetch-linux-guests.sh" >&2
cargo build --release -p pocketvisor --manifest-path "$root/Cargo.toml" >&2
# The key services' data disk (their sealed state), made once.
[ -f "$root/guests/cache/keys-data.img" ] || truncate -s 1M "$root/guests/cache/keys-data.img"
exec "$root/target/release/pocketvisor" phone up "$root/phones/demo.toml" "$@"
