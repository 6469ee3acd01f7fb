//! AdvSIMD three different (widening, narrowing and long multiply) and the
//! scalar saturating doubling multiplies, plus the widening/narrowing lane
//! engines shared with the misc, shift and by-element groups.

use super::lanes::{elem_mask, ext, q_size, sat_s, set_qc, sized, Lane};
use super::same::{pmul8, B, HS, NO64};
use super::{s3d, v3d};
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::{rd, rm, rn};

/// Widening lane loop: result lanes of `T::W` from the low (or, with `part`,
/// high) half of `a` and `b` as `T` lanes extended per `U`; with `wide_a`
/// the whole of `a` is read as `T::W` lanes instead.
#[inline(always)]
pub(super) fn long<T: Lane, const U: bool>(
    d: u128,
    a: u128,
    b: u128,
    part: bool,
    wide_a: bool,
    f: impl Fn(T::W, i128, i128, &mut bool) -> T::W,
) -> (u128, bool) {
    let an = T::unpack(if part { a >> 64 } else { a });
    let aw = <T::W as Lane>::unpack(a);
    let bn = T::unpack(if part { b >> 64 } else { b });
    let dv = <T::W as Lane>::unpack(d);
    let mut r = <<T::W as Lane>::A as Default>::default();
    let mut s = false;
    let n = <T::W as Lane>::N;
    for i in 0..n {
        let x = if wide_a {
            ext(aw.as_ref()[i], U)
        } else {
            ext(an.as_ref()[i], U)
        };
        let y = ext(bn.as_ref()[i], U);
        r.as_mut()[i] = f(dv.as_ref()[i], x, y, &mut s);
    }
    (<T::W as Lane>::pack(r), s)
}

/// Narrowing lane loop: `T` lanes from the `T::W` lanes of `a` and `b`;
/// returns the packed 64-bit result and the saturation flag.
#[inline(always)]
pub(super) fn narrow<T: Lane>(
    a: u128,
    b: u128,
    f: impl Fn(T::W, T::W, &mut bool) -> T,
) -> (u64, bool) {
    let (av, bv) = (<T::W as Lane>::unpack(a), <T::W as Lane>::unpack(b));
    let mut r = T::A::default();
    let mut s = false;
    for i in 0..<T::W as Lane>::N {
        r.as_mut()[i] = f(av.as_ref()[i], bv.as_ref()[i], &mut s);
    }
    (T::pack(r) as u64, s)
}

/// Writes a narrowed 64-bit result to the low half of `Vd` (zeroing the
/// rest) or, for the "2" forms, to its high half keeping the low half.
#[inline(always)]
pub(super) fn write_narrow(cpu: &mut Cpu, d: usize, part: bool, lo: u64) {
    let v = if part {
        (cpu.vreg(d) as u64 as u128) | (lo as u128) << 64
    } else {
        lo as u128
    };
    cpu.set_vreg(d, v);
}

/// Long add.
pub(super) fn addl<W: Lane>(_: W, x: i128, y: i128, _: &mut bool) -> W {
    W::t((x + y) as u64)
}
/// Long subtract.
pub(super) fn subl<W: Lane>(_: W, x: i128, y: i128, _: &mut bool) -> W {
    W::t((x - y) as u64)
}
/// Long absolute difference.
pub(super) fn abdl<W: Lane>(_: W, x: i128, y: i128, _: &mut bool) -> W {
    W::t((x - y).unsigned_abs() as u64)
}
/// Long absolute difference and accumulate.
pub(super) fn abal<W: Lane>(d: W, x: i128, y: i128, _: &mut bool) -> W {
    d.wadd(W::t((x - y).unsigned_abs() as u64))
}
/// Long multiply-accumulate.
pub(super) fn mlal<W: Lane>(d: W, x: i128, y: i128, _: &mut bool) -> W {
    d.wadd(W::t((x * y) as u64))
}
/// Long multiply-subtract.
pub(super) fn mlsl<W: Lane>(d: W, x: i128, y: i128, _: &mut bool) -> W {
    d.wsub(W::t((x * y) as u64))
}
/// Long multiply.
pub(super) fn mull<W: Lane>(_: W, x: i128, y: i128, _: &mut bool) -> W {
    W::t((x * y) as u64)
}
/// Saturating doubling long multiply.
pub(super) fn qdmull<W: Lane>(_: W, x: i128, y: i128, s: &mut bool) -> W {
    sat_s(2 * x * y, s)
}
/// Saturating doubling long multiply-accumulate.
pub(super) fn qdmlal<W: Lane>(d: W, x: i128, y: i128, s: &mut bool) -> W {
    let p: W = sat_s(2 * x * y, s);
    sat_s(d.s() as i128 + p.s() as i128, s)
}
/// Saturating doubling long multiply-subtract.
pub(super) fn qdmlsl<W: Lane>(d: W, x: i128, y: i128, s: &mut bool) -> W {
    let p: W = sat_s(2 * x * y, s);
    sat_s(d.s() as i128 - p.s() as i128, s)
}
/// Polynomial long multiply (8-bit elements).
pub(super) fn pmull<W: Lane>(_: W, x: i128, y: i128, _: &mut bool) -> W {
    W::t(pmul8(x as u64, y as u64))
}

