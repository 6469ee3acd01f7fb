//! `phone`: several VMs side by side from one manifest. Today: the
//! manifest ([`manifest`]) — read, checked and turned into each VM's
//! configuration — and the sandbox a VM's worker process enters
//! ([`sandbox`]: seccomp, non-dumpable). The supervisor, the worker
//! processes and the management API build on them.

pub mod api;
pub mod client;
pub mod daemon;
pub mod manifest;
pub mod memory;
pub mod protocol;
mod routing;
pub mod sandbox;
pub mod supervisor;
pub mod worker;

pub use manifest::{Channel, Manifest, ManifestError, Restart, Role, VmEntry};
