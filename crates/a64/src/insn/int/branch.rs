//! Branches: unconditional immediate, conditional, compare-and-branch,
//! test-and-branch and branch to register.

use crate::bus::Bus;
use crate::cpu::{Cpu, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    Encoding::branch(
        "l 00101 iiiiiiiiiiiiiiiiiiiiiiiiii",
        "B/BL",
        "branch",
        b_imm,
    ),
    Encoding::branch(
        "1101011 0 0 10 11111 000000 nnnnn 00000",
        "RET",
        "branch",
        ret,
    ),
];

/// B and BL.
fn b_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let off = sext(bits(i.raw, 25, 0) as u64, 26) << 2;
    if bit(i.raw, 31) {
        cpu.set_xreg(30, i.pc.wrapping_add(4));
    }
    cpu.pc = i.pc.wrapping_add(off as u64);
    Ok(())
}

/// RET (to Xn, default X30).
fn ret(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.pc = cpu.xreg(rn(i.raw));
    Ok(())
}
