//! Advanced SIMD integer arithmetic: three-same, three-different, two-register misc, shifts, across-lanes and their scalar forms.
//!
//! Rows are built from the fixed bits of each encoding class with small
//! const constructors; every row fixes U and the opcode so that it never
//! overlaps the floating-point rows of the same classes.

mod diff;
mod elem;
mod lanes;
mod misc;
mod same;
mod shift;

use crate::decode::{Encoding, Exec};

/// Class name of every row here.
const CLASS: &str = "simd-int";

/// A row with explicit mask and value.
const fn row(mask: u32, value: u32, name: &'static str, exec: Exec) -> Encoding {
    Encoding {
        mask,
        value,
        name,
        class: CLASS,
        exec,
        // Rows built by const fns have no shim of their own: compiled code
        // calls the handler through the instruction's `exec`.
        shim: crate::jit::dynamic_shim,
        ends_block: false,
    }
}

/// Vector three same: `0 Q U 01110 size 1 Rm opcode 1 Rn Rd`.
const fn v3s(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xbf20_fc00, 0x0e20_0400 | u << 29 | op << 11, name, exec)
}

/// Vector three same with a fixed size field (the logical operations).
const fn v3z(u: u32, op: u32, size: u32, name: &'static str, exec: Exec) -> Encoding {
    row(
        0xbfe0_fc00,
        0x0e20_0400 | u << 29 | size << 22 | op << 11,
        name,
        exec,
    )
}

/// Scalar three same: `01 U 11110 size 1 Rm opcode 1 Rn Rd`.
const fn s3s(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xff20_fc00, 0x5e20_0400 | u << 29 | op << 11, name, exec)
}

/// Vector three different: `0 Q U 01110 size 1 Rm opcode 00 Rn Rd`.
const fn v3d(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xbf20_fc00, 0x0e20_0000 | u << 29 | op << 12, name, exec)
}

/// Scalar three different: `01 U 11110 size 1 Rm opcode 00 Rn Rd`.
const fn s3d(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xff20_fc00, 0x5e20_0000 | u << 29 | op << 12, name, exec)
}

/// Vector two-register misc: `0 Q U 01110 size 10000 opcode 10 Rn Rd`.
const fn v2m(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xbf3f_fc00, 0x0e20_0800 | u << 29 | op << 12, name, exec)
}

/// Vector two-register misc with a fixed size field.
const fn v2z(u: u32, op: u32, size: u32, name: &'static str, exec: Exec) -> Encoding {
    row(
        0xbfff_fc00,
        0x0e20_0800 | u << 29 | size << 22 | op << 12,
        name,
        exec,
    )
}

/// Scalar two-register misc: `01 U 11110 size 10000 opcode 10 Rn Rd`.
const fn s2m(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xff3f_fc00, 0x5e20_0800 | u << 29 | op << 12, name, exec)
}

/// Across lanes: `0 Q U 01110 size 11000 opcode 10 Rn Rd`.
const fn across(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xbf3f_fc00, 0x0e30_0800 | u << 29 | op << 12, name, exec)
}

/// Vector by element: `0 Q U 01111 size L M Rm opcode H 0 Rn Rd`.
const fn vel(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xbf00_f400, 0x0f00_0000 | u << 29 | op << 12, name, exec)
}

/// Scalar by element: `01 U 11111 size L M Rm opcode H 0 Rn Rd`.
const fn sel(u: u32, op: u32, name: &'static str, exec: Exec) -> Encoding {
    row(0xff00_f400, 0x5f00_0000 | u << 29 | op << 12, name, exec)
}

/// Shift by immediate, element size `e` (0 = 8-bit: immh = 0001 .. 3 =
/// 64-bit: immh = 1xxx): `0 Q U 011110 immh immb opcode 1 Rn Rd` (vector)
/// or `01 U 111110 immh immb opcode 1 Rn Rd` (scalar).
const fn shi(scalar: bool, u: u32, op: u32, e: u32, name: &'static str, exec: Exec) -> Encoding {
    // immh bits 22..19: bit 19+e set, bits above it clear.
    let hmask = (0xf << 19) & !((1u32 << (19 + e)) - 1);
    let (mask, base) = if scalar {
        (0xff80_fc00, 0x5f00_0400)
    } else {
        (0xbf80_fc00, 0x0f00_0400)
    };
    row(
        mask | hmask,
        base | u << 29 | op << 11 | 1 << (19 + e),
        name,
        exec,
    )
}

/// This group's decode tables.
pub(crate) const TABLES: &[&[Encoding]] = &[
    SAME,
    diff::ENCODINGS,
    misc::ENCODINGS,
    elem::ENCODINGS,
    shift::ENCODINGS,
];

use same as s;

