//! The interrupt controller half of the hypervisor seam: the GIC and each
//! CPU's timers behind one lock of their own (no device access takes it,
//! except to move its own interrupt line), the vCPUs' interrupt lines and
//! sleeps, and [`IrqLine`], the handle a device drives its interrupt with.
//!
//! Devices push: a device (or its I/O thread) that changes its interrupt
//! status updates its line, and the controller re-evaluates the CPUs'
//! IRQ lines and wakes a sleeping vCPU at once. Nothing polls devices for
//! their level. With an in-kernel irqchip (KVM), [`IrqChip::use_kernel_irqchip`]
//! turns an [`IrqLine`] update into the kernel's line call, and this model is
//! not used.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use a64::Signals;

/// How the controller reaches one vCPU, whatever backend runs it.
pub trait CpuWires: Send + Sync {
    /// Sets the CPU's IRQ input (the software CPU's line; a backend with
    /// its own interrupt controller ignores it).
    fn set_irq(&self, level: bool);
    /// Asks the CPU to leave guest code soon (pauses, power changes).
    fn request_stop(&self);
}

impl CpuWires for Signals {
    fn set_irq(&self, level: bool) {
        Signals::set_irq(self, level);
    }
    fn request_stop(&self) {
        Signals::request_stop(self);
    }
}

/// An interrupt controller outside this model (KVM's in-kernel vGIC).
pub trait KernelIrqchip: Send + Sync {
    /// Drives the line of SPI `intid` (32 and up) to `level`.
    fn set_line(&self, intid: u32, level: bool);
    /// Copies the kernel controller's state into `gic` (saving the VM).
    fn save(&self, gic: &mut Gic) -> Result<(), String>;
    /// Loads `gic` into the kernel controller (restoring the VM).
    fn restore(&self, gic: &Gic) -> Result<(), String>;
    /// The frequency of the counter the guest reads (the host's CNTFRQ).
    fn counter_hz(&self) -> u64;
}

use crate::gic::Gic;
use crate::timer::Timers;

/// What the controller's lock guards: the GIC and every CPU's timers.
pub(crate) struct IntcState {
    /// The interrupt controller.
    pub gic: Gic,
    /// Each CPU's physical and virtual timer.
    pub timers: Vec<Timers>,
}

/// How the controller reaches a vCPU: its interrupt lines and its sleep.
struct CpuLink {
    signals: Mutex<Option<Arc<dyn CpuWires>>>,
    wake: Mutex<bool>,
    wake_cv: Condvar,
}

/// The interrupt controller and the vCPUs' lines.
pub struct IrqChip {
    state: Mutex<IntcState>,
    cpus: Vec<CpuLink>,
    /// Where SPI levels go instead of the model, when the kernel has the GIC.
    kernel: OnceLock<Box<dyn KernelIrqchip>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it would be a VMM bug; keep going with the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl IrqChip {
    /// A controller for `cpus` CPUs with `spis` shared interrupts.
    pub(crate) fn new(cpus: usize, spis: u32) -> Self {
        IrqChip {
            state: Mutex::new(IntcState {
                gic: Gic::new(cpus, spis),
                timers: vec![Timers::default(); cpus],
            }),
            cpus: (0..cpus)
                .map(|_| CpuLink {
                    signals: Mutex::new(None),
                    wake: Mutex::new(false),
                    wake_cv: Condvar::new(),
                })
                .collect(),
            kernel: OnceLock::new(),
        }
    }

    /// Sends every device line's level to `chip` from now on instead of the
    /// model (KVM's vGIC). Set once, before any device runs; `Err` if set.
    pub fn use_kernel_irqchip(&self, chip: Box<dyn KernelIrqchip>) -> Result<(), String> {
        self.kernel
            .set(chip)
            .map_err(|_| "the interrupt controller is already in the kernel".to_string())
    }

    /// The kernel's interrupt controller, when it has it.
    pub(crate) fn kernel(&self) -> Option<&dyn KernelIrqchip> {
        self.kernel.get().map(|k| k.as_ref())
    }

    /// Number of CPUs.
    pub fn num_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// Locks the GIC and timers. Call [`IrqChip::update`] before unlocking
    /// after a change that may move a CPU's IRQ line.
    pub(crate) fn lock(&self) -> MutexGuard<'_, IntcState> {
        lock(&self.state)
    }

    /// Connects CPU `index`'s interrupt lines.
    pub(crate) fn connect_cpu(&self, index: usize, signals: Arc<dyn CpuWires>) {
        *lock(&self.cpus[index].signals) = Some(signals);
    }

    /// Sets each CPU's IRQ line from the GIC and wakes those with an
    /// interrupt pending.
    pub(crate) fn update(&self, s: &mut IntcState) {
        s.gic.take_kicks();
        for (i, c) in self.cpus.iter().enumerate() {
            let pending = s.gic.irq_pending(i);
            if let Some(sig) = lock(&c.signals).as_ref() {
                sig.set_irq(pending);
            }
            if pending {
                self.wake(i);
            }
        }
    }

    /// Asks CPU `cpu` to leave guest code at its next block boundary.
    pub(crate) fn kick(&self, cpu: usize) {
        if let Some(s) = lock(&self.cpus[cpu].signals).as_ref() {
            s.request_stop();
        }
    }

    /// Ends CPU `cpu`'s WFI sleep (or the next one, if it is not asleep).
    pub(crate) fn wake(&self, cpu: usize) {
        let c = &self.cpus[cpu];
        *lock(&c.wake) = true;
        c.wake_cv.notify_all();
    }

    /// Sleeps CPU `cpu` until woken or `limit` passed.
    pub(crate) fn sleep(&self, cpu: usize, limit: Duration) {
        let c = &self.cpus[cpu];
        let mut woken = lock(&c.wake);
        if !*woken {
            woken = c
                .wake_cv
                .wait_timeout(woken, limit)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *woken = false;
    }

    /// The line of interrupt `intid` (an SPI: 32 and up) for a device to drive.
    pub fn line(self: &Arc<Self>, intid: u32) -> IrqLine {
        IrqLine {
            chip: self.clone(),
            intid,
        }
    }
}

/// One device's interrupt line into the controller; cheap to clone and
/// usable from any thread (the device's I/O thread, the vCPU's).
#[derive(Clone)]
pub struct IrqLine {
    chip: Arc<IrqChip>,
    intid: u32,
}

impl IrqLine {
    /// Drives the line to the level `level` returns, evaluated under the
    /// controller's lock: when two threads update one device's line at
    /// once (an I/O thread raising it, a vCPU's acknowledgement lowering
    /// it), the one that comes last reads the device's latest status, so
    /// the line never stays at a stale level.
    pub fn update(&self, level: impl FnOnce() -> bool) {
        let mut s = self.chip.lock();
        let level = level();
        if let Some(kernel) = self.chip.kernel.get() {
            // Still under the lock: the last level evaluated is the last sent.
            return kernel.set_line(self.intid, level);
        }
        s.gic.set_level(self.intid, 0, level);
        self.chip.update(&mut s);
    }

    /// The interrupt ID the line drives.
    pub fn intid(&self) -> u32 {
        self.intid
    }
}
