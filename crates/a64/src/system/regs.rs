//! System registers and system instructions at the system level (EL0 and
//! EL1): MRS/MSR with their EL0 traps, MSR (immediate) to PSTATE, TLB
//! maintenance, address translation (AT), cache maintenance.
//!
//! Registers are keyed by `op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2`, which
//! is bits [20:5] of MRS/MSR/SYS. Registers the CPU does not own (the GIC CPU
//! interface, the timers' compare registers) go to [`Bus::sysreg_read`] /
//! [`Bus::sysreg_write`].

use super::mmu::Privilege;
use super::{daif, sctlr};
use crate::bus::{Access, Bus};
use crate::cpu::{Cpu, Exit, Step, Stop};
use crate::system::signals::TlbOp;
use crate::system::Signals;

/// Builds a system register key from (op0, op1, CRn, CRm, op2).
pub(crate) const fn key(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
}

/// FPCR bits an ARMv8.0 core without FP16 implements: AHP, DN, FZ, RMode.
pub const FPCR_MASK: u32 = 0x07c0_0000;
/// FPSR bits: IOC, DZC, OFC, UFC, IXC, IDC and QC.
pub const FPSR_MASK: u32 = 0x0800_009f;

/// Frequency of the generic timer's counter, in Hz.
pub const COUNTER_HZ: u64 = 62_500_000;

/// The system counter: host monotonic time since its first use, at
/// [`COUNTER_HZ`]. Shared by every CPU in the process.
pub fn counter() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let ns = EPOCH.get_or_init(Instant::now).elapsed().as_nanos();
    (ns * COUNTER_HZ as u128 / 1_000_000_000) as u64
}

pub(crate) const NZCV: u32 = key(3, 3, 4, 2, 0);
pub(crate) const DAIF: u32 = key(3, 3, 4, 2, 1);
pub(crate) const FPCR: u32 = key(3, 3, 4, 4, 0);
pub(crate) const FPSR: u32 = key(3, 3, 4, 4, 1);
pub(crate) const TPIDR_EL0: u32 = key(3, 3, 13, 0, 2);
pub(crate) const TPIDRRO_EL0: u32 = key(3, 3, 13, 0, 3);
pub(crate) const CTR_EL0: u32 = key(3, 3, 0, 0, 1);
pub(crate) const DCZID_EL0: u32 = key(3, 3, 0, 0, 7);
pub(crate) const CNTFRQ_EL0: u32 = key(3, 3, 14, 0, 0);
pub(crate) const CNTPCT_EL0: u32 = key(3, 3, 14, 0, 1);
pub(crate) const CNTVCT_EL0: u32 = key(3, 3, 14, 0, 2);
pub(crate) const MIDR_EL1: u32 = key(3, 0, 0, 0, 0);
pub(crate) const MPIDR_EL1: u32 = key(3, 0, 0, 0, 5);
pub(crate) const REVIDR_EL1: u32 = key(3, 0, 0, 0, 6);
pub(crate) const ID_AA64PFR0_EL1: u32 = key(3, 0, 0, 4, 0);
pub(crate) const ID_AA64DFR0_EL1: u32 = key(3, 0, 0, 5, 0);
pub(crate) const ID_AA64ISAR0_EL1: u32 = key(3, 0, 0, 6, 0);
pub(crate) const ID_AA64MMFR0_EL1: u32 = key(3, 0, 0, 7, 0);
pub(crate) const ID_AA64MMFR1_EL1: u32 = key(3, 0, 0, 7, 1);

