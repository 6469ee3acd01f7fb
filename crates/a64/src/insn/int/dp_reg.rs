//! Data processing, register: shifted/extended add/subtract and logical,
//! add/subtract with carry, conditional compare and select.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "1 o f 01011 00 0 mmmmm iiiiii nnnnn ddddd",
        "ADD/ADDS/SUB/SUBS (shifted register, 64-bit LSL)",
        "dp-reg",
        add_sub_lsl64,
    ),
    enc!(
        "1 01 01010 00 0 mmmmm 000000 11111 ddddd",
        "MOV (register, 64-bit)",
        "dp-reg",
        mov_reg64,
    ),
    enc!(
        "s oo 01010 tt N mmmmm iiiiii nnnnn ddddd",
        "AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register)",
        "dp-reg",
        logical_shifted,
    ),
    enc!(
        "1 0 0 01011 00 0 mmmmm 000000 nnnnn ddddd",
        "ADD (register, 64-bit)",
        "dp-reg",
        add_reg64,
    ),
    enc!(
        "1 1 1 01011 00 0 mmmmm 000000 nnnnn ddddd",
        "SUBS (register, 64-bit)",
        "dp-reg",
        subs_reg64,
    ),
    enc!(
        "s o f 01011 tt 0 mmmmm iiiiii nnnnn ddddd",
        "ADD/ADDS/SUB/SUBS (shifted register)",
        "dp-reg",
        add_sub_shifted,
    ),
    enc!(
        "s o f 01011 00 1 mmmmm xxx iii nnnnn ddddd",
        "ADD/ADDS/SUB/SUBS (extended register)",
        "dp-reg",
        add_sub_extended,
    ),
    enc!(
        "s o f 11010000 mmmmm 000000 nnnnn ddddd",
        "ADC/ADCS/SBC/SBCS",
        "dp-reg",
        add_sub_carry,
    ),
    enc!(
        "s o 1 11010010 mmmmm cccc 0 0 nnnnn 0 vvvv",
        "CCMN/CCMP (register)",
        "dp-reg",
        cond_compare,
    ),
    enc!(
        "s o 1 11010010 iiiii cccc 1 0 nnnnn 0 vvvv",
        "CCMN/CCMP (immediate)",
        "dp-reg",
        cond_compare,
    ),
    enc!(
        "s o 0 11010100 mmmmm cccc 0 p nnnnn ddddd",
        "CSEL/CSINC/CSINV/CSNEG",
        "dp-reg",
        cond_select,
    ),
];

/// Applies a shift of kind `kind` (LSL, LSR, ASR, ROR) to a 64- or 32-bit value.
#[inline(always)]
pub(crate) fn shift_value(v: u64, kind: u32, amount: u32, sf: bool) -> u64 {
    if sf {
        match kind {
            0 => v << amount,
            1 => v >> amount,
            2 => ((v as i64) >> amount) as u64,
            _ => v.rotate_right(amount),
        }
    } else {
        let w = v as u32;
        (match kind {
            0 => w << amount,
            1 => w >> amount,
            2 => ((w as i32) >> amount) as u32,
            _ => w.rotate_right(amount),
        }) as u64
    }
}

/// ExtendReg: extends `v` per `option` (UXTB..SXTX) and shifts left by `shift`.
#[inline(always)]
pub(crate) fn extend_value(v: u64, option: u32, shift: u32) -> u64 {
    let e = match option {
        0 => v as u8 as u64,
        1 => v as u16 as u64,
        2 => v as u32 as u64,
        3 => v,
        4 => v as i8 as i64 as u64,
        5 => v as i16 as i64 as u64,
        6 => v as i32 as i64 as u64,
        _ => v,
    };
    e << shift
}

fn mov_reg64(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.xreg(rm(i.raw));
    cpu.set_xreg(rd(i.raw), v);
    Ok(())
}

