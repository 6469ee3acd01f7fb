//! What the API asks of one VM: start, stop, pause, resume, switch to the
//! foreground, set its balloon.

use std::time::Duration;

use crate::memory;
use crate::protocol::ToWorker;
use crate::supervisor::{lock, PhoneError, Supervisor, Table, VmState, STOP_GRACE};

impl Supervisor {
    /// Starts VM `name`, if the phone's memory budget has room for it.
    pub fn start_vm(&self, name: &str) -> Result<(), PhoneError> {
        let i = self.shared.index(name)?;
        let m = self.shared.manifest();
        let mut t = lock(&self.shared.table);
        if t.slots[i].state.is_live() {
            return Err(PhoneError::Conflict(format!(
                "VM {name} is already running"
            )));
        }
        let used: u64 = t
            .slots
            .iter()
            .zip(&m.vms)
            .filter(|(s, _)| s.state.is_live())
            .map(|(_, v)| v.config.mem)
            .sum();
        let need = m.vms[i].config.mem;
        if used + need > m.memory {
            return Err(PhoneError::Conflict(format!(
                "VM {name} needs {} MiB but only {} MiB of the phone's {} MiB budget are free",
                need >> 20,
                (m.memory - used.min(m.memory)) >> 20,
                m.memory >> 20
            )));
        }
        t.slots[i].recent.clear();
        self.shared.spawn(&mut t, i).map_err(PhoneError::Failed)
    }

    /// Stops VM `name` in order (SIGTERM: the guest is stopped, its disks
    /// flushed), killing it after [`STOP_GRACE`]; returns once it is gone.
    pub fn stop_vm(&self, name: &str) -> Result<(), PhoneError> {
        let i = self.shared.index(name)?;
        let pid = {
            let mut t = lock(&self.shared.table);
            let slot = &mut t.slots[i];
            let Some(w) = &slot.worker else {
                return Err(PhoneError::Conflict(format!("VM {name} is not running")));
            };
            slot.stopping = true;
            w.child.id()
        };
        self.shared.log(&format!("VM {name}: stopping"));
        // SAFETY: signalling our own child by its PID (not yet reaped: the
        // slot still holds it).
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let gone = |t: &Table| {
            t.slots[i]
                .worker
                .as_ref()
                .is_none_or(|w| w.child.id() != pid)
        };
        if !self.shared.wait_until(STOP_GRACE, gone) {
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            self.shared.wait_until(Duration::from_secs(5), gone);
        }
        Ok(())
    }

    fn pause_or_resume(&self, name: &str, pause: bool) -> Result<(), PhoneError> {
        let i = self.shared.index(name)?;
        if lock(&self.shared.table).slots[i].state == VmState::Starting {
            return Err(PhoneError::Conflict(format!("VM {name} is still starting")));
        }
        let command = if pause {
            ToWorker::Pause
        } else {
            ToWorker::Resume
        };
        self.shared.tell(i, &command)?;
        let want = if pause {
            VmState::Paused
        } else {
            VmState::Running
        };
        if self
            .shared
            .wait_until(Duration::from_secs(10), |t| t.slots[i].state == want)
        {
            self.shared.log(&format!(
                "VM {name}: {}",
                if pause { "paused" } else { "resumed" }
            ));
            Ok(())
        } else {
            Err(PhoneError::Failed(format!(
                "VM {name} did not answer the {} in time",
                if pause { "pause" } else { "resume" }
            )))
        }
    }

    /// Pauses VM `name` (no host CPU until it is resumed).
    pub fn pause_vm(&self, name: &str) -> Result<(), PhoneError> {
        self.pause_or_resume(name, true)
    }

    /// Resumes VM `name`.
    pub fn resume_vm(&self, name: &str) -> Result<(), PhoneError> {
        self.pause_or_resume(name, false)
    }

    /// Brings VM `name` to the foreground: its console is the one `phone
    /// up` shows, its vCPUs run without a quota and its balloon is let go;
    /// the VM it replaces goes under the background quota.
    pub fn switch_to(&self, name: &str) -> Result<(), PhoneError> {
        let i = self.shared.index(name)?;
        let old = {
            let mut t = lock(&self.shared.table);
            std::mem::replace(&mut t.foreground, i)
        };
        self.shared.foreground.send_replace(i);
        if old != i {
            self.shared.log(&format!(
                "foreground: {} -> {name}",
                self.shared.manifest().vms[old].name
            ));
            let _ = self
                .shared
                .tell(old, &ToWorker::SetCpuQuota(self.shared.quota_for(false)));
        }
        let _ = self
            .shared
            .tell(i, &ToWorker::SetCpuQuota(self.shared.quota_for(true)));
        memory::foreground_changed(&self.shared, i);
        Ok(())
    }

    /// Sets VM `name`'s balloon target in bytes.
    pub fn set_balloon(&self, name: &str, bytes: u64) -> Result<(), PhoneError> {
        let i = self.shared.index(name)?;
        if !self.shared.manifest().vms[i].config.balloon {
            return Err(PhoneError::Conflict(format!("VM {name} has no balloon")));
        }
        memory::set_target(&self.shared, i, bytes)
    }
}
