//! AdvSIMD permutes: EXT, TBL/TBX, ZIP1/2, UZP1/2, TRN1/2.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "0 q 101110 00 0 mmmmm 0 iiii 0 nnnnn ddddd",
        "EXT",
        "simd-move",
        ext,
    ),
    enc!(
        "0 q 001110 00 0 mmmmm 0 ll x 00 nnnnn ddddd",
        "TBL/TBX",
        "simd-move",
        tbl,
    ),
    enc!(
        "0 q 001110 zz 0 mmmmm 0 ooo 10 nnnnn ddddd",
        "UZP1/TRN1/ZIP1/UZP2/TRN2/ZIP2",
        "simd-move",
        permute,
    ),
];

fn ext(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let q = bit(raw, 30);
    let pos = bits(raw, 14, 11);
    if !q && pos >= 8 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let bytes = if q { 16 } else { 8 };
    let lo = cpu.vreg(rn(raw));
    let hi = cpu.vreg(rm(raw));
    let mut r = 0u128;
    for k in 0..bytes {
        let src = pos + k;
        let b = if src < bytes {
            lane(lo, 8, src as usize)
        } else {
            lane(hi, 8, (src - bytes) as usize)
        };
        r = with_lane(r, 8, k as usize, b);
    }
    cpu.set_vreg(rd(raw), r);
    Ok(())
}

fn tbl(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let regs = bits(raw, 14, 13) as usize + 1;
    let extension = bit(raw, 12);
    let bytes = if bit(raw, 30) { 16 } else { 8 };
    let n = rn(raw);
    let mut table = [0u8; 64];
    for r in 0..regs {
        table[16 * r..16 * r + 16].copy_from_slice(&cpu.vreg((n + r) % 32).to_le_bytes());
    }
    let idx = cpu.vreg(rm(raw));
    let mut result = if extension { cpu.vreg(rd(raw)) } else { 0 };
    for k in 0..bytes {
        let j = lane(idx, 8, k) as usize;
        if j < 16 * regs {
            result = with_lane(result, 8, k, table[j] as u64);
        } else if !extension {
            result = with_lane(result, 8, k, 0);
        }
    }
    cpu.set_vreg(rd(raw), keep_low(result, bytes as u32));
    Ok(())
}

fn permute(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let op = bits(raw, 14, 12);
    let esize = 8 << bits(raw, 23, 22);
    let q = bit(raw, 30);
    if op & 3 == 0 || (esize == 64 && !q) {
        return cpu.stop(Exit::Undefined(raw));
    }
    let datasize = if q { 128 } else { 64 };
    let elements = (datasize / esize) as usize;
    let part = (op >> 2) as usize;
    let (a, b) = (cpu.vreg(rn(raw)), cpu.vreg(rm(raw)));
    let mut r = 0u128;
    for k in 0..elements {
        let x = match op & 3 {
            // UZP: even (part 0) or odd (part 1) elements of the concatenation b:a.
            1 => {
                let src = 2 * k + part;
                if src < elements {
                    lane(a, esize, src)
                } else {
                    lane(b, esize, src - elements)
                }
            }
            // TRN: pairs of (a[2p+part], b[2p+part]).
            2 => {
                let p = k / 2;
                if k % 2 == 0 {
                    lane(a, esize, 2 * p + part)
                } else {
                    lane(b, esize, 2 * p + part)
                }
            }
            // ZIP: interleave the low (part 0) or high (part 1) halves.
            _ => {
                let base = part * elements / 2;
                if k % 2 == 0 {
                    lane(a, esize, base + k / 2)
                } else {
                    lane(b, esize, base + k / 2)
                }
            }
        };
        r = with_lane(r, esize, k, x);
    }
    cpu.set_vreg(rd(raw), r);
    Ok(())
}
