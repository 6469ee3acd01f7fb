//! The operations, generic over the format. Every function takes FPCR and
//! accumulates FPSR flags into `fpsr`; values are bit patterns (`u64`, low bits).

use super::flags::*;
use super::host::{self, Op};
use super::*;

fn fz(fpcr: u32) -> bool {
    fpcr & FPCR_FZ != 0
}

/// Flushes a subnormal input to a signed zero under FZ (setting IDC).
pub fn flush_input<F: Float>(b: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    if fz(fpcr) && is_subnormal::<F>(b) {
        *fpsr |= IDC;
        b & F::sign_mask()
    } else {
        b
    }
}

/// FPProcessNaN: quiets a NaN (IOC for a signalling one), or the default NaN under DN.
fn process_nan<F: Float>(b: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    if is_snan::<F>(b) {
        *fpsr |= IOC;
    }
    if fpcr & FPCR_DN != 0 {
        F::default_nan()
    } else {
        b | F::quiet_bit()
    }
}

/// FPProcessNaNs over any number of operands: signalling NaNs first, in order, then quiet ones.
fn process_nans<F: Float>(ops: &[u64], fpcr: u32, fpsr: &mut u32) -> Option<u64> {
    if let Some(&s) = ops.iter().find(|&&b| is_snan::<F>(b)) {
        return Some(process_nan::<F>(s, fpcr, fpsr));
    }
    ops.iter()
        .find(|&&b| is_nan::<F>(b))
        .map(|&q| process_nan::<F>(q, fpcr, fpsr))
}

/// Arm detects tininess before rounding, x86 after: a result of exactly ±(smallest
/// normal) may come from a tiny exact value. `toward_zero` recomputes the result rounded
/// toward zero without flushing; if that is below the smallest normal, the exact value was
/// tiny: Arm then flushes it under FZ (reporting only underflow) or adds underflow.
fn arm_tininess<F: Float>(
    r: u64,
    fl: u32,
    fpcr: u32,
    toward_zero: impl FnOnce() -> u64,
) -> (u64, u32) {
    let min_normal = 1u64 << F::FRAC;
    if r & !F::sign_mask() != min_normal || fl & IXC == 0 {
        return (r, fl);
    }
    if toward_zero() & !F::sign_mask() >= min_normal {
        return (r, fl);
    }
    if fz(fpcr) {
        (r & F::sign_mask(), UFC)
    } else {
        (r, fl | UFC)
    }
}

/// Under FZ, a tiny result (subnormal, or rounded to zero with underflow) becomes a
/// signed zero, reporting underflow but not inexact.
fn flush_output<F: Float>(r: u64, fl: u32, fpcr: u32) -> (u64, u32) {
    if fz(fpcr) && (is_subnormal::<F>(r) || fl & UFC != 0) {
        (r & F::sign_mask(), (fl & !IXC) | UFC)
    } else {
        (r, fl)
    }
}

/// Runs a host operation on bits of format `F`.
fn host_op<F: Float>(op: Op, a: u64, b: u64, rounding: Rounding, fpcr: u32, fpsr: &mut u32) -> u64 {
    let run = |rounding: Rounding| {
        if F::BITS == 32 {
            let (r, fl) = host::op32(
                op,
                f32::from_bits(a as u32),
                f32::from_bits(b as u32),
                rounding,
                false,
            );
            (r.to_bits() as u64, fl)
        } else {
            let (r, fl) = host::op64(op, f64::from_bits(a), f64::from_bits(b), rounding, false);
            (r.to_bits(), fl)
        }
    };
    // Computed without host flushing, so Arm's tininess and flush rules can be applied here.
    let (r, fl) = run(rounding);
    let (r, fl) = arm_tininess::<F>(r, fl, fpcr, || run(Rounding::Zero).0);
    let (r, fl) = flush_output::<F>(r, fl, fpcr);
    *fpsr |= fl;
    // An invalid operation's NaN is the host's (negative) default NaN: use Arm's.
    if is_nan::<F>(r) {
        F::default_nan()
    } else {
        r
    }
}

/// The arithmetic operations of [`arith`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
}

/// FPAdd, FPSub, FPMul, FPDiv.
pub fn arith<F: Float>(op: Arith, a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<F>(a, fpcr, fpsr);
    let b = flush_input::<F>(b, fpcr, fpsr);
    if let Some(n) = process_nans::<F>(&[a, b], fpcr, fpsr) {
        return n;
    }
    let op = match op {
        Arith::Add => Op::Add,
        Arith::Sub => Op::Sub,
        Arith::Mul => Op::Mul,
        Arith::Div => Op::Div,
    };
    host_op::<F>(op, a, b, Rounding::from_fpcr(fpcr), fpcr, fpsr)
}