const SPSR_EL1: u32 = key(3, 0, 4, 0, 0);
const ELR_EL1: u32 = key(3, 0, 4, 0, 1);
const SP_EL0: u32 = key(3, 0, 4, 1, 0);
const SPSEL: u32 = key(3, 0, 4, 2, 0);
const CURRENT_EL: u32 = key(3, 0, 4, 2, 2);
const PAN: u32 = key(3, 0, 4, 2, 3);
const SCTLR_EL1: u32 = key(3, 0, 1, 0, 0);
const ACTLR_EL1: u32 = key(3, 0, 1, 0, 1);
const CPACR_EL1: u32 = key(3, 0, 1, 0, 2);
const TTBR0_EL1: u32 = key(3, 0, 2, 0, 0);
const TTBR1_EL1: u32 = key(3, 0, 2, 0, 1);
const TCR_EL1: u32 = key(3, 0, 2, 0, 2);
const AFSR0_EL1: u32 = key(3, 0, 5, 1, 0);
const AFSR1_EL1: u32 = key(3, 0, 5, 1, 1);
const ESR_EL1: u32 = key(3, 0, 5, 2, 0);
const FAR_EL1: u32 = key(3, 0, 6, 0, 0);
const PAR_EL1: u32 = key(3, 0, 7, 4, 0);
const MAIR_EL1: u32 = key(3, 0, 10, 2, 0);
const AMAIR_EL1: u32 = key(3, 0, 10, 3, 0);
const VBAR_EL1: u32 = key(3, 0, 12, 0, 0);
const RVBAR_EL1: u32 = key(3, 0, 12, 0, 1);
const ISR_EL1: u32 = key(3, 0, 12, 1, 0);
const CONTEXTIDR_EL1: u32 = key(3, 0, 13, 0, 1);
const TPIDR_EL1: u32 = key(3, 0, 13, 0, 4);
const CNTKCTL_EL1: u32 = key(3, 0, 14, 1, 0);
const CCSIDR_EL1: u32 = key(3, 1, 0, 0, 0);
const CLIDR_EL1: u32 = key(3, 1, 0, 0, 1);
const AIDR_EL1: u32 = key(3, 1, 0, 0, 7);
const CSSELR_EL1: u32 = key(3, 2, 0, 0, 0);
const MDSCR_EL1: u32 = key(2, 0, 0, 2, 2);

/// Cortex-A53 r0p4, the core this CPU presents itself as at the system level.
const MIDR_A53: u64 = 0x410f_d034;
/// 64-byte cache lines, VIPT instruction cache, IDC/DIC clear.
const CTR: u64 = 0x8444_c004;
/// DC ZVA zeroes 64 bytes.
const DCZID: u64 = 4;

/// Values of the AArch64 ID registers (op0=3, op1=0, CRn=0, CRm=4..7).
fn id_register(cpu: &Cpu, reg: u32) -> u64 {
    match reg {
        // EL0/EL1 AArch64 only, no EL2/EL3; FP and AdvSIMD; GICv3 system
        // registers; CSV2/CSV3: not affected by Spectre-v2 or Meltdown.
        ID_AA64PFR0_EL1 => 0x1100_0000_0100_0011,
        // ARMv8.0 debug, 2 breakpoints, 2 watchpoints, no PMU.
        ID_AA64DFR0_EL1 => 0x0010_1006,
        ID_AA64ISAR0_EL1 => {
            let crc = if cpu.features.crc32 { 1 << 16 } else { 0 };
            let lse = if cpu.features.lse { 2 << 20 } else { 0 };
            crc | lse
        }
        // 40-bit PA, 16-bit ASIDs, 4K and 16K and 64K granules.
        ID_AA64MMFR0_EL1 => 0x0010_0022,
        // PAN.
        ID_AA64MMFR1_EL1 => 0x0010_0000,
        _ => 0,
    }
}

impl Cpu {
    /// The feature ID registers this CPU presents.
    pub fn id_registers(&self) -> crate::IdRegisters {
        crate::IdRegisters {
            pfr0: id_register(self, ID_AA64PFR0_EL1),
            dfr0: id_register(self, ID_AA64DFR0_EL1),
            isar0: id_register(self, ID_AA64ISAR0_EL1),
            mmfr0: id_register(self, ID_AA64MMFR0_EL1),
            mmfr1: id_register(self, ID_AA64MMFR1_EL1),
            ..Default::default()
        }
    }
}

