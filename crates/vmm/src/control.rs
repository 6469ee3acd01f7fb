//! [`VmControl`]: what other threads may do to a running VM — pause,
//! resume, save its state, restore one — without reaching into the board.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use board::{Board, GuestRam, Power};
use hypervisor::Vcpu;
use virtio::balloon::BalloonControl;
use virtio::MmioTransport;

use crate::quota::CpuQuota;
use crate::state::VmState;
use crate::vm::lock_vcpu;

/// A vCPU shared between the thread that runs it and a state save.
pub(crate) type SharedVcpu = Arc<Mutex<Box<dyn Vcpu>>>;

/// A vCPU's counters as its loop last published them (readable while it runs).
#[derive(Default)]
pub(crate) struct VcpuCounters {
    instructions: std::sync::atomic::AtomicU64,
    exceptions: std::sync::atomic::AtomicU64,
}

impl VcpuCounters {
    /// Publishes `vcpu`'s counters (its loop calls this after each exit).
    pub(crate) fn publish(&self, vcpu: &dyn Vcpu) {
        let (i, e) = vcpu.counters();
        self.instructions.store(i, Ordering::Relaxed);
        self.exceptions.store(e, Ordering::Relaxed);
    }
}

/// Pauses, resumes, saves and restores a VM from any thread (cheap to
/// clone). It does not keep the VM's vCPUs and devices alive: once the
/// [`crate::Vm`] is dropped (closing its disks and sockets), saving and
/// restoring through it say the VM is gone.
#[derive(Clone)]
pub struct VmControl {
    board: Arc<Board>,
    running: Arc<AtomicUsize>,
    vcpus: Vec<Weak<Mutex<Box<dyn Vcpu>>>>,
    transports: Vec<Weak<Mutex<MmioTransport>>>,
    balloon: Option<BalloonControl>,
    counters: Vec<Arc<VcpuCounters>>,
    quota: CpuQuota,
}

/// Guest RAM the balloon never takes: the guest must keep running.
pub const BALLOON_RESERVE: u64 = 32 << 20;

/// What a VM's balloon reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalloonReport {
    /// The requested balloon size in bytes.
    pub target: u64,
    /// Bytes the guest says are in the balloon.
    pub actual: u64,
    /// Bytes given back to the host by inflation.
    pub inflated: u64,
    /// Bytes given back to the host by free page reporting.
    pub reported: u64,
    /// The guest's latest memory statistics, (tag, value) pairs.
    pub stats: Vec<(u16, u64)>,
}

/// A VM's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmStats {
    /// Guest RAM in bytes.
    pub mem_bytes: u64,
    /// Instructions retired by all vCPUs (where the backend counts them).
    pub instructions: u64,
    /// Exceptions taken by all vCPUs.
    pub exceptions: u64,
    /// Whether the VM is paused.
    pub paused: bool,
}

