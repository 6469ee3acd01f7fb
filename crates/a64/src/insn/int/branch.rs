//! Branches: unconditional immediate, conditional, compare-and-branch,
//! test-and-branch and branch to register.

use crate::bus::Bus;
use crate::cpu::{Cpu, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc_branch!("0 00101 iiiiiiiiiiiiiiiiiiiiiiiiii", "B", "branch", b),
    enc_branch!("1 00101 iiiiiiiiiiiiiiiiiiiiiiiiii", "BL", "branch", bl),
    enc_branch!(
        "0101010 0 iiiiiiiiiiiiiiiiiii 0 cccc",
        "B.cond",
        "branch",
        b_cond,
    ),
    enc_branch!(
        "s 011010 o iiiiiiiiiiiiiiiiiii ttttt",
        "CBZ/CBNZ",
        "branch",
        cbz,
    ),
    enc_branch!(
        "b 011011 o bbbbb iiiiiiiiiiiiii ttttt",
        "TBZ/TBNZ",
        "branch",
        tbz,
    ),
    enc_branch!(
        "1101011 0 0 00 11111 000000 nnnnn 00000",
        "BR",
        "branch",
        br,
    ),
    enc_branch!(
        "1101011 0 0 01 11111 000000 nnnnn 00000",
        "BLR",
        "branch",
        blr,
    ),
    enc_branch!(
        "1101011 0 0 10 11111 000000 nnnnn 00000",
        "RET",
        "branch",
        ret,
    ),
];

fn b(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let off = sext(bits(i.raw, 25, 0) as u64, 26) << 2;
    cpu.pc = i.pc.wrapping_add(off as u64);
    Ok(())
}

fn bl(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let off = sext(bits(i.raw, 25, 0) as u64, 26) << 2;
    cpu.set_xreg(30, i.pc.wrapping_add(4));
    cpu.pc = i.pc.wrapping_add(off as u64);
    Ok(())
}

/// Target of the 19-bit immediate forms (B.cond, CBZ).
#[inline(always)]
fn imm19_target(i: &Insn) -> u64 {
    i.pc.wrapping_add((sext(bits(i.raw, 23, 5) as u64, 19) << 2) as u64)
}

fn b_cond(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.pc = if cpu.condition_holds(bits(i.raw, 3, 0)) {
        imm19_target(i)
    } else {
        i.pc.wrapping_add(4)
    };
    Ok(())
}

fn cbz(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let mut v = cpu.xreg(rd(i.raw));
    if !bit(i.raw, 31) {
        v &= 0xffff_ffff;
    }
    let take = (v == 0) != bit(i.raw, 24);
    cpu.pc = if take {
        imm19_target(i)
    } else {
        i.pc.wrapping_add(4)
    };
    Ok(())
}

fn tbz(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let n = bits(i.raw, 23, 19) | (bits(i.raw, 31, 31) << 5);
    let set = cpu.xreg(rd(i.raw)) >> n & 1 != 0;
    let take = set == bit(i.raw, 24);
    cpu.pc = if take {
        i.pc.wrapping_add((sext(bits(i.raw, 18, 5) as u64, 14) << 2) as u64)
    } else {
        i.pc.wrapping_add(4)
    };
    Ok(())
}

fn br(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.pc = cpu.xreg(rn(i.raw));
    Ok(())
}

fn blr(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let target = cpu.xreg(rn(i.raw));
    cpu.set_xreg(30, i.pc.wrapping_add(4));
    cpu.pc = target;
    Ok(())
}

fn ret(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.pc = cpu.xreg(rn(i.raw));
    Ok(())
}