/// Three same (vector and scalar) and scalar pairwise rows.
const SAME: &[Encoding] = &[
    v3s(0, 0b00000, "SHADD (vector)", s::shadd),
    v3s(1, 0b00000, "UHADD (vector)", s::uhadd),
    v3s(0, 0b00001, "SQADD (vector)", s::sqadd),
    v3s(1, 0b00001, "UQADD (vector)", s::uqadd),
    v3s(0, 0b00010, "SRHADD (vector)", s::srhadd),
    v3s(1, 0b00010, "URHADD (vector)", s::urhadd),
    v3z(0, 0b00011, 0, "AND (vector)", s::and),
    v3z(0, 0b00011, 1, "BIC (vector, register)", s::bic),
    v3z(0, 0b00011, 2, "ORR (vector, register)", s::orr),
    v3z(0, 0b00011, 3, "ORN (vector)", s::orn),
    v3z(1, 0b00011, 0, "EOR (vector)", s::eor),
    v3z(1, 0b00011, 1, "BSL (vector)", s::bsl),
    v3z(1, 0b00011, 2, "BIT (vector)", s::bit),
    v3z(1, 0b00011, 3, "BIF (vector)", s::bif),
    v3s(0, 0b00100, "SHSUB (vector)", s::shsub),
    v3s(1, 0b00100, "UHSUB (vector)", s::uhsub),
    v3s(0, 0b00101, "SQSUB (vector)", s::sqsub),
    v3s(1, 0b00101, "UQSUB (vector)", s::uqsub),
    v3s(0, 0b00110, "CMGT (vector, register)", s::cmgt_v),
    v3s(1, 0b00110, "CMHI (vector, register)", s::cmhi_v),
    v3s(0, 0b00111, "CMGE (vector, register)", s::cmge_v),
    v3s(1, 0b00111, "CMHS (vector, register)", s::cmhs_v),
    v3s(0, 0b01000, "SSHL (vector)", s::sshl),
    v3s(1, 0b01000, "USHL (vector)", s::ushl),
    v3s(0, 0b01001, "SQSHL (vector, register)", s::sqshl),
    v3s(1, 0b01001, "UQSHL (vector, register)", s::uqshl),
    v3s(0, 0b01010, "SRSHL (vector)", s::srshl),
    v3s(1, 0b01010, "URSHL (vector)", s::urshl),
    v3s(0, 0b01011, "SQRSHL (vector)", s::sqrshl),
    v3s(1, 0b01011, "UQRSHL (vector)", s::uqrshl),
    v3s(0, 0b01100, "SMAX (vector)", s::smax),
    v3s(1, 0b01100, "UMAX (vector)", s::umax),
    v3s(0, 0b01101, "SMIN (vector)", s::smin),
    v3s(1, 0b01101, "UMIN (vector)", s::umin),
    v3s(0, 0b01110, "SABD (vector)", s::sabd),
    v3s(1, 0b01110, "UABD (vector)", s::uabd),
    v3s(0, 0b01111, "SABA (vector)", s::saba),
    v3s(1, 0b01111, "UABA (vector)", s::uaba),
    v3s(0, 0b10000, "ADD (vector)", s::add_v),
    v3s(1, 0b10000, "SUB (vector)", s::sub_v),
    v3s(0, 0b10001, "CMTST (vector)", s::cmtst_v),
    v3s(1, 0b10001, "CMEQ (vector, register)", s::cmeq_v),
    v3s(0, 0b10010, "MLA (vector)", s::mla_v),
    v3s(1, 0b10010, "MLS (vector)", s::mls_v),
    v3s(0, 0b10011, "MUL (vector)", s::mul_v),
    v3s(1, 0b10011, "PMUL (vector)", s::pmul_v),
    v3s(0, 0b10100, "SMAXP (vector)", s::smaxp),
    v3s(1, 0b10100, "UMAXP (vector)", s::umaxp),
    v3s(0, 0b10101, "SMINP (vector)", s::sminp),
    v3s(1, 0b10101, "UMINP (vector)", s::uminp),
    v3s(0, 0b10110, "SQDMULH (vector)", s::sqdmulh_v),
    v3s(1, 0b10110, "SQRDMULH (vector)", s::sqrdmulh_v),
    v3s(0, 0b10111, "ADDP (vector)", s::addp),
    s3s(0, 0b00001, "SQADD (scalar)", s::sqadd_s),
    s3s(1, 0b00001, "UQADD (scalar)", s::uqadd_s),
    s3s(0, 0b00101, "SQSUB (scalar)", s::sqsub_s),
    s3s(1, 0b00101, "UQSUB (scalar)", s::uqsub_s),
    s3s(0, 0b00110, "CMGT (scalar, register)", s::cmgt_s),
    s3s(1, 0b00110, "CMHI (scalar, register)", s::cmhi_s),
    s3s(0, 0b00111, "CMGE (scalar, register)", s::cmge_s),
    s3s(1, 0b00111, "CMHS (scalar, register)", s::cmhs_s),
    s3s(0, 0b01000, "SSHL (scalar)", s::sshl_s),
    s3s(1, 0b01000, "USHL (scalar)", s::ushl_s),
    s3s(0, 0b01001, "SQSHL (scalar, register)", s::sqshl_s),
    s3s(1, 0b01001, "UQSHL (scalar, register)", s::uqshl_s),
    s3s(0, 0b01010, "SRSHL (scalar)", s::srshl_s),
    s3s(1, 0b01010, "URSHL (scalar)", s::urshl_s),
    s3s(0, 0b01011, "SQRSHL (scalar)", s::sqrshl_s),
    s3s(1, 0b01011, "UQRSHL (scalar)", s::uqrshl_s),
    s3s(0, 0b10000, "ADD (scalar)", s::add_s),
    s3s(1, 0b10000, "SUB (scalar)", s::sub_s),
    s3s(0, 0b10001, "CMTST (scalar)", s::cmtst_s),
    s3s(1, 0b10001, "CMEQ (scalar, register)", s::cmeq_s),
    s3s(0, 0b10110, "SQDMULH (scalar)", s::sqdmulh_s),
    s3s(1, 0b10110, "SQRDMULH (scalar)", s::sqrdmulh_s),
    row(0xffff_fc00, 0x5ef1_b800, "ADDP (scalar)", s::addp_s),
];
