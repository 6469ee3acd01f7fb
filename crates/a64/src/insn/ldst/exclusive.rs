//! Exclusive and ordered accesses: LDXR/STXR (and acquire/release forms,
//! pairs), LDAR/STLR, and the LSE compare-and-swap CAS/CASP.
//!
//! A store-exclusive succeeds only while the monitor is armed for the same
//! address and size and memory still holds the value the load-exclusive saw:
//! it is performed as a host compare-and-swap of that value, so it stays
//! correct when several vCPU threads share guest RAM. A store-exclusive whose
//! monitor check fails makes no memory access at all (so it cannot fault).

use super::atomic::{host_cas, host_cas128};
use super::single::load_zx;
use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc!(
        "ss 001000 0 l 0 sssss p uuuuu nnnnn ttttt",
        "LDXR/LDAXR/STXR/STLXR",
        "ldst-excl",
        exclusive,
    ),
    enc!(
        "1z 001000 0 l 1 sssss p uuuuu nnnnn ttttt",
        "LDXP/LDAXP/STXP/STLXP",
        "ldst-excl",
        exclusive_pair,
    ),
    enc!(
        "0z 001000 0 l 1 sssss p 11111 nnnnn ttttt",
        "CASP/CASPA/CASPL/CASPAL",
        "atomic",
        casp,
    ),
    enc!(
        "ss 001000 1 l 0 sssss p 11111 nnnnn ttttt",
        "LDAR/STLR",
        "ldst-excl",
        ordered,
    ),
    enc!(
        "ss 001000 1 l 1 sssss p 11111 nnnnn ttttt",
        "CAS/CASA/CASL/CASAL",
        "atomic",
        cas,
    ),
];

fn check_aligned(cpu: &mut Cpu, addr: u64, size: u64) -> Step {
    if addr & (size - 1) != 0 {
        let addr = cpu.untag(addr);
        return cpu.stop(Exit::Alignment { addr });
    }
    Ok(())
}

fn exclusive(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let size = 1u32 << bits(raw, 31, 30);
    let addr = cpu.xreg_sp(rn(raw));
    if bit(raw, 22) {
        check_aligned(cpu, addr, size as u64)?;
        let v = load_zx(cpu, bus, size, addr)?;
        cpu.monitor.addr = Some(addr);
        cpu.monitor.size = size as u8;
        cpu.monitor.value = v as u128;
        cpu.monitor_host = cpu.watchable_host_addr(addr);
        cpu.set_xreg(rd(raw), v);
        return Ok(());
    }
    let new = cpu.xreg(rd(raw));
    let armed = cpu.monitor.addr == Some(addr) && cpu.monitor.size == size as u8;
    let ok = if armed {
        let p = cpu.rmw_ptr(bus, addr, size as u64)?;
        let expected = cpu.monitor.value as u64;
        // SAFETY: rmw_ptr returned a live, aligned, writable host pointer.
        unsafe { host_cas(p, size, expected, new) == expected }
    } else {
        false
    };
    cpu.monitor.addr = None;
    cpu.set_xreg(rm(raw), !ok as u64);
    Ok(())
}

fn exclusive_pair(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let wide = bit(raw, 30);
    let total: u64 = if wide { 16 } else { 8 };
    let addr = cpu.xreg_sp(rn(raw));
    let (t, t2) = (rd(raw), ra(raw));
    if bit(raw, 22) {
        check_aligned(cpu, addr, total)?;
        let (a, b, value) = if wide {
            let v = cpu.read::<u128>(bus, addr)?;
            (v as u64, (v >> 64) as u64, v)
        } else {
            let v = cpu.read::<u64>(bus, addr)?;
            (v & 0xffff_ffff, v >> 32, v as u128)
        };
        cpu.monitor.addr = Some(addr);
        cpu.monitor.size = total as u8;
        cpu.monitor.value = value;
        cpu.monitor_host = cpu.watchable_host_addr(addr);
        cpu.set_xreg(t, a);
        cpu.set_xreg(t2, b);
        return Ok(());
    }
    let (a, b) = (cpu.xreg(t), cpu.xreg(t2));
    let armed = cpu.monitor.addr == Some(addr) && cpu.monitor.size == total as u8;
    let ok = if armed {
        let p = cpu.rmw_ptr(bus, addr, total)?;
        let expected = cpu.monitor.value;
        // SAFETY: rmw_ptr returned a live, aligned, writable host pointer.
        unsafe {
            if wide {
                host_cas128(p, expected, (b as u128) << 64 | a as u128) == expected
            } else {
                let new = (b & 0xffff_ffff) << 32 | (a & 0xffff_ffff);
                host_cas(p, 8, expected as u64, new) == expected as u64
            }
        }
    } else {
        false
    };
    cpu.monitor.addr = None;
    cpu.set_xreg(rm(raw), !ok as u64);
    Ok(())
}

