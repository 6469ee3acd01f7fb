//! Lane machinery shared by the AdvSIMD integer handlers: the [`Lane`] trait
//! (one implementation per element size), lane-wise loops that the host
//! compiler can vectorise, saturation helpers and the size dispatch macro.

use crate::cpu::Cpu;
use crate::insn::fields::{bit, bits};

/// FPSR.QC, the cumulative saturation flag.
pub(super) const QC: u32 = 1 << 27;

/// One vector element type (u8, u16, u32 or u64), stored unsigned.
pub(super) trait Lane: Copy + Default + Eq + Ord + 'static {
    /// Element width in bits.
    const BITS: u32;
    /// Lanes in a 128-bit register.
    const N: usize;
    /// The lanes of a 128-bit register.
    type A: Copy + Default + AsRef<[Self]> + AsMut<[Self]>;
    /// The element type twice as wide (u64 for u64, unused).
    type W: Lane;
    /// Splits a register into lanes (lane 0 = low bits).
    fn unpack(v: u128) -> Self::A;
    /// Joins lanes into a register.
    fn pack(a: Self::A) -> u128;
    /// Zero-extended value.
    fn u(self) -> u64;
    /// Sign-extended value.
    fn s(self) -> i64;
    /// Truncates `v` to the element.
    fn t(v: u64) -> Self;
    /// All ones if `b`, else zero.
    fn mask(b: bool) -> Self;
    /// Wrapping addition.
    fn wadd(self, o: Self) -> Self;
    /// Wrapping subtraction.
    fn wsub(self, o: Self) -> Self;
    /// Wrapping multiplication.
    fn wmul(self, o: Self) -> Self;
    /// Signed greater-than.
    fn sgt(self, o: Self) -> bool;
    /// Signed maximum.
    fn smax(self, o: Self) -> Self;
    /// Signed minimum.
    fn smin(self, o: Self) -> Self;
}

macro_rules! lane_impl {
    ($t:ty, $s:ty, $w:ty, $n:expr) => {
        impl Lane for $t {
            const BITS: u32 = <$t>::BITS;
            const N: usize = $n;
            type A = [$t; $n];
            type W = $w;
            #[inline(always)]
            fn unpack(v: u128) -> [$t; $n] {
                let b = v.to_le_bytes();
                const W: usize = 16 / $n;
                if W == 1 {
                    // Bytes: the little-endian image is the lane array itself.
                    return core::array::from_fn(|i| b[i] as $t);
                }
                core::array::from_fn(|i| {
                    let mut e = [0u8; W];
                    e.copy_from_slice(&b[i * W..i * W + W]);
                    <$t>::from_le_bytes(e)
                })
            }
            #[inline(always)]
            fn pack(a: [$t; $n]) -> u128 {
                const W: usize = 16 / $n;
                let mut b = [0u8; 16];
                if W == 1 {
                    for (c, x) in b.iter_mut().zip(a.iter()) {
                        *c = *x as u8;
                    }
                } else {
                    for (c, x) in b.chunks_exact_mut(W).zip(a.iter()) {
                        c.copy_from_slice(&x.to_le_bytes());
                    }
                }
                u128::from_le_bytes(b)
            }
            #[inline(always)]
            fn u(self) -> u64 {
                self as u64
            }
            #[inline(always)]
            fn s(self) -> i64 {
                self as $s as i64
            }
            #[inline(always)]
            fn t(v: u64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn mask(b: bool) -> Self {
                (0 as $t).wrapping_sub(b as $t)
            }
            #[inline(always)]
            fn wadd(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn wsub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline(always)]
            fn wmul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline(always)]
            fn sgt(self, o: Self) -> bool {
                (self as $s) > (o as $s)
            }
            #[inline(always)]
            fn smax(self, o: Self) -> Self {
                (self as $s).max(o as $s) as $t
            }
            #[inline(always)]
            fn smin(self, o: Self) -> Self {
                (self as $s).min(o as $s) as $t
            }
        }
    };
}

lane_impl!(u8, i8, u16, 16);
lane_impl!(u16, i16, u32, 8);
lane_impl!(u32, i32, u64, 4);
lane_impl!(u64, i64, u64, 2);

/// Calls `$body` with the type alias `$t` bound to the element type of
/// size field `$size` (0 = 8-bit .. 3 = 64-bit).
macro_rules! sized {
    ($size:expr, $t:ident, $body:expr) => {
        match $size {
            0 => {
                type $t = u8;
                $body
            }
            1 => {
                type $t = u16;
                $body
            }
            2 => {
                type $t = u32;
                $body
            }
            _ => {
                type $t = u64;
                $body
            }
        }
    };
}
pub(super) use sized;

/// Bits of an element of size field `size`, as a mask in a register.
#[inline(always)]
pub(super) fn elem_mask(size: u32) -> u128 {
    (u64::MAX >> (64 - (8u32 << (size & 3)))) as u128
}

