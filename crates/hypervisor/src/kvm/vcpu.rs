//! [`KvmVcpu`]: one vCPU under KVM behind the [`Vcpu`] seam.

use std::sync::Arc;

use a64::CpuState;
use board::timer::Timers;
use board::CpuPower;
use board::{Board, CpuWires};
use kvm_bindings::{
    kvm_mp_state, KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_STOPPED, KVM_SYSTEM_EVENT_RESET,
    KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit as KvmExit, VcpuFd};

use super::kick::Kicker;
use super::regs;
use super::KvmShared;
use crate::{CoreRegs, Vcpu, VcpuExit, VcpuHandle};

/// PSTATE bits `set_regs` takes from the caller: NZCV and DAIF.
const NZCV: u64 = 0xf000_0000;
const DAIF: u64 = 0x3c0;
/// PSTATE.M for EL1 using SP_EL1.
const EL1H: u64 = 0b0101;

/// One vCPU under KVM.
pub struct KvmVcpu {
    fd: VcpuFd,
    index: usize,
    board: Arc<Board>,
    handle: Arc<KvmHandle>,
    /// Keeps the VM (and its vGIC) open as long as a vCPU lives.
    _vm: Arc<KvmShared>,
    /// Exits served inside `run` (MMIO), for statistics.
    exits: u64,
    /// The features this vCPU presents.
    own_id: a64::IdRegisters,
    /// The features the guest was offered at boot, when it booted on
    /// another CPU (a restored state): carried into the next save.
    boot_id: Option<a64::IdRegisters>,
}

impl KvmVcpu {
    pub(crate) fn new(
        fd: VcpuFd,
        index: usize,
        board: Arc<Board>,
        vm: Arc<KvmShared>,
    ) -> Result<Self, String> {
        let handle = Arc::new(KvmHandle {
            kicker: Kicker::new(),
        });
        board.connect_cpu(index, handle.clone());
        let own_id = regs::id_registers(&fd)?;
        Ok(KvmVcpu {
            own_id,
            boot_id: None,
            fd,
            index,
            board,
            handle,
            _vm: vm,
            exits: 0,
        })
    }

    /// Runs until an exit the VMM handles; MMIO is served here.
    fn run_guest(&mut self) -> VcpuExit {
        let KvmVcpu {
            fd,
            board,
            handle,
            exits,
            ..
        } = self;
        // An MMIO access is complete (its load's register written, the PC
        // past it) only once KVM_RUN is entered again.
        let mut mmio_served = false;
        loop {
            fd.set_kvm_immediate_exit(0);
            if handle.kicker.take() {
                if mmio_served {
                    // Finish it without running guest code, so the state
                    // read next (a snapshot, a migration) is consistent.
                    fd.set_kvm_immediate_exit(1);
                    let _ = fd.run();
                    fd.set_kvm_immediate_exit(0);
                }
                return VcpuExit::Yield;
            }
            let exit = fd.run();
            *exits += 1;
            mmio_served = matches!(exit, Ok(KvmExit::MmioRead(..) | KvmExit::MmioWrite(..)));
            match exit {
                Ok(KvmExit::MmioRead(addr, data)) => {
                    // Nothing mapped there reads as zero (as on QEMU's virt).
                    let value = board.mmio_read(addr, data.len() as u8).unwrap_or(0);
                    let n = data.len().min(8);
                    data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
                }
                Ok(KvmExit::MmioWrite(addr, data)) => {
                    let mut b = [0u8; 8];
                    let n = data.len().min(8);
                    b[..n].copy_from_slice(&data[..n]);
                    let _ = board.mmio_write(addr, n as u8, u64::from_le_bytes(b));
                }
                Ok(KvmExit::SystemEvent(kind, _)) => {
                    return match kind {
                        KVM_SYSTEM_EVENT_SHUTDOWN => VcpuExit::PowerOff,
                        KVM_SYSTEM_EVENT_RESET => VcpuExit::Reset,
                        other => VcpuExit::Fatal(format!("the guest raised system event {other}")),
                    }
                }
                Ok(KvmExit::Intr) => return VcpuExit::Yield,
                Ok(other) => return VcpuExit::Fatal(format!("unexpected KVM exit {other:?}")),
                Err(e) if e.errno() == libc::EINTR => return VcpuExit::Yield,
                Err(e) if e.errno() == libc::ENOSYS => {
                    return VcpuExit::Fatal(
                        "the guest accessed a device with an instruction KVM cannot emulate \
                         (no instruction syndrome: a load/store pair or writeback to MMIO)"
                            .into(),
                    )
                }
                Err(e) => return VcpuExit::Fatal(format!("KVM_RUN failed: {e}")),
            }
        }
    }

