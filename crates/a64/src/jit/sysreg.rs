//! Inline reads of the system registers code reads all the time: TPIDR_EL0
//! (the thread pointer, readable at every level), and at EL1 SP_EL0 (Linux
//! keeps `current` there) and TPIDR_EL1 (its per-CPU base). Any other
//! register, or a level or stack selection where the read is not a plain
//! one, goes to the MRS handler, which stays the reference.

use std::mem::offset_of;

use super::x86::{Alu, Asm, Cc, R};
use crate::cpu::Cpu;
use crate::system::regs::key;
use crate::system::SysRegs;

const CPU: R = R::Rbx;
const X0: i32 = offset_of!(Cpu, x) as i32;
const SYSTEM: i32 = offset_of!(Cpu, system) as i32;
const TPIDR_EL0_FIELD: i32 = offset_of!(Cpu, tpidr_el0) as i32;
const SYS: i32 = offset_of!(Cpu, sys) as i32;
const EL: i32 = SYS + offset_of!(SysRegs, el) as i32;
const SPSEL: i32 = SYS + offset_of!(SysRegs, spsel) as i32;
const SP_EL0_FIELD: i32 = SYS + offset_of!(SysRegs, sp_el0) as i32;
const TPIDR_EL1_FIELD: i32 = SYS + offset_of!(SysRegs, tpidr_el1) as i32;

const TPIDR_EL0: u32 = key(3, 3, 13, 0, 2);
const SP_EL0: u32 = key(3, 0, 4, 1, 0);
const TPIDR_EL1: u32 = key(3, 0, 13, 0, 4);

/// Emits `raw` when it is an MRS of one of those registers (the slow path
/// calls the handler); returns false for everything else.
pub(super) fn emit(a: &mut Asm, raw: u32, slow: &mut dyn FnMut(&mut Asm)) -> bool {
    if raw & 0xfff0_0000 != 0xd530_0000 {
        return false;
    }
    let t = raw & 31;
    let put = |a: &mut Asm, field: i32| {
        if t != 31 {
            a.load(true, R::Rax, CPU, field);
            a.store(true, CPU, X0 + 8 * t as i32, R::Rax);
        }
    };
    let reg = raw >> 5 & 0xffff;
    if reg == TPIDR_EL0 {
        put(a, TPIDR_EL0_FIELD);
        return true;
    }
    if reg != SP_EL0 && reg != TPIDR_EL1 {
        return false;
    }
    // A plain read only for a system-level CPU at EL1 (and, for SP_EL0,
    // with SP_EL1 selected: otherwise the read is UNDEFINED).
    let mut not_plain = Vec::new();
    let mut require = |a: &mut Asm, byte: i32| {
        a.load_sized(1, false, false, R::Rax, CPU, byte);
        a.alu_imm(false, Alu::Cmp, R::Rax, 1);
        not_plain.push(a.jcc(Cc::Ne));
    };
    require(a, SYSTEM);
    require(a, EL);
    if reg == SP_EL0 {
        require(a, SPSEL);
    }
    put(
        a,
        if reg == SP_EL0 {
            SP_EL0_FIELD
        } else {
            TPIDR_EL1_FIELD
        },
    );
    let done = a.jmp();
    for l in not_plain {
        a.bind(l);
    }
    slow(a);
    a.bind(done);
    true
}
