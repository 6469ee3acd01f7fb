//! Instruction handlers and their decode tables, one module per encoding
//! group of the Arm ARM's A64 decode tree.
//!
//! Each module exports `ENCODINGS`, a table of [`Encoding`] rows; [`TABLES`]
//! lists them all. Handlers have the [`crate::decode::Exec`] signature.

pub(crate) mod fields;

mod branch;
mod dp_imm;
mod dp_reg;
mod system;

mod ldst;

mod fp;

mod simd;

use crate::decode::Encoding;

/// Every decode table.
pub(crate) const TABLES: &[&[Encoding]] = &[
    branch::ENCODINGS,
    dp_imm::ENCODINGS,
    dp_reg::ENCODINGS,
    system::ENCODINGS,
    ldst::ENCODINGS,
    fp::ENCODINGS,
    simd::ENCODINGS,
];