    fn read_state(&self) -> Result<CpuState, String> {
        let fd = &self.fd;
        let mut s = CpuState::default();
        for (i, r) in s.x.iter_mut().enumerate() {
            *r = regs::get(fd, regs::x(i))?;
        }
        let pstate = regs::get(fd, regs::PSTATE)?;
        s.pc = regs::get(fd, regs::PC)?;
        s.nzcv = (pstate & NZCV) as u32;
        s.sys.daif = (pstate & DAIF) as u32;
        s.sys.pan = pstate >> 22 & 1 != 0;
        s.sys.el = (pstate >> 2 & 3) as u8;
        s.sys.spsel = pstate & 1 != 0;
        s.sys.sp_el0 = regs::get(fd, regs::SP_EL0)?;
        s.sys.sp_el1 = regs::get(fd, regs::SP_EL1)?;
        s.sp = if s.sys.el == 1 && s.sys.spsel {
            s.sys.sp_el1
        } else {
            s.sys.sp_el0
        };
        s.sys.elr_el1 = regs::get(fd, regs::ELR_EL1)?;
        s.sys.spsr_el1 = regs::get(fd, regs::SPSR_EL1)?;
        for (i, v) in s.v.iter_mut().enumerate() {
            *v = regs::get128(fd, regs::v(i))?;
        }
        s.fpsr = regs::get(fd, regs::FPSR)? as u32;
        s.fpcr = regs::get(fd, regs::FPCR)? as u32;
        for &(id, field) in SYSREGS {
            *field(&mut s) = regs::get(fd, id)?;
        }
        s.id = self.boot_id.unwrap_or(self.own_id);
        s.tbi0 = s.sys.tcr_el1 >> 37 & 1 != 0;
        s.tbi1 = s.sys.tcr_el1 >> 38 & 1 != 0;
        s.system = true;
        Ok(s)
    }

    fn write_state(&mut self, s: &CpuState) -> Result<(), String> {
        let fd = &self.fd;
        for (i, &r) in s.x.iter().enumerate() {
            regs::set(fd, regs::x(i), r)?;
        }
        let on_el1 = s.sys.el == 1 && s.sys.spsel;
        regs::set(fd, regs::SP_EL0, if on_el1 { s.sys.sp_el0 } else { s.sp })?;
        regs::set(fd, regs::SP_EL1, if on_el1 { s.sp } else { s.sys.sp_el1 })?;
        let pstate = s.nzcv as u64 & NZCV
            | s.sys.daif as u64 & DAIF
            | (s.sys.pan as u64) << 22
            | (s.sys.el as u64 & 1) << 2
            | s.sys.spsel as u64;
        regs::set(fd, regs::PSTATE, pstate)?;
        regs::set(fd, regs::PC, s.pc)?;
        regs::set(fd, regs::ELR_EL1, s.sys.elr_el1)?;
        regs::set(fd, regs::SPSR_EL1, s.sys.spsr_el1)?;
        for (i, &v) in s.v.iter().enumerate() {
            regs::set128(fd, regs::v(i), v)?;
        }
        regs::set(fd, regs::FPSR, s.fpsr as u64)?;
        regs::set(fd, regs::FPCR, s.fpcr as u64)?;
        let mut copy = s.clone();
        for &(id, field) in SYSREGS {
            regs::set(fd, id, *field(&mut copy))?;
        }
        Ok(())
    }
}

/// A field of the saved state.
type Field = fn(&mut CpuState) -> &mut u64;

