//! LSE atomic memory operations (LDADD, LDCLR, LDEOR, LDSET, LDSMAX, LDSMIN,
//! LDUMAX, LDUMIN, SWP in every size and ordering) and the host atomics that
//! back them and the exclusives.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::SeqCst};

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[enc!(
    "ss 111 0 00 a r 1 sssss o ppp 00 nnnnn ttttt",
    "LDADD/LDCLR/LDEOR/LDSET/LDSMAX/LDSMIN/LDUMAX/LDUMIN/SWP",
    "atomic",
    atomic_op,
)];

/// The read-modify-write operations of the LSE atomic group.
#[derive(Clone, Copy)]
enum Op {
    Add,
    Clr,
    Eor,
    Set,
    Smax,
    Smin,
    Umax,
    Umin,
    Swp,
}

/// Loads the `size`-byte (1, 2, 4 or 8) value at `p` as one atomic access.
///
/// # Safety
/// `p` must be valid and aligned for `size` bytes.
pub(crate) unsafe fn host_load(p: *const u8, size: u8) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    let p = p as *mut u8;
    // SAFETY: the caller's promise.
    unsafe {
        match size {
            1 => AtomicU8::from_ptr(p).load(Relaxed) as u64,
            2 => AtomicU16::from_ptr(p as *mut u16).load(Relaxed) as u64,
            4 => AtomicU32::from_ptr(p as *mut u32).load(Relaxed) as u64,
            _ => AtomicU64::from_ptr(p as *mut u64).load(Relaxed),
        }
    }
}

/// Applies `op` to the `size`-byte value at `p` with operand `v`; returns the old value.
///
/// # Safety
/// `p` must be valid and aligned for `size` bytes.
unsafe fn host_rmw(p: *mut u8, size: u32, op: Op, v: u64) -> u64 {
    macro_rules! rmw {
        ($at:ty, $t:ty, $s:ty) => {{
            let a = <$at>::from_ptr(p as *mut $t);
            let v = v as $t;
            (match op {
                Op::Add => a.fetch_add(v, SeqCst),
                Op::Clr => a.fetch_and(!v, SeqCst),
                Op::Eor => a.fetch_xor(v, SeqCst),
                Op::Set => a.fetch_or(v, SeqCst),
                Op::Umax => a.fetch_max(v, SeqCst),
                Op::Umin => a.fetch_min(v, SeqCst),
                Op::Swp => a.swap(v, SeqCst),
                Op::Smax => a
                    .fetch_update(SeqCst, SeqCst, |x| Some((x as $s).max(v as $s) as $t))
                    .unwrap_or_else(|x| x),
                Op::Smin => a
                    .fetch_update(SeqCst, SeqCst, |x| Some((x as $s).min(v as $s) as $t))
                    .unwrap_or_else(|x| x),
            }) as u64
        }};
    }
    match size {
        1 => rmw!(AtomicU8, u8, i8),
        2 => rmw!(AtomicU16, u16, i16),
        4 => rmw!(AtomicU32, u32, i32),
        _ => rmw!(AtomicU64, u64, i64),
    }
}

/// Compare-and-swap of `size` (1, 2, 4 or 8) bytes at `p`; returns the old value.
///
/// # Safety
/// `p` must be valid and aligned for `size` bytes.
pub(crate) unsafe fn host_cas(p: *mut u8, size: u32, expected: u64, new: u64) -> u64 {
    macro_rules! cas {
        ($at:ty, $t:ty) => {
            <$at>::from_ptr(p as *mut $t)
                .compare_exchange(expected as $t, new as $t, SeqCst, SeqCst)
                .unwrap_or_else(|x| x) as u64
        };
    }
    match size {
        1 => cas!(AtomicU8, u8),
        2 => cas!(AtomicU16, u16),
        4 => cas!(AtomicU32, u32),
        _ => cas!(AtomicU64, u64),
    }
}

/// 128-bit compare-and-swap at `p`; returns the old value.
///
/// # Safety
/// `p` must be valid and 16-byte aligned.
pub(crate) unsafe fn host_cas128(p: *mut u8, expected: u128, new: u128) -> u128 {
    #[cfg(target_arch = "x86_64")]
    {
        let (mut lo, mut hi) = (expected as u64, (expected >> 64) as u64);
        // RBX is reserved by the compiler, so swap the low half of `new` through a scratch register.
        core::arch::asm!(
            "xchg {new_lo}, rbx",
            "lock cmpxchg16b [{p}]",
            "mov rbx, {new_lo}",
            p = in(reg) p,
            new_lo = inout(reg) new as u64 => _,
            inout("rax") lo,
            inout("rdx") hi,
            in("rcx") (new >> 64) as u64,
        );
        ((hi as u128) << 64) | lo as u128
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // Single-threaded fallback until a portable 128-bit atomic is available.
        let q = p as *mut u128;
        let old = q.read();
        if old == expected {
            q.write(new);
        }
        old
    }
}

fn atomic_op(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let op = match (bit(raw, 15), bits(raw, 14, 12)) {
        (false, 0) => Op::Add,
        (false, 1) => Op::Clr,
        (false, 2) => Op::Eor,
        (false, 3) => Op::Set,
        (false, 4) => Op::Smax,
        (false, 5) => Op::Smin,
        (false, 6) => Op::Umax,
        (false, 7) => Op::Umin,
        (true, 0) => Op::Swp,
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    if !cpu.features.lse {
        return cpu.stop(Exit::Undefined(raw));
    }
    let size = 1u32 << bits(raw, 31, 30);
    let addr = cpu.xreg_sp(rn(raw));
    let p = cpu.rmw_ptr(bus, addr, size as u64)?;
    let v = cpu.xreg(rm(raw));
    // SAFETY: rmw_ptr returned a live, aligned, writable host pointer.
    let old = unsafe { host_rmw(p, size, op, v) };
    cpu.set_xreg(rd(raw), old);
    Ok(())
}
