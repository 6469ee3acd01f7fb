//! The architectural state of a CPU as plain data, apart from the engine's
//! caches (TLB, decoded blocks, compiled code): what a snapshot saves, what
//! a migration carries, and what another backend (KVM) would load.

use serde::{Deserialize, Serialize};

use crate::cpu::{Cpu, Monitor};
use crate::system::SysRegs;

/// Everything guest-visible about one CPU, as plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuState {
    /// General registers X0..X30.
    pub x: [u64; 31],
    /// The stack pointer in use (SP_EL0 or SP_EL1, per PSTATE.SP and the EL).
    pub sp: u64,
    /// The program counter.
    pub pc: u64,
    /// PSTATE.{N,Z,C,V} in bits 31..28.
    pub nzcv: u32,
    /// SIMD&FP registers V0..V31.
    pub v: [u128; 32],
    /// FPCR.
    pub fpcr: u32,
    /// FPSR.
    pub fpsr: u32,
    /// TPIDR_EL0.
    pub tpidr_el0: u64,
    /// TPIDRRO_EL0.
    pub tpidrro_el0: u64,
    /// TCR_EL1.TBI0 as the CPU applies it.
    pub tbi0: bool,
    /// TCR_EL1.TBI1 as the CPU applies it.
    pub tbi1: bool,
    /// Whether the CPU runs at the system level (EL1 with MMU and exceptions).
    pub system: bool,
    /// The rest of PSTATE and the EL1 system registers.
    pub sys: SysRegs,
    /// The local exclusive monitor (an LDXR whose STXR has not run yet).
    pub monitor: Monitor,
    /// The feature ID registers the guest was offered when it booted: what
    /// a CPU that continues it must have (see [`crate::IdRegisters`]).
    pub id: crate::IdRegisters,
    /// Instructions retired since the CPU was created (statistics).
    pub insns_retired: u64,
    /// Exceptions taken since the CPU was created (statistics).
    pub exceptions_taken: u64,
}

impl Cpu {
    /// The CPU's architectural state.
    pub fn state(&self) -> CpuState {
        let mut x = [0; 31];
        x.copy_from_slice(&self.x[..31]);
        CpuState {
            x,
            sp: self.sp,
            pc: self.pc,
            nzcv: self.nzcv,
            v: self.v,
            fpcr: self.fpcr,
            fpsr: self.fpsr,
            tpidr_el0: self.tpidr_el0,
            tpidrro_el0: self.tpidrro_el0,
            tbi0: self.tbi0,
            tbi1: self.tbi1,
            system: self.system,
            sys: self.sys.clone(),
            monitor: self.monitor,
            id: self.id_registers(),
            insns_retired: self.insns_retired,
            exceptions_taken: self.exceptions_taken,
        }
    }

    /// Loads architectural state (for example from a snapshot) and drops
    /// every cached translation and decoded block, so execution continues
    /// exactly as the saved CPU would have. Values outside what the
    /// architecture allows (an exception level above 1, NZCV bits outside
    /// 31..28, FPCR/FPSR bits this core lacks) are masked, never trusted.
    pub fn set_state(&mut self, s: &CpuState) {
        self.x[..31].copy_from_slice(&s.x);
        self.x[31] = 0;
        self.sp = s.sp;
        self.pc = s.pc;
        self.nzcv = s.nzcv & 0xf000_0000;
        self.v = s.v;
        self.fpcr = s.fpcr & crate::FPCR_MASK;
        self.fpsr = s.fpsr & crate::FPSR_MASK;
        self.tpidr_el0 = s.tpidr_el0;
        self.tpidrro_el0 = s.tpidrro_el0;
        self.tbi0 = s.tbi0;
        self.tbi1 = s.tbi1;
        self.system = s.system;
        self.sys = s.sys.clone();
        self.sys.el = self.sys.el.min(1);
        self.sys.daif &= crate::system::daif::ALL;
        self.monitor = s.monitor;
        self.monitor.size = self.monitor.size.min(16);
        self.insns_retired = s.insns_retired;
        self.exceptions_taken = s.exceptions_taken;
        self.flush_tlb();
        self.flush_code_cache();
        self.code_flush_all = false;
        self.update_mmu_index();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlatMemory;

    /// A short program that leaves values in integer, FP and system state.
    fn program() -> Vec<u32> {
        vec![
            0xd2800540, // mov x0, #42
            0x9e670001, // fmov d1, x0
            0xd51bd040, // msr tpidr_el0, x0
            0xf100041f, // cmp x0, #1
            0x91000400, // add x0, x0, #1
        ]
    }

    #[test]
    fn state_round_trips_and_execution_continues_identically() {
        let mut mem = FlatMemory::new(0x1000, 0x1000);
        let code: Vec<u8> = program().iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.load(0x1000, &code);
        let mut a = Cpu::new();
        a.pc = 0x1000;
        a.run(&mut mem, 3);
        let saved = a.state();
        let mut b = Cpu::new();
        b.set_state(&saved);
        assert_eq!(b.state(), saved);
        a.run(&mut mem, 2);
        b.run(&mut mem, 2);
        assert_eq!(a.state(), b.state());
        assert_eq!(b.xreg(0), 43);
        assert_eq!(b.vreg(1), 42);
        assert_eq!(b.tpidr_el0, 42);
    }

    #[test]
    fn impossible_values_are_masked() {
        let mut s = Cpu::new_system(0).state();
        s.sys.el = 3;
        s.nzcv = u32::MAX;
        s.fpcr = u32::MAX;
        let mut cpu = Cpu::new();
        cpu.set_state(&s);
        assert_eq!(cpu.sys.el, 1);
        assert_eq!(cpu.nzcv, 0xf000_0000);
        assert_eq!(cpu.fpcr, crate::FPCR_MASK);
    }
}
