//! Single-register loads and stores in every addressing mode: unsigned
//! scaled immediate, unscaled, pre/post-index, unprivileged, register offset
//! and PC-relative literal, for general and SIMD&FP registers.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::insn::int::extend_value;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "11 111 0 00 01 1 mmmmm 011 s 10 nnnnn ttttt",
        "LDR (register, 64-bit, LSL)",
        "ldst",
        ldr_x_reg_lsl,
    ),
    enc!(
        "11 111 0 01 01 iiiiiiiiiiii nnnnn ttttt",
        "LDR (immediate, 64-bit, unsigned offset)",
        "ldst",
        ldr_x_uimm,
    ),
    enc!(
        "11 111 0 01 00 iiiiiiiiiiii nnnnn ttttt",
        "STR (immediate, 64-bit, unsigned offset)",
        "ldst",
        str_x_uimm,
    ),
    enc!(
        "10 111 0 01 01 iiiiiiiiiiii nnnnn ttttt",
        "LDR (immediate, 32-bit, unsigned offset)",
        "ldst",
        ldr_w_uimm,
    ),
    enc!(
        "10 111 0 01 00 iiiiiiiiiiii nnnnn ttttt",
        "STR (immediate, 32-bit, unsigned offset)",
        "ldst",
        str_w_uimm,
    ),
    enc!(
        "00 111 0 01 01 iiiiiiiiiiii nnnnn ttttt",
        "LDRB (immediate, unsigned offset)",
        "ldst",
        ldrb_uimm,
    ),
    enc!(
        "00 111 0 01 00 iiiiiiiiiiii nnnnn ttttt",
        "STRB (immediate, unsigned offset)",
        "ldst",
        strb_uimm,
    ),
    enc!(
        "ss 111 v 01 oo iiiiiiiiiiii nnnnn ttttt",
        "LDR/STR (immediate, unsigned offset)",
        "ldst",
        uimm,
    ),
    enc!(
        "ss 111 v 00 oo 0 iiiiiiiii mm nnnnn ttttt",
        "LDUR/STUR, LDTR/STTR, LDR/STR (pre/post-index)",
        "ldst",
        imm9,
    ),
    enc!(
        "ss 111 v 00 oo 1 mmmmm xxx s 10 nnnnn ttttt",
        "LDR/STR (register offset)",
        "ldst",
        reg_offset,
    ),
    enc!(
        "oo 011 v 00 iiiiiiiiiiiiiiiiiii ttttt",
        "LDR (literal), LDRSW (literal), PRFM (literal)",
        "ldst",
        literal,
    ),
];

/// What a single-register load/store encoding transfers.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// Store `n` bytes from a general register.
    Store(u32),
    /// Load `n` bytes zero-extended into a general register.
    Load(u32),
    /// Load `n` bytes sign-extended, to a W (false) or X (true) register.
    LoadSigned(u32, bool),
    /// Prefetch: no architectural effect.
    Prefetch,
    /// Store `n` bytes from a SIMD&FP register.
    StoreV(u32),
    /// Load `n` bytes into a SIMD&FP register, zeroing the rest.
    LoadV(u32),
}

impl Kind {
    /// log2 of the access size, used to scale immediates and register offsets.
    fn scale(self) -> u32 {
        match self {
            Kind::Store(n)
            | Kind::Load(n)
            | Kind::LoadSigned(n, _)
            | Kind::StoreV(n)
            | Kind::LoadV(n) => n.trailing_zeros(),
            Kind::Prefetch => 3,
        }
    }
}

/// Decodes size:V:opc of the single-register forms. `None` is unallocated.
pub(crate) fn single_kind(raw: u32) -> Option<Kind> {
    let size = bits(raw, 31, 30);
    let opc = bits(raw, 23, 22);
    let bytes = 1u32 << size;
    if bit(raw, 26) {
        return match (size, opc) {
            (0, 2) => Some(Kind::StoreV(16)),
            (0, 3) => Some(Kind::LoadV(16)),
            (_, 0) => Some(Kind::StoreV(bytes)),
            (_, 1) => Some(Kind::LoadV(bytes)),
            _ => None,
        };
    }
    match (size, opc) {
        (_, 0) => Some(Kind::Store(bytes)),
        (_, 1) => Some(Kind::Load(bytes)),
        (3, 2) => Some(Kind::Prefetch),
        (3, 3) | (2, 3) => None,
        (_, 2) => Some(Kind::LoadSigned(bytes, true)),
        (_, _) => Some(Kind::LoadSigned(bytes, false)),
    }
}

/// Performs the transfer of `kind` for register `t` at address `addr`.
#[inline(always)]
pub(crate) fn transfer(cpu: &mut Cpu, bus: &mut dyn Bus, kind: Kind, t: usize, addr: u64) -> Step {
    match kind {
        Kind::Store(n) => {
            let v = cpu.xreg(t);
            match n {
                1 => cpu.write::<u8>(bus, addr, v as u8),
                2 => cpu.write::<u16>(bus, addr, v as u16),
                4 => cpu.write::<u32>(bus, addr, v as u32),
                _ => cpu.write::<u64>(bus, addr, v),
            }
        }
        Kind::Load(n) => {
            let v = load_zx(cpu, bus, n, addr)?;
            cpu.set_xreg(t, v);
            Ok(())
        }
        Kind::LoadSigned(n, to64) => {
            let v = load_zx(cpu, bus, n, addr)?;
            let v = sext(v, 8 * n) as u64;
            cpu.set_xreg(t, if to64 { v } else { v & 0xffff_ffff });
            Ok(())
        }
        Kind::Prefetch => Ok(()),
        Kind::StoreV(n) => {
            let v = cpu.vreg(t);
            match n {
                1 => cpu.write::<u8>(bus, addr, v as u8),
                2 => cpu.write::<u16>(bus, addr, v as u16),
                4 => cpu.write::<u32>(bus, addr, v as u32),
                8 => cpu.write::<u64>(bus, addr, v as u64),
                _ => cpu.write::<u128>(bus, addr, v),
            }
        }
        Kind::LoadV(n) => {
            let v = if n == 16 {
                cpu.read::<u128>(bus, addr)?
            } else {
                load_zx(cpu, bus, n, addr)? as u128
            };
            cpu.set_vreg(t, v);
            Ok(())
        }
    }
}

