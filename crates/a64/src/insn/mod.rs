//! Instruction handlers and their decode tables, one directory per
//! encoding group of the Arm ARM's A64 decode tree.
//!
//! Each module exports `TABLES`, a list of tables of [`Encoding`] rows;
//! [`GROUPS`] lists them all. Handlers have the [`crate::decode::Exec`] signature.

pub(crate) mod fields;
pub(crate) mod lanes;

mod fp;
pub(crate) mod int;
pub(crate) mod ldst;
mod simd_int;
mod simd_move;

use crate::decode::Encoding;

/// Every decode table, by group.
pub(crate) const GROUPS: &[&[&[Encoding]]] = &[
    int::TABLES,
    ldst::TABLES,
    fp::TABLES,
    simd_move::TABLES,
    simd_int::TABLES,
];
