//! `pv-trust`: Pocketvisor's reference trusted services and their client.
//!
//! `pv-trustd` runs as `/init` of a minimal trusted VM (Debian's kernel
//! plus a tiny initramfs built by `guests/fetch-linux-guests.sh`) and
//! serves, on vsock ports of that VM reached over the phone's channels:
//! * [`wire::ATTEST_PORT`]: the VM's evidence for a nonce;
//! * [`wire::AUTH_PORT`]: [`auth`] — a signing key sealed to the VM's
//!   measurement, used only with the right PIN, locked after 5 wrong ones;
//! * [`wire::DRM_PORT`]: [`drm`] — licenses from a content provider, bound
//!   to this VM's device key; content is decrypted to the VM's secure
//!   output, never back to the caller;
//! * [`wire::BILLING_PORT`]: [`billing`] — a sealed ledger, receipts
//!   signed by the VM's attestation key.
//!
//! Their state is sealed ([`vault`]) with secrets from the phone's trust
//! device and guarded against rollback by its counters. `pv-trust` is the
//! client the open VM uses ([`client`]).

pub mod auth;
pub mod billing;
pub mod client;
pub mod crypto;
pub mod drm;
pub mod server;
pub mod vault;
pub mod vsock;
pub mod wire;
