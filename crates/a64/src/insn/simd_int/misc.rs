//! AdvSIMD two-register misc (integer) and its scalar forms, across-lanes
//! reductions.

use super::diff::{long, narrow, write_narrow};
use super::lanes::{
    elem_mask, ext, lanes3, q_size, reg_mask, sat, sat_s, sat_u, set_qc, sized, Lane,
};
use super::same::{ALL, B, D, NO64};
use super::{across, s2m, v2m, v2z};
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::{rd, rn};

/// Count leading sign bits.
fn cls<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    let s = a.s();
    let lz = if s < 0 {
        (!s).leading_zeros()
    } else {
        s.leading_zeros()
    };
    T::t((lz - (64 - T::BITS) - 1) as u64)
}
/// Count leading zeros.
fn clz<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::t((a.u().leading_zeros() - (64 - T::BITS)) as u64)
}
/// Population count.
fn cnt<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::t(a.u().count_ones() as u64)
}
/// Bitwise NOT.
fn not<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::t(!a.u())
}
/// RBIT (vector): reverses the bits of every byte (size field 01).
fn rbit_v(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let (q, _) = q_size(i.raw);
    let r = cpu.vreg(rn(i.raw)).reverse_bits().swap_bytes();
    cpu.set_vreg(rd(i.raw), r & reg_mask(false, q, 0));
    Ok(())
}
/// Signed saturating accumulate of an unsigned value.
fn suqadd<T: Lane>(d: T, a: T, _: T, s: &mut bool) -> T {
    sat_s(d.s() as i128 + a.u() as i128, s)
}
/// Unsigned saturating accumulate of a signed value.
fn usqadd<T: Lane>(d: T, a: T, _: T, s: &mut bool) -> T {
    sat_u(d.u() as i128 + a.s() as i128, s)
}
/// Saturating absolute value.
fn sqabs<T: Lane>(_: T, a: T, _: T, s: &mut bool) -> T {
    sat_s((a.s() as i128).abs(), s)
}
/// Saturating negate.
fn sqneg<T: Lane>(_: T, a: T, _: T, s: &mut bool) -> T {
    sat_s(-(a.s() as i128), s)
}
/// Absolute value.
fn abs<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    if T::t(0).sgt(a) {
        T::t(0).wsub(a)
    } else {
        a
    }
}
/// Negate.
fn neg<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::t(0).wsub(a)
}
/// Compare signed greater than zero.
fn cmgt0<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::mask(a.sgt(T::t(0)))
}
/// Compare signed greater or equal to zero.
fn cmge0<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::mask(!T::t(0).sgt(a))
}
/// Compare equal to zero.
fn cmeq0<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::mask(a == T::t(0))
}
/// Compare signed less or equal to zero.
fn cmle0<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::mask(!a.sgt(T::t(0)))
}
/// Compare signed less than zero.
fn cmlt0<T: Lane>(_: T, a: T, _: T, _: &mut bool) -> T {
    T::mask(T::t(0).sgt(a))
}

/// Defines a same-width two-register misc handler.
macro_rules! misc_h {
    ($name:ident, $scalar:expr, $sizes:expr, $op:expr) => {
        /// Two-register misc handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if ($sizes >> size) & 1 == 0 || (!$scalar && size == 3 && !q) {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let d = rd(i.raw);
            let (r, s) = if q && !$scalar {
                // Full register: no masking, so the lanes load straight from memory.
                let (dv, a) = (cpu.vreg(d), cpu.vreg(rn(i.raw)));
                sized!(size, T, lanes3::<T>(dv, a, 0, $op))
            } else {
                let m = reg_mask($scalar, q, size);
                let (dv, a) = (cpu.vreg(d) & m, cpu.vreg(rn(i.raw)) & m);
                let (r, s) = sized!(size, T, lanes3::<T>(dv, a, 0, $op));
                (r & m, s)
            };
            cpu.set_vreg(d, r);
            set_qc(cpu, s);
            Ok(())
        }
    };
}

