//! AdvSIMD three same (integer) and scalar three same: lane operations,
//! the bitwise logical group and the pairwise operations.

use super::lanes::{
    ext, lanes3, pairwise, q_size, reg_mask, sat, sat_s, set_qc, shift_i128, sized, Lane,
};
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::Insn;
use crate::insn::fields::{rd, rm, rn};

/// Size-field masks of allowed element sizes.
pub(super) const ALL: u32 = 0b1111;
/// 8, 16 and 32-bit elements.
pub(super) const NO64: u32 = 0b0111;
/// 16 and 32-bit elements.
pub(super) const HS: u32 = 0b0110;
/// 64-bit elements only.
pub(super) const D: u32 = 0b1000;
/// 8-bit elements only.
pub(super) const B: u32 = 0b0001;

/// Halving add.
#[inline(always)]
pub(super) fn hadd<T: Lane, const U: bool>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::t(((ext(a, U) + ext(b, U)) >> 1) as u64)
}
/// Rounding halving add.
#[inline(always)]
pub(super) fn rhadd<T: Lane, const U: bool>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::t(((ext(a, U) + ext(b, U) + 1) >> 1) as u64)
}
/// Halving subtract.
#[inline(always)]
pub(super) fn hsub<T: Lane, const U: bool>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::t(((ext(a, U) - ext(b, U)) >> 1) as u64)
}
/// Saturating add.
#[inline(always)]
pub(super) fn qadd<T: Lane, const U: bool>(_: T, a: T, b: T, s: &mut bool) -> T {
    sat(ext(a, U) + ext(b, U), U, s)
}
/// Saturating subtract.
#[inline(always)]
pub(super) fn qsub<T: Lane, const U: bool>(_: T, a: T, b: T, s: &mut bool) -> T {
    sat(ext(a, U) - ext(b, U), U, s)
}
/// Signed greater than.
#[inline(always)]
pub(super) fn cmgt<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::mask(a.sgt(b))
}
/// Unsigned higher.
#[inline(always)]
pub(super) fn cmhi<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::mask(a > b)
}
/// Signed greater or equal.
#[inline(always)]
pub(super) fn cmge<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::mask(!b.sgt(a))
}
/// Unsigned higher or same.
#[inline(always)]
pub(super) fn cmhs<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::mask(a >= b)
}
/// Test bits.
#[inline(always)]
pub(super) fn cmtst<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::mask(a.u() & b.u() != 0)
}
/// Equal.
#[inline(always)]
pub(super) fn cmeq<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::mask(a == b)
}
/// Shift by register (SSHL, USHL, SRSHL, URSHL, SQSHL, UQSHL, SQRSHL, UQRSHL).
#[inline(always)]
pub(super) fn shl_reg<T: Lane, const U: bool, const R: bool, const Q: bool>(
    _: T,
    a: T,
    b: T,
    s: &mut bool,
) -> T {
    let shift = b.u() as u8 as i8 as i32;
    let v = shift_i128(ext(a, U), shift, R);
    if Q {
        sat(v, U, s)
    } else {
        T::t(v as u64)
    }
}
/// Maximum.
#[inline(always)]
pub(super) fn max<T: Lane, const U: bool>(_: T, a: T, b: T, _: &mut bool) -> T {
    if U {
        a.max(b)
    } else {
        a.smax(b)
    }
}
/// Minimum.
#[inline(always)]
pub(super) fn min<T: Lane, const U: bool>(_: T, a: T, b: T, _: &mut bool) -> T {
    if U {
        a.min(b)
    } else {
        a.smin(b)
    }
}
/// Absolute difference.
#[inline(always)]
pub(super) fn abd<T: Lane, const U: bool>(_: T, a: T, b: T, _: &mut bool) -> T {
    let gt = if U { a > b } else { a.sgt(b) };
    if gt {
        a.wsub(b)
    } else {
        b.wsub(a)
    }
}
/// Absolute difference and accumulate.
#[inline(always)]
pub(super) fn aba<T: Lane, const U: bool>(d: T, a: T, b: T, s: &mut bool) -> T {
    d.wadd(abd::<T, U>(d, a, b, s))
}
/// Add.
#[inline(always)]
pub(super) fn add<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    a.wadd(b)
}
/// Subtract.
#[inline(always)]
pub(super) fn sub<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    a.wsub(b)
}
/// Multiply.
#[inline(always)]
pub(super) fn mul<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    a.wmul(b)
}
/// Multiply-accumulate.
#[inline(always)]
pub(super) fn mla<T: Lane>(d: T, a: T, b: T, _: &mut bool) -> T {
    d.wadd(a.wmul(b))
}
/// Multiply-subtract.
#[inline(always)]
pub(super) fn mls<T: Lane>(d: T, a: T, b: T, _: &mut bool) -> T {
    d.wsub(a.wmul(b))
}
/// Carry-less product of two 8-bit polynomials (16-bit result).
#[inline(always)]
pub(super) fn pmul8(a: u64, b: u64) -> u64 {
    let mut r = 0u64;
    for i in 0..8 {
        if b >> i & 1 != 0 {
            r ^= a << i;
        }
    }
    r
}
/// Polynomial multiply (low half of the product).
#[inline(always)]
pub(super) fn pmul<T: Lane>(_: T, a: T, b: T, _: &mut bool) -> T {
    T::t(pmul8(a.u(), b.u()))
}
/// Saturating doubling multiply returning high half, optionally rounding.
#[inline(always)]
pub(super) fn qdmulh<T: Lane, const R: bool>(_: T, a: T, b: T, s: &mut bool) -> T {
    let p = 2 * (a.s() as i128) * (b.s() as i128);
    let r = if R { 1i128 << (T::BITS - 1) } else { 0 };
    sat_s((p + r) >> T::BITS, s)
}

