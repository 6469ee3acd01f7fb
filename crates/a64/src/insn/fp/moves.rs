//! FMOV between general and SIMD&FP registers, FMOV (register) and FMOV (scalar, immediate).

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "s 0 0 11110 tt 1 rr 11o 000000 nnnnn ddddd",
        "FMOV (general)",
        "fp-scalar",
        fmov_general,
    ),
    enc!(
        "0 0 0 11110 tt 1 0000 00 10000 nnnnn ddddd",
        "FMOV (register)",
        "fp-scalar",
        fmov_register,
    ),
    enc!(
        "0 0 0 11110 tt 1 iiiiiiii 100 00000 ddddd",
        "FMOV (scalar, immediate)",
        "fp-scalar",
        fmov_immediate,
    ),
];

fn fmov_general(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let ftype = bits(raw, 23, 22);
    let rmode = bits(raw, 20, 19);
    let to_fp = bit(raw, 16);
    let (d, n) = (rd(raw), rn(raw));
    match (sf, ftype, rmode) {
        // W <-> S
        (false, 0, 0) => {
            if to_fp {
                cpu.set_vreg(d, cpu.xreg(n) as u32 as u128);
            } else {
                cpu.set_xreg(d, cpu.vreg(n) as u32 as u64);
            }
        }
        // X <-> D
        (true, 1, 0) => {
            if to_fp {
                cpu.set_vreg(d, cpu.xreg(n) as u128);
            } else {
                cpu.set_xreg(d, cpu.vreg(n) as u64);
            }
        }
        // X <-> V.D[1]
        (true, 2, 1) => {
            if to_fp {
                let v = (cpu.vreg(d) & u64::MAX as u128) | (cpu.xreg(n) as u128) << 64;
                cpu.set_vreg(d, v);
            } else {
                cpu.set_xreg(d, (cpu.vreg(n) >> 64) as u64);
            }
        }
        _ => return cpu.stop(Exit::Undefined(raw)),
    }
    Ok(())
}

fn fmov_register(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let v = cpu.vreg(rn(raw));
    let r = match bits(raw, 23, 22) {
        0 => v as u32 as u128,
        1 => v as u64 as u128,
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

/// VFPExpandImm: the 8-bit FP immediate as single (32) or double (64) precision bits.
pub(crate) fn expand_fp_imm(imm8: u32, bits64: bool) -> u64 {
    let sign = (imm8 >> 7) as u64;
    let b6 = (imm8 >> 6) & 1;
    let low6 = (imm8 & 0x3f) as u64;
    if bits64 {
        let exp = ((b6 ^ 1) as u64) << 10 | (if b6 == 1 { 0xff } else { 0 }) << 2 | (low6 >> 4);
        sign << 63 | exp << 52 | (low6 & 0xf) << 48
    } else {
        let exp = ((b6 ^ 1) as u64) << 7 | (if b6 == 1 { 0x1f } else { 0 }) << 2 | (low6 >> 4);
        sign << 31 | exp << 23 | (low6 & 0xf) << 19
    }
}

fn fmov_immediate(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let imm8 = bits(raw, 20, 13);
    let r = match bits(raw, 23, 22) {
        0 => expand_fp_imm(imm8, false),
        1 => expand_fp_imm(imm8, true),
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}
