//! Vector floating point (2S/4S/2D) and the scalar pairwise forms: three-same
//! arithmetic, compares and pairwise operations, two-register misc (rounding,
//! compares with zero, abs/neg/sqrt, FCVTL/FCVTN), across-lanes max/min,
//! by-element multiply(-accumulate) and FMOV (vector, immediate).

use super::moves::expand_fp_imm;
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::fp::{self, Arith, Float, Rounding};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "0 q o 0111100000 abc 1111 0 1 defgh ddddd",
        "FMOV (vector, immediate)",
        "fp-vector",
        fmov_vector_imm,
    ),
    enc!(
        "0 q u 01110 o z 1 mmmmm 11 ooo 1 nnnnn ddddd",
        "AdvSIMD three same (FP)",
        "fp-vector",
        three_same,
    ),
    enc!(
        "0 q 1 01110 0 1 10000 10110 10 nnnnn ddddd",
        "FCVTXN (vector)",
        "fp-vector",
        fcvtxn,
    ),
    enc!(
        "01 1 11110 0 1 10000 10110 10 nnnnn ddddd",
        "FCVTXN (scalar)",
        "fp-vector",
        fcvtxn,
    ),
    enc!(
        "01 u 11110 o z 1 mmmmm 11 ooo 1 nnnnn ddddd",
        "FMULX/FCMEQ/FRECPS/FRSQRTS/FCMGE/FACGE/FABD/FCMGT/FACGT (scalar)",
        "fp-vector",
        scalar_three_same,
    ),
    enc!(
        "0 q u 01110 o z 10000 011 oo 10 nnnnn ddddd",
        "FCM* (zero), FABS, FNEG (vector)",
        "fp-vector",
        two_reg_misc,
    ),
    enc!(
        "0 q u 01110 o z 10000 1100 o 10 nnnnn ddddd",
        "FRINT* (vector)",
        "fp-vector",
        two_reg_misc,
    ),
    enc!(
        "0 q 1 01110 1 z 10000 11111 10 nnnnn ddddd",
        "FSQRT (vector)",
        "fp-vector",
        two_reg_misc,
    ),
    enc!(
        "0 q 0 01110 0 z 10000 1011 o 10 nnnnn ddddd",
        "FCVTN/FCVTL",
        "fp-vector",
        fcvt_long_narrow,
    ),
    enc!(
        "0 1 1 01110 o 0 11000 011 pp 10 nnnnn ddddd",
        "FMAXNMV/FMINNMV/FMAXV/FMINV",
        "fp-vector",
        across,
    ),
    enc!(
        "01 1 11110 o z 11000 011 oo 10 nnnnn ddddd",
        "FMAXNMP/FADDP/FMAXP/FMINNMP/FMINP (scalar)",
        "fp-vector",
        scalar_pairwise,
    ),
    enc!(
        "0 q 0 01111 1 z l m mmmm o 0 01 h 0 nnnnn ddddd",
        "FMLA/FMLS (by element)",
        "fp-vector",
        by_element,
    ),
    enc!(
        "0 q 0 01111 1 z l m mmmm 1001 h 0 nnnnn ddddd",
        "FMUL (by element)",
        "fp-vector",
        by_element,
    ),
    enc!(
        "01 0 11111 1 z l m mmmm o 0 01 h 0 nnnnn ddddd",
        "FMLA/FMLS (by element, scalar)",
        "fp-vector",
        by_element,
    ),
    enc!(
        "01 0 11111 1 z l m mmmm 1001 h 0 nnnnn ddddd",
        "FMUL (by element, scalar)",
        "fp-vector",
        by_element,
    ),
];

fn fmov_vector_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let (q, op) = (bit(raw, 30), bit(raw, 29));
    let imm8 = bits(raw, 18, 16) << 5 | bits(raw, 9, 5);
    let v = match (op, q) {
        (false, _) => replicate(expand_fp_imm(imm8, false), 32),
        (true, true) => replicate(expand_fp_imm(imm8, true), 64),
        (true, false) => return cpu.stop(Exit::Undefined(raw)),
    };
    cpu.set_vreg(rd(raw), keep_low(v, if q { 16 } else { 8 }));
    Ok(())
}

