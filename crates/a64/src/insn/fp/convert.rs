//! Conversions between floating point and integers: FCVT[NPMZA][SU],
//! SCVTF/UCVTF, and their fixed-point forms.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::fp::{self, Float, Rounding};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "s 0 0 11110 tt 1 rr ooo 000000 nnnnn ddddd",
        "FCVT*S/FCVT*U/SCVTF/UCVTF (integer)",
        "fp-convert",
        int_convert,
    ),
    enc!(
        "s 0 0 11110 tt 0 rr ooo ffffff nnnnn ddddd",
        "FCVTZS/FCVTZU/SCVTF/UCVTF (fixed-point)",
        "fp-convert",
        fixed_convert,
    ),
];

fn to_int_typed<F: Float>(cpu: &mut Cpu, raw: u32, fbits: u32, unsigned: bool, rounding: Rounding) {
    let n = cpu.vreg(rn(raw)) as u64 & if F::BITS == 32 { 0xffff_ffff } else { u64::MAX };
    let width = if bit(raw, 31) { 64 } else { 32 };
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let r = fp::to_int::<F>(n, fbits, unsigned, width, rounding, fpcr, &mut fpsr);
    cpu.fpsr = fpsr;
    cpu.set_xreg(rd(raw), r);
}

fn from_int_typed<F: Float>(cpu: &mut Cpu, raw: u32, fbits: u32, unsigned: bool) {
    let x = cpu.xreg(rn(raw));
    let x = if bit(raw, 31) {
        x
    } else if unsigned {
        x & 0xffff_ffff
    } else {
        x as u32 as i32 as i64 as u64
    };
    let (negative, mag) = if !unsigned && (x as i64) < 0 {
        (true, (x as i64).unsigned_abs())
    } else {
        (false, x)
    };
    let mut fpsr = cpu.fpsr;
    let r = fp::from_int::<F>(
        mag,
        negative,
        fbits,
        Rounding::from_fpcr(cpu.fpcr),
        &mut fpsr,
    );
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
}

/// Runs the conversion `(rmode, opcode)` with `fbits` fraction bits; false if unallocated.
fn convert(cpu: &mut Cpu, raw: u32, rmode: u32, opcode: u32, fbits: u32) -> bool {
    let double = match bits(raw, 23, 22) {
        0 => false,
        1 => true,
        _ => return false,
    };
    let rounding = match rmode {
        0 => Rounding::Nearest,
        1 => Rounding::PlusInf,
        2 => Rounding::MinusInf,
        _ => Rounding::Zero,
    };
    match (rmode, opcode) {
        (_, 0 | 1) | (0, 4 | 5) => {
            let rounding = if opcode >= 4 {
                Rounding::NearestAway
            } else {
                rounding
            };
            let unsigned = opcode & 1 == 1;
            if double {
                to_int_typed::<f64>(cpu, raw, fbits, unsigned, rounding)
            } else {
                to_int_typed::<f32>(cpu, raw, fbits, unsigned, rounding)
            }
        }
        (0, 2 | 3) => {
            if double {
                from_int_typed::<f64>(cpu, raw, fbits, opcode == 3)
            } else {
                from_int_typed::<f32>(cpu, raw, fbits, opcode == 3)
            }
        }
        _ => return false,
    }
    true
}

fn int_convert(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    if convert(cpu, raw, bits(raw, 20, 19), bits(raw, 18, 16), 0) {
        Ok(())
    } else {
        cpu.stop(Exit::Undefined(raw))
    }
}

fn fixed_convert(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let scale = bits(raw, 15, 10);
    let (rmode, opcode) = (bits(raw, 20, 19), bits(raw, 18, 16));
    let allowed = matches!((rmode, opcode), (0, 2 | 3) | (3, 0 | 1));
    if !allowed || (!bit(raw, 31) && scale < 32) || !convert(cpu, raw, rmode, opcode, 64 - scale) {
        return cpu.stop(Exit::Undefined(raw));
    }
    Ok(())
}
