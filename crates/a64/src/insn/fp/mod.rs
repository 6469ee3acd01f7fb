//! Floating point: moves between general and FP registers so far; the
//! arithmetic, compares and conversions come next.

mod moves;

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[moves::ENCODINGS];
