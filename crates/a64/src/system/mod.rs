//! The system level of the CPU: exception levels EL0 and EL1, the EL1
//! system registers, exception entry and return, interrupts, and the stage-1
//! MMU of the EL1&0 translation regime (see `mmu`).
//!
//! A CPU created with [`crate::Cpu::new_system`] runs in this mode: guest
//! exceptions (SVC, aborts, undefined instructions, ...) are taken to EL1's
//! vector table instead of being returned to the embedder. Only what the
//! guest cannot handle itself leaves [`crate::Cpu::run`]: HVC/SMC (firmware
//! calls), WFI, the budget, and stop requests.

pub(crate) mod exception;
pub mod id;
pub(crate) mod mmu;
pub(crate) mod regs;
pub(crate) mod signals;

pub use signals::Signals;

/// Exception classes (ESR_ELx.EC) the CPU raises.
pub(crate) mod ec {
    pub const UNKNOWN: u32 = 0x00;
    pub const WFX: u32 = 0x01;
    pub const FP_ACCESS: u32 = 0x07;
    pub const ILLEGAL_STATE: u32 = 0x0e;
    pub const SVC: u32 = 0x15;
    pub const SYSREG: u32 = 0x18;
    pub const INSN_ABORT_LOWER: u32 = 0x20;
    pub const INSN_ABORT_SAME: u32 = 0x21;
    pub const PC_ALIGN: u32 = 0x22;
    pub const DATA_ABORT_LOWER: u32 = 0x24;
    pub const DATA_ABORT_SAME: u32 = 0x25;
    pub const SP_ALIGN: u32 = 0x26;
    pub const BRK: u32 = 0x3c;
}

/// Fault status codes (the DFSC/IFSC field of ESR_ELx) for a given level.
pub(crate) mod fsc {
    pub const ADDRESS_SIZE: u8 = 0x00;
    pub const TRANSLATION: u8 = 0x04;
    pub const ACCESS_FLAG: u8 = 0x08;
    pub const PERMISSION: u8 = 0x0c;
    pub const EXTERNAL: u8 = 0x10;
    pub const EXTERNAL_WALK: u8 = 0x14;
    pub const ALIGNMENT: u8 = 0x21;
}

/// SCTLR_EL1 bits the CPU acts on.
pub(crate) mod sctlr {
    pub const M: u64 = 1 << 0;
    pub const UMA: u64 = 1 << 9;
    pub const DZE: u64 = 1 << 14;
    pub const UCT: u64 = 1 << 15;
    pub const NTWI: u64 = 1 << 16;
    pub const NTWE: u64 = 1 << 18;
    pub const WXN: u64 = 1 << 19;
    pub const SPAN: u64 = 1 << 23;
    pub const UCI: u64 = 1 << 26;
    /// Value at reset: RES1 bits set, MMU and caches off.
    pub const RESET: u64 = 0x30d0_0800;
}

/// PSTATE.DAIF bits in their SPSR/DAIF register positions.
pub(crate) mod daif {
    pub const F: u32 = 1 << 6;
    pub const I: u32 = 1 << 7;
    pub const A: u32 = 1 << 8;
    pub const D: u32 = 1 << 9;
    pub const ALL: u32 = D | A | I | F;
}

/// EL1 system state: PSTATE fields beyond NZCV, banked stack pointers and
/// the EL1 system registers that the CPU itself implements.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SysRegs {
    /// Current exception level (0 or 1).
    pub el: u8,
    /// PSTATE.SP: at EL1, whether SP_EL1 (true) or SP_EL0 is in use.
    pub spsel: bool,
    /// PSTATE.{D,A,I,F} in DAIF register layout (bits 9..6).
    pub daif: u32,
    /// PSTATE.PAN.
    pub pan: bool,
    /// SP_EL0 while it is not the stack pointer in use (`Cpu::sp` holds
    /// the one in use; this field is stale while that is SP_EL0).
    pub sp_el0: u64,
    /// SP_EL1, likewise.
    pub sp_el1: u64,
    /// Exception link register.
    pub elr_el1: u64,
    /// Saved program status register.
    pub spsr_el1: u64,
    /// Exception syndrome register.
    pub esr_el1: u64,
    /// Fault address register.
    pub far_el1: u64,
    /// Vector base address.
    pub vbar_el1: u64,
    /// System control register.
    pub sctlr_el1: u64,
    /// Translation control register.
    pub tcr_el1: u64,
    /// Translation table base 0 (lower VA range) with ASID.
    pub ttbr0_el1: u64,
    /// Translation table base 1 (upper VA range).
    pub ttbr1_el1: u64,
    /// Memory attribute indirection.
    pub mair_el1: u64,
    /// Auxiliary memory attribute indirection (no effect here).
    pub amair_el1: u64,
    /// Context ID.
    pub contextidr_el1: u64,
    /// Architectural feature access control (FP trapping).
    pub cpacr_el1: u64,
    /// EL1 software thread ID.
    pub tpidr_el1: u64,
    /// Physical address register (result of AT).
    pub par_el1: u64,
    /// EL0 access to the generic timer.
    pub cntkctl_el1: u64,
    /// Monitor debug system control (kept, no debug events are generated).
    pub mdscr_el1: u64,
    /// Cache size selection.
    pub csselr_el1: u64,
    /// Auxiliary fault status registers (kept, never set by the CPU).
    pub afsr0_el1: u64,
    /// See `afsr0_el1`.
    pub afsr1_el1: u64,
    /// MPIDR_EL1 of this CPU (affinity fields).
    pub mpidr_el1: u64,
}

impl SysRegs {
    /// State at reset: EL1 with SP_EL1, all of DAIF masked, MMU off.
    pub fn reset(mpidr: u64) -> Self {
        SysRegs {
            el: 1,
            spsel: true,
            daif: daif::ALL,
            sctlr_el1: sctlr::RESET,
            mpidr_el1: mpidr,
            ..Default::default()
        }
    }

    /// The PSTATE fields saved into SPSR on exception entry (without NZCV).
    pub(crate) fn pstate_bits(&self) -> u64 {
        let mode = (self.el as u64) << 2 | self.spsel as u64;
        (self.pan as u64) << 22 | self.daif as u64 | mode
    }
}
