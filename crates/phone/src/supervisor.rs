//! The supervisor's core: one worker process per VM of the phone, their
//! states, and the restart policy. A worker that ends is recorded with
//! why (its exit code or the signal that killed it); a crashed one —
//! guest crash, VMM panic, a forbidden system call, SIGKILL — is started
//! again when its VM's policy says `on-crash`, and a guest reset always
//! starts a fresh worker. Nothing another worker does reaches this one.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::manifest::{Manifest, Restart};
use crate::worker::exit;

/// Most restarts of one VM within [`RESTART_WINDOW`] before the supervisor
/// gives up on it (a VM that crashes at once would otherwise spin).
pub const MAX_RESTARTS: usize = 5;
/// See [`MAX_RESTARTS`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Where a VM is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmState {
    /// Its worker runs.
    Running,
    /// It ended in order (powered off, or stopped by the supervisor).
    Stopped(String),
    /// It ended badly; the reason says how.
    Crashed(String),
}

/// One VM as the supervisor sees it.
#[derive(Debug)]
pub struct VmStatus {
    /// The VM's name.
    pub name: String,
    /// Its state.
    pub state: VmState,
    /// Its worker's process ID while it runs.
    pub pid: Option<u32>,
    /// How many times it was started again.
    pub restarts: u32,
}

struct Slot {
    name: String,
    restart: Restart,
    child: Option<Child>,
    state: VmState,
    restarts: u32,
    recent: Vec<Instant>,
}

/// Starts a VM's worker: given the VM's name, the command to run.
pub type WorkerCommand = Box<dyn Fn(&str) -> Command + Send>;

/// The workers of one phone.
pub struct Supervisor {
    slots: Vec<Slot>,
    command: WorkerCommand,
}

/// Why a worker ended, and whether that is a crash.
fn judge(status: ExitStatus) -> (bool, String) {
    if let Some(sig) = status.signal() {
        let why = match sig {
            libc::SIGSYS => "killed by SIGSYS (a forbidden system call)".to_string(),
            libc::SIGKILL => "killed by SIGKILL".to_string(),
            libc::SIGSEGV => "killed by SIGSEGV".to_string(),
            libc::SIGABRT => "killed by SIGABRT (the VMM aborted)".to_string(),
            other => format!("killed by signal {other}"),
        };
        return (true, why);
    }
    match status.code().map(|c| c as u8) {
        Some(exit::POWERED_OFF) => (false, "powered off".into()),
        Some(exit::STOPPED) => (false, "stopped".into()),
        Some(exit::CRASHED) => (true, "the guest crashed".into()),
        Some(exit::RESET) => (true, "the guest reset".into()),
        Some(exit::FAILED) => (false, "could not start (see the phone's log)".into()),
        other => (true, format!("exited with status {other:?}")),
    }
}

impl Supervisor {
    /// Starts a worker for every VM of `manifest`.
    pub fn start(manifest: &Manifest, command: WorkerCommand) -> Result<Supervisor, String> {
        let mut s = Supervisor {
            slots: manifest
                .vms
                .iter()
                .map(|v| Slot {
                    name: v.name.clone(),
                    restart: v.restart,
                    child: None,
                    state: VmState::Stopped("not started".into()),
                    restarts: 0,
                    recent: Vec::new(),
                })
                .collect(),
            command,
        };
        for i in 0..s.slots.len() {
            s.spawn(i)?;
        }
        Ok(s)
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let slot = &mut self.slots[i];
        let child = (self.command)(&slot.name)
            .spawn()
            .map_err(|e| format!("cannot start the worker of {}: {e}", slot.name))?;
        slot.child = Some(child);
        slot.state = VmState::Running;
        Ok(())
    }

    /// Looks at every worker: records the ones that ended and starts again
    /// those the policy says to. Call periodically (or on SIGCHLD).
    pub fn poll(&mut self) {
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(child) = slot.child.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = child.try_wait() else {
                continue;
            };
            slot.child = None;
            let (crash, why) = judge(status);
            let reset = status.code() == Some(exit::RESET as i32);
            if !crash {
                slot.state = VmState::Stopped(why);
                continue;
            }
            let now = Instant::now();
            slot.recent
                .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
            let wanted = reset || slot.restart == Restart::OnCrash;
            if wanted && slot.recent.len() < MAX_RESTARTS {
                slot.recent.push(now);
                slot.restarts += 1;
                if let Err(e) = self.spawn(i) {
                    self.slots[i].state = VmState::Crashed(format!("{why}; {e}"));
                }
            } else if wanted {
                slot.state = VmState::Crashed(format!(
                    "{why}; restarted {MAX_RESTARTS} times within {} s, given up",
                    RESTART_WINDOW.as_secs()
                ));
            } else {
                slot.state = VmState::Crashed(why);
            }
        }
    }

    /// Every VM's status, in manifest order.
    pub fn status(&self) -> Vec<VmStatus> {
        self.slots
            .iter()
            .map(|s| VmStatus {
                name: s.name.clone(),
                state: s.state.clone(),
                pid: s.child.as_ref().map(Child::id),
                restarts: s.restarts,
            })
            .collect()
    }

    /// Stops every worker in order (SIGTERM: the guest is stopped and its
    /// disks flushed), killing those still running after `grace`. Returns
    /// once every worker process is gone.
    pub fn stop_all(&mut self, grace: Duration) {
        for slot in &mut self.slots {
            if let Some(child) = &slot.child {
                // SAFETY: signalling our own child by its PID.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + grace;
        for slot in &mut self.slots {
            let Some(mut child) = slot.child.take() else {
                continue;
            };
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        break child.wait().ok();
                    }
                }
            };
            slot.state = match status.map(judge) {
                Some((false, why)) => VmState::Stopped(why),
                Some((true, why)) => VmState::Crashed(why),
                None => VmState::Crashed("lost".into()),
            };
        }
    }
}

impl Drop for Supervisor {
    /// No worker outlives its supervisor.
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(10));
    }
}