fn ordered(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    if !bit(raw, 15) {
        // LDLAR/STLLR need FEAT_LOR, which this CPU does not have.
        return cpu.stop(Exit::Undefined(raw));
    }
    let size = 1u32 << bits(raw, 31, 30);
    let addr = cpu.xreg_sp(rn(raw));
    check_aligned(cpu, addr, size as u64)?;
    if bit(raw, 22) {
        let v = load_zx(cpu, bus, size, addr)?;
        cpu.set_xreg(rd(raw), v);
        Ok(())
    } else {
        let v = cpu.xreg(rd(raw));
        match size {
            1 => cpu.write::<u8>(bus, addr, v as u8),
            2 => cpu.write::<u16>(bus, addr, v as u16),
            4 => cpu.write::<u32>(bus, addr, v as u32),
            _ => cpu.write::<u64>(bus, addr, v),
        }?;
        // A store-release is ordered before a later load-acquire (RCsc);
        // x86-64 may let a later load pass an earlier store: a host fence.
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

fn cas(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    if !cpu.features.lse {
        return cpu.stop(Exit::Undefined(raw));
    }
    let size = 1u32 << bits(raw, 31, 30);
    let addr = cpu.xreg_sp(rn(raw));
    let p = cpu.rmw_ptr(bus, addr, size as u64)?;
    let mask = if size == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    };
    let expected = cpu.xreg(rm(raw)) & mask;
    let new = cpu.xreg(rd(raw)) & mask;
    // SAFETY: rmw_ptr returned a live, aligned, writable host pointer.
    let old = unsafe { host_cas(p, size, expected, new) };
    cpu.set_xreg(rm(raw), old);
    Ok(())
}

fn casp(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let raw = i.raw;
    let (s, t) = (rm(raw), rd(raw));
    if !cpu.features.lse || s & 1 != 0 || t & 1 != 0 {
        return cpu.stop(Exit::Undefined(raw));
    }
    let wide = bit(raw, 30);
    let addr = cpu.xreg_sp(rn(raw));
    let p = cpu.rmw_ptr(bus, addr, if wide { 16 } else { 8 })?;
    let (s_lo, s_hi) = (cpu.xreg(s), cpu.xreg(s + 1));
    let (t_lo, t_hi) = (cpu.xreg(t), cpu.xreg(t + 1));
    let (old_lo, old_hi) = if wide {
        let expected = (s_hi as u128) << 64 | s_lo as u128;
        let new = (t_hi as u128) << 64 | t_lo as u128;
        // SAFETY: rmw_ptr returned a live, 16-byte aligned, writable host pointer.
        let old = unsafe { host_cas128(p, expected, new) };
        (old as u64, (old >> 64) as u64)
    } else {
        let expected = (s_hi & 0xffff_ffff) << 32 | (s_lo & 0xffff_ffff);
        let new = (t_hi & 0xffff_ffff) << 32 | (t_lo & 0xffff_ffff);
        // SAFETY: as above, 8-byte aligned.
        let old = unsafe { host_cas(p, 8, expected, new) };
        (old & 0xffff_ffff, old >> 32)
    };
    cpu.set_xreg(s, old_lo);
    cpu.set_xreg(s + 1, old_hi);
    Ok(())
}