/// FPSqrt.
pub fn sqrt<F: Float>(a: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<F>(a, fpcr, fpsr);
    if let Some(n) = process_nans::<F>(&[a], fpcr, fpsr) {
        return n;
    }
    host_op::<F>(Op::Sqrt, 0, a, Rounding::from_fpcr(fpcr), fpcr, fpsr)
}

/// FPMulAdd: addend + a * b with a single rounding.
pub fn mul_add<F: Float>(addend: u64, a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let c = flush_input::<F>(addend, fpcr, fpsr);
    let a = flush_input::<F>(a, fpcr, fpsr);
    let b = flush_input::<F>(b, fpcr, fpsr);
    let inf_times_zero = (is_inf::<F>(a) && is_zero::<F>(b)) || (is_zero::<F>(a) && is_inf::<F>(b));
    let nan = process_nans::<F>(&[c, a, b], fpcr, fpsr);
    if is_nan::<F>(c) && !is_snan::<F>(c) && inf_times_zero {
        *fpsr |= IOC;
        return F::default_nan();
    }
    if let Some(n) = nan {
        return n;
    }
    let rounding = Rounding::from_fpcr(fpcr);
    let run = |rounding: Rounding| -> (u64, u32) {
        if F::BITS == 32 {
            let (a, b, c) = (
                f32::from_bits(a as u32),
                f32::from_bits(b as u32),
                f32::from_bits(c as u32),
            );
            match host::fma32(a, b, c, rounding, false) {
                Some((r, fl)) => (r.to_bits() as u64, fl),
                None => (a.mul_add(b, c).to_bits() as u64, 0),
            }
        } else {
            let (a, b, c) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
            match host::fma64(a, b, c, rounding, false) {
                Some((r, fl)) => (r.to_bits(), fl),
                None => (a.mul_add(b, c).to_bits(), 0),
            }
        }
    };
    let (r, fl) = run(rounding);
    let (r, fl) = arm_tininess::<F>(r, fl, fpcr, || run(Rounding::Zero).0);
    let (r, fl) = flush_output::<F>(r, fl, fpcr);
    *fpsr |= fl;
    if is_nan::<F>(r) {
        F::default_nan()
    } else {
        r
    }
}

/// Bits as f64 (exact for both formats; not for NaNs).
fn value<F: Float>(b: u64) -> f64 {
    if F::BITS == 32 {
        f32::from_bits(b as u32) as f64
    } else {
        f64::from_bits(b)
    }
}

/// FPMax / FPMin, and with `numeric` FPMaxNum / FPMinNum (a quiet NaN loses to a number).
pub fn max_min<F: Float>(
    a: u64,
    b: u64,
    max: bool,
    numeric: bool,
    fpcr: u32,
    fpsr: &mut u32,
) -> u64 {
    let mut a = flush_input::<F>(a, fpcr, fpsr);
    let mut b = flush_input::<F>(b, fpcr, fpsr);
    if numeric {
        // The losing infinity: -inf for max, +inf for min.
        let loser = F::exp_mask() | if max { F::sign_mask() } else { 0 };
        let quiet = |x: u64| is_nan::<F>(x) && !is_snan::<F>(x);
        if quiet(a) && !is_nan::<F>(b) {
            a = loser;
        } else if quiet(b) && !is_nan::<F>(a) {
            b = loser;
        }
    }
    if let Some(n) = process_nans::<F>(&[a, b], fpcr, fpsr) {
        return n;
    }
    if is_zero::<F>(a) && is_zero::<F>(b) {
        let sign = if max { a & b } else { a | b } & F::sign_mask();
        return sign;
    }
    let (x, y) = (value::<F>(a), value::<F>(b));
    if (x > y) == max {
        a
    } else {
        b
    }
}

/// FPCompare: NZCV (in bits 31:28) for a and b; `signal` raises IOC for quiet NaNs too (FCMPE).
pub fn compare<F: Float>(a: u64, b: u64, signal: bool, fpcr: u32, fpsr: &mut u32) -> u32 {
    let a = flush_input::<F>(a, fpcr, fpsr);
    let b = flush_input::<F>(b, fpcr, fpsr);
    if is_nan::<F>(a) || is_nan::<F>(b) {
        if signal || is_snan::<F>(a) || is_snan::<F>(b) {
            *fpsr |= IOC;
        }
        return 0b0011 << 28;
    }
    let (x, y) = (value::<F>(a), value::<F>(b));
    if x == y {
        0b0110 << 28
    } else if x < y {
        0b1000 << 28
    } else {
        0b0010 << 28
    }
}