/// The EL0/EL1 system registers of [`CpuState`] and KVM's names for them.
const SYSREGS: &[(u64, Field)] = &[
    (regs::sys(3, 0, 1, 0, 0), |s| &mut s.sys.sctlr_el1),
    (regs::sys(3, 0, 1, 0, 2), |s| &mut s.sys.cpacr_el1),
    (regs::sys(3, 0, 2, 0, 0), |s| &mut s.sys.ttbr0_el1),
    (regs::sys(3, 0, 2, 0, 1), |s| &mut s.sys.ttbr1_el1),
    (regs::sys(3, 0, 2, 0, 2), |s| &mut s.sys.tcr_el1),
    (regs::sys(3, 0, 5, 1, 0), |s| &mut s.sys.afsr0_el1),
    (regs::sys(3, 0, 5, 1, 1), |s| &mut s.sys.afsr1_el1),
    (regs::sys(3, 0, 5, 2, 0), |s| &mut s.sys.esr_el1),
    (regs::sys(3, 0, 6, 0, 0), |s| &mut s.sys.far_el1),
    (regs::sys(3, 0, 7, 4, 0), |s| &mut s.sys.par_el1),
    (regs::sys(3, 0, 10, 2, 0), |s| &mut s.sys.mair_el1),
    (regs::sys(3, 0, 10, 3, 0), |s| &mut s.sys.amair_el1),
    (regs::sys(3, 0, 12, 0, 0), |s| &mut s.sys.vbar_el1),
    (regs::sys(3, 0, 13, 0, 1), |s| &mut s.sys.contextidr_el1),
    (regs::sys(3, 0, 13, 0, 4), |s| &mut s.sys.tpidr_el1),
    (regs::sys(3, 0, 14, 1, 0), |s| &mut s.sys.cntkctl_el1),
    (regs::sys(2, 0, 0, 2, 2), |s| &mut s.sys.mdscr_el1),
    (regs::sys(3, 2, 0, 0, 0), |s| &mut s.sys.csselr_el1),
    (regs::sys(3, 3, 13, 0, 2), |s| &mut s.tpidr_el0),
    (regs::sys(3, 3, 13, 0, 3), |s| &mut s.tpidrro_el0),
    (regs::MPIDR_EL1, |s| &mut s.sys.mpidr_el1),
];

impl Vcpu for KvmVcpu {
    fn run(&mut self) -> VcpuExit {
        let exit_byte = &mut self.fd.get_kvm_run().immediate_exit as *mut u8;
        self.handle.kicker.enter(exit_byte);
        let exit = self.run_guest();
        self.handle.kicker.leave();
        match exit {
            VcpuExit::Fatal(why) => VcpuExit::Fatal(self.report(&why)),
            other => other,
        }
    }

    fn regs(&self) -> CoreRegs {
        let fd = &self.fd;
        let get = |id| regs::get(fd, id).unwrap_or(0);
        let mut x = [0u64; 31];
        for (i, r) in x.iter_mut().enumerate() {
            *r = get(regs::x(i));
        }
        let pstate = get(regs::PSTATE);
        let sp = if pstate & 0xf == EL1H {
            get(regs::SP_EL1)
        } else {
            get(regs::SP_EL0)
        };
        CoreRegs {
            x,
            sp,
            pc: get(regs::PC),
            pstate,
        }
    }

    /// Sets X0..X30, SP (the one in use), PC, NZCV and DAIF; the exception
    /// level and stack selection stay as they are.
    fn set_regs(&mut self, r: &CoreRegs) {
        let fd = &self.fd;
        for (i, &v) in r.x.iter().enumerate() {
            let _ = regs::set(fd, regs::x(i), v);
        }
        let pstate = regs::get(fd, regs::PSTATE).unwrap_or(EL1H | DAIF);
        let sp = if pstate & 0xf == EL1H {
            regs::SP_EL1
        } else {
            regs::SP_EL0
        };
        let _ = regs::set(fd, sp, r.sp);
        let _ = regs::set(fd, regs::PC, r.pc);
        let _ = regs::set(
            fd,
            regs::PSTATE,
            pstate & !(NZCV | DAIF) | r.pstate & (NZCV | DAIF),
        );
    }

    fn state(&self) -> Result<crate::VcpuState, String> {
        self.read_state()
    }

    fn set_state(&mut self, state: &crate::VcpuState) -> Result<(), String> {
        let mpidr = self.board.mpidr(self.index) | 1 << 31;
        if state.sys.mpidr_el1 & !(1 << 31) != mpidr & !(1 << 31) {
            return Err(format!(
                "the saved vCPU (MPIDR {:#x}) is not vCPU {} (MPIDR {mpidr:#x})",
                state.sys.mpidr_el1, self.index
            ));
        }
        let missing = state.id.missing_from(&self.own_id);
        if !missing.is_empty() {
            return Err(format!(
                "the guest cannot continue on this host's KVM vCPU, which lacks features it was offered at boot: {}",
                missing.join(", ")
            ));
        }
        self.write_state(state)?;
        self.boot_id = Some(state.id);
        Ok(())
    }

