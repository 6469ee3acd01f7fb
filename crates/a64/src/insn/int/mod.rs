//! Integer instructions: branches, data processing (immediate and
//! register) and system instructions.

mod branch;
mod dp_imm;
mod dp_reg;
#[cfg(target_arch = "x86_64")]
pub(crate) use dp_imm::logical_immediates;
pub(crate) use dp_reg::extend_value;
mod dp_src;
mod system;

use crate::decode::Encoding;

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[
    branch::ENCODINGS,
    dp_imm::ENCODINGS,
    dp_reg::ENCODINGS,
    dp_src::ENCODINGS,
    system::ENCODINGS,
];
