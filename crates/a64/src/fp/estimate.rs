//! The reciprocal and reciprocal square root estimates (FRECPE, FRSQRTE,
//! URECPE, URSQRTE) and the reciprocal exponent (FRECPX), computed exactly
//! as the Arm ARM's RecipEstimate/RecipSqrtEstimate tables define them
//! (without FEAT_RPRES): 8 bits of result from 9 bits of input.

use super::flags::*;
use super::*;

/// RecipEstimate: `a` in 256..512 (a fraction 0.5 <= a/512 < 1) → 256..512.
fn recip_table(a: u64) -> u64 {
    let a = a * 2 + 1;
    let b = (1u64 << 19) / a;
    b.div_ceil(2) // (b + 1) DIV 2: round to nearest
}

/// RecipSqrtEstimate: `a` in 128..512 (0.25 <= a/512 < 1) → 256..512.
fn rsqrt_table(a: u64) -> u64 {
    let a = if a < 256 {
        // 0.25 <= a < 0.5, in units of 1/512 rounded to nearest
        a * 2 + 1
    } else {
        // 0.5 <= a < 1.0, in units of 1/256 rounded to nearest
        (((a >> 1) << 1) + 1) * 2
    };
    let mut b = 512u64;
    while a * (b + 1) * (b + 1) < (1 << 28) {
        b += 1;
    }
    b.div_ceil(2) // (b + 1) DIV 2: round to nearest
}

/// URECPE on one 32-bit element.
pub fn urecpe(x: u32) -> u32 {
    if x >> 31 == 0 {
        u32::MAX
    } else {
        (recip_table(x as u64 >> 23) as u32) << 23
    }
}

/// URSQRTE on one 32-bit element.
pub fn ursqrte(x: u32) -> u32 {
    if x >> 30 == 0 {
        u32::MAX
    } else {
        (rsqrt_table(x as u64 >> 23) as u32) << 23
    }
}

fn quiet_or_default<F: Float>(x: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    if is_snan::<F>(x) {
        *fpsr |= IOC;
    }
    if fpcr & FPCR_DN != 0 {
        F::default_nan()
    } else {
        x | F::quiet_bit()
    }
}

/// Exponent bias of F.
fn bias<F: Float>() -> i64 {
    (1i64 << (F::BITS - 2 - F::FRAC)) - 1
}

/// The fraction of `x` as 52 bits and its biased exponent, with subnormals
/// normalised the way the estimates do.
fn frac52<F: Float>(x: u64) -> (u64, i64) {
    let frac = (x & F::frac_mask()) << (52 - F::FRAC);
    let exp = ((x & F::exp_mask()) >> F::FRAC) as i64;
    (frac, exp)
}

/// FPRecipEstimate (FRECPE).
pub fn recip_estimate<F: Float>(x: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let x = flush_input::<F>(x, fpcr, fpsr);
    let sign = x & F::sign_mask();
    if is_nan::<F>(x) {
        return quiet_or_default::<F>(x, fpcr, fpsr);
    }
    if is_inf::<F>(x) {
        return sign;
    }
    if is_zero::<F>(x) {
        *fpsr |= DZC;
        return sign | F::exp_mask();
    }
    let (mut frac, mut exp) = frac52::<F>(x);
    let magnitude = x & !F::sign_mask();
    // |x| < 2^-(bias+1): the reciprocal overflows.
    let tiny = if F::BITS == 32 {
        magnitude < 0x0020_0000 // 2^-128
    } else {
        magnitude < 0x0004_0000_0000_0000 // 2^-1024
    };
    if tiny {
        let to_inf = match Rounding::from_fpcr(fpcr) {
            Rounding::Nearest | Rounding::NearestAway => true,
            Rounding::PlusInf => sign == 0,
            Rounding::MinusInf => sign != 0,
            Rounding::Zero => false,
        };
        *fpsr |= OFC | IXC;
        return if to_inf {
            sign | F::exp_mask()
        } else {
            sign | (F::exp_mask() - (1 << F::FRAC)) | F::frac_mask()
        };
    }
    // |x| >= 2^(bias-1) under FZ: the reciprocal is flushed to zero.
    if fpcr & FPCR_FZ != 0 && exp >= 2 * bias::<F>() - 1 {
        *fpsr |= UFC;
        return sign;
    }
    if exp == 0 {
        if frac >> 51 & 1 == 0 {
            exp = -1;
            frac = (frac << 2) & ((1 << 52) - 1);
        } else {
            frac = (frac << 1) & ((1 << 52) - 1);
        }
    }
    let scaled = 256 | (frac >> 44);
    let mut result_exp = 2 * bias::<F>() - 1 - exp;
    let estimate = recip_table(scaled);
    let mut frac = (estimate & 0xff) << 44;
    if result_exp == 0 {
        frac = 1 << 51 | frac >> 1;
    } else if result_exp == -1 {
        frac = 1 << 50 | frac >> 2;
        result_exp = 0;
    }
    sign | (result_exp as u64) << F::FRAC | frac >> (52 - F::FRAC)
}