/// CCSIDR for the cache selected by CSSELR: 32K 4-way L1D, 32K 2-way L1I,
/// 512K 16-way L2, 64-byte lines.
fn ccsidr(csselr: u64) -> u64 {
    match csselr & 0xf {
        0 => 0x700f_e01a,
        1 => 0x201f_e00a,
        2 => 0x703f_e07a,
        _ => 0,
    }
}

/// What an access to a register at the current EL does.
enum Verdict {
    Value(u64),
    Undefined,
    Trap,
}

impl Cpu {
    fn el0_allowed(&self, reg: u32) -> Option<bool> {
        let s = &self.sys;
        let k = s.cntkctl_el1;
        Some(match reg {
            NZCV | FPCR | FPSR | TPIDR_EL0 | TPIDRRO_EL0 | DCZID_EL0 => true,
            DAIF => s.sctlr_el1 & sctlr::UMA != 0,
            CTR_EL0 => s.sctlr_el1 & sctlr::UCT != 0,
            CNTFRQ_EL0 => k & 3 != 0,
            CNTPCT_EL0 => k & 1 != 0,
            CNTVCT_EL0 => k & 2 != 0,
            // CNTP_* (CRm=2) and CNTV_* (CRm=3).
            r if r >> 3 == key(3, 3, 14, 2, 0) >> 3 => k >> 9 & 1 != 0,
            r if r >> 3 == key(3, 3, 14, 3, 0) >> 3 => k >> 8 & 1 != 0,
            _ => return None,
        })
    }

    fn read_verdict(&mut self, bus: &mut dyn Bus, reg: u32) -> Verdict {
        if self.sys.el == 0 {
            match self.el0_allowed(reg) {
                None => return Verdict::Undefined,
                Some(false) => return Verdict::Trap,
                Some(true) => {}
            }
        }
        let s = &self.sys;
        Verdict::Value(match reg {
            NZCV => self.nzcv as u64,
            DAIF => s.daif as u64,
            FPCR => self.fpcr as u64,
            FPSR => self.fpsr as u64,
            TPIDR_EL0 => self.tpidr_el0,
            TPIDRRO_EL0 => self.tpidrro_el0,
            CTR_EL0 => CTR,
            DCZID_EL0 => DCZID,
            CNTFRQ_EL0 => COUNTER_HZ,
            CNTPCT_EL0 | CNTVCT_EL0 => self.counter(),
            SPSR_EL1 => s.spsr_el1,
            ELR_EL1 => s.elr_el1,
            SP_EL0 if s.spsel => s.sp_el0,
            SPSEL => s.spsel as u64,
            CURRENT_EL => (s.el as u64) << 2,
            PAN => (s.pan as u64) << 22,
            SCTLR_EL1 => s.sctlr_el1,
            ACTLR_EL1 => 0,
            CPACR_EL1 => s.cpacr_el1,
            TTBR0_EL1 => s.ttbr0_el1,
            TTBR1_EL1 => s.ttbr1_el1,
            TCR_EL1 => s.tcr_el1,
            AFSR0_EL1 => s.afsr0_el1,
            AFSR1_EL1 => s.afsr1_el1,
            ESR_EL1 => s.esr_el1,
            FAR_EL1 => s.far_el1,
            PAR_EL1 => s.par_el1,
            MAIR_EL1 => s.mair_el1,
            AMAIR_EL1 => s.amair_el1,
            VBAR_EL1 => s.vbar_el1,
            RVBAR_EL1 => 0,
            ISR_EL1 => {
                let lines = self.signals.load();
                ((lines & Signals::IRQ != 0) as u64) << 7
                    | ((lines & Signals::FIQ != 0) as u64) << 6
            }
            CONTEXTIDR_EL1 => s.contextidr_el1,
            TPIDR_EL1 => s.tpidr_el1,
            CNTKCTL_EL1 => s.cntkctl_el1,
            CCSIDR_EL1 => ccsidr(s.csselr_el1),
            // L1 separate I/D, L2 unified; LoUU = LoC = 2 levels.
            CLIDR_EL1 => 0x0a20_0023,
            AIDR_EL1 => 0,
            CSSELR_EL1 => s.csselr_el1,
            MDSCR_EL1 => s.mdscr_el1,
            MIDR_EL1 => MIDR_A53,
            MPIDR_EL1 => s.mpidr_el1,
            REVIDR_EL1 => 0,
            // The rest of the ID space (incl. AArch32 ID registers) reads as zero.
            r if r >> 6 == key(3, 0, 0, 0, 0) >> 6 && (r >> 3 & 7) != 0 => id_register(self, r),
            // Debug registers (op0 = 2): no debug events, read as zero.
            r if r >> 14 == 2 => 0,
            // PMU registers: no PMU (PMUVer = 0), read as zero at EL1.
            r if r >> 7 == key(3, 3, 9, 0, 0) >> 7 || r >> 7 == key(3, 0, 9, 0, 0) >> 7 => 0,
            r => match bus.sysreg_read(r) {
                Some(v) => v,
                None => return Verdict::Undefined,
            },
        })
    }

