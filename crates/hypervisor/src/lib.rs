//! `hypervisor`: the seam between the VMM and whatever runs guest code.
//!
//! The VMM's vCPU loop sees only [`Vcpu`]: run until an exit the VMM must
//! handle ([`VcpuExit`]), read and write the architectural registers, and
//! a [`VcpuHandle`] other threads use to kick it out of guest code or make
//! it drop cached translations. Guest memory accesses that hit devices are
//! served inside `run` through the board's public MMIO dispatch
//! (`Board::mmio_read`/`mmio_write`): the software CPU calls it from its bus
//! in the middle of an instruction, a KVM backend calls it on
//! `KVM_EXIT_MMIO` before re-entering the guest.
//!
//! [`soft::SoftVcpu`] is the implementation on our own AArch64 CPU
//! (`a64::Cpu`), used wherever the host has no ARM virtualization;
//! `kvm::KvmVcpu` (aarch64 hosts only) runs the guest under KVM. [`Accel`]
//! names them, [`choose`] picks one and [`create_vcpus`] builds a VM's vCPUs on the one chosen.

mod accel;
#[cfg(target_arch = "aarch64")]
pub mod kvm;
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
mod page_bits;
pub mod soft;

pub use accel::{choose, create_vcpus, Accel, Backend};

/// A vCPU's whole architectural state: general and FP/SIMD registers,
/// PSTATE, the EL1 system registers and the exclusive monitor. Plain data
/// (serde) in the architecture's terms, so any backend can produce and
/// load it — the software CPU field by field, KVM through its register
/// interface.
pub type VcpuState = a64::CpuState;

/// Why [`Vcpu::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VcpuExit {
    /// A slice of guest time ended, or a kick asked the vCPU out: the VMM
    /// looks at the machine's state and runs it again.
    Yield,
    /// The guest waits for an interrupt (WFI); the PC is past the WFI.
    Wfi,
    /// A firmware call (HVC or SMC: PSCI, SMCCC); arguments in x0..x3,
    /// results go to x0. The PC is past the call.
    FirmwareCall,
    /// The guest asked to power the machine off (a backend that serves
    /// PSCI itself, like KVM, reports it so).
    PowerOff,
    /// The guest asked to reset the machine (likewise).
    Reset,
    /// The guest cannot continue; the report says why, with its registers.
    Fatal(String),
}

/// The registers the VMM reads and writes: general registers, SP, PC and
/// PSTATE (what firmware calls, boot and crash reports need).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreRegs {
    /// X0..X30.
    pub x: [u64; 31],
    /// The stack pointer of the current exception level.
    pub sp: u64,
    /// The program counter.
    pub pc: u64,
    /// PSTATE in SPSR layout (NZCV, DAIF, EL and SP selection).
    pub pstate: u64,
}

/// What other threads may ask of a vCPU while it runs.
pub trait VcpuHandle: Send + Sync {
    /// Makes [`Vcpu::run`] return soon (at the next instruction boundary it
    /// checks) with [`VcpuExit::Yield`].
    fn kick(&self);

    /// Returns once the vCPU holds no translation (or write permission)
    /// cached before this call: it is not running guest code, or it has
    /// dropped them. The dirty log needs this; backends whose dirty
    /// tracking needs no such step return at once. `Err` if the vCPU did
    /// not answer in time.
    fn drop_cached_translations(&self) -> Result<(), String>;
}

/// The guest's own stores to its RAM as a backend tracks them, where our
/// RAM's dirty log cannot see them (under KVM the guest writes natively;
/// our devices' writes are still marked in the RAM's log).
pub trait GuestWriteLog: Send + Sync {
    /// ORs into `log` (one bit per 4 KiB page from the RAM's base, as
    /// `board::GuestRam::take_dirty` lays it out) the pages the guest wrote
    /// since the last call, and starts over. The first call starts the
    /// tracking and adds nothing: what the guest wrote before it is not
    /// known.
    fn take(&self, log: &mut [u64]) -> Result<(), String>;

    /// Stops tracking (it costs the guest write faults); the next
    /// [`GuestWriteLog::take`] starts again.
    fn stop(&self);
}