/// Defines a three-same handler: `$name` applies `$op` (an expression using
/// the element type `T`) lane-wise; `$scalar` selects the scalar form;
/// `$sizes` lists the allowed size fields.
macro_rules! same_h {
    ($name:ident, $scalar:expr, $sizes:expr, $op:expr) => {
        /// Three-same handler (see the module documentation).
        pub(super) fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if ($sizes >> size) & 1 == 0 || (!$scalar && size == 3 && !q) {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let d = rd(i.raw);
            let (r, s) = if q && !$scalar {
                // Full register: no masking, so the lanes load straight from memory.
                let (dv, a, b) = (cpu.vreg(d), cpu.vreg(rn(i.raw)), cpu.vreg(rm(i.raw)));
                sized!(size, T, lanes3::<T>(dv, a, b, $op))
            } else {
                let m = reg_mask($scalar, q, size);
                let (dv, a, b) = (
                    cpu.vreg(d) & m,
                    cpu.vreg(rn(i.raw)) & m,
                    cpu.vreg(rm(i.raw)) & m,
                );
                let (r, s) = sized!(size, T, lanes3::<T>(dv, a, b, $op));
                (r & m, s)
            };
            cpu.set_vreg(d, r);
            set_qc(cpu, s);
            Ok(())
        }
    };
}

