//! Data processing, one, two and three sources: bit/byte reversal, counting,
//! division, variable shifts, CRC32, multiply(-accumulate) and high multiplies.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

use super::dp_reg::shift_value;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "s 1 0 11010110 00000 0000 oo nnnnn ddddd",
        "RBIT/REV16/REV32/REV",
        "dp-reg",
        reverse,
    ),
    enc!(
        "s 1 0 11010110 00000 00010 o nnnnn ddddd",
        "CLZ/CLS",
        "dp-reg",
        count_leading,
    ),
    enc!(
        "s 0 0 11010110 mmmmm 00001 o nnnnn ddddd",
        "UDIV/SDIV",
        "dp-reg",
        divide,
    ),
    enc!(
        "s 0 0 11010110 mmmmm 0010 tt nnnnn ddddd",
        "LSLV/LSRV/ASRV/RORV",
        "dp-reg",
        shift_variable,
    ),
    enc!(
        "s 0 0 11010110 mmmmm 010 c zz nnnnn ddddd",
        "CRC32/CRC32C",
        "dp-reg",
        crc32,
    ),
    enc!(
        "1 00 11011 000 mmmmm 0 aaaaa nnnnn ddddd",
        "MADD (64-bit)",
        "dp-reg",
        madd64,
    ),
    enc!(
        "s 00 11011 000 mmmmm o aaaaa nnnnn ddddd",
        "MADD/MSUB",
        "dp-reg",
        madd,
    ),
    enc!(
        "1 00 11011 u 01 mmmmm o aaaaa nnnnn ddddd",
        "SMADDL/SMSUBL/UMADDL/UMSUBL",
        "dp-reg",
        madd_long,
    ),
    enc!(
        "1 00 11011 u 10 mmmmm 0 aaaaa nnnnn ddddd",
        "SMULH/UMULH",
        "dp-reg",
        mul_high,
    ),
];

fn reverse(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let v = cpu.xreg(rn(raw));
    let r = match (sf, bits(raw, 11, 10)) {
        (true, 0) => v.reverse_bits(),
        (false, 0) => (v as u32).reverse_bits() as u64,
        (true, 1) => ((v & 0x00ff_00ff_00ff_00ff) << 8) | ((v >> 8) & 0x00ff_00ff_00ff_00ff),
        (false, 1) => {
            let w = v as u32;
            (((w & 0x00ff_00ff) << 8) | ((w >> 8) & 0x00ff_00ff)) as u64
        }
        (true, 2) => {
            let lo = (v as u32).swap_bytes() as u64;
            let hi = ((v >> 32) as u32).swap_bytes() as u64;
            hi << 32 | lo
        }
        (false, 2) => (v as u32).swap_bytes() as u64,
        (true, _) => v.swap_bytes(),
        (false, _) => return cpu.stop(Exit::Undefined(raw)),
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn count_leading(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let v = cpu.xreg(rn(raw));
    let cls = bit(raw, 10);
    let r = if bit(raw, 31) {
        if cls {
            ((v ^ ((v as i64 >> 1) as u64)) << 1 | 1).leading_zeros() as u64
        } else {
            v.leading_zeros() as u64
        }
    } else {
        let w = v as u32;
        if cls {
            ((w ^ ((w as i32 >> 1) as u32)) << 1 | 1).leading_zeros() as u64
        } else {
            w.leading_zeros() as u64
        }
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn divide(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let a = cpu.xreg(rn(raw));
    let b = cpu.xreg(rm(raw));
    let signed = bit(raw, 10);
    let r = if bit(raw, 31) {
        match (b, signed) {
            (0, _) => 0,
            (_, false) => a / b,
            (_, true) => (a as i64).wrapping_div(b as i64) as u64,
        }
    } else {
        let (a, b) = (a as u32, b as u32);
        (match (b, signed) {
            (0, _) => 0,
            (_, false) => a / b,
            (_, true) => (a as i32).wrapping_div(b as i32) as u32,
        }) as u64
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn shift_variable(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sf = bit(raw, 31);
    let amount = (cpu.xreg(rm(raw)) % if sf { 64 } else { 32 }) as u32;
    let r = shift_value(cpu.xreg(rn(raw)), bits(raw, 11, 10), amount, sf);
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

/// Byte-at-a-time table for a reflected CRC-32 polynomial.
const fn crc_table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32_TABLE: [u32; 256] = crc_table(0xEDB8_8320);
static CRC32C_TABLE: [u32; 256] = crc_table(0x82F6_3B78);

/// CRC32/CRC32C of the low `bytes` bytes of `value` into accumulator `acc`
/// (no pre/post inversion, as the instructions define).
pub(crate) fn crc_update(acc: u32, value: u64, bytes: u32, castagnoli: bool) -> u32 {
    let table = if castagnoli {
        &CRC32C_TABLE
    } else {
        &CRC32_TABLE
    };
    let mut crc = acc;
    for k in 0..bytes {
        let b = (value >> (8 * k)) as u8;
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

fn crc32(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let sz = bits(raw, 11, 10);
    if !cpu.features.crc32 || (sz == 3) != bit(raw, 31) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let acc = cpu.xreg(rn(raw)) as u32;
    let r = crc_update(acc, cpu.xreg(rm(raw)), 1 << sz, bit(raw, 12));
    cpu.set_xreg(rd(raw), r as u64);
    Ok(())
}

fn madd64(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let r = cpu
        .xreg(ra(raw))
        .wrapping_add(cpu.xreg(rn(raw)).wrapping_mul(cpu.xreg(rm(raw))));
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn madd(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let p = cpu.xreg(rn(raw)).wrapping_mul(cpu.xreg(rm(raw)));
    let acc = cpu.xreg(ra(raw));
    let r = if bit(raw, 15) {
        acc.wrapping_sub(p)
    } else {
        acc.wrapping_add(p)
    };
    cpu.set_xreg(rd(raw), if bit(raw, 31) { r } else { r & 0xffff_ffff });
    Ok(())
}

fn madd_long(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let (a, b) = (cpu.xreg(rn(raw)), cpu.xreg(rm(raw)));
    let p = if bit(raw, 23) {
        (a as u32 as u64).wrapping_mul(b as u32 as u64)
    } else {
        (a as i32 as i64).wrapping_mul(b as i32 as i64) as u64
    };
    let acc = cpu.xreg(ra(raw));
    let r = if bit(raw, 15) {
        acc.wrapping_sub(p)
    } else {
        acc.wrapping_add(p)
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}

fn mul_high(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let (a, b) = (cpu.xreg(rn(raw)), cpu.xreg(rm(raw)));
    let r = if bit(raw, 23) {
        ((a as u128 * b as u128) >> 64) as u64
    } else {
        ((a as i64 as i128 * b as i64 as i128) >> 64) as u64
    };
    cpu.set_xreg(rd(raw), r);
    Ok(())
}
