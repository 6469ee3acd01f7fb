//! Data processing, immediate: PC-relative addressing, add/subtract,
//! logical, move wide, bitfield and extract.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

use super::dp_reg::logical_result;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!("0 ii 10000 iiiiiiiiiiiiiiiiiii ddddd", "ADR", "dp-imm", adr),
    enc!(
        "1 ii 10000 iiiiiiiiiiiiiiiiiii ddddd",
        "ADRP",
        "dp-imm",
        adrp,
    ),
    enc!(
        "1 0 0 100010 h iiiiiiiiiiii nnnnn ddddd",
        "ADD (immediate, 64-bit)",
        "dp-imm",
        add_imm64,
    ),
    enc!(
        "s o f 100010 h iiiiiiiiiiii nnnnn ddddd",
        "ADD/ADDS/SUB/SUBS (immediate)",
        "dp-imm",
        add_sub_imm,
    ),
    enc!(
        "s oo 100100 N rrrrrr ssssss nnnnn ddddd",
        "AND/ORR/EOR/ANDS (immediate)",
        "dp-imm",
        logical_imm,
    ),
    enc!(
        "s oo 100101 hh iiiiiiiiiiiiiiii ddddd",
        "MOVN/MOVZ/MOVK",
        "dp-imm",
        move_wide,
    ),
    enc!(
        "s oo 100110 N rrrrrr ssssss nnnnn ddddd",
        "SBFM/BFM/UBFM",
        "dp-imm",
        bitfield,
    ),
    enc!(
        "s 00 100111 N 0 mmmmm ssssss nnnnn ddddd",
        "EXTR",
        "dp-imm",
        extr,
    ),
];

fn adr(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let imm = (bits(i.raw, 23, 5) << 2 | bits(i.raw, 30, 29)) as u64;
    cpu.set_xreg(rd(i.raw), i.pc.wrapping_add(sext(imm, 21) as u64));
    Ok(())
}

fn adrp(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let imm = (bits(i.raw, 23, 5) << 2 | bits(i.raw, 30, 29)) as u64;
    let off = (sext(imm, 21) as u64) << 12;
    cpu.set_xreg(rd(i.raw), (i.pc & !0xfff).wrapping_add(off));
    Ok(())
}

/// The most common form: 64-bit ADD without flags (also MOV to/from SP).
fn add_imm64(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let imm = (bits(raw, 21, 10) as u64) << (12 * (bit(raw, 22) as u32));
    let r = cpu.xreg_sp(rn(raw)).wrapping_add(imm);
    cpu.set_xreg_sp(rd(raw), r);
    Ok(())
}

/// ADD, ADDS, SUB, SUBS (immediate), including CMP/CMN and MOV to/from SP.
fn add_sub_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let imm = (bits(raw, 21, 10) as u64) << (12 * (bit(raw, 22) as u32));
    let sub = bit(raw, 30);
    let a = cpu.xreg_sp(rn(raw));
    let b = if sub { !imm } else { imm };
    let (r, flags) = if bit(raw, 31) {
        add_with_carry64(a, b, sub)
    } else {
        add_with_carry32(a as u32, b as u32, sub)
    };
    if bit(raw, 29) {
        cpu.nzcv = flags;
        cpu.set_xreg(rd(raw), r);
    } else {
        cpu.set_xreg_sp(rd(raw), r);
    }
    Ok(())
}

/// DecodeBitMasks from the Arm ARM: (wmask, tmask), or `None` if reserved.
pub(crate) fn decode_bit_masks(
    n: bool,
    imms: u32,
    immr: u32,
    immediate: bool,
    datasize: u32,
) -> Option<(u64, u64)> {
    let combined = (n as u32) << 6 | (!imms & 0x3f);
    if combined == 0 {
        return None;
    }
    let len = 31 - combined.leading_zeros();
    if len < 1 || (1u32 << len) > datasize {
        return None;
    }
    let levels = (1u32 << len) - 1;
    if immediate && imms & levels == levels {
        return None;
    }
    let s = imms & levels;
    let r = immr & levels;
    let diff = s.wrapping_sub(r) & levels;
    let esize = 1u32 << len;
    let ones = |k: u32| -> u64 {
        if k >= 64 {
            u64::MAX
        } else {
            (1u64 << k) - 1
        }
    };
    let welem = ones(s + 1);
    let telem = ones(diff + 1);
    let emask = ones(esize);
    let ror = |v: u64, sh: u32| -> u64 {
        if sh == 0 {
            v
        } else {
            ((v >> sh) | (v << (esize - sh))) & emask
        }
    };
    let welem = ror(welem, r);
    let replicate = |e: u64| -> u64 {
        let mut out = 0u64;
        let mut pos = 0;
        while pos < 64 {
            out |= e << pos;
            pos += esize;
        }
        out
    };
    let mask = ones(datasize);
    Some((replicate(welem) & mask, replicate(telem) & mask))
}