/// The VM's vCPUs and devices, while it exists.
struct Parts {
    vcpus: Vec<SharedVcpu>,
    transports: Vec<Arc<Mutex<MmioTransport>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl VmControl {
    pub(crate) fn new(
        board: Arc<Board>,
        running: Arc<AtomicUsize>,
        vcpus: Vec<SharedVcpu>,
        transports: Vec<Arc<Mutex<MmioTransport>>>,
        balloon: Option<BalloonControl>,
        counters: Vec<Arc<VcpuCounters>>,
        quota: CpuQuota,
    ) -> Self {
        VmControl {
            board,
            running,
            vcpus: vcpus.iter().map(Arc::downgrade).collect(),
            transports: transports.iter().map(Arc::downgrade).collect(),
            balloon,
            counters,
            quota,
        }
    }

    fn balloon_control(&self) -> Result<&BalloonControl, String> {
        self.balloon
            .as_ref()
            .ok_or_else(|| "the VM has no balloon (start it with --balloon)".to_string())
    }

    /// Limits each vCPU to `percent` of a host core, or lifts the limit.
    pub fn set_cpu_quota(&self, percent: Option<u32>) {
        self.quota.set(percent);
    }

    /// The vCPUs' CPU limit in percent of a host core, if any.
    pub fn cpu_quota(&self) -> Option<u32> {
        self.quota.get()
    }

    /// Asks the guest to give up memory until its balloon holds `bytes`
    /// (at most guest RAM less [`BALLOON_RESERVE`]).
    pub fn set_balloon_target(&self, bytes: u64) -> Result<(), String> {
        let b = self.balloon_control()?;
        let mem = self.board.ram.size();
        let most = mem.saturating_sub(BALLOON_RESERVE);
        if bytes > most {
            return Err(format!(
                "balloon target {} MiB is more than the guest can give: at most {} MiB of its {} MiB",
                bytes >> 20,
                most >> 20,
                mem >> 20
            ));
        }
        b.set_target(bytes);
        self.board.poll_devices();
        Ok(())
    }

    /// What the balloon holds, has given back, and the guest's statistics.
    pub fn balloon(&self) -> Result<BalloonReport, String> {
        let b = self.balloon_control()?;
        let (inflated, reported) = b.returned_bytes();
        Ok(BalloonReport {
            target: b.target_bytes(),
            actual: b.actual_bytes(),
            inflated,
            reported,
            stats: b.stats(),
        })
    }

    /// The VM's counters, as the vCPUs last published them (after each
    /// slice: they lag a running guest by at most one).
    pub fn stats(&self) -> VmStats {
        let sum = |f: fn(&VcpuCounters) -> u64| self.counters.iter().map(|c| f(c)).sum();
        VmStats {
            mem_bytes: self.board.ram.size(),
            instructions: sum(|c| c.instructions.load(Ordering::Relaxed)),
            exceptions: sum(|c| c.exceptions.load(Ordering::Relaxed)),
            paused: self.is_paused(),
        }
    }

    fn parts(&self) -> Result<Parts, String> {
        let gone = || "the VM is gone".to_string();
        Ok(Parts {
            vcpus: self
                .vcpus
                .iter()
                .map(|v| v.upgrade().ok_or_else(gone))
                .collect::<Result<_, _>>()?,
            transports: self
                .transports
                .iter()
                .map(|t| t.upgrade().ok_or_else(gone))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Pauses the VM: returns once every running vCPU is parked at an
    /// instruction boundary and devices have finished the guest I/O they had
    /// in flight; from then until [`VmControl::resume`] neither guest code
    /// nor a device changes guest memory. Host events (network frames,
    /// console input, vsock data) wait in their devices' host-side queues.
    /// Returns at once if the VM has stopped.
    pub fn pause(&self) {
        let running = self.running.clone();
        self.board.pause(move || running.load(Ordering::Acquire));
    }

    /// Resumes a paused VM.
    pub fn resume(&self) {
        self.board.resume();
    }

    /// Whether the VM is paused.
    pub fn is_paused(&self) -> bool {
        self.board.pause.paused()
    }

    /// The guest's RAM (to save it with [`GuestRam::save_to`] while paused).
    pub fn ram(&self) -> Arc<GuestRam> {
        self.board.ram.clone()
    }

    /// Whether no guest code or device can run: paused, or never started.
    fn quiet(&self) -> bool {
        self.is_paused() || self.running.load(Ordering::Acquire) == 0
    }

    /// The VM's whole guest-visible state but its RAM. The VM must be
    /// paused (or not running): otherwise the state would not be consistent.
    pub fn save_state(&self) -> Result<VmState, String> {
        if !self.quiet() {
            return Err("pause the VM before saving its state".into());
        }
        if self.board.power() != Power::On {
            return Err("the VM has stopped; there is no running guest to save".into());
        }
        self.capture()
    }

    /// The state as it is now (the caller made sure the VM is quiet).
    fn capture(&self) -> Result<VmState, String> {
        let parts = self.parts()?;
        let devices = parts
            .transports
            .iter()
            .map(|t| lock(t).save_state())
            .collect::<Result<Vec<_>, _>>()?;
        // The board first: its clock is what the vCPUs' counters read.
        let mut board = self.board.save_state()?;
        let mut vcpus = Vec::with_capacity(parts.vcpus.len());
        for (i, v) in parts.vcpus.iter().enumerate() {
            let v = lock_vcpu(v);
            vcpus.push(v.state()?);
            // A backend that serves PSCI (KVM) has the power state.
            if let Some(power) = v.power_state()? {
                board.cpu_power[i] = power;
            }
            // A backend that keeps the timers (KVM) has the counter too.
            if let Some((timers, counter)) = v.timers()? {
                board.timers[i] = timers;
                if i == 0 {
                    board.counter = counter;
                }
            }
        }
        Ok(VmState {
            board,
            vcpus,
            devices,
        })
    }

    /// Gives up the host locks on the VM's disks (flushed first), or takes
    /// them back: a paused VM hands its disks to the phone it migrates to,
    /// and takes them back if the move fails. The VM must be paused.
    pub fn set_disk_locks(&self, held: bool) -> Result<(), String> {
        if !self.quiet() {
            return Err("pause the VM before handing over its disks".into());
        }
        for t in &self.parts()?.transports {
            lock(t).set_host_locks(held)?;
        }
        Ok(())
    }

    /// Loads `state` into this VM (built from the same configuration as the
    /// saved one, its RAM already loaded). The VM must be paused or not yet
    /// running. A state that does not fit — other CPU count, RAM size or
    /// devices — is refused and the VM keeps the state it had.
    pub fn restore_state(&self, state: &VmState) -> Result<(), String> {
        if !self.quiet() {
            return Err("pause the VM before restoring a state into it".into());
        }
        let before = self.capture()?;
        let mut changed = false;
        self.apply(state, &mut changed).inspect_err(|_| {
            // Put back what was changed before the part that refused (a
            // refusal before any change leaves the VM alone).
            if changed {
                let _ = self.apply(&before, &mut false);
            }
        })?;
        // Devices with work due (a vsock reset event, say) get to it.
        self.board.poll_devices();
        Ok(())
    }

    /// Loads `state`; `changed` says whether anything was, when it fails.
    fn apply(&self, state: &VmState, changed: &mut bool) -> Result<(), String> {
        let parts = self.parts()?;
        if state.vcpus.len() != parts.vcpus.len() {
            return Err(format!(
                "the state has {} vCPUs, this VM {}",
                state.vcpus.len(),
                parts.vcpus.len()
            ));
        }
        if state.devices.len() != parts.transports.len() {
            return Err(format!(
                "the state has {} virtio devices, this VM {} (the configuration must list the same devices)",
                state.devices.len(),
                parts.transports.len()
            ));
        }
        // The board checks everything before it changes anything.
        self.board.restore_state(&state.board)?;
        *changed = true;
        for (i, (saved, v)) in state.vcpus.iter().zip(&parts.vcpus).enumerate() {
            let mut v = lock_vcpu(v);
            v.set_state(saved).map_err(|e| format!("vCPU {i}: {e}"))?;
            v.set_timers(&state.board.timers[i], state.board.counter)
                .map_err(|e| format!("vCPU {i}'s timers: {e}"))?;
            v.set_power_state(state.board.cpu_power[i])
                .map_err(|e| format!("vCPU {i}'s power state: {e}"))?;
        }
        for (i, (saved, t)) in state.devices.iter().zip(&parts.transports).enumerate() {
            lock(t)
                .restore_state(saved)
                .map_err(|e| format!("virtio device {i}: {e}"))?;
        }
        Ok(())
    }
}
