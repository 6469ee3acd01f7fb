//! What the supervisor says about its VMs: their states, status rows,
//! refusals, and the console hub each VM's output goes through.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::supervisor::lock;

/// Console output kept per VM for a console that attaches later.
const CONSOLE_BACKLOG: usize = 16 << 10;

/// Where a VM is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmState {
    /// Its worker is building the VM.
    Starting,
    /// Its worker runs the guest.
    Running,
    /// Its vCPUs and devices are paused.
    Paused,
    /// It ended in order (powered off, or stopped), or was never started.
    Stopped(String),
    /// It ended badly; the reason says how.
    Crashed(String),
}

impl VmState {
    /// The state's name in the API: starting, running, paused, stopped, crashed.
    pub fn name(&self) -> &'static str {
        match self {
            VmState::Starting => "starting",
            VmState::Running => "running",
            VmState::Paused => "paused",
            VmState::Stopped(_) => "stopped",
            VmState::Crashed(_) => "crashed",
        }
    }

    /// Whether a worker process exists for it.
    pub fn is_live(&self) -> bool {
        matches!(self, VmState::Starting | VmState::Running | VmState::Paused)
    }
}

/// One VM as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct VmStatus {
    /// The VM's name.
    pub name: String,
    /// open, corporate or trusted.
    pub role: &'static str,
    /// starting, running, paused, stopped or crashed.
    pub state: &'static str,
    /// How it ended, when it is stopped or crashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its worker's process ID while it has one.
    pub pid: Option<u32>,
    /// Its vsock context ID.
    pub cid: u64,
    /// Host CPU its worker used over the last second, in percent of a core.
    pub cpu_percent: f64,
    /// Its worker's resident memory in bytes.
    pub rss_bytes: u64,
    /// Its guest RAM in bytes.
    pub mem_bytes: u64,
    /// Bytes in its balloon (given back to the host).
    pub balloon_bytes: u64,
    /// How many times it was started again after a crash or reset.
    pub restarts: u32,
    /// Whether its console is the one in the foreground.
    pub foreground: bool,
    /// Its vCPU limit in percent of a core, if limited.
    pub cpu_quota: Option<u32>,
}

/// The whole phone as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PhoneStatus {
    /// The phone's name.
    pub phone: String,
    /// The supervisor's process ID.
    pub supervisor_pid: u32,
    /// Its VMs, in manifest order.
    pub vms: Vec<VmStatus>,
}

/// Why a request to the supervisor was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneError {
    /// No such VM.
    NotFound(String),
    /// Not possible in the VM's or phone's current state.
    Conflict(String),
    /// The request itself is wrong.
    BadRequest(String),
    /// The supervisor could not do it.
    Failed(String),
    /// Never allowed for this VM (a trusted VM's protections).
    Forbidden(String),
}

impl std::fmt::Display for PhoneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (PhoneError::NotFound(m)
        | PhoneError::Conflict(m)
        | PhoneError::BadRequest(m)
        | PhoneError::Failed(m)
        | PhoneError::Forbidden(m)) = self;
        f.write_str(m)
    }
}

/// One VM's console: recent output for late attachers, and live output.
pub struct ConsoleHub {
    backlog: Mutex<VecDeque<u8>>,
    live: broadcast::Sender<Arc<[u8]>>,
}

impl ConsoleHub {
    pub(crate) fn new() -> Self {
        ConsoleHub {
            backlog: Mutex::new(VecDeque::new()),
            live: broadcast::channel(4096).0,
        }
    }

    pub(crate) fn publish(&self, bytes: &[u8]) {
        let mut b = lock(&self.backlog);
        b.extend(bytes);
        let excess = b.len().saturating_sub(CONSOLE_BACKLOG);
        b.drain(..excess);
        drop(b);
        let _ = self.live.send(Arc::from(bytes));
    }

    /// The recent output and a receiver of what follows.
    pub fn subscribe(&self) -> (Vec<u8>, broadcast::Receiver<Arc<[u8]>>) {
        let rx = self.live.subscribe();
        let recent = lock(&self.backlog).iter().copied().collect();
        (recent, rx)
    }
}
