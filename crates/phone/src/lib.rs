//! `phone`: several VMs side by side from one manifest. Today: the
//! manifest ([`manifest`]) — read, checked and turned into each VM's
//! configuration. The supervisor, the per-VM worker processes and the
//! management API build on it.

pub mod manifest;

pub use manifest::{Channel, Manifest, ManifestError, Restart, Role, VmEntry};
