//! Data processing, immediate: PC-relative addressing, add/subtract,
//! logical, move wide, bitfield and extract.

use crate::bus::Bus;
use crate::cpu::{Cpu, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    Encoding::new(
        "s o f 100010 h iiiiiiiiiiii nnnnn ddddd",
        "ADD/ADDS/SUB/SUBS (immediate)",
        "dp-imm",
        add_sub_imm,
    ),
    Encoding::new(
        "s oo 100101 hh iiiiiiiiiiiiiiii ddddd",
        "MOVN/MOVZ/MOVK",
        "dp-imm",
        move_wide,
    ),
];

/// ADD, ADDS, SUB, SUBS (immediate), including CMP/CMN and MOV to/from SP.
fn add_sub_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    if bit(raw, 22) {
        // sh=1 shifts by 12; bit 23 set would be an unallocated (tag) form.
    }
    let imm = (bits(raw, 21, 10) as u64) << if bit(raw, 22) { 12 } else { 0 };
    let sub = bit(raw, 30);
    let set_flags = bit(raw, 29);
    let a = cpu.xreg_sp(rn(raw));
    let b = if sub { !imm } else { imm };
    if bit(raw, 31) {
        let (r, flags) = add_with_carry64(a, b, sub);
        if set_flags {
            cpu.nzcv = flags;
            cpu.set_xreg(rd(raw), r);
        } else {
            cpu.set_xreg_sp(rd(raw), r);
        }
    } else {
        let (r, flags) = add_with_carry32(a as u32, b as u32, sub);
        if set_flags {
            cpu.nzcv = flags;
            cpu.set_xreg(rd(raw), r);
        } else {
            cpu.set_xreg_sp(rd(raw), r);
        }
    }
    Ok(())
}

/// MOVN, MOVZ, MOVK.
fn move_wide(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let opc = bits(raw, 30, 29);
    let hw = bits(raw, 22, 21);
    if opc == 1 || (!sf && hw >= 2) {
        return cpu.stop(crate::Exit::Undefined(raw));
    }
    let shift = hw * 16;
    let imm = (bits(raw, 20, 5) as u64) << shift;
    let d = rd(raw);
    let mut r = match opc {
        0 => !imm,
        2 => imm,
        _ => (cpu.xreg(d) & !(0xffffu64 << shift)) | imm,
    };
    if !sf {
        r &= 0xffff_ffff;
    }
    cpu.set_xreg(d, r);
    Ok(())
}
