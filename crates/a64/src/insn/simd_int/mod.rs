//! Advanced SIMD integer arithmetic: three-same, three-different, two-register misc, shifts, across-lanes and their scalar forms.

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[];