same_h!(shadd, false, NO64, hadd::<T, false>);
same_h!(uhadd, false, NO64, hadd::<T, true>);
same_h!(srhadd, false, NO64, rhadd::<T, false>);
same_h!(urhadd, false, NO64, rhadd::<T, true>);
same_h!(shsub, false, NO64, hsub::<T, false>);
same_h!(uhsub, false, NO64, hsub::<T, true>);
same_h!(sqadd, false, ALL, qadd::<T, false>);
same_h!(uqadd, false, ALL, qadd::<T, true>);
same_h!(sqsub, false, ALL, qsub::<T, false>);
same_h!(uqsub, false, ALL, qsub::<T, true>);
same_h!(cmgt_v, false, ALL, cmgt::<T>);
same_h!(cmhi_v, false, ALL, cmhi::<T>);
same_h!(cmge_v, false, ALL, cmge::<T>);
same_h!(cmhs_v, false, ALL, cmhs::<T>);
same_h!(cmtst_v, false, ALL, cmtst::<T>);
same_h!(sshl, false, ALL, shl_reg::<T, false, false, false>);
same_h!(ushl, false, ALL, shl_reg::<T, true, false, false>);
same_h!(srshl, false, ALL, shl_reg::<T, false, true, false>);
same_h!(urshl, false, ALL, shl_reg::<T, true, true, false>);
same_h!(sqshl, false, ALL, shl_reg::<T, false, false, true>);
same_h!(uqshl, false, ALL, shl_reg::<T, true, false, true>);
same_h!(sqrshl, false, ALL, shl_reg::<T, false, true, true>);
same_h!(uqrshl, false, ALL, shl_reg::<T, true, true, true>);
same_h!(smax, false, NO64, max::<T, false>);
same_h!(umax, false, NO64, max::<T, true>);
same_h!(smin, false, NO64, min::<T, false>);
same_h!(umin, false, NO64, min::<T, true>);
same_h!(sabd, false, NO64, abd::<T, false>);
same_h!(uabd, false, NO64, abd::<T, true>);
same_h!(saba, false, NO64, aba::<T, false>);
same_h!(uaba, false, NO64, aba::<T, true>);
same_h!(mla_v, false, NO64, mla::<T>);
same_h!(mls_v, false, NO64, mls::<T>);
same_h!(mul_v, false, NO64, mul::<T>);
same_h!(pmul_v, false, B, pmul::<T>);
same_h!(sqdmulh_v, false, HS, qdmulh::<T, false>);
same_h!(sqrdmulh_v, false, HS, qdmulh::<T, true>);

same_h!(sqadd_s, true, ALL, qadd::<T, false>);
same_h!(uqadd_s, true, ALL, qadd::<T, true>);
same_h!(sqsub_s, true, ALL, qsub::<T, false>);
same_h!(uqsub_s, true, ALL, qsub::<T, true>);
same_h!(cmgt_s, true, D, cmgt::<T>);
same_h!(cmhi_s, true, D, cmhi::<T>);
same_h!(cmge_s, true, D, cmge::<T>);
same_h!(cmhs_s, true, D, cmhs::<T>);
same_h!(cmtst_s, true, D, cmtst::<T>);
same_h!(cmeq_s, true, D, cmeq::<T>);
same_h!(sshl_s, true, D, shl_reg::<T, false, false, false>);
same_h!(ushl_s, true, D, shl_reg::<T, true, false, false>);
same_h!(srshl_s, true, D, shl_reg::<T, false, true, false>);
same_h!(urshl_s, true, D, shl_reg::<T, true, true, false>);
same_h!(sqshl_s, true, ALL, shl_reg::<T, false, false, true>);
same_h!(uqshl_s, true, ALL, shl_reg::<T, true, false, true>);
same_h!(sqrshl_s, true, ALL, shl_reg::<T, false, true, true>);
same_h!(uqrshl_s, true, ALL, shl_reg::<T, true, true, true>);
same_h!(add_s, true, D, add::<T>);
same_h!(sub_s, true, D, sub::<T>);
same_h!(sqdmulh_s, true, HS, qdmulh::<T, false>);
same_h!(sqrdmulh_s, true, HS, qdmulh::<T, true>);

/// Defines a bitwise logical handler computing `$f(d, n, m)` on whole registers.
macro_rules! logic_h {
    ($name:ident, |$d:ident, $a:ident, $b:ident| $e:expr) => {
        /// Bitwise logical handler (AND/BIC/ORR/ORN/EOR/BSL/BIT/BIF).
        pub(super) fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, _) = q_size(i.raw);
            let m = reg_mask(false, q, 0);
            let d = rd(i.raw);
            let ($d, $a, $b) = (cpu.vreg(d), cpu.vreg(rn(i.raw)), cpu.vreg(rm(i.raw)));
            let _ = $d;
            cpu.set_vreg(d, ($e) & m);
            Ok(())
        }
    };
}

