//! IEEE 754 arithmetic with Arm semantics: FPCR rounding mode, flush-to-zero
//! (FZ) and default NaN (DN); Arm NaN propagation; cumulative FPSR flags.
//!
//! Operations are generic over [`Float`] (binary32 and binary64). Special
//! operands (NaNs, and subnormals under FZ) are handled here in software; the
//! arithmetic itself runs on the host's SSE unit with the rounding mode set
//! from FPCR and its exception flags mapped back to FPSR (see `host`).

mod estimate;
mod half;
mod host;
mod ops;

pub use estimate::*;
pub use half::*;
pub use ops::*;

/// FPSR cumulative flags.
pub mod flags {
    /// Invalid operation.
    pub const IOC: u32 = 1 << 0;
    /// Division by zero.
    pub const DZC: u32 = 1 << 1;
    /// Overflow.
    pub const OFC: u32 = 1 << 2;
    /// Underflow.
    pub const UFC: u32 = 1 << 3;
    /// Inexact.
    pub const IXC: u32 = 1 << 4;
    /// Input denormal (flushed to zero under FZ).
    pub const IDC: u32 = 1 << 7;
}

/// FPCR.DN: default NaN.
pub const FPCR_DN: u32 = 1 << 25;
/// FPCR.FZ: flush to zero.
pub const FPCR_FZ: u32 = 1 << 24;

/// Rounding modes, in FPCR.RMode order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// To nearest, ties to even.
    Nearest,
    /// Towards plus infinity.
    PlusInf,
    /// Towards minus infinity.
    MinusInf,
    /// Towards zero.
    Zero,
    /// To nearest, ties away from zero (FCVTA*, FRINTA only).
    NearestAway,
}

impl Rounding {
    /// The mode FPCR selects.
    pub fn from_fpcr(fpcr: u32) -> Rounding {
        match fpcr >> 22 & 3 {
            0 => Rounding::Nearest,
            1 => Rounding::PlusInf,
            2 => Rounding::MinusInf,
            _ => Rounding::Zero,
        }
    }
}

/// A binary floating-point format, stored as its bit pattern.
pub trait Float: Copy {
    /// Total width.
    const BITS: u32;
    /// Fraction (mantissa) bits.
    const FRAC: u32;
    /// The bit pattern, zero-extended.
    fn to_bits64(self) -> u64;
    /// From a bit pattern (low bits used).
    fn from_bits64(b: u64) -> Self;
    /// Exponent field all ones.
    fn exp_mask() -> u64 {
        ((1u64 << (Self::BITS - 1 - Self::FRAC)) - 1) << Self::FRAC
    }
    /// The fraction field.
    fn frac_mask() -> u64 {
        (1u64 << Self::FRAC) - 1
    }
    /// The sign bit.
    fn sign_mask() -> u64 {
        1u64 << (Self::BITS - 1)
    }
    /// The quiet bit (top fraction bit).
    fn quiet_bit() -> u64 {
        1u64 << (Self::FRAC - 1)
    }
    /// Arm's default NaN: positive, quiet, zero payload.
    fn default_nan() -> u64 {
        Self::exp_mask() | Self::quiet_bit()
    }
}

impl Float for f32 {
    const BITS: u32 = 32;
    const FRAC: u32 = 23;
    fn to_bits64(self) -> u64 {
        self.to_bits() as u64
    }
    fn from_bits64(b: u64) -> Self {
        f32::from_bits(b as u32)
    }
}

impl Float for f64 {
    const BITS: u32 = 64;
    const FRAC: u32 = 52;
    fn to_bits64(self) -> u64 {
        self.to_bits()
    }
    fn from_bits64(b: u64) -> Self {
        f64::from_bits(b)
    }
}

/// Whether bits `b` of format `F` are a NaN.
pub fn is_nan<F: Float>(b: u64) -> bool {
    b & F::exp_mask() == F::exp_mask() && b & F::frac_mask() != 0
}

/// Whether bits `b` are a signalling NaN.
pub fn is_snan<F: Float>(b: u64) -> bool {
    is_nan::<F>(b) && b & F::quiet_bit() == 0
}

/// Whether bits `b` are an infinity.
pub fn is_inf<F: Float>(b: u64) -> bool {
    (b & !F::sign_mask()) == F::exp_mask()
}

/// Whether bits `b` are zero (either sign).
pub fn is_zero<F: Float>(b: u64) -> bool {
    b & !F::sign_mask() & (F::exp_mask() | F::frac_mask()) == 0
}

/// Whether bits `b` are a subnormal.
pub fn is_subnormal<F: Float>(b: u64) -> bool {
    b & F::exp_mask() == 0 && b & F::frac_mask() != 0
}
