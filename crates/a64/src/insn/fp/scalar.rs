//! Scalar floating-point data processing: one-, two- and three-source
//! arithmetic, compares, conditional compare and select.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::fp::{self, Arith, Float, Rounding};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "0 0 0 11110 tt 1 mmmmm 00 1000 nnnnn oo 000",
        "FCMP/FCMPE",
        "fp-scalar",
        fcmp,
    ),
    enc!(
        "0 0 0 11110 tt 1 mmmmm cccc 01 nnnnn e vvvv",
        "FCCMP/FCCMPE",
        "fp-scalar",
        fccmp,
    ),
    enc!(
        "0 0 0 11110 tt 1 mmmmm cccc 11 nnnnn ddddd",
        "FCSEL",
        "fp-scalar",
        fcsel,
    ),
    enc!(
        "0 0 0 11110 tt 1 oooooo 10000 nnnnn ddddd",
        "FABS/FNEG/FSQRT/FCVT/FRINT*",
        "fp-scalar",
        one_source,
    ),
    enc!(
        "0 0 0 11110 tt 1 mmmmm oooo 10 nnnnn ddddd",
        "FMUL/FDIV/FADD/FSUB/FMAX/FMIN/FMAXNM/FMINNM/FNMUL",
        "fp-scalar",
        two_source,
    ),
    enc!(
        "0 0 0 11111 tt o mmmmm p aaaaa nnnnn ddddd",
        "FMADD/FMSUB/FNMADD/FNMSUB",
        "fp-scalar",
        three_source,
    ),
];