/// Element size (32 or 64) and datasize; None for the reserved 1D arrangement.
fn shape(raw: u32) -> Option<(u32, u32)> {
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let datasize = if bit(raw, 30) { 128 } else { 64 };
    (esize == 32 || datasize == 128).then_some((esize, datasize))
}

/// One three-same FP operation on elements `a`, `b` (accumulator `d`) of format F.
fn three_same_op<F: Float>(
    (u, o, opcode): (bool, bool, u32),
    a: u64,
    b: u64,
    d: u64,
    fpcr: u32,
    fpsr: &mut u32,
) -> Option<u64> {
    let ones = if F::BITS == 64 { u64::MAX } else { 0xffff_ffff };
    let mask = |c: bool| if c { ones } else { 0 };
    let abs = |x: u64| x & !F::sign_mask();
    Some(match (u, o, opcode) {
        (false, false, 0b000) => fp::max_min::<F>(a, b, true, true, fpcr, fpsr),
        (false, true, 0b000) => fp::max_min::<F>(a, b, false, true, fpcr, fpsr),
        (false, false, 0b001) => fp::mul_add::<F>(d, a, b, fpcr, fpsr),
        (false, true, 0b001) => fp::mul_add::<F>(d, a ^ F::sign_mask(), b, fpcr, fpsr),
        (false, false, 0b010) => fp::arith::<F>(Arith::Add, a, b, fpcr, fpsr),
        (false, true, 0b010) => fp::arith::<F>(Arith::Sub, a, b, fpcr, fpsr),
        (false, false, 0b011) => fp::mul_x::<F>(a, b, fpcr, fpsr),
        (false, false, 0b111) => fp::step_fused::<F>(a, b, false, fpcr, fpsr),
        (false, true, 0b111) => fp::step_fused::<F>(a, b, true, fpcr, fpsr),
        (false, false, 0b100) => mask(fp::compare::<F>(a, b, false, fpcr, fpsr) == 0b0110 << 28),
        (false, false, 0b110) => fp::max_min::<F>(a, b, true, false, fpcr, fpsr),
        (false, true, 0b110) => fp::max_min::<F>(a, b, false, false, fpcr, fpsr),
        (true, false, 0b011) => fp::arith::<F>(Arith::Mul, a, b, fpcr, fpsr),
        (true, false, 0b111) => fp::arith::<F>(Arith::Div, a, b, fpcr, fpsr),
        (true, true, 0b010) => abs(fp::arith::<F>(Arith::Sub, a, b, fpcr, fpsr)),
        (true, false, 0b100) => mask(ge::<F>(a, b, fpcr, fpsr)),
        (true, true, 0b100) => mask(gt::<F>(a, b, fpcr, fpsr)),
        (true, false, 0b101) => mask(ge::<F>(abs(a), abs(b), fpcr, fpsr)),
        (true, true, 0b101) => mask(gt::<F>(abs(a), abs(b), fpcr, fpsr)),
        _ => return None,
    })
}