    /// MRS at the system level: the value, or the exception it raises.
    pub(crate) fn system_mrs(
        &mut self,
        bus: &mut dyn Bus,
        reg: u32,
        raw: u32,
    ) -> Result<u64, Stop> {
        if (reg == FPCR || reg == FPSR) && self.fp_trapped() {
            return Err(self.raise(Exit::FpTrap));
        }
        match self.read_verdict(bus, reg) {
            Verdict::Value(v) => Ok(v),
            Verdict::Undefined => Err(self.raise(Exit::Undefined(raw))),
            Verdict::Trap => Err(self.raise(Exit::SysRegTrap(raw))),
        }
    }

    /// MSR (register) at the system level.
    pub(crate) fn system_msr(&mut self, bus: &mut dyn Bus, reg: u32, v: u64, raw: u32) -> Step {
        if (reg == FPCR || reg == FPSR) && self.fp_trapped() {
            return self.stop(Exit::FpTrap);
        }
        if self.sys.el == 0 {
            match self.el0_allowed(reg) {
                None => return self.stop(Exit::Undefined(raw)),
                Some(false) => return self.stop(Exit::SysRegTrap(raw)),
                Some(true) if reg == TPIDRRO_EL0 || reg == CTR_EL0 || reg == DCZID_EL0 => {
                    return self.stop(Exit::Undefined(raw))
                }
                Some(true) => {}
            }
        }
        let s = &mut self.sys;
        match reg {
            NZCV => self.nzcv = v as u32 & 0xf000_0000,
            DAIF => s.daif = v as u32 & daif::ALL,
            FPCR => self.fpcr = v as u32 & FPCR_MASK,
            FPSR => self.fpsr = v as u32 & FPSR_MASK,
            TPIDR_EL0 => self.tpidr_el0 = v,
            TPIDRRO_EL0 => self.tpidrro_el0 = v,
            SPSR_EL1 => s.spsr_el1 = v,
            ELR_EL1 => s.elr_el1 = v,
            SP_EL0 if s.spsel => s.sp_el0 = v,
            SPSEL => self.set_el_sp(1, v & 1 != 0),
            PAN => {
                s.pan = v >> 22 & 1 != 0;
                self.update_mmu_index();
            }
            SCTLR_EL1 => {
                s.sctlr_el1 = v;
                self.tlb.flush();
            }
            ACTLR_EL1 => {}
            CPACR_EL1 => {
                s.cpacr_el1 = v & (3 << 20);
                self.check_fp_trap_change();
            }
            TTBR0_EL1 | TTBR1_EL1 => {
                let slot = if reg == TTBR0_EL1 {
                    &mut s.ttbr0_el1
                } else {
                    &mut s.ttbr1_el1
                };
                if *slot != v {
                    *slot = v;
                    self.tlb.flush();
                }
            }
            TCR_EL1 => {
                s.tcr_el1 = v;
                self.tbi0 = v >> 37 & 1 != 0;
                self.tbi1 = v >> 38 & 1 != 0;
                self.tlb.flush();
            }
            AFSR0_EL1 => s.afsr0_el1 = v,
            AFSR1_EL1 => s.afsr1_el1 = v,
            ESR_EL1 => s.esr_el1 = v,
            FAR_EL1 => s.far_el1 = v,
            PAR_EL1 => s.par_el1 = v,
            MAIR_EL1 => s.mair_el1 = v,
            AMAIR_EL1 => s.amair_el1 = v,
            VBAR_EL1 => s.vbar_el1 = v & !0x7ff,
            CONTEXTIDR_EL1 => s.contextidr_el1 = v & 0xffff_ffff,
            TPIDR_EL1 => s.tpidr_el1 = v,
            CNTKCTL_EL1 => s.cntkctl_el1 = v & 0x3ff,
            CSSELR_EL1 => s.csselr_el1 = v & 0xf,
            MDSCR_EL1 => s.mdscr_el1 = v,
            r if r >> 14 == 2 => {}
            r if r >> 7 == key(3, 3, 9, 0, 0) >> 7 || r >> 7 == key(3, 0, 9, 0, 0) >> 7 => {}
            r => {
                if bus.sysreg_write(r, v).is_none() {
                    return self.stop(Exit::Undefined(raw));
                }
            }
        }
        Ok(())
    }

