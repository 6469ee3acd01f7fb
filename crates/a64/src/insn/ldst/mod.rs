//! Loads and stores: single register (general and SIMD&FP), pairs, literal,
//! exclusive and acquire/release, and the LSE atomics.

pub(crate) mod atomic;
mod exclusive;
mod pair;
mod single;

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[
    single::ENCODINGS,
    pair::ENCODINGS,
    exclusive::ENCODINGS,
    atomic::ENCODINGS,
];
