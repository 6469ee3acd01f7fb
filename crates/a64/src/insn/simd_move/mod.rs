//! Advanced SIMD data movement: DUP/INS/UMOV/SMOV/MOVI, permutes (TBL, EXT,
//! ZIP/UZP/TRN) and structure loads/stores (LD1-LD4, ST1-ST4).

mod copy;
mod permute;
mod structure;

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] =
    &[copy::ENCODINGS, permute::ENCODINGS, structure::ENCODINGS];
