//! AdvSIMD shift by immediate (vector and scalar). The element size is
//! given by the position of immh's leading one, so every instruction has
//! one row per element size and handlers are specialised per element type.

use super::diff::{long, narrow, write_narrow};
use super::lanes::{elem_mask, ext, lanes3, reg_mask, sat, set_qc, shift_i128, Lane};
use super::shi;
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::{bit, bits, rd, rn};

/// Shift kinds of [`same_width`].
const SHR: u8 = 0;
const SRA: u8 = 1;
const SRI: u8 = 2;
const SHL: u8 = 3;
const SLI: u8 = 4;
const QSHL: u8 = 5;
const QSHLU: u8 = 6;

/// Same-width shift by immediate of kind `K` (unsigned per `U`, rounding
/// per `R`) on element type `T`, vector or scalar (`SC`).
#[inline(always)]
fn same_width<T: Lane, const K: u8, const U: bool, const R: bool, const SC: bool>(
    cpu: &mut Cpu,
    i: &Insn,
) -> Step {
    let q = bit(i.raw, 30);
    if !SC && T::BITS == 64 && !q {
        return cpu.stop(Exit::Undefined(i.raw));
    }
    let immhb = bits(i.raw, 22, 16);
    let right = (2 * T::BITS).wrapping_sub(immhb);
    let left = immhb.wrapping_sub(T::BITS);
    let size = T::BITS.trailing_zeros() - 3;
    let m = reg_mask(SC, q, size);
    let d = rd(i.raw);
    let (dv, a) = (cpu.vreg(d) & m, cpu.vreg(rn(i.raw)) & m);
    let ones = u64::MAX >> (64 - T::BITS);
    let (r, s) = lanes3::<T>(dv, a, 0, |d: T, x: T, _, s| match K {
        SHR | SRA => {
            let v = T::t(shift_i128(ext(x, U), -(right as i32), R) as u64);
            if K == SRA {
                d.wadd(v)
            } else {
                v
            }
        }
        SRI => {
            let mask = ones.checked_shr(right).unwrap_or(0);
            T::t((d.u() & !mask) | (x.u().checked_shr(right).unwrap_or(0)))
        }
        SHL => T::t(x.u() << (left & 63)),
        SLI => {
            let mask = ones << (left & 63);
            T::t((d.u() & !mask) | (x.u() << (left & 63)))
        }
        QSHL => sat(ext(x, U) << (left & 63), U, s),
        _ => sat(ext(x, false) << (left & 63), true, s),
    });
    cpu.set_vreg(d, r & m);
    set_qc(cpu, s);
    Ok(())
}

/// Defines a same-width shift handler generic over element type and form.
macro_rules! sw_h {
    ($name:ident, $k:expr, $u:expr, $r:expr) => {
        /// Shift by immediate handler.
        fn $name<T: Lane, const SC: bool>(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            same_width::<T, { $k }, $u, $r, SC>(cpu, i)
        }
    };
}

sw_h!(sshr, SHR, false, false);
sw_h!(ushr, SHR, true, false);
sw_h!(ssra, SRA, false, false);
sw_h!(usra, SRA, true, false);
sw_h!(srshr, SHR, false, true);
sw_h!(urshr, SHR, true, true);
sw_h!(srsra, SRA, false, true);
sw_h!(ursra, SRA, true, true);
sw_h!(sri, SRI, true, false);
sw_h!(shl, SHL, true, false);
sw_h!(sli, SLI, true, false);
sw_h!(sqshl, QSHL, false, false);
sw_h!(uqshl, QSHL, true, false);
sw_h!(sqshlu, QSHLU, false, false);

/// Narrowing right shift of `T::W` lanes to `T`: source signedness `SU`,
/// rounding `R`, saturation `SAT` to unsigned per `DU`.
#[inline(always)]
fn narrow_shift<
    T: Lane,
    const SU: bool,
    const DU: bool,
    const R: bool,
    const SAT: bool,
    const SC: bool,
>(
    cpu: &mut Cpu,
    i: &Insn,
) -> Step {
    let q = bit(i.raw, 30);
    let immhb = bits(i.raw, 22, 16);
    let right = (2 * T::BITS).wrapping_sub(immhb) as i32;
    let size = T::BITS.trailing_zeros() - 3;
    let mut a = cpu.vreg(rn(i.raw));
    if SC {
        a &= elem_mask(size + 1);
    }
    let (r, s) = narrow::<T>(a, 0, |x, _, s| {
        if !SAT && !R {
            // SHRN: plain truncating shift (1 <= right <= esize < 64).
            return T::t(x.u() >> (right & 63));
        }
        let v = shift_i128(ext(x, SU), -right, R);
        if SAT {
            sat(v, DU, s)
        } else {
            T::t(v as u64)
        }
    });
    if SC {
        cpu.set_vreg(rd(i.raw), r as u128 & elem_mask(size));
    } else {
        write_narrow(cpu, rd(i.raw), q && !SC, r);
    }
    set_qc(cpu, s);
    Ok(())
}

/// Defines a narrowing shift handler generic over element type and form.
macro_rules! nw_h {
    ($name:ident, $su:expr, $du:expr, $r:expr, $sat:expr) => {
        /// Narrowing shift by immediate handler.
        fn $name<T: Lane, const SC: bool>(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            narrow_shift::<T, $su, $du, $r, $sat, SC>(cpu, i)
        }
    };
}

nw_h!(shrn, true, true, false, false);
nw_h!(rshrn, true, true, true, false);
nw_h!(sqshrn, false, false, false, true);
nw_h!(sqrshrn, false, false, true, true);
nw_h!(uqshrn, true, true, false, true);
nw_h!(uqrshrn, true, true, true, true);
nw_h!(sqshrun, false, true, false, true);
nw_h!(sqrshrun, false, true, true, true);