/// Scalar format of the `type` field: Some(false) = single, Some(true) = double.
fn ftype(raw: u32) -> Option<bool> {
    match bits(raw, 23, 22) {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// The low `double ? 64 : 32` bits of V[n].
fn operand(cpu: &Cpu, n: usize, double: bool) -> u64 {
    let v = cpu.vreg(n) as u64;
    if double {
        v
    } else {
        v & 0xffff_ffff
    }
}

fn fcmp(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some(double) = ftype(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let a = operand(cpu, rn(raw), double);
    let b = if bit(raw, 3) {
        0
    } else {
        operand(cpu, rm(raw), double)
    };
    let signal = bit(raw, 4);
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    cpu.nzcv = if double {
        fp::compare::<f64>(a, b, signal, fpcr, &mut fpsr)
    } else {
        fp::compare::<f32>(a, b, signal, fpcr, &mut fpsr)
    };
    cpu.fpsr = fpsr;
    Ok(())
}

fn fccmp(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some(double) = ftype(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    if cpu.condition_holds(bits(raw, 15, 12)) {
        let (a, b) = (operand(cpu, rn(raw), double), operand(cpu, rm(raw), double));
        let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
        let signal = bit(raw, 4);
        cpu.nzcv = if double {
            fp::compare::<f64>(a, b, signal, fpcr, &mut fpsr)
        } else {
            fp::compare::<f32>(a, b, signal, fpcr, &mut fpsr)
        };
        cpu.fpsr = fpsr;
    } else {
        cpu.nzcv = bits(raw, 3, 0) << 28;
    }
    Ok(())
}

fn fcsel(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some(double) = ftype(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let src = if cpu.condition_holds(bits(raw, 15, 12)) {
        rn(raw)
    } else {
        rm(raw)
    };
    let v = operand(cpu, src, double);
    cpu.set_vreg(rd(raw), v as u128);
    Ok(())
}

fn one_source_typed<F: Float>(op: u32, a: u64, fpcr: u32, fpsr: &mut u32) -> Option<u64> {
    let sign = F::sign_mask();
    Some(match op {
        0b000001 => a & !sign,
        0b000010 => a ^ sign,
        0b000011 => fp::sqrt::<F>(a, fpcr, fpsr),
        0b001000 => fp::round_int::<F>(a, Rounding::Nearest, false, fpcr, fpsr),
        0b001001 => fp::round_int::<F>(a, Rounding::PlusInf, false, fpcr, fpsr),
        0b001010 => fp::round_int::<F>(a, Rounding::MinusInf, false, fpcr, fpsr),
        0b001011 => fp::round_int::<F>(a, Rounding::Zero, false, fpcr, fpsr),
        0b001100 => fp::round_int::<F>(a, Rounding::NearestAway, false, fpcr, fpsr),
        0b001110 => fp::round_int::<F>(a, Rounding::from_fpcr(fpcr), true, fpcr, fpsr),
        0b001111 => fp::round_int::<F>(a, Rounding::from_fpcr(fpcr), false, fpcr, fpsr),
        _ => return None,
    })
}

fn one_source(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let op = bits(raw, 20, 15);
    // Conversions involving half precision: FCVT Hd,Sn / Hd,Dn / Sd,Hn / Dd,Hn.
    let half = matches!(
        (bits(raw, 23, 22), op),
        (0 | 1, 0b000111) | (3, 0b000100 | 0b000101)
    );
    if half {
        let src_type = bits(raw, 23, 22);
        let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
        let v = cpu.vreg(rn(raw)) as u64;
        let r = match src_type {
            0 => fp::to_half(v & 0xffff_ffff, false, fpcr, &mut fpsr),
            1 => fp::to_half(v, true, fpcr, &mut fpsr),
            _ => fp::from_half(v & 0xffff, op == 0b000101, fpcr, &mut fpsr),
        };
        cpu.fpsr = fpsr;
        cpu.set_vreg(rd(raw), r as u128);
        return Ok(());
    }
    let Some(double) = ftype(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let a = operand(cpu, rn(raw), double);
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let r = match (op, double) {
        // FCVT between single and double (half precision is not implemented yet).
        (0b000101, false) => Some(fp::f32_to_f64(a, fpcr, &mut fpsr)),
        (0b000100, true) => Some(fp::f64_to_f32(a, fpcr, &mut fpsr)),
        (_, false) => one_source_typed::<f32>(op, a, fpcr, &mut fpsr),
        (_, true) => one_source_typed::<f64>(op, a, fpcr, &mut fpsr),
    };
    let Some(r) = r else {
        return cpu.stop(Exit::Undefined(raw));
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}

fn two_source_typed<F: Float>(op: u32, a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> Option<u64> {
    Some(match op {
        0b0000 => fp::arith::<F>(Arith::Mul, a, b, fpcr, fpsr),
        0b0001 => fp::arith::<F>(Arith::Div, a, b, fpcr, fpsr),
        0b0010 => fp::arith::<F>(Arith::Add, a, b, fpcr, fpsr),
        0b0011 => fp::arith::<F>(Arith::Sub, a, b, fpcr, fpsr),
        0b0100 => fp::max_min::<F>(a, b, true, false, fpcr, fpsr),
        0b0101 => fp::max_min::<F>(a, b, false, false, fpcr, fpsr),
        0b0110 => fp::max_min::<F>(a, b, true, true, fpcr, fpsr),
        0b0111 => fp::max_min::<F>(a, b, false, true, fpcr, fpsr),
        0b1000 => fp::arith::<F>(Arith::Mul, a, b, fpcr, fpsr) ^ F::sign_mask(),
        _ => return None,
    })
}

fn two_source(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some(double) = ftype(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let (a, b) = (operand(cpu, rn(raw), double), operand(cpu, rm(raw), double));
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let op = bits(raw, 15, 12);
    let r = if double {
        two_source_typed::<f64>(op, a, b, fpcr, &mut fpsr)
    } else {
        two_source_typed::<f32>(op, a, b, fpcr, &mut fpsr)
    };
    let Some(r) = r else {
        return cpu.stop(Exit::Undefined(raw));
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}

fn three_source(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let Some(double) = ftype(raw) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let sign = if double { 1u64 << 63 } else { 1u64 << 31 };
    let mut a = operand(cpu, ra(raw), double);
    let mut n = operand(cpu, rn(raw), double);
    let m = operand(cpu, rm(raw), double);
    // o1 negates the addend, o0 != o1 negates the product (via operand n), as FPMulAdd is called.
    let (o1, o0) = (bit(raw, 21), bit(raw, 15));
    if o1 {
        a ^= sign;
    }
    if o0 != o1 {
        n ^= sign;
    }
    let (fpcr, mut fpsr) = (cpu.fpcr, cpu.fpsr);
    let r = if double {
        fp::mul_add::<f64>(a, n, m, fpcr, &mut fpsr)
    } else {
        fp::mul_add::<f32>(a, n, m, fpcr, &mut fpsr)
    };
    cpu.fpsr = fpsr;
    cpu.set_vreg(rd(raw), r as u128);
    Ok(())
}
