//! AdvSIMD copy and modified-immediate: DUP, INS, UMOV, SMOV, MOVI, MVNI,
//! ORR/BIC (vector, immediate) and the scalar DUP (MOV Bd, Vn.B[i]).

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "0 q 0 01110000 iiiii 0 0000 1 nnnnn ddddd",
        "DUP (element)",
        "simd-move",
        dup_element,
    ),
    enc!(
        "0 q 0 01110000 iiiii 0 0001 1 nnnnn ddddd",
        "DUP (general)",
        "simd-move",
        dup_general,
    ),
    enc!(
        "0 q 0 01110000 iiiii 0 01u1 1 nnnnn ddddd",
        "SMOV/UMOV",
        "simd-move",
        mov_to_general,
    ),
    enc!(
        "0 1 0 01110000 iiiii 0 0011 1 nnnnn ddddd",
        "INS (general)",
        "simd-move",
        ins_general,
    ),
    enc!(
        "0 1 1 01110000 iiiii 0 jjjj 1 nnnnn ddddd",
        "INS (element)",
        "simd-move",
        ins_element,
    ),
    enc!(
        "01 0 11110000 iiiii 0 0000 1 nnnnn ddddd",
        "DUP (element, scalar)",
        "simd-move",
        dup_scalar,
    ),
    enc!(
        "0 q o 0111100000 abc mmmm 0 1 defgh ddddd",
        "MOVI/MVNI/ORR/BIC (vector, immediate)",
        "simd-move",
        modified_immediate,
    ),
];

/// Decodes imm5 into (element size in bits, index), or None if reserved.
fn imm5_element(imm5: u32) -> Option<(u32, usize)> {
    let size = imm5.trailing_zeros();
    if size > 3 {
        return None;
    }
    Some((8 << size, (imm5 >> (size + 1)) as usize))
}

fn datasize(raw: u32) -> u32 {
    if bit(raw, 30) {
        128
    } else {
        64
    }
}

fn dup_element(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    match imm5_element(bits(raw, 20, 16)) {
        Some((64, _)) if !bit(raw, 30) => cpu.stop(Exit::Undefined(raw)),
        Some((esize, idx)) => {
            let x = lane(cpu.vreg(rn(raw)), esize, idx);
            cpu.set_vreg(rd(raw), keep_low(replicate(x, esize), datasize(raw) / 8));
            Ok(())
        }
        None => cpu.stop(Exit::Undefined(raw)),
    }
}

fn dup_general(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    match imm5_element(bits(raw, 20, 16)) {
        Some((64, _)) if !bit(raw, 30) => cpu.stop(Exit::Undefined(raw)),
        Some((esize, _)) => {
            let x = cpu.xreg(rn(raw));
            cpu.set_vreg(rd(raw), keep_low(replicate(x, esize), datasize(raw) / 8));
            Ok(())
        }
        None => cpu.stop(Exit::Undefined(raw)),
    }
}

fn mov_to_general(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let unsigned = bit(raw, 12);
    let q = bit(raw, 30);
    let Some((esize, idx)) = imm5_element(bits(raw, 20, 16)) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    // UMOV: W form for 8/16/32, X form (Q=1) only for 64. SMOV: W for 8/16, X for 8/16/32.
    let ok = if unsigned {
        (esize == 64) == q
    } else {
        esize < 32 || (esize == 32 && q)
    };
    if !ok {
        return cpu.stop(Exit::Undefined(raw));
    }
    let v = cpu.vreg(rn(raw));
    let r = if unsigned {
        lane(v, esize, idx)
    } else {
        let s = lane_s(v, esize, idx) as u64;
        if q {
            s
        } else {
            s & 0xffff_ffff
        }
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn ins_general(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some((esize, idx)) = imm5_element(bits(raw, 20, 16)) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let v = with_lane(cpu.vreg(rd(raw)), esize, idx, cpu.xreg(rn(raw)));
    cpu.set_vreg(rd(raw), v);
    Ok(())
}

fn ins_element(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some((esize, dst)) = imm5_element(bits(raw, 20, 16)) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let src = (bits(raw, 14, 11) >> (esize / 8).trailing_zeros()) as usize;
    let x = lane(cpu.vreg(rn(raw)), esize, src);
    let v = with_lane(cpu.vreg(rd(raw)), esize, dst, x);
    cpu.set_vreg(rd(raw), v);
    Ok(())
}

fn dup_scalar(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some((esize, idx)) = imm5_element(bits(raw, 20, 16)) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let x = lane(cpu.vreg(rn(raw)), esize, idx);
    cpu.set_vreg(rd(raw), x as u128);
    Ok(())
}

/// AdvSIMDExpandImm for the integer forms (op, cmode) → 64-bit pattern, or None.
fn expand_imm(op: bool, cmode: u32, imm8: u64) -> Option<u64> {
    let r = match cmode >> 1 {
        0 => replicate(imm8, 32) as u64,
        1 => replicate(imm8 << 8, 32) as u64,
        2 => replicate(imm8 << 16, 32) as u64,
        3 => replicate(imm8 << 24, 32) as u64,
        4 => replicate(imm8, 16) as u64,
        5 => replicate(imm8 << 8, 16) as u64,
        6 => {
            if cmode & 1 == 0 {
                replicate(imm8 << 8 | 0xff, 32) as u64
            } else {
                replicate(imm8 << 16 | 0xffff, 32) as u64
            }
        }
        _ => {
            if cmode & 1 == 0 && !op {
                replicate(imm8, 8) as u64
            } else if cmode & 1 == 0 {
                // Each bit of imm8 becomes a byte of ones or zeros.
                (0..8).fold(0u64, |acc, k| {
                    acc | if imm8 >> k & 1 != 0 {
                        0xffu64 << (8 * k)
                    } else {
                        0
                    }
                })
            } else {
                // cmode 1111 is FMOV (vector, immediate), decoded by the FP group.
                return None;
            }
        }
    };
    Some(r)
}

fn modified_immediate(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let q = bit(raw, 30);
    let op = bit(raw, 29);
    let cmode = bits(raw, 15, 12);
    let imm8 = (bits(raw, 18, 16) << 5 | bits(raw, 9, 5)) as u64;
    let Some(imm) = expand_imm(op, cmode, imm8) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let imm128 = (imm as u128) << 64 | imm as u128;
    let d = rd(raw);
    let bytes = if q { 16 } else { 8 };
    // cmode<0> set with cmode<3> clear, or cmode 10x1: the ORR/BIC forms.
    let is_logical = cmode & 1 == 1 && cmode < 0b1100;
    let result = if is_logical {
        let cur = cpu.vreg(d);
        if op {
            cur & !imm128
        } else {
            cur | imm128
        }
    } else if op && cmode != 0b1110 {
        !imm128
    } else {
        imm128
    };
    cpu.set_vreg(d, keep_low(result, bytes));
    Ok(())
}
