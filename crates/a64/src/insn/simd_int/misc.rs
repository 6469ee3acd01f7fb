//! AdvSIMD two-register miscellaneous (integer), across-lanes and shift by
//! immediate operations (vector forms).

use super::three_same::{sat_s, sat_u, QC};
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    Encoding::new(
        "0 q u 01110 zz 10000 0 oooo 10 nnnnn ddddd",
        "AdvSIMD two-reg misc (integer, opcodes 0xxxx)",
        "simd-int",
        two_reg_misc,
    ),
    Encoding::new(
        "0 q u 01110 zz 10000 1 0010 10 nnnnn ddddd",
        "XTN/SQXTUN",
        "simd-int",
        narrow,
    ),
    Encoding::new(
        "0 q u 01110 zz 10000 1 0100 10 nnnnn ddddd",
        "SQXTN/UQXTN",
        "simd-int",
        narrow,
    ),
    Encoding::new(
        "0 q u 01110 zz 11000 oooo o 10 nnnnn ddddd",
        "ADDV/SADDLV/UADDLV/SMAXV/UMAXV/SMINV/UMINV",
        "simd-int",
        across,
    ),
    Encoding::new(
        "0 q u 011110 hhhh bbb ooooo 1 nnnnn ddddd",
        "AdvSIMD shift by immediate (integer)",
        "simd-int",
        shift_imm,
    ),
];

fn two_reg_misc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let q = bit(raw, 30);
    let u = bit(raw, 29);
    let size = bits(raw, 23, 22);
    let opcode = bits(raw, 15, 12);
    let esize = 8u32 << size;
    let datasize = if q { 128 } else { 64 };
    let a = cpu.vreg(rn(raw));
    let undefined = |cpu: &mut Cpu| cpu.stop(Exit::Undefined(raw));
    let sx = |x: u64| ((x << (64 - esize)) as i64 >> (64 - esize)) as i128;
    let mask = |b: bool| if b { u64::MAX } else { 0 };
    let r = match (opcode, u) {
        // REV64 / REV32 / REV16: reverse elements within 64/32/16-bit containers.
        (0b0000, _) | (0b0001, false) => {
            let container = match (opcode, u) {
                (0, false) => 64,
                (0, true) => 32,
                _ => 16,
            };
            if esize >= container {
                return undefined(cpu);
            }
            let per = (container / esize) as usize;
            let mut r = 0u128;
            for k in 0..(datasize / esize) as usize {
                let base = k / per * per;
                r = with_lane(r, esize, k, lane(a, esize, base + per - 1 - (k - base)));
            }
            r
        }
        (0b0010, _) | (0b0110, _) => {
            // SADDLP/UADDLP and the accumulating SADALP/UADALP.
            if size == 3 {
                return undefined(cpu);
            }
            let wide = 2 * esize;
            let mut r = if opcode == 0b0110 {
                cpu.vreg(rd(raw))
            } else {
                0
            };
            for k in 0..(datasize / wide) as usize {
                let (x, y) = (lane(a, esize, 2 * k), lane(a, esize, 2 * k + 1));
                let s = if u { (x + y) as i128 } else { sx(x) + sx(y) };
                let acc = if opcode == 0b0110 {
                    lane(r, wide, k)
                } else {
                    0
                };
                r = with_lane(r, wide, k, acc.wrapping_add(s as u64));
            }
            keep_low(r, datasize / 8)
        }
        (0b0100, _) => {
            if size == 3 {
                return undefined(cpu);
            }
            map1(a, esize, datasize, |x| {
                if u {
                    (x.leading_zeros() - (64 - esize)) as u64
                } else {
                    let s = sx(x) as i64 as u64;
                    ((s ^ (s as i64 >> 1) as u64).leading_zeros() - (64 - esize + 1)) as u64
                }
            })
        }
        (0b0101, false) if size == 0 => map1(a, 8, datasize, |x| x.count_ones() as u64),
        (0b0101, true) if size == 0 => keep_low(!a, datasize / 8),
        (0b0101, true) if size == 1 => map1(a, 8, datasize, |x| (x as u8).reverse_bits() as u64),
        (0b1000, _) if size != 3 || q => map1(a, esize, datasize, |x| {
            mask(if u { sx(x) >= 0 } else { sx(x) > 0 })
        }),
        (0b1001, _) if size != 3 || q => map1(a, esize, datasize, |x| {
            mask(if u { sx(x) <= 0 } else { x == 0 })
        }),
        (0b1010, false) if size != 3 || q => map1(a, esize, datasize, |x| mask(sx(x) < 0)),
        (0b1011, _) if size != 3 || q => map1(a, esize, datasize, |x| {
            if u {
                (-sx(x)) as u64
            } else {
                sx(x).unsigned_abs() as u64
            }
        }),
        (0b0111, _) if size != 3 || q => {
            // SQABS / SQNEG.
            let mut sat = false;
            let r = {
                let mut r = 0u128;
                for k in 0..(datasize / esize) as usize {
                    let v = sx(lane(a, esize, k));
                    r = with_lane(
                        r,
                        esize,
                        k,
                        sat_s(if u { -v } else { v.abs() }, esize, &mut sat),
                    );
                }
                r
            };
            if sat {
                cpu.fpsr |= QC;
            }
            r
        }
        _ => return undefined(cpu),
    };
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