misc_h!(cls_v, false, NO64, cls::<T>);
misc_h!(clz_v, false, NO64, clz::<T>);
misc_h!(cnt_v, false, B, cnt::<T>);
misc_h!(not_v, false, B, not::<T>);
misc_h!(suqadd_v, false, ALL, suqadd::<T>);
misc_h!(usqadd_v, false, ALL, usqadd::<T>);
misc_h!(sqabs_v, false, ALL, sqabs::<T>);
misc_h!(sqneg_v, false, ALL, sqneg::<T>);
misc_h!(abs_v, false, ALL, abs::<T>);
misc_h!(neg_v, false, ALL, neg::<T>);
misc_h!(cmgt0_v, false, ALL, cmgt0::<T>);
misc_h!(cmge0_v, false, ALL, cmge0::<T>);
misc_h!(cmeq0_v, false, ALL, cmeq0::<T>);
misc_h!(cmle0_v, false, ALL, cmle0::<T>);
misc_h!(cmlt0_v, false, ALL, cmlt0::<T>);
misc_h!(suqadd_s, true, ALL, suqadd::<T>);
misc_h!(usqadd_s, true, ALL, usqadd::<T>);
misc_h!(sqabs_s, true, ALL, sqabs::<T>);
misc_h!(sqneg_s, true, ALL, sqneg::<T>);
misc_h!(abs_s, true, D, abs::<T>);
misc_h!(neg_s, true, D, neg::<T>);
misc_h!(cmgt0_s, true, D, cmgt0::<T>);
misc_h!(cmge0_s, true, D, cmge0::<T>);
misc_h!(cmeq0_s, true, D, cmeq0::<T>);
misc_h!(cmle0_s, true, D, cmle0::<T>);
misc_h!(cmlt0_s, true, D, cmlt0::<T>);

/// Defines a REV handler reversing elements within `$c`-byte containers.
macro_rules! rev_h {
    ($name:ident, $c:expr) => {
        /// REV16/REV32/REV64 (vector) handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            let e = 1usize << size;
            if e >= $c {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let src = cpu.vreg(rn(i.raw)).to_le_bytes();
            let mut dst = [0u8; 16];
            for (j, b) in dst.iter_mut().enumerate() {
                let (base, o) = (j / $c * $c, j % $c);
                let k = o / e;
                *b = src[base + ($c / e - 1 - k) * e + o % e];
            }
            let m = reg_mask(false, q, 0);
            cpu.set_vreg(rd(i.raw), u128::from_le_bytes(dst) & m);
            Ok(())
        }
    };
}

rev_h!(rev16, 2);
rev_h!(rev32, 4);
rev_h!(rev64, 8);

/// Defines a pairwise long add (and accumulate) handler.
macro_rules! addlp_h {
    ($name:ident, $u:expr, $acc:expr) => {
        /// SADDLP/UADDLP/SADALP/UADALP handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if size == 3 {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let m = reg_mask(false, q, 0);
            let d = rd(i.raw);
            let a = cpu.vreg(rn(i.raw)) & m;
            let dv = if $acc { cpu.vreg(d) & m } else { 0 };
            let r = sized!(size, T, {
                let av = T::unpack(a);
                let dw = <<T as Lane>::W as Lane>::unpack(dv);
                let mut r = <<<T as Lane>::W as Lane>::A as Default>::default();
                for j in 0..<<T as Lane>::W as Lane>::N {
                    let x = ext(av.as_ref()[2 * j], $u) + ext(av.as_ref()[2 * j + 1], $u);
                    r.as_mut()[j] = dw.as_ref()[j].wadd(Lane::t(x as u64));
                }
                <<T as Lane>::W as Lane>::pack(r)
            });
            cpu.set_vreg(d, r & m);
            Ok(())
        }
    };
}

addlp_h!(saddlp, false, false);
addlp_h!(uaddlp, true, false);
addlp_h!(sadalp, false, true);
addlp_h!(uadalp, true, true);

