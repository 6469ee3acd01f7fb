//! Load/store pair: LDP/STP/LDNP/STNP (general and SIMD&FP) and LDPSW,
//! with signed offset, pre-index and post-index.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "10 101 0 010 1 iiiiiii uuuuu nnnnn ttttt",
        "LDP (64-bit, signed offset)",
        "ldst",
        ldp_x_offset,
    ),
    enc!(
        "10 101 0 010 0 iiiiiii uuuuu nnnnn ttttt",
        "STP (64-bit, signed offset)",
        "ldst",
        stp_x_offset,
    ),
    enc!(
        "oo 101 v 0pp l iiiiiii uuuuu nnnnn ttttt",
        "LDP/STP/LDNP/STNP/LDPSW",
        "ldst",
        pair,
    ),
];

#[inline(always)]
fn offset_addr(cpu: &Cpu, raw: u32, scale: u32) -> u64 {
    let off = (sext(bits(raw, 21, 15) as u64, 7) << scale) as u64;
    cpu.xreg_sp(rn(raw)).wrapping_add(off)
}

fn ldp_x_offset(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let addr = offset_addr(cpu, i.raw, 3);
    let a = cpu.read::<u64>(bus, addr)?;
    let b = cpu.read::<u64>(bus, addr.wrapping_add(8))?;
    cpu.set_xreg(ra(i.raw), b);
    cpu.set_xreg(rd(i.raw), a);
    Ok(())
}

fn stp_x_offset(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let addr = offset_addr(cpu, i.raw, 3);
    let (a, b) = (cpu.xreg(rd(i.raw)), cpu.xreg(ra(i.raw)));
    cpu.write::<u64>(bus, addr, a)?;
    cpu.write::<u64>(bus, addr.wrapping_add(8), b)
}

fn pair(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let opc = bits(raw, 31, 30);
    let simd = bit(raw, 26);
    let mode = bits(raw, 25, 23);
    let load = bit(raw, 22);
    // (log2 size, sign-extend) per opc; None = unallocated.
    let shape = match (simd, opc) {
        (false, 0) => Some((2, false)),
        (false, 1) if load && mode != 0 => Some((2, true)),
        (false, 2) => Some((3, false)),
        (true, 0) => Some((2, false)),
        (true, 1) => Some((3, false)),
        (true, 2) => Some((4, false)),
        _ => None,
    };
    let Some((scale, signed)) = shape else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let base = cpu.xreg_sp(rn(raw));
    let offset = (sext(bits(raw, 21, 15) as u64, 7) << scale) as u64;
    let addr = if mode == 1 {
        base
    } else {
        base.wrapping_add(offset)
    };
    let size = 1u64 << scale;
    let (t, t2) = (rd(raw), ra(raw));
    let second = addr.wrapping_add(size);
    if load {
        if simd {
            let (a, b) = match scale {
                2 => (
                    cpu.read::<u32>(bus, addr)? as u128,
                    cpu.read::<u32>(bus, second)? as u128,
                ),
                3 => (
                    cpu.read::<u64>(bus, addr)? as u128,
                    cpu.read::<u64>(bus, second)? as u128,
                ),
                _ => (cpu.read::<u128>(bus, addr)?, cpu.read::<u128>(bus, second)?),
            };
            // With Rt == Rt2 the second value wins for SIMD&FP, the first for
            // general registers (CONSTRAINED UNPREDICTABLE; chosen as QEMU does).
            cpu.set_vreg(t, a);
            cpu.set_vreg(t2, b);
        } else {
            let (a, b) = if scale == 2 {
                let (a, b) = (
                    cpu.read::<u32>(bus, addr)? as u64,
                    cpu.read::<u32>(bus, second)? as u64,
                );
                if signed {
                    (sext(a, 32) as u64, sext(b, 32) as u64)
                } else {
                    (a, b)
                }
            } else {
                (cpu.read::<u64>(bus, addr)?, cpu.read::<u64>(bus, second)?)
            };
            cpu.set_xreg(t2, b);
            cpu.set_xreg(t, a);
        }
    } else if simd {
        let (a, b) = (cpu.vreg(t), cpu.vreg(t2));
        match scale {
            2 => {
                cpu.write::<u32>(bus, addr, a as u32)?;
                cpu.write::<u32>(bus, second, b as u32)?;
            }
            3 => {
                cpu.write::<u64>(bus, addr, a as u64)?;
                cpu.write::<u64>(bus, second, b as u64)?;
            }
            _ => {
                cpu.write::<u128>(bus, addr, a)?;
                cpu.write::<u128>(bus, second, b)?;
            }
        }
    } else {
        let (a, b) = (cpu.xreg(t), cpu.xreg(t2));
        if scale == 2 {
            cpu.write::<u32>(bus, addr, a as u32)?;
            cpu.write::<u32>(bus, second, b as u32)?;
        } else {
            cpu.write::<u64>(bus, addr, a)?;
            cpu.write::<u64>(bus, second, b)?;
        }
    }
    if mode & 1 == 1 {
        cpu.set_xreg_sp(rn(raw), base.wrapping_add(offset));
    }
    Ok(())
}
