//! Exception entry (synchronous exceptions and interrupts) and ERET.

use super::{daif, ec, fsc, sctlr};
use crate::cpu::{Cpu, Exit};
use crate::system::Signals;
use crate::tlb::TLB_ENTRIES;

/// Which of the four vector entries an exception uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Vector {
    Sync = 0x000,
    Irq = 0x080,
    Fiq = 0x100,
}

/// ESR_ELx.IL: the trapped instruction was 32 bits long.
const IL: u64 = 1 << 25;

impl Cpu {
    /// Moves to exception level `el` with stack pointer selection `spsel`,
    /// banking the stack pointer and selecting the matching TLB.
    pub(crate) fn set_el_sp(&mut self, el: u8, spsel: bool) {
        let s = &mut self.sys;
        if s.el == 0 || !s.spsel {
            s.sp_el0 = self.sp;
        } else {
            s.sp_el1 = self.sp;
        }
        s.el = el;
        s.spsel = spsel && el > 0;
        self.sp = if s.spsel { s.sp_el1 } else { s.sp_el0 };
        self.update_mmu_index();
    }

    /// Chooses the TLB for the current privilege: EL0, EL1, or EL1 with PAN set.
    pub(crate) fn update_mmu_index(&mut self) {
        let index = match (self.sys.el, self.sys.pan) {
            (0, _) => 0,
            (_, false) => 1,
            (_, true) => 2,
        };
        if self.tlb_base != index * TLB_ENTRIES {
            self.tlb_base = index * TLB_ENTRIES;
            self.tlb.set_regime(index as u64);
        }
        self.check_fp_trap_change();
    }

    /// Whether FP/SIMD instructions trap at the current EL (CPACR_EL1.FPEN).
    pub(crate) fn fp_trapped(&self) -> bool {
        self.system
            && match self.sys.cpacr_el1 >> 20 & 3 {
                3 => false,
                1 => self.sys.el == 0,
                _ => true,
            }
    }

    /// Decoded blocks embed the FP trap decision: when it flips (CPACR write,
    /// or an EL change with FPEN = 01), drop them.
    pub(crate) fn check_fp_trap_change(&mut self) {
        let now = self.fp_trapped();
        if now != self.fp_blocks_trapped {
            self.fp_blocks_trapped = now;
            self.code_flush_all = true;
            self.break_chains();
        }
    }

    /// Takes an exception to EL1: saves PSTATE and the return address, masks
    /// interrupts and jumps to the vector.
    pub(crate) fn take_exception(&mut self, vector: Vector, return_pc: u64) {
        let s = &mut self.sys;
        s.spsr_el1 = self.nzcv as u64 | s.pstate_bits();
        s.elr_el1 = return_pc;
        let base = match (s.el, s.spsel) {
            (0, _) => 0x400,
            (_, false) => 0x000,
            (_, true) => 0x200,
        };
        let offset = base + vector as u64;
        s.daif = daif::ALL;
        if s.sctlr_el1 & sctlr::SPAN == 0 {
            s.pan = true;
        }
        self.pc = s.vbar_el1.wrapping_add(offset);
        self.set_el_sp(1, true);
        self.clear_exclusive();
        self.exceptions_taken += 1;
    }

    /// Takes a synchronous exception with syndrome `esr` and, for aborts, fault address `far`.
    pub(crate) fn take_sync(&mut self, esr: u64, far: Option<u64>, return_pc: u64) {
        self.sys.esr_el1 = esr;
        if let Some(far) = far {
            self.sys.far_el1 = far;
        }
        self.take_exception(Vector::Sync, return_pc);
    }