/// Rounds an f64 holding an exact value of the format to an integral value.
fn round_f64(x: f64, rounding: Rounding) -> f64 {
    match rounding {
        Rounding::Nearest => x.round_ties_even(),
        Rounding::PlusInf => x.ceil(),
        Rounding::MinusInf => x.floor(),
        Rounding::Zero => x.trunc(),
        Rounding::NearestAway => x.round(),
    }
}

/// FPRoundInt: the FRINT family. `exact` (FRINTX) raises IXC when the value changes.
pub fn round_int<F: Float>(
    a: u64,
    rounding: Rounding,
    exact: bool,
    fpcr: u32,
    fpsr: &mut u32,
) -> u64 {
    let a = flush_input::<F>(a, fpcr, fpsr);
    if let Some(n) = process_nans::<F>(&[a], fpcr, fpsr) {
        return n;
    }
    if is_inf::<F>(a) || is_zero::<F>(a) {
        return a;
    }
    let x = value::<F>(a);
    let r = round_f64(x, rounding);
    if exact && r != x {
        *fpsr |= IXC;
    }
    // Keep the sign of the operand for a zero result.
    let bits = if F::BITS == 32 {
        (r as f32).to_bits() as u64
    } else {
        r.to_bits()
    };
    if r == 0.0 {
        a & F::sign_mask()
    } else {
        bits
    }
}

/// FPToFixed: to a `bits`-wide (32 or 64) signed or unsigned integer with `fbits`
/// fraction bits, saturating (IOC on overflow or NaN, else IXC when inexact).
pub fn to_int<F: Float>(
    a: u64,
    fbits: u32,
    unsigned: bool,
    bits: u32,
    rounding: Rounding,
    fpcr: u32,
    fpsr: &mut u32,
) -> u64 {
    let a = flush_input::<F>(a, fpcr, fpsr);
    if is_nan::<F>(a) {
        *fpsr |= IOC;
        return 0;
    }
    let x = value::<F>(a) * (fbits as f64).exp2();
    let r = round_f64(x, rounding);
    let (lo, hi) = if unsigned {
        (0.0, (bits as f64).exp2())
    } else {
        (-((bits - 1) as f64).exp2(), ((bits - 1) as f64).exp2())
    };
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    if r < lo || r >= hi {
        *fpsr |= IOC;
        return if r < lo {
            if unsigned {
                0
            } else {
                (1u64 << (bits - 1)).wrapping_neg() & mask
            }
        } else if unsigned {
            mask
        } else {
            (1u64 << (bits - 1)) - 1
        };
    }
    if r != x {
        *fpsr |= IXC;
    }
    let v = if unsigned { r as u64 } else { r as i64 as u64 };
    v & mask
}

/// FixedToFP: an integer (`negative` with magnitude `mag`) scaled by 2^-fbits, rounded once.
pub fn from_int<F: Float>(
    mag: u64,
    negative: bool,
    fbits: u32,
    rounding: Rounding,
    fpsr: &mut u32,
) -> u64 {
    if mag == 0 {
        return 0;
    }
    let prec = F::FRAC + 1;
    let msb = 63 - mag.leading_zeros();
    let mut exp = msb as i32;
    let mut mant;
    if msb + 1 > prec {
        let shift = msb + 1 - prec;
        let rem = mag & ((1u64 << shift) - 1);
        let half = 1u64 << (shift - 1);
        mant = mag >> shift;
        if rem != 0 {
            *fpsr |= IXC;
        }
        let up = match rounding {
            Rounding::Nearest => rem > half || (rem == half && mant & 1 == 1),
            Rounding::PlusInf => rem != 0 && !negative,
            Rounding::MinusInf => rem != 0 && negative,
            Rounding::Zero => false,
            Rounding::NearestAway => rem >= half,
        };
        if up {
            mant += 1;
            if mant == 1u64 << prec {
                mant >>= 1;
                exp += 1;
            }
        }
    } else {
        mant = mag << (prec - 1 - msb);
    }
    let bias = (1i32 << (F::BITS - 2 - F::FRAC)) - 1;
    let biased = (exp - fbits as i32 + bias) as u64;
    let sign = if negative { F::sign_mask() } else { 0 };
    sign | biased << F::FRAC | (mant & F::frac_mask())
}