fn logical_shifted(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let amount = bits(raw, 15, 10);
    if !sf && amount >= 32 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let mut b = shift_value(cpu.xreg(rm(raw)), bits(raw, 23, 22), amount, sf);
    if bit(raw, 21) {
        b = !b;
    }
    let a = cpu.xreg(rn(raw));
    let r = logical_result(cpu, raw, a, b);
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

/// AND/ORR/EOR/ANDS of `a` and `b` per opc (bits 30:29), truncated per sf; ANDS sets NZCV.
#[inline(always)]
pub(crate) fn logical_result(cpu: &mut Cpu, raw: u32, a: u64, b: u64) -> u64 {
    let sf = bit(raw, 31);
    let opc = bits(raw, 30, 29);
    let mut r = match opc {
        0 | 3 => a & b,
        1 => a | b,
        _ => a ^ b,
    };
    if !sf {
        r &= 0xffff_ffff;
    }
    if opc == 3 {
        cpu.nzcv = if sf {
            nzcv64(r, false, false)
        } else {
            nzcv32(r as u32, false, false)
        };
    }
    r
}

fn add_reg64(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let r = cpu.xreg(rn(i.raw)).wrapping_add(cpu.xreg(rm(i.raw)));
    cpu.set_xreg(rd(i.raw), r);
    Ok(())
}

fn subs_reg64(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let (r, flags) = add_with_carry64(cpu.xreg(rn(i.raw)), !cpu.xreg(rm(i.raw)), true);
    cpu.nzcv = flags;
    cpu.set_xreg(rd(i.raw), r);
    Ok(())
}

fn add_sub_shifted(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let kind = bits(raw, 23, 22);
    let amount = bits(raw, 15, 10);
    if kind == 3 || (!sf && amount >= 32) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let b = shift_value(cpu.xreg(rm(raw)), kind, amount, sf);
    let a = cpu.xreg(rn(raw));
    add_sub_finish(cpu, raw, a, b, false);
    Ok(())
}

fn add_sub_lsl64(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let b = cpu.xreg(rm(raw)) << bits(raw, 15, 10);
    let a = cpu.xreg(rn(raw));
    let sub = bit(raw, 30);
    if bit(raw, 29) {
        let (r, flags) = add_with_carry64(a, if sub { !b } else { b }, sub);
        cpu.nzcv = flags;
        cpu.set_xreg(rd(raw), r);
    } else {
        cpu.set_xreg(
            rd(raw),
            if sub {
                a.wrapping_sub(b)
            } else {
                a.wrapping_add(b)
            },
        );
    }
    Ok(())
}

fn add_sub_extended(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let shift = bits(raw, 12, 10);
    if shift > 4 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let b = extend_value(cpu.xreg(rm(raw)), bits(raw, 15, 13), shift);
    let a = cpu.xreg_sp(rn(raw));
    add_sub_finish(cpu, raw, a, b, true);
    Ok(())
}

/// Common tail of the add/subtract register forms: computes, sets flags if S,
/// and writes Rd (SP-capable for the extended form without S).
#[inline(always)]
fn add_sub_finish(cpu: &mut Cpu, raw: u32, a: u64, b: u64, rd_may_be_sp: bool) {
    let sub = bit(raw, 30);
    let b = if sub { !b } else { b };
    let (r, flags) = if bit(raw, 31) {
        add_with_carry64(a, b, sub)
    } else {
        add_with_carry32(a as u32, b as u32, sub)
    };
    if bit(raw, 29) {
        cpu.nzcv = flags;
        cpu.set_xreg(rd(raw), r);
    } else if rd_may_be_sp {
        cpu.set_xreg_sp(rd(raw), r);
    } else {
        cpu.set_xreg(rd(raw), r);
    }
}

fn add_sub_carry(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let a = cpu.xreg(rn(raw));
    let mut b = cpu.xreg(rm(raw));
    if bit(raw, 30) {
        b = !b;
    }
    let c = carry(cpu.nzcv);
    let (r, flags) = if bit(raw, 31) {
        add_with_carry64(a, b, c)
    } else {
        add_with_carry32(a as u32, b as u32, c)
    };
    if bit(raw, 29) {
        cpu.nzcv = flags;
    }
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn cond_compare(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    if cpu.condition_holds(bits(raw, 15, 12)) {
        let a = cpu.xreg(rn(raw));
        let mut b = if bit(raw, 11) {
            bits(raw, 20, 16) as u64
        } else {
            cpu.xreg(rm(raw))
        };
        let sub = bit(raw, 30);
        if sub {
            b = !b;
        }
        let (_, flags) = if bit(raw, 31) {
            add_with_carry64(a, b, sub)
        } else {
            add_with_carry32(a as u32, b as u32, sub)
        };
        cpu.nzcv = flags;
    } else {
        cpu.nzcv = bits(raw, 3, 0) << 28;
    }
    Ok(())
}

fn cond_select(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let r = if cpu.condition_holds(bits(raw, 15, 12)) {
        cpu.xreg(rn(raw))
    } else {
        let m = cpu.xreg(rm(raw));
        match (bit(raw, 30), bit(raw, 10)) {
            (false, false) => m,
            (false, true) => m.wrapping_add(1),
            (true, false) => !m,
            (true, true) => m.wrapping_neg(),
        }
    };
    cpu.set_xreg(rd(raw), if bit(raw, 31) { r } else { r & 0xffff_ffff });
    Ok(())
}
