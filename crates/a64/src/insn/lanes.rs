//! Lane access on 128-bit vector register values, shared by the SIMD handlers.

/// Mask of the low `bits` bits (bits in 1..=64).
#[inline(always)]
pub(crate) fn ones(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Element `i` of width `esize` bits (8, 16, 32 or 64), zero-extended.
#[inline(always)]
pub(crate) fn lane(v: u128, esize: u32, i: usize) -> u64 {
    (v >> (esize as usize * i)) as u64 & ones(esize)
}

/// Element `i` of width `esize`, sign-extended.
#[inline(always)]
pub(crate) fn lane_s(v: u128, esize: u32, i: usize) -> i64 {
    let x = lane(v, esize, i);
    ((x << (64 - esize)) as i64) >> (64 - esize)
}

/// `v` with element `i` of width `esize` replaced by the low bits of `x`.
#[inline(always)]
pub(crate) fn with_lane(v: u128, esize: u32, i: usize, x: u64) -> u128 {
    let shift = esize as usize * i;
    let mask = (ones(esize) as u128) << shift;
    (v & !mask) | (((x & ones(esize)) as u128) << shift)
}

/// The register value with only the low `bytes` bytes kept (Q=0 results, scalars).
#[inline(always)]
pub(crate) fn keep_low(v: u128, bytes: u32) -> u128 {
    if bytes >= 16 {
        v
    } else {
        v & ((1u128 << (8 * bytes)) - 1)
    }
}

/// Replicates the low `esize` bits of `x` over 128 bits.
#[inline(always)]
pub(crate) fn replicate(x: u64, esize: u32) -> u128 {
    let e = (x & ones(esize)) as u128;
    let mut r = 0u128;
    let mut pos = 0;
    while pos < 128 {
        r |= e << pos;
        pos += esize;
    }
    r
}