/// Defines a widening three-different handler (vector or scalar).
macro_rules! long_h {
    ($name:ident, $u:expr, $wide:expr, $sizes:expr, $scalar:expr, $op:ident) => {
        /// Widening three-different handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if ($sizes >> size) & 1 == 0 {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let d = rd(i.raw);
            let (mut dv, mut a, mut b) = (cpu.vreg(d), cpu.vreg(rn(i.raw)), cpu.vreg(rm(i.raw)));
            if $scalar {
                dv &= elem_mask(size + 1);
                a &= elem_mask(size);
                b &= elem_mask(size);
            }
            let part = q && !$scalar;
            let (r, s) = sized!(
                size,
                T,
                long::<T, $u>(dv, a, b, part, $wide, $op::<<T as Lane>::W>)
            );
            let r = if $scalar { r & elem_mask(size + 1) } else { r };
            cpu.set_vreg(d, r);
            set_qc(cpu, s);
            Ok(())
        }
    };
}

long_h!(saddl, false, false, NO64, false, addl);
long_h!(uaddl, true, false, NO64, false, addl);
long_h!(saddw, false, true, NO64, false, addl);
long_h!(uaddw, true, true, NO64, false, addl);
long_h!(ssubl, false, false, NO64, false, subl);
long_h!(usubl, true, false, NO64, false, subl);
long_h!(ssubw, false, true, NO64, false, subl);
long_h!(usubw, true, true, NO64, false, subl);
long_h!(sabal, false, false, NO64, false, abal);
long_h!(uabal, true, false, NO64, false, abal);
long_h!(sabdl, false, false, NO64, false, abdl);
long_h!(uabdl, true, false, NO64, false, abdl);
long_h!(smlal, false, false, NO64, false, mlal);
long_h!(umlal, true, false, NO64, false, mlal);
long_h!(smlsl, false, false, NO64, false, mlsl);
long_h!(umlsl, true, false, NO64, false, mlsl);
long_h!(smull, false, false, NO64, false, mull);
long_h!(umull, true, false, NO64, false, mull);
long_h!(sqdmlal_v, false, false, HS, false, qdmlal);
long_h!(sqdmlsl_v, false, false, HS, false, qdmlsl);
long_h!(sqdmull_v, false, false, HS, false, qdmull);
long_h!(pmull_v, true, false, B, false, pmull);
long_h!(sqdmlal_s, false, false, HS, true, qdmlal);
long_h!(sqdmlsl_s, false, false, HS, true, qdmlsl);
long_h!(sqdmull_s, false, false, HS, true, qdmull);

/// Defines an add/subtract-high-narrow handler.
macro_rules! hn_h {
    ($name:ident, $sub:expr, $round:expr) => {
        /// ADDHN/SUBHN/RADDHN/RSUBHN handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if size == 3 {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let (a, b) = (cpu.vreg(rn(i.raw)), cpu.vreg(rm(i.raw)));
            let (r, _) = sized!(
                size,
                T,
                narrow::<T>(a, b, |x, y, _| {
                    let sum = if $sub { x.wsub(y) } else { x.wadd(y) };
                    let r = if $round { 1u64 << (T::BITS - 1) } else { 0 };
                    T::t(sum.wadd(Lane::t(r)).u() >> (T::BITS & 63))
                })
            );
            write_narrow(cpu, rd(i.raw), q, r);
            Ok(())
        }
    };
}

hn_h!(addhn, false, false);
hn_h!(raddhn, false, true);
hn_h!(subhn, true, false);
hn_h!(rsubhn, true, true);

/// Three different rows (vector and scalar).
pub(super) const ENCODINGS: &[Encoding] = &[
    v3d(0, 0b0000, "SADDL", saddl),
    v3d(1, 0b0000, "UADDL", uaddl),
    v3d(0, 0b0001, "SADDW", saddw),
    v3d(1, 0b0001, "UADDW", uaddw),
    v3d(0, 0b0010, "SSUBL", ssubl),
    v3d(1, 0b0010, "USUBL", usubl),
    v3d(0, 0b0011, "SSUBW", ssubw),
    v3d(1, 0b0011, "USUBW", usubw),
    v3d(0, 0b0100, "ADDHN", addhn),
    v3d(1, 0b0100, "RADDHN", raddhn),
    v3d(0, 0b0101, "SABAL", sabal),
    v3d(1, 0b0101, "UABAL", uabal),
    v3d(0, 0b0110, "SUBHN", subhn),
    v3d(1, 0b0110, "RSUBHN", rsubhn),
    v3d(0, 0b0111, "SABDL", sabdl),
    v3d(1, 0b0111, "UABDL", uabdl),
    v3d(0, 0b1000, "SMLAL (vector)", smlal),
    v3d(1, 0b1000, "UMLAL (vector)", umlal),
    v3d(0, 0b1001, "SQDMLAL (vector)", sqdmlal_v),
    v3d(0, 0b1010, "SMLSL (vector)", smlsl),
    v3d(1, 0b1010, "UMLSL (vector)", umlsl),
    v3d(0, 0b1011, "SQDMLSL (vector)", sqdmlsl_v),
    v3d(0, 0b1100, "SMULL (vector)", smull),
    v3d(1, 0b1100, "UMULL (vector)", umull),
    v3d(0, 0b1101, "SQDMULL (vector)", sqdmull_v),
    v3d(0, 0b1110, "PMULL", pmull_v),
    s3d(0, 0b1001, "SQDMLAL (scalar)", sqdmlal_s),
    s3d(0, 0b1011, "SQDMLSL (scalar)", sqdmlsl_s),
    s3d(0, 0b1101, "SQDMULL (scalar)", sqdmull_s),
];