/// Guest writes a backend turns into host events without leaving guest
/// code (KVM's ioeventfd): a virtio queue kick then costs the vCPU no exit
/// to the VMM.
pub trait IoEvents: Send + Sync {
    /// A non-blocking eventfd the backend signals whenever the guest writes
    /// the 32-bit `value` to MMIO address `addr`; such writes no longer
    /// reach the board (others to `addr` still do).
    fn watch_write(&self, addr: u64, value: u32) -> Result<std::os::fd::OwnedFd, String>;
}

/// A VM's vCPUs and what their backend keeps beside them.
pub struct Vcpus {
    /// One per board CPU, in index order; the first starts at reset.
    pub list: Vec<Box<dyn Vcpu>>,
    /// The guest's own RAM writes, where the backend tracks them (KVM);
    /// `None` where every guest store reaches the RAM's dirty log.
    pub guest_writes: Option<std::sync::Arc<dyn GuestWriteLog>>,
    /// Guest writes the backend can turn into events (KVM); `None` where
    /// every MMIO write reaches the board.
    pub io_events: Option<std::sync::Arc<dyn IoEvents>>,
}

/// One virtual CPU, as the VMM drives it.
pub trait Vcpu: Send {
    /// Runs guest code until an exit the VMM must handle.
    fn run(&mut self) -> VcpuExit;

    /// The core registers.
    fn regs(&self) -> CoreRegs;

    /// Sets the core registers.
    fn set_regs(&mut self, regs: &CoreRegs);

    /// The whole architectural state (call while the vCPU is not running).
    /// `Err` if the backend cannot read it.
    fn state(&self) -> Result<VcpuState, String>;

    /// Loads a whole architectural state, as saved by [`Vcpu::state`] —
    /// restoring a snapshot or receiving a migrated VM. Call while the vCPU
    /// is not running, after the board's state (its clock above all) was
    /// restored. A state that belongs to another vCPU is refused.
    fn set_state(&mut self, state: &VcpuState) -> Result<(), String>;

    /// The vCPU's generic timers and the guest counter now, for a backend
    /// that keeps them itself (KVM); `None` where the board models them
    /// (they are then in the board's saved state already).
    fn timers(&self) -> Result<Option<(board::timer::Timers, u64)>, String> {
        Ok(None)
    }

    /// Loads the timers and sets the guest counter to `counter`, for a
    /// backend that keeps them (restoring; after [`Vcpu::set_state`]).
    fn set_timers(&mut self, timers: &board::timer::Timers, counter: u64) -> Result<(), String> {
        let _ = (timers, counter);
        Ok(())
    }

    /// A handle for other threads.
    fn handle(&self) -> std::sync::Arc<dyn VcpuHandle>;

    /// Resets the vCPU as PSCI CPU_ON leaves it — EL1, MMU off, interrupts
    /// masked, x0 = `context` — at `entry`, for a backend whose PSCI is the
    /// VMM's firmware (the software CPU). A backend that serves PSCI
    /// itself (KVM) never gets the call and refuses it.
    fn power_on(&mut self, entry: u64, context: u64) -> Result<(), String> {
        let _ = (entry, context);
        Err("this backend powers its vCPUs on itself".into())
    }

    /// The vCPU's PSCI power state where the backend keeps it itself (KVM
    /// serves PSCI in the kernel, so a powered-off vCPU waits inside it):
    /// `Some`; `None` where the board's firmware keeps it (the software CPU).
    /// The VMM then runs such a vCPU from the start, and saves and restores
    /// its power state through here.
    fn power_state(&self) -> Result<Option<board::CpuPower>, String> {
        Ok(None)
    }

    /// Sets the power state a backend keeps itself (restoring; after
    /// [`Vcpu::set_state`]): off, on as it is, or powered on at a pending
    /// CPU_ON's entry point. A backend whose power state the board keeps
    /// ignores it.
    fn set_power_state(&mut self, power: board::CpuPower) -> Result<(), String> {
        let _ = power;
        Ok(())
    }

    /// A description of the vCPU's state for a crash report, after `why`.
    fn report(&self, why: &str) -> String;

    /// (instructions retired, exceptions taken), where the backend counts them.
    fn counters(&self) -> (u64, u64);
}
