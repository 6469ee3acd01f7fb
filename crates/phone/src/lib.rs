//! `phone`: several VMs side by side from one manifest, each in its own
//! sandboxed worker process ([`worker`], [`sandbox`]) under a supervisor
//! ([`supervisor`], [`daemon`]) that restarts them by policy, routes
//! guest-to-guest vsock streams by the manifest's channels, keeps
//! background VMs under a CPU quota, reclaims memory from them under
//! pressure ([`memory`]) and serves a management API ([`api`], [`client`]).
//! The manifest is read by [`manifest`]; supervisor and workers speak
//! [`protocol`]. Trusted VMs are measured at boot ([`measure`]) and get
//! the phone's trust device ([`trusted`]).

pub mod adopt;
pub mod api;
pub mod client;
pub mod daemon;
pub mod manifest;
pub mod measure;
pub mod memory;
pub mod migration;
pub mod protocol;
mod routing;
pub mod sandbox;
mod slot;
pub mod snapshot;
pub mod status;
pub mod supervisor;
pub mod trusted;
mod vm_actions;
pub mod worker;

pub use manifest::{Channel, Manifest, ManifestError, Restart, Role, VmEntry};
