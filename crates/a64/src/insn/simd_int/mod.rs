//! Advanced SIMD integer arithmetic: three-same, two-register misc, across
//! lanes and shift by immediate (vector forms so far).

mod misc;
mod three_same;

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[three_same::ENCODINGS, misc::ENCODINGS];