/// Loads `n` (1, 2, 4 or 8) bytes zero-extended.
#[inline(always)]
pub(crate) fn load_zx(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    n: u32,
    addr: u64,
) -> Result<u64, crate::cpu::Stop> {
    Ok(match n {
        1 => cpu.read::<u8>(bus, addr)? as u64,
        2 => cpu.read::<u16>(bus, addr)? as u64,
        4 => cpu.read::<u32>(bus, addr)? as u64,
        _ => cpu.read::<u64>(bus, addr)?,
    })
}

/// Address of the unsigned-offset form with access size `1 << scale`.
#[inline(always)]
fn uimm_addr(cpu: &Cpu, raw: u32, scale: u32) -> u64 {
    cpu.xreg_sp(rn(raw))
        .wrapping_add((bits(raw, 21, 10) as u64) << scale)
}

fn ldr_x_uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.read::<u64>(bus, uimm_addr(cpu, i.raw, 3))?;
    cpu.set_xreg(rd(i.raw), v);
    Ok(())
}

fn str_x_uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.xreg(rd(i.raw));
    cpu.write::<u64>(bus, uimm_addr(cpu, i.raw, 3), v)
}

fn ldr_w_uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.read::<u32>(bus, uimm_addr(cpu, i.raw, 2))?;
    cpu.set_xreg(rd(i.raw), v as u64);
    Ok(())
}

fn str_w_uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.xreg(rd(i.raw)) as u32;
    cpu.write::<u32>(bus, uimm_addr(cpu, i.raw, 2), v)
}

fn ldrb_uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.read::<u8>(bus, uimm_addr(cpu, i.raw, 0))?;
    cpu.set_xreg(rd(i.raw), v as u64);
    Ok(())
}

fn strb_uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.xreg(rd(i.raw)) as u8;
    cpu.write::<u8>(bus, uimm_addr(cpu, i.raw, 0), v)
}

fn uimm(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let Some(kind) = single_kind(i.raw) else {
        return cpu.stop(Exit::Undefined(i.raw));
    };
    let addr = uimm_addr(cpu, i.raw, kind.scale());
    transfer(cpu, bus, kind, rd(i.raw), addr)
}

/// Unscaled (00), post-index (01), unprivileged (10) and pre-index (11).
fn imm9(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let mode = bits(raw, 11, 10);
    let kind = match single_kind(raw) {
        // PRFUM exists only unscaled; V forms have no unprivileged variant.
        Some(Kind::Prefetch) if mode != 0 => None,
        Some(Kind::StoreV(_) | Kind::LoadV(_)) if mode == 2 => None,
        k => k,
    };
    let Some(kind) = kind else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let base = cpu.xreg_sp(rn(raw));
    let offset = sext(bits(raw, 20, 12) as u64, 9) as u64;
    let addr = if mode == 1 {
        base
    } else {
        base.wrapping_add(offset)
    };
    if mode == 2 && cpu.system && cpu.sys.el == 1 {
        // LDTR/STTR at EL1: checked with EL0's permissions.
        let saved = cpu.tlb_base;
        cpu.tlb_base = 0;
        let result = transfer(cpu, bus, kind, rd(raw), addr);
        cpu.tlb_base = saved;
        return result;
    }
    transfer(cpu, bus, kind, rd(raw), addr)?;
    if mode & 1 == 1 {
        cpu.set_xreg_sp(rn(raw), base.wrapping_add(offset));
    }
    Ok(())
}

fn ldr_x_reg_lsl(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let offset = cpu.xreg(rm(raw)) << (3 * bits(raw, 12, 12));
    let v = cpu.read::<u64>(bus, cpu.xreg_sp(rn(raw)).wrapping_add(offset))?;
    cpu.set_xreg(rd(raw), v);
    Ok(())
}

fn reg_offset(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let option = bits(raw, 15, 13);
    let (Some(kind), true) = (single_kind(raw), option & 2 != 0) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let shift = if bit(raw, 12) { kind.scale() } else { 0 };
    let offset = extend_value(cpu.xreg(rm(raw)), option, shift);
    let addr = cpu.xreg_sp(rn(raw)).wrapping_add(offset);
    transfer(cpu, bus, kind, rd(raw), addr)
}

fn literal(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let addr =
        i.pc.wrapping_add((sext(bits(raw, 23, 5) as u64, 19) << 2) as u64);
    let kind = match (bit(raw, 26), bits(raw, 31, 30)) {
        (false, 0) => Kind::Load(4),
        (false, 1) => Kind::Load(8),
        (false, 2) => Kind::LoadSigned(4, true),
        (false, _) => Kind::Prefetch,
        (true, 0) => Kind::LoadV(4),
        (true, 1) => Kind::LoadV(8),
        (true, 2) => Kind::LoadV(16),
        (true, _) => return cpu.stop(Exit::Undefined(raw)),
    };
    transfer(cpu, bus, kind, rd(raw), addr)
}
