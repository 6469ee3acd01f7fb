//! Live migration of a phone's VM to another phone: [`outgoing`] is the
//! worker's pre-copy sender; [`source`] and [`target`] are the two
//! supervisors' ends of the link ([`image::migration`]), which relay the
//! stream, authenticate and encrypt it, and hand the VM over.
//!
//! The hand-over: the source's worker pauses the guest, sends the last
//! pages and the state, and releases its disks' locks (data flushed); the
//! target builds the VM on the RAM it received (a memfd, mapped — not
//! copied) and the same disks, starts it and says `Running`; only then
//! does the source's worker end. If anything fails before `Running`, the
//! source takes its disks back and the guest runs on there; the target
//! keeps nothing.

pub mod outgoing;
pub mod source;
pub mod target;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::supervisor::lock;

/// Where a migration is, as `GET /vms/{name}/migration` and `GET
/// /phone/receive` show it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MigrationStatus {
    /// The VM.
    pub vm: String,
    /// The other phone's address.
    pub peer: String,
    /// listening, connecting, copying, stopped, starting, done, failed or
    /// cancelled.
    pub phase: &'static str,
    /// Pre-copy rounds done (round 0 copies all of RAM).
    pub round: u32,
    /// Bytes of guest pages sent (or received).
    pub sent_bytes: u64,
    /// Bytes the guest dirtied during the last round (still to send).
    pub remaining_bytes: u64,
    /// Send rate of the last round, MB/s.
    pub rate_mbps: f64,
    /// The guest's dirty rate during the last round, MB/s.
    pub dirty_mbps: f64,
    /// From the guest's pause here to its run there, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<f64>,
    /// Source: from the guest's pause to the last byte sent (what QEMU
    /// reports as its downtime), milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_copy_ms: Option<f64>,
    /// From the start to the end, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MigrationStatus {
    /// Whether it has ended (done, failed or cancelled).
    pub fn finished(&self) -> bool {
        matches!(self.phase, "done" | "failed" | "cancelled")
    }
}

/// One migration: its status and its cancel switch.
#[derive(Default)]
pub struct Track {
    /// What it is doing.
    pub status: Mutex<MigrationStatus>,
    /// Set to give up.
    pub cancel: AtomicBool,
}

impl Track {
    /// Updates the status.
    pub fn update(&self, f: impl FnOnce(&mut MigrationStatus)) {
        f(&mut lock(&self.status));
    }

    /// The status now.
    pub fn get(&self) -> MigrationStatus {
        lock(&self.status).clone()
    }
}

/// A phone's migrations: outgoing by VM name, and the one incoming.
#[derive(Default)]
pub struct Migrations {
    /// Outgoing, by VM.
    pub outgoing: Mutex<HashMap<String, Arc<Track>>>,
    /// Incoming (`phone receive`), the latest.
    pub incoming: Mutex<Option<Arc<Track>>>,
}