/// The register bits an operation touches: one element (scalar), the low
/// 64 bits (Q=0) or everything.
#[inline(always)]
pub(super) fn reg_mask(scalar: bool, q: bool, size: u32) -> u128 {
    if scalar {
        elem_mask(size)
    } else if q {
        u128::MAX
    } else {
        u64::MAX as u128
    }
}

/// Q (bit 30) and size (bits 23:22) of `raw`.
#[inline(always)]
pub(super) fn q_size(raw: u32) -> (bool, u32) {
    (bit(raw, 30), bits(raw, 23, 22))
}

/// Sets FPSR.QC when `sat`.
#[inline(always)]
pub(super) fn set_qc(cpu: &mut Cpu, sat: bool) {
    if sat {
        cpu.fpsr |= QC;
    }
}

/// Lane-wise `f(d, a, b)`; also returns whether any lane saturated.
#[inline(always)]
pub(super) fn lanes3<T: Lane>(
    d: u128,
    a: u128,
    b: u128,
    f: impl Fn(T, T, T, &mut bool) -> T,
) -> (u128, bool) {
    let (dv, av, bv) = (T::unpack(d), T::unpack(a), T::unpack(b));
    let mut r = T::A::default();
    let mut sat = false;
    for (((r, &d), &a), &b) in r
        .as_mut()
        .iter_mut()
        .zip(dv.as_ref())
        .zip(av.as_ref())
        .zip(bv.as_ref())
    {
        *r = f(d, a, b, &mut sat);
    }
    (T::pack(r), sat)
}

/// Pairwise `f` over the concatenation of `a` (low) and `b` (high) lanes;
/// with `q` false only the low 64 bits of each are used.
#[inline(always)]
pub(super) fn pairwise<T: Lane>(q: bool, a: u128, b: u128, f: impl Fn(T, T) -> T) -> u128 {
    if q {
        let (av, bv) = (T::unpack(a), T::unpack(b));
        let (av, bv) = (av.as_ref(), bv.as_ref());
        // De-interleave into even and odd lanes, then combine lane-wise.
        let (mut ev, mut od) = (T::A::default(), T::A::default());
        let h = T::N / 2;
        for i in 0..h {
            ev.as_mut()[i] = av[2 * i];
            od.as_mut()[i] = av[2 * i + 1];
            ev.as_mut()[h + i] = bv[2 * i];
            od.as_mut()[h + i] = bv[2 * i + 1];
        }
        let mut r = T::A::default();
        for ((r, &e), &o) in r.as_mut().iter_mut().zip(ev.as_ref()).zip(od.as_ref()) {
            *r = f(e, o);
        }
        T::pack(r)
    } else {
        let c = T::unpack((a as u64 as u128) | (b << 64));
        let mut r = T::A::default();
        for i in 0..T::N / 2 {
            r.as_mut()[i] = f(c.as_ref()[2 * i], c.as_ref()[2 * i + 1]);
        }
        T::pack(r)
    }
}

/// Signed saturation of `v` to `T`.
#[inline(always)]
pub(super) fn sat_s<T: Lane>(v: i128, sat: &mut bool) -> T {
    let max = (1i128 << (T::BITS - 1)) - 1;
    let min = -max - 1;
    if v > max {
        *sat = true;
        T::t(max as u64)
    } else if v < min {
        *sat = true;
        T::t(min as u64)
    } else {
        T::t(v as u64)
    }
}

/// Unsigned saturation of `v` to `T`.
#[inline(always)]
pub(super) fn sat_u<T: Lane>(v: i128, sat: &mut bool) -> T {
    let max = (1i128 << T::BITS) - 1;
    if v > max {
        *sat = true;
        T::t(max as u64)
    } else if v < 0 {
        *sat = true;
        T::t(0)
    } else {
        T::t(v as u64)
    }
}

/// Saturates to signed or unsigned `T`.
#[inline(always)]
pub(super) fn sat<T: Lane>(v: i128, unsigned: bool, s: &mut bool) -> T {
    if unsigned {
        sat_u(v, s)
    } else {
        sat_s(v, s)
    }
}

/// The lane value extended to i128, signed or unsigned.
#[inline(always)]
pub(super) fn ext<T: Lane>(x: T, unsigned: bool) -> i128 {
    if unsigned {
        x.u() as i128
    } else {
        x.s() as i128
    }
}

/// `v << shift` for a signed shift count (negative shifts right, flooring),
/// adding the rounding constant for right shifts when `round`. `v` must fit
/// in 65 bits; the result is exact unless |shift| is huge, in which case it
/// is clamped to a value that saturates/truncates identically for any
/// element of up to 64 bits.
#[inline(always)]
pub(super) fn shift_i128(v: i128, shift: i32, round: bool) -> i128 {
    if shift >= 0 {
        if v == 0 {
            0
        } else if shift >= 64 {
            // Out of range of any element: saturates; truncation gives 0.
            if v > 0 {
                1i128 << 126
            } else {
                -(1i128 << 126)
            }
        } else {
            v << shift
        }
    } else {
        let n = (-shift).min(127) as u32;
        let r = if round { 1i128 << (n - 1) } else { 0 };
        (v + r) >> n
    }
}