/// FPRSqrtEstimate (FRSQRTE).
pub fn rsqrt_estimate<F: Float>(x: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let x = flush_input::<F>(x, fpcr, fpsr);
    let sign = x & F::sign_mask();
    if is_nan::<F>(x) {
        return quiet_or_default::<F>(x, fpcr, fpsr);
    }
    if is_zero::<F>(x) {
        *fpsr |= DZC;
        return sign | F::exp_mask();
    }
    if sign != 0 {
        *fpsr |= IOC;
        return F::default_nan();
    }
    if is_inf::<F>(x) {
        return 0;
    }
    let (mut frac, mut exp) = frac52::<F>(x);
    if exp == 0 {
        while frac >> 51 & 1 == 0 {
            frac = (frac << 1) & ((1 << 52) - 1);
            exp -= 1;
        }
        frac = (frac << 1) & ((1 << 52) - 1);
    }
    let scaled = if exp & 1 == 0 {
        256 | frac >> 44
    } else {
        128 | frac >> 45
    };
    let result_exp = (3 * bias::<F>() - 1 - exp).div_euclid(2);
    let estimate = rsqrt_table(scaled);
    (result_exp as u64) << F::FRAC | (estimate & 0xff) << (F::FRAC - 8)
}

/// FPRecpX (FRECPX): the sign, the exponent inverted (the largest normal
/// exponent for zero and subnormal inputs), a zero fraction.
pub fn recip_exponent<F: Float>(x: u64, fpcr: u32, fpsr: &mut u32) -> u64 {
    let x = flush_input::<F>(x, fpcr, fpsr);
    if is_nan::<F>(x) {
        return quiet_or_default::<F>(x, fpcr, fpsr);
    }
    let exp = x & F::exp_mask();
    let sign = x & F::sign_mask();
    if exp == 0 {
        sign | (F::exp_mask() - (1 << F::FRAC))
    } else {
        sign | (!exp & F::exp_mask())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_the_arm_arm() {
        // Spot values of the architected tables.
        assert_eq!(recip_table(256), 511);
        assert_eq!(recip_table(511), 256);
        assert_eq!(rsqrt_table(128), 511);
        assert_eq!(rsqrt_table(511), 256);
        for a in 256..512 {
            assert!((256..512).contains(&recip_table(a)));
        }
        for a in 128..512 {
            assert!((256..512).contains(&rsqrt_table(a)));
        }
    }

    #[test]
    fn estimates_are_close() {
        let mut fpsr = 0;
        for v in [1.0f64, 3.0, 0.1, 1e10, 7.5e-3] {
            let r = f64::from_bits(recip_estimate::<f64>(v.to_bits(), 0, &mut fpsr));
            assert!((r * v - 1.0).abs() < 1.0 / 256.0, "{v}: {r}");
            let s = f64::from_bits(rsqrt_estimate::<f64>(v.to_bits(), 0, &mut fpsr));
            assert!((s * s * v - 1.0).abs() < 1.0 / 128.0, "{v}: {s}");
        }
        assert_eq!(fpsr, 0);
        assert_eq!(urecpe(0x8000_0000), 0xff80_0000);
        assert_eq!(urecpe(0x7fff_ffff), u32::MAX);
        assert_eq!(
            recip_exponent::<f32>(1.0f32.to_bits() as u64, 0, &mut fpsr),
            0x4000_0000
        );
    }
}