/// FPConvert from double to single precision.
pub fn f64_to_f32(a: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<f64>(a, fpcr, fpsr);
    if is_nan::<f64>(a) {
        if is_snan::<f64>(a) {
            *fpsr |= IOC;
        }
        if fpcr & FPCR_DN != 0 {
            return f32::default_nan();
        }
        return (a >> 63) << 31 | 0x7fc0_0000 | (a >> 29 & 0x3f_ffff);
    }
    let (r, fl) = host::f64_to_f32(f64::from_bits(a), Rounding::from_fpcr(fpcr), fz(fpcr));
    *fpsr |= fl;
    r.to_bits() as u64
}

/// FPConvert from single to double precision (exact).
pub fn f32_to_f64(a: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<f32>(a, fpcr, fpsr);
    if is_nan::<f32>(a) {
        if is_snan::<f32>(a) {
            *fpsr |= IOC;
        }
        if fpcr & FPCR_DN != 0 {
            return f64::default_nan();
        }
        return (a >> 31) << 63 | 0x7ff8_0000_0000_0000 | (a & 0x3f_ffff) << 29;
    }
    (f32::from_bits(a as u32) as f64).to_bits()
}

/// FPMulX: as multiplication, but infinity times zero is ±2.0 instead of invalid.
pub fn mul_x<F: Float>(a: u64, b: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<F>(a, fpcr, fpsr);
    let b = flush_input::<F>(b, fpcr, fpsr);
    if let Some(n) = process_nans::<F>(&[a, b], fpcr, fpsr) {
        return n;
    }
    if (is_inf::<F>(a) && is_zero::<F>(b)) || (is_zero::<F>(a) && is_inf::<F>(b)) {
        return ((a ^ b) & F::sign_mask()) | two::<F>();
    }
    arith::<F>(Arith::Mul, a, b, fpcr, fpsr)
}

/// The bits of 2.0 in format F.
fn two<F: Float>() -> u64 {
    let bias = (1u64 << (F::BITS - 2 - F::FRAC)) - 1;
    (bias + 1) << F::FRAC
}

/// FPRecipStepFused (FRECPS: 2 - a*b) and FPRSqrtStepFused (FRSQRTS: (3 - a*b) / 2),
/// each with a single rounding; infinity times zero gives exactly 2.0 or 1.5.
pub fn step_fused<F: Float>(a: u64, b: u64, rsqrt: bool, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<F>(a ^ F::sign_mask(), fpcr, fpsr);
    let b = flush_input::<F>(b, fpcr, fpsr);
    if let Some(n) = process_nans::<F>(&[a, b], fpcr, fpsr) {
        return n;
    }
    let (inf_a, inf_b) = (is_inf::<F>(a), is_inf::<F>(b));
    if (inf_a && is_zero::<F>(b)) || (is_zero::<F>(a) && inf_b) {
        // 2.0, or 1.5 = 2.0 with the top fraction bit set.
        return if rsqrt {
            two::<F>() - (1u64 << F::FRAC) + F::quiet_bit()
        } else {
            two::<F>()
        };
    }
    if inf_a || inf_b {
        return ((a ^ b) & F::sign_mask()) | F::exp_mask();
    }
    if !rsqrt {
        return mul_add::<F>(two::<F>(), a, b, fpcr, fpsr);
    }
    // (3 + a*b) / 2 rounded once: halve a normal operand exactly and add 1.5.
    let halvable = |x: u64| x & F::exp_mask() > (1u64 << F::FRAC);
    let one_point_five = two::<F>() - (1u64 << F::FRAC) + F::quiet_bit();
    if halvable(a) {
        mul_add::<F>(one_point_five, a - (1u64 << F::FRAC), b, fpcr, fpsr)
    } else if halvable(b) {
        mul_add::<F>(one_point_five, a, b - (1u64 << F::FRAC), fpcr, fpsr)
    } else {
        // Both operands tiny: 3 + a*b is computed, then halved exactly (3.0 is normal).
        let r = mul_add::<F>(two::<F>() + F::quiet_bit(), a, b, fpcr, fpsr);
        r - (1u64 << F::FRAC)
    }
}

/// FPConvert from double to single with round-to-odd (FCVTXN): truncate, then set the
/// lowest bit if anything was lost, so a later rounding to a narrower format is correct.
pub fn f64_to_f32_odd(a: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let a = flush_input::<f64>(a, fpcr, fpsr);
    if is_nan::<f64>(a) {
        return f64_to_f32(a, fpcr, fpsr);
    }
    let (r, fl) = host::f64_to_f32(f64::from_bits(a), Rounding::Zero, false);
    let mut r = r.to_bits() as u64;
    if fl & IXC != 0 && !is_inf::<f32>(r) {
        r |= 1;
    }
    let (r, fl) = flush_output::<f32>(r, fl, fpcr);
    *fpsr |= fl;
    r
}