    /// The timers from KVM's registers. The physical timer's are read
    /// where the host kernel has them (a guest that never used it loses
    /// nothing where it does not).
    fn timers(&self) -> Result<Option<(Timers, u64)>, String> {
        let fd = &self.fd;
        let counter = regs::get(fd, regs::TIMER_CNT)?;
        let (p_ctl, p_cval) = match (
            regs::get(fd, regs::PTIMER_CTL),
            regs::get(fd, regs::PTIMER_CVAL),
        ) {
            (Ok(c), Ok(v)) => (c, v),
            _ => (0, 0),
        };
        let v_ctl = regs::get(fd, regs::TIMER_CTL)?;
        let v_cval = regs::get(fd, regs::TIMER_CVAL)?;
        Ok(Some((
            Timers::from_registers([p_ctl, p_cval, v_ctl, v_cval]),
            counter,
        )))
    }

    /// The counter first (KVM derives the VM's CNTVOFF from it), then each
    /// timer's compare value before its control.
    fn set_timers(&mut self, timers: &Timers, counter: u64) -> Result<(), String> {
        let fd = &self.fd;
        let [p_ctl, p_cval, v_ctl, v_cval] = timers.registers();
        regs::set(fd, regs::TIMER_CNT, counter)?;
        regs::set(fd, regs::TIMER_CVAL, v_cval)?;
        regs::set(fd, regs::TIMER_CTL, v_ctl)?;
        if regs::set(fd, regs::PTIMER_CVAL, p_cval).is_ok() {
            regs::set(fd, regs::PTIMER_CTL, p_ctl)?;
        } else if p_ctl & 1 != 0 {
            return Err(
                "the saved physical timer is enabled, and this host's KVM cannot load it".into(),
            );
        }
        Ok(())
    }

    fn handle(&self) -> Arc<dyn VcpuHandle> {
        self.handle.clone()
    }

    /// KVM's multiprocessing state: stopped is off (PSCI CPU_OFF, or
    /// never powered on), anything else on.
    fn power_state(&self) -> Result<Option<CpuPower>, String> {
        let mp = self
            .fd
            .get_mp_state()
            .map_err(|e| format!("KVM_GET_MP_STATE: {e}"))?;
        Ok(Some(if mp.mp_state == KVM_MP_STATE_STOPPED {
            CpuPower::Off
        } else {
            CpuPower::On
        }))
    }

    /// A pending CPU_ON (saved by the software CPU between the call and the
    /// target's start) is carried out here: the vCPU is reset as PSCI
    /// leaves it, at the entry point with x0 = the context.
    fn set_power_state(&mut self, power: CpuPower) -> Result<(), String> {
        let mp_state = match power {
            CpuPower::Off => KVM_MP_STATE_STOPPED,
            CpuPower::On => KVM_MP_STATE_RUNNABLE,
            CpuPower::OnPending { entry, context } => {
                let mut x = [0; 31];
                x[0] = context;
                let reset = CpuState {
                    x,
                    pc: entry,
                    system: true,
                    sys: a64::SysRegs::reset(self.board.mpidr(self.index) | 1 << 31),
                    id: self.boot_id.unwrap_or(self.own_id),
                    ..Default::default()
                };
                self.write_state(&reset)?;
                KVM_MP_STATE_RUNNABLE
            }
        };
        self.fd
            .set_mp_state(kvm_mp_state { mp_state })
            .map_err(|e| format!("KVM_SET_MP_STATE: {e}"))
    }

    fn report(&self, why: &str) -> String {
        let fd = &self.fd;
        let get = |id| regs::get(fd, id).unwrap_or(0);
        format!(
            "{why}\n  pc={:#018x} pstate={:#x} (KVM vCPU {})\n  exits served: {}",
            get(regs::PC),
            get(regs::PSTATE),
            self.index,
            self.exits
        )
    }

    fn counters(&self) -> (u64, u64) {
        // KVM does not count guest instructions or exceptions.
        (0, 0)
    }
}

/// The other threads' side of a [`KvmVcpu`].
struct KvmHandle {
    kicker: Kicker,
}

impl VcpuHandle for KvmHandle {
    fn kick(&self) {
        self.kicker.kick();
    }

    /// KVM keeps the dirty log itself: nothing cached here to drop.
    fn drop_cached_translations(&self) -> Result<(), String> {
        Ok(())
    }
}

impl CpuWires for KvmHandle {
    /// The vGIC drives the vCPU's IRQ input itself.
    fn set_irq(&self, _level: bool) {}

    fn request_stop(&self) {
        self.kicker.kick();
    }
}
