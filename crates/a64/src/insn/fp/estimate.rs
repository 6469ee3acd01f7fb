//! Reciprocal and reciprocal square root estimates: FRECPE, FRSQRTE (vector
//! and scalar), URECPE, URSQRTE (vector) and FRECPX (scalar). The arithmetic
//! is in `crate::fp::estimate`.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::fp::{self, Float};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "0 q u 01110 1 z 10000 1110 o 10 nnnnn ddddd",
        "FRECPE/FRSQRTE/URECPE/URSQRTE (vector)",
        "fp-vector",
        vector,
    ),
    enc!(
        "01 u 11110 1 z 10000 11101 10 nnnnn ddddd",
        "FRECPE/FRSQRTE (scalar)",
        "fp-vector",
        scalar,
    ),
    enc!(
        "01 0 11110 1 z 10000 11111 10 nnnnn ddddd",
        "FRECPX",
        "fp-vector",
        scalar,
    ),
];

/// The estimate selected by U and opcode<0> (bit 12) on one element of
/// format F; `None` for the unallocated 64-bit integer forms.
fn estimate<F: Float>(raw: u32, x: u64, fpcr: u32, fpsr: &mut u32) -> Option<u64> {
    let (u, float) = (bit(raw, 29), bit(raw, 12));
    Some(match (u, float) {
        (false, true) => fp::recip_estimate::<F>(x, fpcr, fpsr),
        (true, true) => fp::rsqrt_estimate::<F>(x, fpcr, fpsr),
        (false, false) if F::BITS == 32 => fp::urecpe(x as u32) as u64,
        (true, false) if F::BITS == 32 => fp::ursqrte(x as u32) as u64,
        _ => return None,
    })
}

fn vector(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let datasize = if bit(raw, 30) { 128 } else { 64 };
    if esize == 64 && datasize == 64 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let a = cpu.vreg(rn(raw));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let mut r = 0u128;
    for k in 0..(datasize / esize) as usize {
        let x = lane(a, esize, k);
        let v = if esize == 64 {
            estimate::<f64>(raw, x, fpcr, &mut fpsr)
        } else {
            estimate::<f32>(raw, x, fpcr, &mut fpsr)
        };
        let Some(v) = v else {
            return cpu.stop(Exit::Undefined(raw));
        };
        r = with_lane(r, esize, k, v);
    }
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

fn scalar(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let double = bit(raw, 22);
    let x = lane(cpu.vreg(rn(raw)), if double { 64 } else { 32 }, 0);
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let recpx = bits(raw, 16, 12) == 0b11111;
    let v = match (recpx, double) {
        (true, true) => fp::recip_exponent::<f64>(x, fpcr, &mut fpsr),
        (true, false) => fp::recip_exponent::<f32>(x, fpcr, &mut fpsr),
        (false, true) => estimate::<f64>(raw, x, fpcr, &mut fpsr).unwrap_or_default(),
        (false, false) => estimate::<f32>(raw, x, fpcr, &mut fpsr).unwrap_or_default(),
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), v as u128);
    Ok(())
}