/// Defines an extract-narrow handler (XTN, SQXTN, UQXTN, SQXTUN).
macro_rules! xtn_h {
    ($name:ident, $scalar:expr, $su:expr, $du:expr, $satq:expr) => {
        /// Extract narrow handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if size == 3 {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let mut a = cpu.vreg(rn(i.raw));
            if $scalar {
                a &= elem_mask(size + 1);
            }
            let (r, s) = sized!(
                size,
                T,
                narrow::<T>(a, 0, |x, _, s| {
                    if $satq {
                        sat::<T>(ext(x, $su), $du, s)
                    } else {
                        T::t(x.u())
                    }
                })
            );
            if $scalar {
                cpu.set_vreg(rd(i.raw), r as u128 & elem_mask(size));
            } else {
                write_narrow(cpu, rd(i.raw), q, r);
            }
            set_qc(cpu, s);
            Ok(())
        }
    };
}

xtn_h!(xtn, false, true, true, false);
xtn_h!(sqxtn_v, false, false, false, true);
xtn_h!(uqxtn_v, false, true, true, true);
xtn_h!(sqxtun_v, false, false, true, true);
xtn_h!(sqxtn_s, true, false, false, true);
xtn_h!(uqxtn_s, true, true, true, true);
xtn_h!(sqxtun_s, true, false, true, true);

/// SHLL/SHLL2: widen and shift left by the element size.
fn shll(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let (q, size) = q_size(i.raw);
    if size == 3 {
        return cpu.stop(Exit::Undefined(i.raw));
    }
    let a = cpu.vreg(rn(i.raw));
    let (r, _) = sized!(
        size,
        T,
        long::<T, true>(0, a, 0, q, false, |_, x, _, _| Lane::t(
            (x as u64) << (T::BITS & 63)
        ))
    );
    cpu.set_vreg(rd(i.raw), r);
    Ok(())
}

/// Defines an across-lanes reduction handler; `$long` widens the result.
macro_rules! across_h {
    ($name:ident, $u:expr, $long:expr, $f:expr) => {
        /// Across-lanes handler (ADDV, SADDLV, UADDLV, SMAXV, SMINV, UMAXV, UMINV).
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if size == 3 || (size == 2 && !q) {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let a = cpu.vreg(rn(i.raw));
            let r = sized!(size, T, {
                let av = T::unpack(a);
                let n = if q { T::N } else { T::N / 2 };
                let v = &av.as_ref()[..n];
                let f = $f;
                let r = v.iter().skip(1).fold(ext(v[0], $u), |acc, &x| f(acc, x));
                let w = if $long { size + 1 } else { size };
                r as u128 & elem_mask(w)
            });
            cpu.set_vreg(rd(i.raw), r);
            Ok(())
        }
    };
}

across_h!(addv, true, false, |a: i128, b: T| a + ext(b, true));
across_h!(saddlv, false, true, |a: i128, b: T| a + ext(b, false));
across_h!(uaddlv, true, true, |a: i128, b: T| a + ext(b, true));

/// Defines a maximum/minimum across-lanes handler folding with `$f` on the
/// lanes' own type.
macro_rules! minmax_h {
    ($name:ident, $f:expr) => {
        /// SMAXV/SMINV/UMAXV/UMINV handler.
        fn $name(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
            let (q, size) = q_size(i.raw);
            if size == 3 || (size == 2 && !q) {
                return cpu.stop(Exit::Undefined(i.raw));
            }
            let a = cpu.vreg(rn(i.raw));
            let r = sized!(size, T, {
                let av = T::unpack(a);
                let n = if q { T::N } else { T::N / 2 };
                let f = $f;
                av.as_ref()[..n]
                    .iter()
                    .fold(av.as_ref()[0], |acc, &x| f(acc, x))
                    .u()
            });
            cpu.set_vreg(rd(i.raw), r as u128);
            Ok(())
        }
    };
}

