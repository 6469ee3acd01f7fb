//! Field extraction and arithmetic helpers shared by the handlers.

/// Bits `hi..=lo` of `raw`.
#[inline(always)]
pub(crate) const fn bits(raw: u32, hi: u32, lo: u32) -> u32 {
    (raw >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

/// Bit `n` of `raw` as a bool.
#[inline(always)]
pub(crate) const fn bit(raw: u32, n: u32) -> bool {
    raw >> n & 1 != 0
}

/// Rd / Rt: bits 4..0.
#[inline(always)]
pub(crate) const fn rd(raw: u32) -> usize {
    (raw & 31) as usize
}

/// Rn: bits 9..5.
#[inline(always)]
pub(crate) const fn rn(raw: u32) -> usize {
    (raw >> 5 & 31) as usize
}

/// Rm / Rs: bits 20..16.
#[inline(always)]
pub(crate) const fn rm(raw: u32) -> usize {
    (raw >> 16 & 31) as usize
}

/// Ra / Rt2: bits 14..10.
#[inline(always)]
pub(crate) const fn ra(raw: u32) -> usize {
    (raw >> 10 & 31) as usize
}

/// Sign-extends the low `width` bits of `value`.
#[inline(always)]
pub(crate) const fn sext(value: u64, width: u32) -> i64 {
    let shift = 64 - width;
    ((value << shift) as i64) >> shift
}

/// AddWithCarry for 64-bit operands: (result, NZCV in PSTATE layout).
#[inline(always)]
pub(crate) fn add_with_carry64(a: u64, b: u64, carry: bool) -> (u64, u32) {
    let (r1, c1) = a.overflowing_add(b);
    let (r, c2) = r1.overflowing_add(carry as u64);
    let c = c1 | c2;
    let v = ((a ^ r) & (b ^ r)) >> 63 != 0;
    (r, nzcv64(r, c, v))
}

/// AddWithCarry for 32-bit operands: (result zero-extended, NZCV).
#[inline(always)]
pub(crate) fn add_with_carry32(a: u32, b: u32, carry: bool) -> (u64, u32) {
    let (r1, c1) = a.overflowing_add(b);
    let (r, c2) = r1.overflowing_add(carry as u32);
    let c = c1 | c2;
    let v = ((a ^ r) & (b ^ r)) >> 31 != 0;
    (r as u64, nzcv32(r, c, v))
}

/// NZCV for a 64-bit result with the given carry and overflow.
#[inline(always)]
pub(crate) fn nzcv64(r: u64, c: bool, v: bool) -> u32 {
    ((r >> 63) as u32) << 31 | ((r == 0) as u32) << 30 | (c as u32) << 29 | (v as u32) << 28
}

/// NZCV for a 32-bit result with the given carry and overflow.
#[inline(always)]
pub(crate) fn nzcv32(r: u32, c: bool, v: bool) -> u32 {
    (r >> 31) << 31 | ((r == 0) as u32) << 30 | (c as u32) << 29 | (v as u32) << 28
}

/// The carry flag as a bool.
#[inline(always)]
pub(crate) fn carry(nzcv: u32) -> bool {
    nzcv >> 29 & 1 != 0
}