/// The immediate of every logical-immediate encoding, indexed by sf:N:immr:imms
/// (0 marks a reserved one: no valid bitmask immediate is 0).
pub(crate) fn logical_immediates() -> &'static [u64] {
    static TABLE: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..1u32 << 14)
            .map(|k| {
                let (sf, n, immr, imms) = (k >> 13 & 1 == 1, k >> 12 & 1 == 1, k >> 6 & 63, k & 63);
                if !sf && n {
                    return 0;
                }
                decode_bit_masks(n, imms, immr, true, if sf { 64 } else { 32 })
                    .map_or(0, |(w, _)| w)
            })
            .collect()
    })
}

fn logical_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let imm = logical_immediates()[(bits(raw, 31, 31) << 13 | bits(raw, 22, 10)) as usize];
    if imm == 0 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let a = cpu.xreg(rn(raw));
    let r = logical_result(cpu, raw, a, imm);
    // ANDS writes XZR for register 31; the others may write SP.
    if bits(raw, 30, 29) == 3 {
        cpu.set_xreg(rd(raw), r);
    } else {
        cpu.set_xreg_sp(rd(raw), r);
    }
    Ok(())
}

/// MOVN, MOVZ, MOVK.
fn move_wide(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let opc = bits(raw, 30, 29);
    let hw = bits(raw, 22, 21);
    if opc == 1 || (!sf && hw >= 2) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let shift = hw * 16;
    let imm = (bits(raw, 20, 5) as u64) << shift;
    let d = rd(raw);
    let mut r = match opc {
        0 => !imm,
        2 => imm,
        _ => (cpu.xreg(d) & !(0xffffu64 << shift)) | imm,
    };
    if !sf {
        r &= 0xffff_ffff;
    }
    cpu.set_xreg(d, r);
    Ok(())
}

/// SBFM, BFM, UBFM (and their aliases: ASR/LSL/LSR imm, SXT*/UXT*, BFI, BFXIL, SBFX, UBFX...).
fn bitfield(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let n = bit(raw, 22);
    let opc = bits(raw, 30, 29);
    let immr = bits(raw, 21, 16);
    let imms = bits(raw, 15, 10);
    if opc == 3 || sf != n || (!sf && (immr >= 32 || imms >= 32)) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let size = if sf { 64 } else { 32 };
    let src = cpu.xreg(rn(raw));
    if opc != 1 {
        // SBFM/UBFM: a field extract (imms >= immr) or a shifted insert at the bottom.
        let signed = opc == 0;
        let r = if imms >= immr {
            let width = imms - immr + 1;
            let field = (src >> immr) & low_ones(width);
            if signed {
                sext(field, width) as u64
            } else {
                field
            }
        } else {
            let width = imms + 1;
            let field = src & low_ones(width);
            let field = if signed {
                sext(field, width) as u64
            } else {
                field
            };
            field << (size - immr)
        };
        cpu.set_xreg(rd(raw), if sf { r } else { r & 0xffff_ffff });
        return Ok(());
    }
    let Some((wmask, tmask)) = decode_bit_masks(n, imms, immr, false, size) else {
        return cpu.stop(Exit::Undefined(raw));
    };
    let dst = if opc == 1 { cpu.xreg(rd(raw)) } else { 0 };
    let rot = if immr == 0 {
        src
    } else if sf {
        src.rotate_right(immr)
    } else {
        (src as u32).rotate_right(immr) as u64
    };
    let bot = (dst & !wmask) | (rot & wmask);
    let top = if opc == 0 {
        // Replicate bit `imms` of the source.
        if src >> imms & 1 != 0 {
            u64::MAX
        } else {
            0
        }
    } else {
        dst
    };
    let mut r = (top & !tmask) | (bot & tmask);
    if !sf {
        r &= 0xffff_ffff;
    }
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

/// The low `n` bits set (n in 1..=64).
#[inline(always)]
fn low_ones(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

fn extr(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let lsb = bits(raw, 15, 10);
    if sf != bit(raw, 22) || (!sf && lsb >= 32) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let hi = cpu.xreg(rn(raw));
    let lo = cpu.xreg(rm(raw));
    let r = if sf {
        if lsb == 0 {
            lo
        } else {
            (lo >> lsb) | (hi << (64 - lsb))
        }
    } else {
        let v = ((hi as u32 as u64) << 32) | (lo as u32 as u64);
        (v >> lsb) & 0xffff_ffff
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}
