//! Loads and stores: single register (general and SIMD&FP), pairs, literal, exclusive, acquire/release and the LSE atomics.

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[];
