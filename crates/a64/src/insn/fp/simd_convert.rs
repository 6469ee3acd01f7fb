//! AdvSIMD FP <-> integer conversions on SIMD registers, scalar and vector:
//! FCVTNS/NU, FCVTMS/MU, FCVTAS/AU, FCVTPS/PU, FCVTZS/ZU and SCVTF/UCVTF.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::fp::{self, Rounding};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "01 u 11110 o z 10000 1101 x 10 nnnnn ddddd",
        "FCVT[NMPZ][SU] (scalar, SIMD)",
        "fp-convert",
        convert_scalar,
    ),
    enc!(
        "01 u 11110 0 z 10000 1110 x 10 nnnnn ddddd",
        "FCVTA[SU]/SCVTF/UCVTF (scalar, SIMD)",
        "fp-convert",
        convert_scalar,
    ),
    enc!(
        "0 q u 01110 o z 10000 1101 x 10 nnnnn ddddd",
        "FCVT[NMPZ][SU] (vector)",
        "fp-convert",
        convert_vector,
    ),
    enc!(
        "0 q u 01110 0 z 10000 1110 x 10 nnnnn ddddd",
        "FCVTA[SU]/SCVTF/UCVTF (vector)",
        "fp-convert",
        convert_vector,
    ),
];

/// Converts one element of `esize` bits per the encoding; None if unallocated.
fn convert_element(raw: u32, x: u64, esize: u32, fpcr: u32, fpsr: &mut u32) -> Option<u64> {
    let unsigned = bit(raw, 29);
    let o2 = bit(raw, 23);
    let opcode = bits(raw, 16, 12);
    let to_int = |r: Rounding, fpsr: &mut u32| {
        if esize == 64 {
            fp::to_int::<f64>(x, 0, unsigned, 64, r, fpcr, fpsr)
        } else {
            fp::to_int::<f32>(x, 0, unsigned, 32, r, fpcr, fpsr)
        }
    };
    Some(match (o2, opcode) {
        (false, 0b11010) => to_int(Rounding::Nearest, fpsr),
        (false, 0b11011) => to_int(Rounding::MinusInf, fpsr),
        (false, 0b11100) => to_int(Rounding::NearestAway, fpsr),
        (true, 0b11010) => to_int(Rounding::PlusInf, fpsr),
        (true, 0b11011) => to_int(Rounding::Zero, fpsr),
        (false, 0b11101) => {
            let (neg, mag) = if !unsigned && (sext(x, esize) < 0) {
                (true, sext(x, esize).unsigned_abs())
            } else {
                (false, x)
            };
            let r = Rounding::from_fpcr(fpcr);
            if esize == 64 {
                fp::from_int::<f64>(mag, neg, 0, r, fpsr)
            } else {
                fp::from_int::<f32>(mag, neg, 0, r, fpsr)
            }
        }
        _ => return None,
    })
}

fn convert_scalar(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let x = lane(cpu.vreg(rn(raw)), esize, 0);
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let Some(r) = convert_element(raw, x, esize, fpcr, &mut fpsr) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}

fn convert_vector(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let q = bit(raw, 30);
    if esize == 64 && !q {
        return cpu.stop(Exit::Undefined(raw));
    }
    let datasize = if q { 128 } else { 64 };
    let a = cpu.vreg(rn(raw));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let mut r = 0u128;
    for k in 0..(datasize / esize) as usize {
        let Some(v) = convert_element(raw, lane(a, esize, k), esize, fpcr, &mut fpsr) else {
            return cpu.stop(Exit::Undefined(raw));
        };
        r = with_lane(r, esize, k, v);
    }
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r);
    Ok(())
}
