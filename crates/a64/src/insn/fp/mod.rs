//! Floating point: scalar arithmetic, compares, conditional select, rounding,
//! conversions and moves. (The vector FP forms come next.)

mod convert;
mod estimate;
mod moves;
mod scalar;
mod simd_convert;
mod vector;

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[
    moves::ENCODINGS,
    scalar::ENCODINGS,
    convert::ENCODINGS,
    simd_convert::ENCODINGS,
    vector::ENCODINGS,
    estimate::ENCODINGS,
];