    /// Turns the stop reason in `self.exit` (with `self.pc` at the instruction
    /// concerned) into a guest exception. Returns `false` for exits that belong
    /// to the embedder.
    pub(crate) fn exit_to_exception(&mut self) -> bool {
        let pc = self.pc;
        let lower = self.sys.el == 0;
        let syndrome = |class: u32, iss: u64| (class as u64) << 26 | IL | iss;
        let abort =
            |lower_class: u32, same_class: u32| if lower { lower_class } else { same_class };
        match self.exit {
            Exit::Svc(imm) => {
                self.take_sync(syndrome(ec::SVC, imm as u64), None, pc.wrapping_add(4))
            }
            Exit::Brk(imm) => self.take_sync(syndrome(ec::BRK, imm as u64), None, pc),
            Exit::Hvc(_) | Exit::Smc(_) if !lower => return false,
            Exit::Undefined(_) | Exit::Hvc(_) | Exit::Smc(_) | Exit::Hlt(_) => {
                self.take_sync(syndrome(ec::UNKNOWN, 0), None, pc)
            }
            Exit::SysRegTrap(raw) => {
                self.take_sync(syndrome(ec::SYSREG, sysreg_iss(raw)), None, pc)
            }
            Exit::FpTrap => self.take_sync(syndrome(ec::FP_ACCESS, 0), None, pc),
            // ISS.TI: 0 for WFI, 1 for WFE.
            Exit::WfxTrap { wfe } => self.take_sync(syndrome(ec::WFX, wfe as u64), None, pc),
            Exit::DataAbort { addr, write } => {
                let class = abort(ec::DATA_ABORT_LOWER, ec::DATA_ABORT_SAME);
                let iss = (write as u64) << 6 | self.fault_status as u64;
                self.take_sync(syndrome(class, iss), Some(addr), pc)
            }
            Exit::Alignment { addr } => {
                let class = abort(ec::DATA_ABORT_LOWER, ec::DATA_ABORT_SAME);
                self.take_sync(syndrome(class, fsc::ALIGNMENT as u64), Some(addr), pc)
            }
            Exit::InsnAbort { addr } => {
                let class = abort(ec::INSN_ABORT_LOWER, ec::INSN_ABORT_SAME);
                self.take_sync(syndrome(class, self.fault_status as u64), Some(addr), pc)
            }
            Exit::PcAlignment => self.take_sync(syndrome(ec::PC_ALIGN, 0), Some(pc), pc),
            Exit::SpAlignment => self.take_sync(syndrome(ec::SP_ALIGN, 0), None, pc),
            Exit::IllegalState => self.take_sync(syndrome(ec::ILLEGAL_STATE, 0), None, pc),
            Exit::Budget | Exit::Wfi | Exit::Stopped | Exit::ExceptionLoop => return false,
        }
        true
    }

    /// ERET: returns from EL1 to the state saved in SPSR_EL1/ELR_EL1.
    /// An illegal target raises an Illegal Execution State exception.
    pub(crate) fn eret(&mut self) {
        let spsr = self.sys.spsr_el1;
        let target = ((spsr >> 2) & 3) as u8;
        let spsel = spsr & 1 != 0;
        let aarch32 = spsr & 0x10 != 0;
        let elr = self.sys.elr_el1;
        if aarch32 || target > 1 || (target == 0 && spsel) {
            self.pc = elr;
            self.exit = Exit::IllegalState;
            self.exit_to_exception();
            return;
        }
        self.nzcv = (spsr as u32) & 0xf000_0000;
        self.sys.daif = spsr as u32 & daif::ALL;
        self.sys.pan = spsr >> 22 & 1 != 0;
        self.set_el_sp(target, spsel);
        self.pc = elr;
        self.clear_exclusive();
        // An exception return sets the event register (a WFE after it
        // completes at once).
        self.signals.send_event();
    }

    /// Takes a pending, unmasked interrupt if there is one; `lines` are the
    /// sampled [`Signals`] bits. Returns whether one was taken.
    pub(crate) fn take_interrupt(&mut self, lines: u32) -> bool {
        let d = self.sys.daif;
        if lines & Signals::FIQ != 0 && d & daif::F == 0 {
            self.take_exception(Vector::Fiq, self.pc);
        } else if lines & Signals::IRQ != 0 && d & daif::I == 0 {
            self.take_exception(Vector::Irq, self.pc);
        } else {
            return false;
        }
        true
    }
}

/// The ISS of a trapped MSR/MRS/SYS (EC 0x18) from its encoding.
fn sysreg_iss(raw: u32) -> u64 {
    let f = |hi: u32, lo: u32| ((raw >> lo) & ((1 << (hi - lo + 1)) - 1)) as u64;
    let read = f(21, 21);
    f(20, 19) << 20
        | f(7, 5) << 17
        | f(18, 16) << 14
        | f(15, 12) << 10
        | f(4, 0) << 5
        | f(11, 8) << 1
        | read
}
