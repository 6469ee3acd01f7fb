//! The host's floating-point unit (x86-64 SSE), used with FPCR's rounding
//! mode. Each operation is one `asm!` block that installs MXCSR, computes,
//! reads the exception flags and restores MXCSR, so nothing the compiler does
//! can move floating-point work across the mode change.

use super::flags::*;
use super::Rounding;

/// Host operations.
#[derive(Clone, Copy)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
}

/// MXCSR with all exceptions masked, the given rounding mode and FTZ.
fn mxcsr(rounding: Rounding, ftz: bool) -> u32 {
    let rc = match rounding {
        Rounding::Nearest | Rounding::NearestAway => 0,
        Rounding::MinusInf => 1,
        Rounding::PlusInf => 2,
        Rounding::Zero => 3,
    };
    0x1f80 | rc << 13 | if ftz { 1 << 15 } else { 0 }
}

/// Maps MXCSR exception flags to FPSR flags (FTZ flushes report underflow only, as on Arm).
fn flags_from(csr: u32, ftz: bool) -> u32 {
    let mut f = 0;
    if csr & 1 != 0 {
        f |= IOC;
    }
    if csr & 4 != 0 {
        f |= DZC;
    }
    if csr & 8 != 0 {
        f |= OFC;
    }
    if csr & 16 != 0 {
        f |= UFC;
    }
    if csr & 32 != 0 {
        f |= IXC;
    }
    if ftz && csr & 16 != 0 {
        // A flushed result: Arm reports underflow but not inexact.
        f &= !IXC;
    }
    f
}

/// MXCSR as Rust code runs: round to nearest, no flush, all exceptions masked.
#[cfg(target_arch = "x86_64")]
const HOST_DEFAULT: u32 = 0x1f80;

/// One SSE instruction `$insn x, y` run under MXCSR value `$csr` (which receives the
/// flags), with the caller's MXCSR saved in `$saved` and restored. In the host's own
/// mode (the common case) MXCSR is only loaded to clear the flags and is left with
/// the op's sticky flags, which nothing on the host reads.
#[cfg(target_arch = "x86_64")]
macro_rules! sse_op {
    ($insn:literal, $x:ident, $y:expr, $saved:ident, $csr:ident) => {
        if $csr == HOST_DEFAULT {
            core::arch::asm!(
                "ldmxcsr [{csr}]",
                concat!($insn, " {x}, {y}"),
                "stmxcsr [{csr}]",
                csr = in(reg) &mut $csr,
                x = inout(xmm_reg) $x,
                y = in(xmm_reg) $y,
                options(nostack),
            )
        } else {
            sse_op_saved!($insn, $x, $y, $saved, $csr)
        }
    };
}

#[cfg(target_arch = "x86_64")]
macro_rules! sse_op_saved {
    ($insn:literal, $x:ident, $y:expr, $saved:ident, $csr:ident) => {
        core::arch::asm!(
            "stmxcsr [{saved}]",
            "ldmxcsr [{csr}]",
            concat!($insn, " {x}, {y}"),
            "stmxcsr [{csr}]",
            "ldmxcsr [{saved}]",
            saved = in(reg) &mut $saved,
            csr = in(reg) &mut $csr,
            x = inout(xmm_reg) $x,
            y = in(xmm_reg) $y,
            options(nostack),
        )
    };
}

macro_rules! host_op {
    ($name:ident, $t:ty, $add:literal, $sub:literal, $mul:literal, $div:literal, $sqrt:literal) => {
        /// Computes `op` on two host floats; returns the result and FPSR flags.
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut, unused_assignments))]
        pub(crate) fn $name(op: Op, a: $t, b: $t, rounding: Rounding, ftz: bool) -> ($t, u32) {
            let mut x = a;
            let mut csr = mxcsr(rounding, ftz);
            let mut saved = 0u32;
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only MXCSR and the named registers are touched, and MXCSR is restored.
            unsafe {
                match op {
                    Op::Add => sse_op!($add, x, b, saved, csr),
                    Op::Sub => sse_op!($sub, x, b, saved, csr),
                    Op::Mul => sse_op!($mul, x, b, saved, csr),
                    Op::Div => sse_op!($div, x, b, saved, csr),
                    Op::Sqrt => sse_op!($sqrt, x, b, saved, csr),
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                // Portable fallback: round to nearest only, no flags.
                let _ = (&mut csr, &mut saved, rounding);
                x = match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div => a / b,
                    Op::Sqrt => b.sqrt(),
                };
            }
            (x, flags_from(csr, ftz))
        }
    };
}

host_op!(op32, f32, "addss", "subss", "mulss", "divss", "sqrtss");
host_op!(op64, f64, "addsd", "subsd", "mulsd", "divsd", "sqrtsd");

/// Converts double to single with the host (NaNs and FZ inputs handled by the caller).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut, unused_assignments))]
pub(crate) fn f64_to_f32(a: f64, rounding: Rounding, ftz: bool) -> (f32, u32) {
    let mut csr = mxcsr(rounding, ftz);
    let mut saved = 0u32;
    let mut out: f32 = 0.0;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: as in host_op.
    unsafe {
        core::arch::asm!(
            "stmxcsr [{saved}]",
            "ldmxcsr [{csr}]",
            "cvtsd2ss {o}, {x}",
            "stmxcsr [{csr}]",
            "ldmxcsr [{saved}]",
            saved = in(reg) &mut saved,
            csr = in(reg) &mut csr,
            o = inout(xmm_reg) out,
            x = in(xmm_reg) a,
            options(nostack),
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (&mut saved, rounding);
        out = a as f32;
    }
    (out, flags_from(csr, ftz))
}

macro_rules! host_fma {
    ($name:ident, $t:ty, $insn:literal) => {
        /// Fused multiply-add a*b + c with one rounding, when the host has FMA.
        pub(crate) fn $name(a: $t, b: $t, c: $t, rounding: Rounding, ftz: bool) -> Option<($t, u32)> {
            #[cfg(target_arch = "x86_64")]
            {
                if !std::arch::is_x86_feature_detected!("fma") {
                    return None;
                }
                let mut csr = mxcsr(rounding, ftz);
                let mut saved = 0u32;
                let mut x = a;
                // SAFETY: FMA support was checked; MXCSR is restored.
                unsafe {
                    core::arch::asm!(
                        "stmxcsr [{saved}]",
                        "ldmxcsr [{csr}]",
                        concat!($insn, " {x}, {y}, {z}"),
                        "stmxcsr [{csr}]",
                        "ldmxcsr [{saved}]",
                        saved = in(reg) &mut saved,
                        csr = in(reg) &mut csr,
                        x = inout(xmm_reg) x,
                        y = in(xmm_reg) b,
                        z = in(xmm_reg) c,
                        options(nostack),
                    )
                }
                Some((x, flags_from(csr, ftz)))
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (a, b, c, rounding, ftz);
                None
            }
        }
    };
}

host_fma!(fma64, f64, "vfmadd213sd");
host_fma!(fma32, f32, "vfmadd213ss");
