//! AdvSIMD (vector and scalar) x indexed element, integer forms: the
//! element is broadcast and the three-same / three-different lane
//! operations are reused.

use super::diff::{long, mlal, mlsl, mull, qdmlal, qdmlsl, qdmull};
use super::lanes::{elem_mask, lanes3, q_size, reg_mask, set_qc, sized, Lane};
use super::same::{mla, mls, mul, qdmulh};
use super::{sel, vel};
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::{bit, bits, rd, rn};

/// The indexed element of `raw` (sizes 01 and 10 only), broadcast to every
/// lane of a register, or `None` for a reserved size.
#[inline(always)]
fn element(cpu: &Cpu, raw: u32, size: u32) -> Option<u128> {
    let (h, l, m) = (
        bit(raw, 11) as u32,
        bit(raw, 21) as u32,
        bit(raw, 20) as u32,
    );
    let rm4 = bits(raw, 19, 16) as usize;
    let (reg, index, rep) = match size {
        1 => (
            rm4,
            h << 2 | l << 1 | m,
            0x0001_0001_0001_0001_0001_0001_0001_0001u128,
        ),
        2 => (
            (m as usize) << 4 | rm4,
            h << 1 | l,
            0x0000_0001_0000_0001_0000_0001_0000_0001u128,
        ),
        _ => return None,
    };
    let esize = 8u32 << size;
    let e = (cpu.vreg(reg) >> (index * esize)) & elem_mask(size);
    Some(e.wrapping_mul(rep))
}

/// Defines a same-width by-element handler.
macro_rules! elem_h {
    ($name:ident, $scalar:expr, $op:expr) => {
        /// By-element handler (MUL, MLA, MLS, SQDMULH, SQRDMULH).
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            let Some(b) = element(cpu, i.raw, size) else {
                return cpu.stop(Exit::Undefined(i.raw));
            };
            let m = reg_mask($scalar, q, size);
            let d = rd(i.raw);
            let (dv, a) = (cpu.vreg(d) & m, cpu.vreg(rn(i.raw)) & m);
            let (r, s) = sized!(size, T, lanes3::<T>(dv, a, b & m, $op));
            cpu.set_vreg(d, r & m);
            set_qc(cpu, s);
            Ok(())
        }
    };
}

elem_h!(mul_e, false, mul::<T>);
elem_h!(mla_e, false, mla::<T>);
elem_h!(mls_e, false, mls::<T>);
elem_h!(sqdmulh_e, false, qdmulh::<T, false>);
elem_h!(sqrdmulh_e, false, qdmulh::<T, true>);
elem_h!(sqdmulh_se, true, qdmulh::<T, false>);
elem_h!(sqrdmulh_se, true, qdmulh::<T, true>);

/// Defines a widening by-element handler.
macro_rules! elem_long_h {
    ($name:ident, $u:expr, $scalar:expr, $op:ident) => {
        /// Widening by-element handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            let Some(b) = element(cpu, i.raw, size) else {
                return cpu.stop(Exit::Undefined(i.raw));
            };
            let d = rd(i.raw);
            let (mut dv, mut a) = (cpu.vreg(d), cpu.vreg(rn(i.raw)));
            if $scalar {
                dv &= elem_mask(size + 1);
                a &= elem_mask(size);
            }
            let part = q && !$scalar;
            let (r, s) = sized!(
                size,
                T,
                long::<T, $u>(dv, a, b, part, false, $op::<<T as Lane>::W>)
            );
            let r = if $scalar { r & elem_mask(size + 1) } else { r };
            cpu.set_vreg(d, r);
            set_qc(cpu, s);
            Ok(())
        }
    };
}

elem_long_h!(smull_e, false, false, mull);
elem_long_h!(umull_e, true, false, mull);
elem_long_h!(smlal_e, false, false, mlal);
elem_long_h!(umlal_e, true, false, mlal);
elem_long_h!(smlsl_e, false, false, mlsl);
elem_long_h!(umlsl_e, true, false, mlsl);
elem_long_h!(sqdmull_e, false, false, qdmull);
elem_long_h!(sqdmlal_e, false, false, qdmlal);
elem_long_h!(sqdmlsl_e, false, false, qdmlsl);
elem_long_h!(sqdmull_se, false, true, qdmull);
elem_long_h!(sqdmlal_se, false, true, qdmlal);
elem_long_h!(sqdmlsl_se, false, true, qdmlsl);

/// By-element rows (vector and scalar).
pub(super) const ENCODINGS: &[Encoding] = &[
    vel(1, 0b0000, "MLA (by element)", mla_e),
    vel(0, 0b0010, "SMLAL (by element)", smlal_e),
    vel(1, 0b0010, "UMLAL (by element)", umlal_e),
    vel(0, 0b0011, "SQDMLAL (by element)", sqdmlal_e),
    vel(1, 0b0100, "MLS (by element)", mls_e),
    vel(0, 0b0110, "SMLSL (by element)", smlsl_e),
    vel(1, 0b0110, "UMLSL (by element)", umlsl_e),
    vel(0, 0b0111, "SQDMLSL (by element)", sqdmlsl_e),
    vel(0, 0b1000, "MUL (by element)", mul_e),
    vel(0, 0b1010, "SMULL (by element)", smull_e),
    vel(1, 0b1010, "UMULL (by element)", umull_e),
    vel(0, 0b1011, "SQDMULL (by element)", sqdmull_e),
    vel(0, 0b1100, "SQDMULH (by element)", sqdmulh_e),
    vel(0, 0b1101, "SQRDMULH (by element)", sqrdmulh_e),
    sel(0, 0b0011, "SQDMLAL (scalar, by element)", sqdmlal_se),
    sel(0, 0b0111, "SQDMLSL (scalar, by element)", sqdmlsl_se),
    sel(0, 0b1011, "SQDMULL (scalar, by element)", sqdmull_se),
    sel(0, 0b1100, "SQDMULH (scalar, by element)", sqdmulh_se),
    sel(0, 0b1101, "SQRDMULH (scalar, by element)", sqrdmulh_se),
];