/// SSHLL (SXTL): widen and shift left.
fn sshll<T: Lane, const SC: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    shll::<T, false>(cpu, bus, i)
}

/// USHLL (UXTL): widen and shift left.
fn ushll<T: Lane, const SC: bool>(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    shll::<T, true>(cpu, bus, i)
}

/// SSHLL/USHLL (SXTL/UXTL): widen and shift left.
fn shll<T: Lane, const U: bool>(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let q = bit(i.raw, 30);
    let left = bits(i.raw, 22, 16).wrapping_sub(T::BITS) & 63;
    let a = cpu.vreg(rn(i.raw));
    let (r, _) = long::<T, U>(0, a, 0, q, false, |_, x, _, _| Lane::t((x << left) as u64));
    cpu.set_vreg(rd(i.raw), r);
    Ok(())
}

/// Expands specs `scalar U opcode name handler [e T, ...];` into one row per
/// listed element size `e` with the handler specialised for element type `T`.
macro_rules! rows {
    ($($sc:literal $u:literal $op:literal $name:literal $h:ident [$($e:literal $t:ty),*];)*) => {
        &[$($(shi($sc, $u, $op, $e, $name, $h::<$t, $sc>)),*),*]
    };
}

/// Shift by immediate rows.
pub(super) const ENCODINGS: &[Encoding] = rows! {
    false 0 0b00000 "SSHR (vector)" sshr [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b00000 "USHR (vector)" ushr [0 u8, 1 u16, 2 u32, 3 u64];
    false 0 0b00010 "SSRA (vector)" ssra [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b00010 "USRA (vector)" usra [0 u8, 1 u16, 2 u32, 3 u64];
    false 0 0b00100 "SRSHR (vector)" srshr [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b00100 "URSHR (vector)" urshr [0 u8, 1 u16, 2 u32, 3 u64];
    false 0 0b00110 "SRSRA (vector)" srsra [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b00110 "URSRA (vector)" ursra [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b01000 "SRI (vector)" sri [0 u8, 1 u16, 2 u32, 3 u64];
    false 0 0b01010 "SHL (vector)" shl [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b01010 "SLI (vector)" sli [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b01100 "SQSHLU (vector)" sqshlu [0 u8, 1 u16, 2 u32, 3 u64];
    false 0 0b01110 "SQSHL (vector, immediate)" sqshl [0 u8, 1 u16, 2 u32, 3 u64];
    false 1 0b01110 "UQSHL (vector, immediate)" uqshl [0 u8, 1 u16, 2 u32, 3 u64];
    false 0 0b10000 "SHRN" shrn [0 u8, 1 u16, 2 u32];
    false 0 0b10001 "RSHRN" rshrn [0 u8, 1 u16, 2 u32];
    false 1 0b10000 "SQSHRUN (vector)" sqshrun [0 u8, 1 u16, 2 u32];
    false 1 0b10001 "SQRSHRUN (vector)" sqrshrun [0 u8, 1 u16, 2 u32];
    false 0 0b10010 "SQSHRN (vector)" sqshrn [0 u8, 1 u16, 2 u32];
    false 1 0b10010 "UQSHRN (vector)" uqshrn [0 u8, 1 u16, 2 u32];
    false 0 0b10011 "SQRSHRN (vector)" sqrshrn [0 u8, 1 u16, 2 u32];
    false 1 0b10011 "UQRSHRN (vector)" uqrshrn [0 u8, 1 u16, 2 u32];
    true 0 0b00000 "SSHR (scalar)" sshr [3 u64];
    true 1 0b00000 "USHR (scalar)" ushr [3 u64];
    true 0 0b00010 "SSRA (scalar)" ssra [3 u64];
    true 1 0b00010 "USRA (scalar)" usra [3 u64];
    true 0 0b00100 "SRSHR (scalar)" srshr [3 u64];
    true 1 0b00100 "URSHR (scalar)" urshr [3 u64];
    true 0 0b00110 "SRSRA (scalar)" srsra [3 u64];
    true 1 0b00110 "URSRA (scalar)" ursra [3 u64];
    true 1 0b01000 "SRI (scalar)" sri [3 u64];
    true 0 0b01010 "SHL (scalar)" shl [3 u64];
    true 1 0b01010 "SLI (scalar)" sli [3 u64];
    true 1 0b01100 "SQSHLU (scalar)" sqshlu [0 u8, 1 u16, 2 u32, 3 u64];
    true 0 0b01110 "SQSHL (scalar, immediate)" sqshl [0 u8, 1 u16, 2 u32, 3 u64];
    true 1 0b01110 "UQSHL (scalar, immediate)" uqshl [0 u8, 1 u16, 2 u32, 3 u64];
    true 1 0b10000 "SQSHRUN (scalar)" sqshrun [0 u8, 1 u16, 2 u32];
    true 1 0b10001 "SQRSHRUN (scalar)" sqrshrun [0 u8, 1 u16, 2 u32];
    true 0 0b10010 "SQSHRN (scalar)" sqshrn [0 u8, 1 u16, 2 u32];
    true 1 0b10010 "UQSHRN (scalar)" uqshrn [0 u8, 1 u16, 2 u32];
    true 0 0b10011 "SQRSHRN (scalar)" sqrshrn [0 u8, 1 u16, 2 u32];
    true 1 0b10011 "UQRSHRN (scalar)" uqrshrn [0 u8, 1 u16, 2 u32];
    false 0 0b10100 "SSHLL" sshll [0 u8, 1 u16, 2 u32];
    false 1 0b10100 "USHLL" ushll [0 u8, 1 u16, 2 u32];
};