    /// MSR (immediate): writes to PSTATE fields. Only EL1 may use them.
    pub(crate) fn msr_immediate(&mut self, op1: u32, op2: u32, imm: u32, raw: u32) -> Step {
        let el0 = self.sys.el == 0;
        match (op1, op2) {
            (3, 6) | (3, 7) if !el0 || self.sys.sctlr_el1 & sctlr::UMA != 0 => {
                let bits = (imm & 0xf) << 6;
                if op2 == 6 {
                    self.sys.daif |= bits;
                } else {
                    self.sys.daif &= !bits;
                }
            }
            (0, 5) if !el0 => self.set_el_sp(1, imm & 1 != 0),
            (0, 4) if !el0 => {
                self.sys.pan = imm & 1 != 0;
                self.update_mmu_index();
            }
            _ => return self.stop(Exit::Undefined(raw)),
        }
        Ok(())
    }

    /// SYS at the system level: TLB maintenance, AT, and cache maintenance.
    /// Returns `Ok(false)` for operations this function does not own (the
    /// EL0-visible DC/IC operations handled by the caller).
    pub(crate) fn system_sys(
        &mut self,
        bus: &mut dyn Bus,
        op: u32,
        xt: u64,
        raw: u32,
    ) -> Result<bool, Stop> {
        let (op1, crn, crm, op2) = (op >> 11 & 7, op >> 7 & 15, op >> 3 & 15, op & 7);
        if self.sys.el == 0 {
            // EL0 may only use DC ZVA/CVAC/CVAU/CIVAC and IC IVAU (when SCTLR allows).
            let el0_op = op1 == 3
                && crn == 7
                && matches!((crm, op2), (4 | 10 | 11 | 14 | 12 | 13, 1) | (5, 1));
            if !el0_op {
                return Err(self.raise(Exit::Undefined(raw)));
            }
            let allowed = if crm == 4 {
                self.sys.sctlr_el1 & sctlr::DZE != 0
            } else {
                self.sys.sctlr_el1 & sctlr::UCI != 0
            };
            if !allowed {
                return Err(self.raise(Exit::SysRegTrap(raw)));
            }
            return Ok(false);
        }
        match (op1, crn, crm, op2) {
            // TLBI, by VA (with or without ASID, last level or not), inner shareable or not.
            // The inner shareable forms (CRm 3) reach every CPU of the
            // machine; the issuing CPU's next DSB waits for them.
            (0, 8, 3 | 7, 1 | 3 | 5 | 7) => {
                let va = ((xt & 0x0000_0fff_ffff_ffff) << 20) as i64 >> 8;
                let va = va as u64;
                let granule = 1u64 << self.granule_of(va);
                let op = TlbOp::Range {
                    va: va & !(granule - 1),
                    len: granule,
                };
                self.tlb_maintenance(op, crm == 3);
            }
            // TLBI VMALLE1(IS), ASIDE1(IS): everything.
            (0, 8, 3 | 7, 0 | 2) => self.tlb_maintenance(TlbOp::All, crm == 3),
            // AT S1E1R/W, S1E0R/W.
            (0, 7, 8, 0..=3) => self.address_translate(bus, xt, op2),
            // IC IALLUIS (every CPU of the machine) and IC IALLU (this one):
            // code is tracked by page; drop everything to be safe about
            // memory written behind the CPU's back (device DMA).
            (0, 7, 1, 0) => self.all_code_changed(),
            (0, 7, 5, 0) => {
                self.code_flush_all = true;
                self.break_chains();
            }
            // DC IVAC, ISW, CSW, CISW: caches are coherent here.
            (0, 7, 6, 1 | 2) | (0, 7, 10, 2) | (0, 7, 14, 2) => {}
            // The EL0-visible operations, also usable at EL1.
            (3, 7, 4 | 5 | 10 | 11 | 12 | 13 | 14, 1) => return Ok(false),
            _ => return Err(self.raise(Exit::Undefined(raw))),
        }
        Ok(true)
    }