logic_h!(and, |d, a, b| a & b);
logic_h!(bic, |d, a, b| a & !b);
logic_h!(orr, |d, a, b| a | b);
logic_h!(orn, |d, a, b| a | !b);
logic_h!(eor, |d, a, b| a ^ b);
logic_h!(bsl, |d, a, b| (d & a) | (!d & b));
logic_h!(bit, |d, a, b| d ^ ((d ^ a) & b));
logic_h!(bif, |d, a, b| d ^ ((d ^ a) & !b));

/// Defines a pairwise handler.
macro_rules! pair_h {
    ($name:ident, $sizes:expr, $op:expr) => {
        /// Pairwise handler (ADDP, SMAXP, SMINP, UMAXP, UMINP).
        pub(super) fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if ($sizes >> size) & 1 == 0 || (size == 3 && !q) {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let (a, b) = (cpu.vreg(rn(i.raw)), cpu.vreg(rm(i.raw)));
            let r = sized!(size, T, pairwise::<T>(q, a, b, $op));
            cpu.set_vreg(rd(i.raw), r);
            Ok(())
        }
    };
}

pair_h!(addp, ALL, |x: T, y: T| x.wadd(y));
pair_h!(smaxp, NO64, |x: T, y: T| x.smax(y));
pair_h!(sminp, NO64, |x: T, y: T| x.smin(y));
pair_h!(umaxp, NO64, |x: T, y: T| x.max(y));
pair_h!(uminp, NO64, |x: T, y: T| x.min(y));

/// ADDP (scalar): Dd = Vn.D[0] + Vn.D[1].
pub(super) fn addp_s(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let a = cpu.vreg(rn(i.raw));
    let r = (a as u64).wrapping_add((a >> 64) as u64);
    cpu.set_vreg(rd(i.raw), r as u128);
    Ok(())
}

/// The top bit of every lane of size field `size`.
#[inline(always)]
fn lane_tops(size: u32) -> u128 {
    const TOPS: [u128; 4] = [
        0x8080_8080_8080_8080_8080_8080_8080_8080,
        0x8000_8000_8000_8000_8000_8000_8000_8000,
        0x8000_0000_8000_0000_8000_0000_8000_0000,
        0x8000_0000_0000_0000_8000_0000_0000_0000,
    ];
    TOPS[(size & 3) as usize]
}

/// Defines a vector handler computing whole-register SIMD-within-a-register
/// `$f(a, b, tops, size)` (the hottest integer operations).
macro_rules! swar_h {
    ($name:ident, $f:ident) => {
        /// Vector ADD/SUB/CMEQ handler (lane-parallel on the whole register).
        pub(super) fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if size == 3 && !q {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let (a, b) = (cpu.vreg(rn(i.raw)), cpu.vreg(rm(i.raw)));
            let r = $f(a, b, lane_tops(size), size);
            cpu.set_vreg(rd(i.raw), r & reg_mask(false, q, size));
            Ok(())
        }
    };
}

/// Lane-wise wrapping add of whole registers.
#[inline(always)]
fn swar_add(a: u128, b: u128, h: u128, _: u32) -> u128 {
    let l = !h;
    (a & l).wrapping_add(b & l) ^ ((a ^ b) & h)
}

/// Lane-wise wrapping subtract of whole registers.
#[inline(always)]
fn swar_sub(a: u128, b: u128, h: u128, _: u32) -> u128 {
    (a | h).wrapping_sub(b & !h) ^ ((a ^ !b) & h)
}

/// Lane-wise equality mask of whole registers.
#[inline(always)]
fn swar_cmeq(a: u128, b: u128, h: u128, size: u32) -> u128 {
    let l = !h;
    let x = a ^ b;
    // Top bit of a lane set iff the lane of x is non-zero.
    let nz = ((x & l).wrapping_add(l) | x) & h;
    let eq = !nz & h;
    (eq << 1).wrapping_sub(eq >> ((8u32 << size) - 1))
}

swar_h!(add_v, swar_add);
swar_h!(sub_v, swar_sub);
swar_h!(cmeq_v, swar_cmeq);