/// a >= b (signalling compare: any NaN raises IOC).
fn ge<F: Float>(a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> bool {
    let f = fp::compare::<F>(a, b, true, fpcr, fpsr);
    f == 0b0110 << 28 || f == 0b0010 << 28
}

/// a > b (signalling compare).
fn gt<F: Float>(a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> bool {
    fp::compare::<F>(a, b, true, fpcr, fpsr) == 0b0010 << 28
}

/// The pairwise operations of three-same, on a pair of elements.
fn pairwise_op<F: Float>(
    o: bool,
    opcode: u32,
    a: u64,
    b: u64,
    fpcr: u32,
    fpsr: &mut u32,
) -> Option<u64> {
    Some(match (o, opcode) {
        (false, 0b000) => fp::max_min::<F>(a, b, true, true, fpcr, fpsr),
        (true, 0b000) => fp::max_min::<F>(a, b, false, true, fpcr, fpsr),
        (false, 0b010) => fp::arith::<F>(Arith::Add, a, b, fpcr, fpsr),
        (false, 0b110) => fp::max_min::<F>(a, b, true, false, fpcr, fpsr),
        (true, 0b110) => fp::max_min::<F>(a, b, false, false, fpcr, fpsr),
        _ => return None,
    })
}

fn three_same(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some((esize, datasize)) = shape(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let (u, o, opcode) = (bit(raw, 29), bit(raw, 23), bits(raw, 13, 11));
    let (a, b, d) = (cpu.vreg(rn(raw)), cpu.vreg(rm(raw)), cpu.vreg(rd(raw)));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let n = (datasize / esize) as usize;
    let pairwise = u && matches!((o, opcode), (_, 0b000) | (false, 0b010) | (_, 0b110));
    let mut r = 0u128;
    for k in 0..n {
        let v = if pairwise {
            let (src, j) = if k < n / 2 {
                (a, 2 * k)
            } else {
                (b, 2 * (k - n / 2))
            };
            let (x, y) = (lane(src, esize, j), lane(src, esize, j + 1));
            if esize == 64 {
                pairwise_op::<f64>(o, opcode, x, y, fpcr, &mut fpsr)
            } else {
                pairwise_op::<f32>(o, opcode, x, y, fpcr, &mut fpsr)
            }
        } else {
            let (x, y, z) = (lane(a, esize, k), lane(b, esize, k), lane(d, esize, k));
            if esize == 64 {
                three_same_op::<f64>((u, o, opcode), x, y, z, fpcr, &mut fpsr)
            } else {
                three_same_op::<f32>((u, o, opcode), x, y, z, fpcr, &mut fpsr)
            }
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

fn scalar_three_same(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let (u, o, opcode) = (bit(raw, 29), bit(raw, 23), bits(raw, 13, 11));
    // The scalar group has only these: FMULX, FCMEQ, FRECPS, FRSQRTS, FCMGE, FACGE, FABD, FCMGT, FACGT.
    let allowed = matches!(
        (u, o, opcode),
        (false, false, 0b011 | 0b100 | 0b111)
            | (false, true, 0b111)
            | (true, false, 0b100 | 0b101)
            | (true, true, 0b010 | 0b100 | 0b101)
    );
    if !allowed {
        return cpu.stop(Exit::Undefined(raw));
    }
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let (a, b) = (
        lane(cpu.vreg(rn(raw)), esize, 0),
        lane(cpu.vreg(rm(raw)), esize, 0),
    );
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let r = if esize == 64 {
        three_same_op::<f64>((u, o, opcode), a, b, 0, fpcr, &mut fpsr)
    } else {
        three_same_op::<f32>((u, o, opcode), a, b, 0, fpcr, &mut fpsr)
    };
    let Some(r) = r else {
        return cpu.stop(Exit::Undefined(raw));
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}

fn misc_op<F: Float>(
    u: bool,
    o: bool,
    opcode: u32,
    x: u64,
    fpcr: u32,
    fpsr: &mut u32,
) -> Option<u64> {
    let ones = if F::BITS == 64 { u64::MAX } else { 0xffff_ffff };
    let mask = |c: bool| if c { ones } else { 0 };
    // FCMEQ is a quiet compare (IOC only for signalling NaNs); the ordered ones signal.
    let cmp = |fpsr: &mut u32| fp::compare::<F>(x, 0, opcode != 0b01101 || u, fpcr, fpsr) >> 28;
    let rint =
        |r: Rounding, exact: bool, fpsr: &mut u32| fp::round_int::<F>(x, r, exact, fpcr, fpsr);
    Some(match (u, o, opcode) {
        (false, true, 0b01100) => mask(cmp(fpsr) == 0b0010),
        (false, true, 0b01101) => mask(cmp(fpsr) == 0b0110),
        (false, true, 0b01110) => mask(cmp(fpsr) == 0b1000),
        (true, true, 0b01100) => mask(matches!(cmp(fpsr), 0b0010 | 0b0110)),
        (true, true, 0b01101) => mask(matches!(cmp(fpsr), 0b1000 | 0b0110)),
        (false, true, 0b01111) => x & !F::sign_mask(),
        (true, true, 0b01111) => x ^ F::sign_mask(),
        (false, false, 0b11000) => rint(Rounding::Nearest, false, fpsr),
        (false, false, 0b11001) => rint(Rounding::MinusInf, false, fpsr),
        (false, true, 0b11000) => rint(Rounding::PlusInf, false, fpsr),
        (false, true, 0b11001) => rint(Rounding::Zero, false, fpsr),
        (true, false, 0b11000) => rint(Rounding::NearestAway, false, fpsr),
        (true, false, 0b11001) => rint(Rounding::from_fpcr(fpcr), true, fpsr),
        (true, true, 0b11001) => rint(Rounding::from_fpcr(fpcr), false, fpsr),
        (true, true, 0b11111) => fp::sqrt::<F>(x, fpcr, fpsr),
        _ => return None,
    })
}

fn two_reg_misc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some((esize, datasize)) = shape(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let (u, o, opcode) = (bit(raw, 29), bit(raw, 23), bits(raw, 16, 12));
    let a = cpu.vreg(rn(raw));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let mut r = 0u128;
    for k in 0..(datasize / esize) as usize {
        let x = lane(a, esize, k);
        let v = if esize == 64 {
            misc_op::<f64>(u, o, opcode, x, fpcr, &mut fpsr)
        } else {
            misc_op::<f32>(u, o, opcode, x, fpcr, &mut fpsr)
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

/// FCVTL(2) (to double, or from half to single) and FCVTN(2) (from double, or single to half).
fn fcvt_long_narrow(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let upper = bit(raw, 30);
    let a = cpu.vreg(rn(raw));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    if !bit(raw, 22) {
        let r = if bit(raw, 12) {
            let src = if upper { a >> 64 } else { a };
            (0..4).fold(0u128, |acc, k| {
                acc | (fp::from_half(lane(src, 16, k), false, fpcr, &mut fpsr) as u128) << (32 * k)
            })
        } else {
            let part = (0..4).fold(0u128, |acc, k| {
                acc | (fp::to_half(lane(a, 32, k), false, fpcr, &mut fpsr) as u128) << (16 * k)
            });
            if upper {
                (cpu.vreg(rd(raw)) & u64::MAX as u128) | part << 64
            } else {
                part
            }
        };
        cpu.fpsr = fpsr;
        cpu.set_vreg(rd(raw), r);
        return Ok(());
    }
    let r = if bit(raw, 12) {
        let src = if upper { a >> 64 } else { a };
        let lo = fp::f32_to_f64(lane(src, 32, 0), fpcr, &mut fpsr);
        let hi = fp::f32_to_f64(lane(src, 32, 1), fpcr, &mut fpsr);
        (hi as u128) << 64 | lo as u128
    } else {
        let lo = fp::f64_to_f32(lane(a, 64, 0), fpcr, &mut fpsr);
        let hi = fp::f64_to_f32(lane(a, 64, 1), fpcr, &mut fpsr);
        let part = (hi as u128) << 32 | lo as u128;
        if upper {
            (cpu.vreg(rd(raw)) & u64::MAX as u128) | part << 64
        } else {
            part
        }
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

/// FCVTXN(2): doubles to singles with round-to-odd; the scalar form converts one element.
fn fcvtxn(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let scalar = bit(raw, 28);
    let upper = !scalar && bit(raw, 30);
    let a = cpu.vreg(rn(raw));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let lo = fp::f64_to_f32_odd(lane(a, 64, 0), fpcr, &mut fpsr);
    let r = if scalar {
        lo as u128
    } else {
        let hi = fp::f64_to_f32_odd(lane(a, 64, 1), fpcr, &mut fpsr);
        let part = (hi as u128) << 32 | lo as u128;
        if upper {
            (cpu.vreg(rd(raw)) & u64::MAX as u128) | part << 64
        } else {
            part
        }
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

/// Max/min selected by (o, opcode low bit): FMAXNM, FMINNM, FMAX, FMIN.
fn reduce_op<F: Float>(o: bool, numeric: bool, a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    fp::max_min::<F>(a, b, !o, numeric, fpcr, fpsr)
}

fn across(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let o = bit(raw, 23);
    let numeric = match bits(raw, 13, 12) {
        0b00 => true,
        0b11 => false,
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    let a = cpu.vreg(rn(raw));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    // The architecture reduces pairwise: (e0 op e1) op (e2 op e3).
    let l = |k| lane(a, 32, k);
    let x = reduce_op::<f32>(o, numeric, l(0), l(1), fpcr, &mut fpsr);
    let y = reduce_op::<f32>(o, numeric, l(2), l(3), fpcr, &mut fpsr);
    let r = reduce_op::<f32>(o, numeric, x, y, fpcr, &mut fpsr);
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}

fn scalar_pairwise(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let (o, opcode) = (bit(raw, 23), bits(raw, 14, 12));
    let a = cpu.vreg(rn(raw));
    let (x, y) = (lane(a, esize, 0), lane(a, esize, 1));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    // opcode 100 = NM variants, 101 = FADDP, 111 = FMAXP/FMINP.
    let mapped = match opcode {
        0b100 => 0b000,
        0b101 if !o => 0b010,
        0b111 => 0b110,
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    let r = if esize == 64 {
        pairwise_op::<f64>(o, mapped, x, y, fpcr, &mut fpsr)
    } else {
        pairwise_op::<f32>(o, mapped, x, y, fpcr, &mut fpsr)
    };
    let Some(r) = r else {
        return cpu.stop(Exit::Undefined(raw));
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}

fn by_element(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let scalar = bit(raw, 28);
    let esize = if bit(raw, 22) { 64 } else { 32 };
    let (l, h) = (bits(raw, 21, 21), bits(raw, 11, 11));
    let q = bit(raw, 30);
    if esize == 64 && (l == 1 || (!scalar && !q)) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let index = if esize == 64 { h } else { h << 1 | l } as usize;
    let m = bits(raw, 20, 16) as usize;
    let opcode = bits(raw, 15, 12);
    let elem = lane(cpu.vreg(m), esize, index);
    let (a, d) = (cpu.vreg(rn(raw)), cpu.vreg(rd(raw)));
    let datasize = if scalar {
        esize
    } else if q {
        128
    } else {
        64
    };
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let mut r = 0u128;
    for k in 0..(datasize / esize) as usize {
        let (x, acc) = (lane(a, esize, k), lane(d, esize, k));
        let v = if esize == 64 {
            match opcode {
                0b0001 => fp::mul_add::<f64>(acc, x, elem, fpcr, &mut fpsr),
                0b0101 => fp::mul_add::<f64>(acc, x ^ (1 << 63), elem, fpcr, &mut fpsr),
                _ => fp::arith::<f64>(Arith::Mul, x, elem, fpcr, &mut fpsr),
            }
        } else {
            match opcode {
                0b0001 => fp::mul_add::<f32>(acc, x, elem, fpcr, &mut fpsr),
                0b0101 => fp::mul_add::<f32>(acc, x ^ (1 << 31), elem, fpcr, &mut fpsr),
                _ => fp::arith::<f32>(Arith::Mul, x, elem, fpcr, &mut fpsr),
            }
        };
        r = with_lane(r, esize, k, v);
    }
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r);
    Ok(())
}
