//! Half-precision conversions (FCVT to and from H, FCVTL/FCVTN with halves), IEEE
//! or Arm's alternative half-precision format (FPCR.AHP: no infinities or NaNs).
//! Halves are never flushed (that would be FPCR.FZ16, which this core lacks).

use super::flags::*;
use super::*;

/// FPCR.AHP.
const FPCR_AHP: u32 = 1 << 26;

/// Converts half-precision bits to single (`to_double` false) or double bits. Exact.
pub fn from_half(h: u64, to_double: bool, fpcr: u32, fpsr: &mut u32) -> u64 {
    let (sign, exp, frac) = (h >> 15 & 1, h >> 10 & 31, h & 0x3ff);
    let ahp = fpcr & FPCR_AHP != 0;
    let (frac_bits, sign_shift) = if to_double { (52, 63) } else { (23, 31) };
    if exp == 31 && !ahp {
        if frac == 0 {
            let inf = if to_double {
                f64::exp_mask()
            } else {
                f32::exp_mask()
            };
            return sign << sign_shift | inf;
        }
        if frac & 0x200 == 0 {
            *fpsr |= IOC;
        }
        if fpcr & FPCR_DN != 0 {
            return if to_double {
                f64::default_nan()
            } else {
                f32::default_nan()
            };
        }
        let nan = if to_double {
            f64::exp_mask() | f64::quiet_bit()
        } else {
            f32::exp_mask() | f32::quiet_bit()
        };
        return sign << sign_shift | nan | frac << (frac_bits - 10);
    }
    let magnitude = if exp == 0 {
        frac as f64 * (-24f64).exp2()
    } else {
        (1024 + frac) as f64 * (exp as f64 - 25.0).exp2()
    };
    let v = if sign == 1 { -magnitude } else { magnitude };
    if to_double {
        v.to_bits()
    } else {
        (v as f32).to_bits() as u64
    }
}

/// Converts single (`from_double` false) or double bits to half precision with FPCR's rounding.
pub fn to_half(a: u64, from_double: bool, fpcr: u32, fpsr: &mut u32) -> u64 {
    let ahp = fpcr & FPCR_AHP != 0;
    let a = if from_double {
        flush_input::<f64>(a, fpcr, fpsr)
    } else {
        flush_input::<f32>(a, fpcr, fpsr)
    };
    let (nan, inf, zero) = if from_double {
        (is_nan::<f64>(a), is_inf::<f64>(a), is_zero::<f64>(a))
    } else {
        (is_nan::<f32>(a), is_inf::<f32>(a), is_zero::<f32>(a))
    };
    let sign = if from_double { a >> 63 } else { a >> 31 & 1 };
    if nan {
        let snan = if from_double {
            is_snan::<f64>(a)
        } else {
            is_snan::<f32>(a)
        };
        if ahp {
            *fpsr |= IOC;
            return sign << 15;
        }
        if snan {
            *fpsr |= IOC;
        }
        if fpcr & FPCR_DN != 0 {
            return 0x7e00;
        }
        let payload = if from_double {
            a >> 42 & 0x1ff
        } else {
            a >> 13 & 0x1ff
        };
        return sign << 15 | 0x7e00 | payload;
    }
    if inf {
        if ahp {
            *fpsr |= IOC;
            return sign << 15 | 0x7fff;
        }
        return sign << 15 | 0x7c00;
    }
    if zero {
        return sign << 15;
    }
    // The value as mant * 2^e (exact).
    let (mant, e) = if from_double {
        let (exp, frac) = (a >> 52 & 0x7ff, a & ((1 << 52) - 1));
        if exp == 0 {
            (frac, -1074i32)
        } else {
            (frac | 1 << 52, exp as i32 - 1075)
        }
    } else {
        let (exp, frac) = (a >> 23 & 0xff, a & ((1 << 23) - 1));
        if exp == 0 {
            (frac, -149i32)
        } else {
            (frac | 1 << 23, exp as i32 - 150)
        }
    };
    let p = 63 - mant.leading_zeros() as i32 + e; // value in [2^p, 2^(p+1))
    let q = (p - 10).max(-24); // exponent of the last kept bit
    let (mut n, rem, half) = if e >= q {
        (mant << (e - q), 0u64, 1u64)
    } else {
        let shift = (q - e) as u32;
        if shift >= 64 {
            (0, mant, u64::MAX)
        } else {
            (
                mant >> shift,
                mant & ((1u64 << shift) - 1),
                1u64 << (shift - 1),
            )
        }
    };
    let negative = sign == 1;
    let up = match Rounding::from_fpcr(fpcr) {
        Rounding::Nearest | Rounding::NearestAway => rem > half || (rem == half && n & 1 == 1),
        Rounding::PlusInf => rem != 0 && !negative,
        Rounding::MinusInf => rem != 0 && negative,
        Rounding::Zero => false,
    };
    let inexact = rem != 0;
    if up {
        n += 1;
    }
    let mut q = q;
    if n == 2048 {
        n = 1024;
        q += 1;
    }
    let mut flags = 0;
    if inexact {
        flags |= IXC;
        if p < -14 {
            flags |= UFC;
        }
    }
    let biased = if n >= 1024 { q + 25 } else { 0 };
    let max_biased = if ahp { 31 } else { 30 };
    if biased > max_biased {
        if ahp {
            *fpsr |= IOC;
            return sign << 15 | 0x7fff;
        }
        *fpsr |= OFC | IXC;
        let to_inf = match Rounding::from_fpcr(fpcr) {
            Rounding::Nearest | Rounding::NearestAway => true,
            Rounding::PlusInf => !negative,
            Rounding::MinusInf => negative,
            Rounding::Zero => false,
        };
        return sign << 15 | if to_inf { 0x7c00 } else { 0x7bff };
    }
    *fpsr |= flags;
    let frac = if n >= 1024 { n - 1024 } else { n };
    sign << 15 | (biased as u64) << 10 | frac
}