minmax_h!(smaxv, |a: T, b: T| a.smax(b));
minmax_h!(umaxv, |a: T, b: T| a.max(b));
minmax_h!(sminv, |a: T, b: T| a.smin(b));
minmax_h!(uminv, |a: T, b: T| a.min(b));

/// Two-register misc and across-lanes rows.
pub(super) const ENCODINGS: &[Encoding] = &[
    v2m(0, 0b00000, "REV64", rev64),
    v2m(1, 0b00000, "REV32 (vector)", rev32),
    v2m(0, 0b00001, "REV16 (vector)", rev16),
    v2m(0, 0b00010, "SADDLP", saddlp),
    v2m(1, 0b00010, "UADDLP", uaddlp),
    v2m(0, 0b00011, "SUQADD (vector)", suqadd_v),
    v2m(1, 0b00011, "USQADD (vector)", usqadd_v),
    v2m(0, 0b00100, "CLS (vector)", cls_v),
    v2m(1, 0b00100, "CLZ (vector)", clz_v),
    v2m(0, 0b00101, "CNT", cnt_v),
    v2z(1, 0b00101, 0, "NOT", not_v),
    v2z(1, 0b00101, 1, "RBIT (vector)", rbit_v),
    v2m(0, 0b00110, "SADALP", sadalp),
    v2m(1, 0b00110, "UADALP", uadalp),
    v2m(0, 0b00111, "SQABS (vector)", sqabs_v),
    v2m(1, 0b00111, "SQNEG (vector)", sqneg_v),
    v2m(0, 0b01000, "CMGT (vector, zero)", cmgt0_v),
    v2m(1, 0b01000, "CMGE (vector, zero)", cmge0_v),
    v2m(0, 0b01001, "CMEQ (vector, zero)", cmeq0_v),
    v2m(1, 0b01001, "CMLE (vector, zero)", cmle0_v),
    v2m(0, 0b01010, "CMLT (vector, zero)", cmlt0_v),
    v2m(0, 0b01011, "ABS (vector)", abs_v),
    v2m(1, 0b01011, "NEG (vector)", neg_v),
    v2m(0, 0b10010, "XTN", xtn),
    v2m(1, 0b10010, "SQXTUN (vector)", sqxtun_v),
    v2m(1, 0b10011, "SHLL", shll),
    v2m(0, 0b10100, "SQXTN (vector)", sqxtn_v),
    v2m(1, 0b10100, "UQXTN (vector)", uqxtn_v),
    s2m(0, 0b00011, "SUQADD (scalar)", suqadd_s),
    s2m(1, 0b00011, "USQADD (scalar)", usqadd_s),
    s2m(0, 0b00111, "SQABS (scalar)", sqabs_s),
    s2m(1, 0b00111, "SQNEG (scalar)", sqneg_s),
    s2m(0, 0b01000, "CMGT (scalar, zero)", cmgt0_s),
    s2m(1, 0b01000, "CMGE (scalar, zero)", cmge0_s),
    s2m(0, 0b01001, "CMEQ (scalar, zero)", cmeq0_s),
    s2m(1, 0b01001, "CMLE (scalar, zero)", cmle0_s),
    s2m(0, 0b01010, "CMLT (scalar, zero)", cmlt0_s),
    s2m(0, 0b01011, "ABS (scalar)", abs_s),
    s2m(1, 0b01011, "NEG (scalar)", neg_s),
    s2m(1, 0b10010, "SQXTUN (scalar)", sqxtun_s),
    s2m(0, 0b10100, "SQXTN (scalar)", sqxtn_s),
    s2m(1, 0b10100, "UQXTN (scalar)", uqxtn_s),
    across(0, 0b00011, "SADDLV", saddlv),
    across(1, 0b00011, "UADDLV", uaddlv),
    across(0, 0b01010, "SMAXV", smaxv),
    across(1, 0b01010, "UMAXV", umaxv),
    across(0, 0b11010, "SMINV", sminv),
    across(1, 0b11010, "UMINV", uminv),
    across(0, 0b11011, "ADDV", addv),
];
