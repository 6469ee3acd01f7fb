//! What the supervisor keeps about each VM of its phone: a [`Slot`].

use std::os::fd::OwnedFd;
use std::time::Instant;

use crate::protocol::Report;
use crate::status::VmState;
use crate::supervisor::Worker;

/// Everything the supervisor keeps about one VM.
pub(crate) struct Slot {
    pub(crate) state: VmState,
    pub(crate) worker: Option<Worker>,
    pub(crate) restarts: u32,
    pub(crate) recent: Vec<Instant>,
    pub(crate) report: Option<Report>,
    /// (CPU ticks, when) at the last sample.
    pub(crate) cpu_sample: Option<(u64, Instant)>,
    pub(crate) cpu_percent: f64,
    pub(crate) rss_bytes: u64,
    /// Stopped by request: a worker ending now is not restarted.
    pub(crate) stopping: bool,
    /// The balloon target the API set.
    pub(crate) balloon_base: u64,
    /// What the memory manager added to it under pressure.
    pub(crate) reclaimed: u64,
    /// A snapshot asked of the worker, and its answer.
    pub(crate) snapshot: SnapshotReply,
    /// Start the next worker from this snapshot directory (once).
    pub(crate) restore_from: Option<std::path::PathBuf>,
    /// Start the next worker from a migration's state and RAM (once).
    pub(crate) incoming: Option<(Vec<u8>, OwnedFd)>,
    /// The VM left for another phone (where to): it ended here for good.
    pub(crate) migrated_to: Option<String>,
}

impl Slot {
    /// A VM not started yet.
    pub(crate) fn new() -> Slot {
        Slot {
            state: VmState::Stopped("not started".into()),
            worker: None,
            restarts: 0,
            recent: Vec::new(),
            report: None,
            cpu_sample: None,
            cpu_percent: 0.0,
            rss_bytes: 0,
            stopping: false,
            balloon_base: 0,
            reclaimed: 0,
            snapshot: SnapshotReply::None,
            restore_from: None,
            incoming: None,
            migrated_to: None,
        }
    }
}

/// A worker's answer to [`ToWorker::Snapshot`], as the supervisor waits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum SnapshotReply {
    /// None asked.
    #[default]
    None,
    /// Asked, not answered yet.
    Pending,
    /// The state bytes and RAM bytes written, or why it failed.
    Done(Result<(Vec<u8>, u64), String>),
}