/// XTN, SQXTUN, SQXTN, UQXTN (and the "2" forms writing the upper half).
fn narrow(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let size = bits(raw, 23, 22);
    if size == 3 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let u = bit(raw, 29);
    let saturating = bits(raw, 15, 12) == 0b0100;
    let upper = bit(raw, 30);
    let esize = 8u32 << size;
    let a = cpu.vreg(rn(raw));
    let mut sat = false;
    let mut part = 0u128;
    for k in 0..(64 / esize) as usize {
        let wide = lane(a, 2 * esize, k);
        let signed = lane_s(a, 2 * esize, k) as i128;
        let v = match (saturating, u) {
            (false, false) => wide & ones(esize),
            (false, true) => sat_u(signed, esize, &mut sat),
            (true, false) => sat_s(signed, esize, &mut sat),
            (true, true) => sat_u(wide as i128, esize, &mut sat),
        };
        part = with_lane(part, esize, k, v);
    }
    if sat {
        cpu.fpsr |= QC;
    }
    let d = rd(raw);
    let r = if upper {
        (cpu.vreg(d) & u64::MAX as u128) | part << 64
    } else {
        part
    };
    cpu.set_vreg(d, r);
    Ok(())
}

fn across(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let q = bit(raw, 30);
    let u = bit(raw, 29);
    let size = bits(raw, 23, 22);
    let opcode = bits(raw, 16, 12);
    let esize = 8u32 << size;
    if size == 3 || (size == 2 && !q) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let elements = (if q { 128 } else { 64 } / esize) as usize;
    let a = cpu.vreg(rn(raw));
    let val = |k: usize| {
        if u {
            lane(a, esize, k) as i128
        } else {
            lane_s(a, esize, k) as i128
        }
    };
    let (r, rsize) = match (opcode, u) {
        (0b00011, _) => ((0..elements).map(val).sum::<i128>() as u64, 2 * esize),
        (0b01010, _) => ((0..elements).map(val).max().unwrap_or(0) as u64, esize),
        (0b11010, _) => ((0..elements).map(val).min().unwrap_or(0) as u64, esize),
        (0b11011, false) => (
            (0..elements)
                .map(|k| lane(a, esize, k))
                .fold(0u64, u64::wrapping_add),
            esize,
        ),
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    cpu.set_vreg(rd(raw), (r & ones(rsize)) as u128);
    Ok(())
}

fn shift_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let q = bit(raw, 30);
    let u = bit(raw, 29);
    let immh = bits(raw, 22, 19);
    let opcode = bits(raw, 15, 11);
    // immh == 0 is the modified-immediate group, decoded elsewhere.
    let esize = 8u32 << (31 - immh.leading_zeros()).min(3);
    let immhb = bits(raw, 22, 16);
    let datasize = if q { 128 } else { 64 };
    let undefined = |cpu: &mut Cpu| cpu.stop(Exit::Undefined(raw));
    if immh == 0 {
        return undefined(cpu);
    }
    let right = 2 * esize - immhb; // for right shifts: 1..=esize
    let left = immhb - esize; // for left shifts: 0..esize-1
    let a = cpu.vreg(rn(raw));
    let d = cpu.vreg(rd(raw));
    let sx = |x: u64| ((x << (64 - esize)) as i64 >> (64 - esize)) as i128;
    let shr = |x: u64, round: bool| -> u64 {
        let v = if u { x as i128 } else { sx(x) };
        let v = if round { v + (1i128 << (right - 1)) } else { v };
        (v >> right) as u64
    };
    let r = match opcode {
        0b00000 | 0b00010 | 0b00100 | 0b00110 => {
            if esize == 64 && !q {
                return undefined(cpu);
            }
            let round = opcode & 0b00100 != 0;
            let acc = opcode & 0b00010 != 0;
            let s = map1(a, esize, datasize, |x| shr(x, round));
            if acc {
                map2(d, s, esize, datasize, u64::wrapping_add)
            } else {
                s
            }
        }
        0b01000 if u => {
            // SRI: shift right and insert.
            if esize == 64 && !q {
                return undefined(cpu);
            }
            let written = if right >= esize {
                0
            } else {
                ones(esize) >> right
            };
            map2(d, a, esize, datasize, |dv, x| {
                let shifted = if right >= esize { 0 } else { x >> right };
                (dv & !written) | (shifted & written)
            })
        }
        0b01010 => {
            if esize == 64 && !q {
                return undefined(cpu);
            }
            if u {
                // SLI: shift left and insert.
                let keep = ones(left);
                map2(d, a, esize, datasize, |dv, x| {
                    (dv & keep) | ((x << left) & !keep)
                })
            } else {
                map1(a, esize, datasize, |x| x << left)
            }
        }
        0b10000 | 0b10001 if !u => {
            // SHRN / RSHRN (and the "2" forms): narrow from 2*esize' elements.
            if immh & 0b1000 != 0 {
                return undefined(cpu);
            }
            let n = esize; // destination element size
            let wide = 2 * n;
            let sh = 2 * n - immhb;
            let mut part = 0u128;
            for k in 0..(64 / n) as usize {
                let x = lane(a, wide, k) as u128;
                let x = if opcode == 0b10001 {
                    x + (1u128 << (sh - 1))
                } else {
                    x
                };
                part = with_lane(part, n, k, (x >> sh) as u64);
            }
            if q {
                (d & u64::MAX as u128) | part << 64
            } else {
                part
            }
        }
        0b10100 => {
            // SSHLL/USHLL (SXTL/UXTL), from the low or (Q=1) high half.
            if immh & 0b1000 != 0 {
                return undefined(cpu);
            }
            let src = if q { a >> 64 } else { a };
            let mut r = 0u128;
            for k in 0..(64 / esize) as usize {
                let x = if u {
                    lane(src, esize, k)
                } else {
                    lane_s(src, esize, k) as u64
                };
                r = with_lane(r, 2 * esize, k, x << left);
            }
            r
        }
        _ => return undefined(cpu),
    };
    cpu.set_vreg(rd(raw), r);
    Ok(())
}