    /// AT S1E{1,0}{R,W}: translates `va` and writes the result to PAR_EL1.
    fn address_translate(&mut self, bus: &mut dyn Bus, va: u64, op2: u32) {
        let write = op2 & 1 != 0;
        let privilege = if op2 >= 2 {
            Privilege::El0
        } else if self.sys.pan {
            Privilege::El1Pan
        } else {
            Privilege::El1
        };
        let access = if write { Access::Write } else { Access::Read };
        let result = if self.sys.sctlr_el1 & sctlr::M == 0 {
            Ok((self.untag(va), 0u8, 0u8))
        } else {
            self.walk(bus, va, access, privilege)
                .map(|w| (w.pa, w.attr_index, w.sh))
        };
        self.sys.par_el1 = match result {
            Ok((pa, attr_index, sh)) => {
                let attr = self.sys.mair_el1 >> (8 * attr_index) & 0xff;
                attr << 56 | (pa & 0x0000_ffff_ffff_f000) | (sh as u64) << 7
            }
            Err(status) => (status as u64) << 1 | 1,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlatMemory;

    const RAM: u64 = 0x4000_0000;

    fn put(mem: &mut FlatMemory, pa: u64, v: u64) {
        mem.load(pa, &v.to_le_bytes());
    }

    /// 4K granule, 39-bit VA: L1 at RAM, L2 at RAM+4K, L3 at RAM+8K.
    /// VA 0x1000_0000 is a 4K page (via L3), VA 0x2000_0000 a 2 MiB block.
    fn setup() -> (Cpu, FlatMemory) {
        let mut mem = FlatMemory::new(RAM, 16 << 20);
        put(&mut mem, RAM, (RAM + 0x1000) | 3);
        put(
            &mut mem,
            RAM + 0x1000 + (0x1000_0000 >> 21) * 8,
            (RAM + 0x2000) | 3,
        );
        put(&mut mem, RAM + 0x2000, (RAM + 0x10_0000) | 3 | 1 << 10);
        put(
            &mut mem,
            RAM + 0x1000 + (0x2000_0000 >> 21) * 8,
            (RAM + 0x40_0000) | 1 | 1 << 10,
        );
        put(&mut mem, RAM + 0x10_0000, 0xaaaa);
        put(&mut mem, RAM + 0x11_0000, 0xbbbb);
        put(&mut mem, RAM + 0x40_5000, 0xcccc);
        put(&mut mem, RAM + 0x60_5000, 0xdddd);
        let mut cpu = Cpu::new_system(0);
        cpu.sys.tcr_el1 = 25 | 1 << 23 | 2 << 32;
        cpu.sys.ttbr0_el1 = RAM;
        cpu.sys.sctlr_el1 |= sctlr::M;
        (cpu, mem)
    }

    const TLBI_VAE1: u32 = key(1, 0, 8, 7, 1);
    const TLBI_VMALLE1: u32 = key(1, 0, 8, 7, 0);

    #[test]
    fn tlbi_by_address_drops_a_stale_page() {
        let (mut cpu, mut mem) = setup();
        assert_eq!(cpu.read::<u64>(&mut mem, 0x1000_0000).ok(), Some(0xaaaa));
        put(&mut mem, RAM + 0x2000, (RAM + 0x11_0000) | 3 | 1 << 10);
        // Until invalidated, the old translation may (and here does) stay.
        assert_eq!(cpu.read::<u64>(&mut mem, 0x1000_0000).ok(), Some(0xaaaa));
        cpu.system_sys(&mut mem, TLBI_VAE1, 0x1000_0000 >> 12, 0)
            .unwrap();
        assert_eq!(cpu.read::<u64>(&mut mem, 0x1000_0000).ok(), Some(0xbbbb));
    }

    #[test]
    fn tlbi_of_a_block_address_drops_all_of_the_block() {
        let (mut cpu, mut mem) = setup();
        assert_eq!(cpu.read::<u64>(&mut mem, 0x2000_5000).ok(), Some(0xcccc));
        put(
            &mut mem,
            RAM + 0x1000 + (0x2000_0000 >> 21) * 8,
            (RAM + 0x60_0000) | 1 | 1 << 10,
        );
        // Linux invalidates a block by its first address; the cached 4K piece
        // at +0x5000 must go too.
        cpu.system_sys(&mut mem, TLBI_VAE1, 0x2000_0000 >> 12, 0)
            .unwrap();
        assert_eq!(cpu.read::<u64>(&mut mem, 0x2000_5000).ok(), Some(0xdddd));
    }

    #[test]
    fn unmapping_then_tlbi_faults_and_ttbr_switch_flushes() {
        let (mut cpu, mut mem) = setup();
        assert!(cpu.read::<u64>(&mut mem, 0x1000_0000).is_ok());
        put(&mut mem, RAM + 0x2000, 0);
        cpu.system_sys(&mut mem, TLBI_VMALLE1, 0, 0).unwrap();
        assert!(cpu.read::<u64>(&mut mem, 0x1000_0000).is_err());
        assert_eq!(cpu.fault_status, super::super::fsc::TRANSLATION | 3);
        // A new ASID in TTBR0 (a context switch) must not see old translations.
        put(&mut mem, RAM + 0x2000, (RAM + 0x10_0000) | 3 | 1 << 10);
        assert!(cpu.read::<u64>(&mut mem, 0x1000_0000).is_ok());
        put(&mut mem, RAM + 0x2000, (RAM + 0x11_0000) | 3 | 1 << 10);
        cpu.system_msr(&mut mem, key(3, 0, 2, 0, 0), RAM | 1 << 48, 0)
            .unwrap();
        assert_eq!(cpu.read::<u64>(&mut mem, 0x1000_0000).ok(), Some(0xbbbb));
    }

    #[test]
    fn address_translation_instruction_reports_in_par() {
        let (mut cpu, mut mem) = setup();
        cpu.sys.mair_el1 = 0xff;
        cpu.system_sys(&mut mem, key(1, 0, 7, 8, 0), 0x1000_0123, 0)
            .unwrap();
        assert_eq!(cpu.sys.par_el1, 0xff << 56 | (RAM + 0x10_0000));
        cpu.system_sys(&mut mem, key(1, 0, 7, 8, 2), 0x1000_0123, 0)
            .unwrap();
        assert_eq!(cpu.sys.par_el1 & 1, 1, "EL0 has no access: fault reported");
        assert_eq!(
            cpu.sys.par_el1 >> 1 & 0x3f,
            0x0f,
            "permission fault, level 3"
        );
    }
}
