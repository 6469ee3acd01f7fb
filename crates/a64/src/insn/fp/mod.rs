//! Floating point: scalar FP arithmetic, compares, conversions and rounding, and the vector FP forms.

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[];
