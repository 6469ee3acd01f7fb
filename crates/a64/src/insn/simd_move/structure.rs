//! AdvSIMD structure loads and stores: LD1-LD4/ST1-ST4 (multiple structures),
//! the single-lane forms and LD1R-LD4R, with no offset or post-index.
//! Loads read everything into temporaries first, so a fault changes no register.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::insn::lanes::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "0 q 0011000 l 000000 oooo zz nnnnn ttttt",
        "LD1-LD4/ST1-ST4 (multiple structures)",
        "simd-ldst",
        multiple,
    ),
    enc!(
        "0 q 0011001 l 0 mmmmm oooo zz nnnnn ttttt",
        "LD1-LD4/ST1-ST4 (multiple structures, post-index)",
        "simd-ldst",
        multiple,
    ),
    enc!(
        "0 q 0011010 l r 00000 ooo s zz nnnnn ttttt",
        "LD1-LD4/ST1-ST4 (single structure), LD1R-LD4R",
        "simd-ldst",
        single,
    ),
    enc!(
        "0 q 0011011 l r mmmmm ooo s zz nnnnn ttttt",
        "LD1-LD4/ST1-ST4 (single structure, post-index), LD1R-LD4R",
        "simd-ldst",
        single,
    ),
];

fn load_elem(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    addr: u64,
    ebytes: u32,
) -> Result<u64, crate::cpu::Stop> {
    Ok(match ebytes {
        1 => cpu.read::<u8>(bus, addr)? as u64,
        2 => cpu.read::<u16>(bus, addr)? as u64,
        4 => cpu.read::<u32>(bus, addr)? as u64,
        _ => cpu.read::<u64>(bus, addr)?,
    })
}

fn store_elem(cpu: &mut Cpu, bus: &mut dyn Bus, addr: u64, ebytes: u32, v: u64) -> Step {
    match ebytes {
        1 => cpu.write::<u8>(bus, addr, v as u8),
        2 => cpu.write::<u16>(bus, addr, v as u16),
        4 => cpu.write::<u32>(bus, addr, v as u32),
        _ => cpu.write::<u64>(bus, addr, v),
    }
}

/// Applies post-index writeback of `total` bytes (or Xm) when the encoding has it.
fn writeback(cpu: &mut Cpu, raw: u32, base: u64, total: u64) {
    if bit(raw, 23) {
        let m = rm(raw);
        let off = if m == 31 { total } else { cpu.xreg(m) };
        cpu.set_xreg_sp(rn(raw), base.wrapping_add(off));
    }
}

fn multiple(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let (rpt, selem) = match bits(raw, 15, 12) {
        0b0000 => (1, 4),
        0b0010 => (4, 1),
        0b0100 => (1, 3),
        0b0110 => (3, 1),
        0b0111 => (1, 1),
        0b1000 => (1, 2),
        0b1010 => (2, 1),
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    let size = bits(raw, 11, 10);
    let q = bit(raw, 30);
    if size == 3 && !q && selem > 1 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let ebytes = 1u32 << size;
    let esize = 8 * ebytes;
    let elements = if q { 16 / ebytes } else { 8 / ebytes } as usize;
    let t = rd(raw);
    let base = cpu.xreg_sp(rn(raw));
    let load = bit(raw, 22);
    let mut addr = base;
    let mut regs = [0u128; 4];
    if !load {
        for (k, r) in regs.iter_mut().enumerate() {
            *r = cpu.vreg((t + k) % 32);
        }
    }
    for r in 0..rpt {
        for e in 0..elements {
            for s in 0..selem {
                let k = r + s;
                if load {
                    let v = load_elem(cpu, bus, addr, ebytes)?;
                    regs[k] = with_lane(regs[k], esize, e, v);
                } else {
                    store_elem(cpu, bus, addr, ebytes, lane(regs[k], esize, e))?;
                }
                addr = addr.wrapping_add(ebytes as u64);
            }
        }
    }
    if load {
        for (k, r) in regs.iter().enumerate().take(rpt * selem) {
            cpu.set_vreg((t + k) % 32, *r);
        }
    }
    writeback(cpu, raw, base, addr.wrapping_sub(base));
    Ok(())
}

fn single(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let opcode = bits(raw, 15, 13);
    let selem = (((opcode & 1) << 1) | bits(raw, 21, 21)) as usize + 1;
    let s = bits(raw, 12, 12);
    let size = bits(raw, 11, 10);
    let q = bits(raw, 30, 30);
    let load = bit(raw, 22);
    let (ebytes, index, replicate_all) = match opcode >> 1 {
        0 => (1, q << 3 | s << 2 | size, false),
        1 if size & 1 == 0 => (2, q << 2 | s << 1 | size >> 1, false),
        2 if size == 0 => (4, q << 1 | s, false),
        2 if size == 1 && s == 0 => (8, q, false),
        3 if load && s == 0 => (1 << size, 0, true),
        _ => return cpu.stop(Exit::Undefined(raw)),
    };
    let esize = 8 * ebytes;
    let t = rd(raw);
    let base = cpu.xreg_sp(rn(raw));
    let mut addr = base;
    if replicate_all {
        let mut vals = [0u64; 4];
        for v in vals.iter_mut().take(selem) {
            *v = load_elem(cpu, bus, addr, ebytes)?;
            addr = addr.wrapping_add(ebytes as u64);
        }
        let bytes = if q == 1 { 16 } else { 8 };
        for (k, v) in vals.iter().enumerate().take(selem) {
            cpu.set_vreg((t + k) % 32, keep_low(replicate(*v, esize), bytes));
        }
    } else if load {
        let mut vals = [0u64; 4];
        for v in vals.iter_mut().take(selem) {
            *v = load_elem(cpu, bus, addr, ebytes)?;
            addr = addr.wrapping_add(ebytes as u64);
        }
        for (k, v) in vals.iter().enumerate().take(selem) {
            let r = (t + k) % 32;
            let nv = with_lane(cpu.vreg(r), esize, index as usize, *v);
            cpu.set_vreg(r, nv);
        }
    } else {
        for k in 0..selem {
            let v = lane(cpu.vreg((t + k) % 32), esize, index as usize);
            store_elem(cpu, bus, addr, ebytes, v)?;
            addr = addr.wrapping_add(ebytes as u64);
        }
    }
    writeback(cpu, raw, base, addr.wrapping_sub(base));
    Ok(())
}
