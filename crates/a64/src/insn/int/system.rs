//! System: exception generation (SVC, HVC, SMC, BRK, HLT), hints, barriers,
//! system register access (MRS, MSR) and cache maintenance (SYS).
//!
//! Only the EL0 view exists so far; the registers live in [`read_sysreg`] and
//! [`write_sysreg`], keyed by their (op0, op1, CRn, CRm, op2) encoding.

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;
use crate::system::regs::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    enc_branch!("11010100 000 iiiiiiiiiiiiiiii 000 01", "SVC", "system", svc),
    enc_branch!("11010100 000 iiiiiiiiiiiiiiii 000 10", "HVC", "system", hvc),
    enc_branch!("11010100 000 iiiiiiiiiiiiiiii 000 11", "SMC", "system", smc),
    enc_branch!("11010100 001 iiiiiiiiiiiiiiii 000 00", "BRK", "system", brk),
    enc_branch!("11010100 010 iiiiiiiiiiiiiiii 000 00", "HLT", "system", hlt),
    enc!(
        "11010101 00000011 0010 mmmm ooo 11111",
        "HINT (NOP, YIELD, WFE, SEV, SEVL, ...)",
        "system",
        nop,
    ),
    enc!(
        "11010101 00000011 0010 0000 011 11111",
        "WFI",
        "system",
        wfi,
    ),
    enc!(
        "11010101 00000011 0010 0000 010 11111",
        "WFE",
        "system",
        wfe,
    ),
    enc!(
        "11010101 00000011 0010 0000 100 11111",
        "SEV",
        "system",
        sev,
    ),
    enc!(
        "11010101 00000011 0010 0000 101 11111",
        "SEVL",
        "system",
        sevl,
    ),
    enc_branch!(
        "1101010100 000 ppp 0100 mmmm qqq 11111",
        "MSR (immediate: DAIFSet, DAIFClr, SPSel, PAN)",
        "system",
        msr_imm,
    ),
    enc_branch!(
        "1101011 0100 11111 000000 11111 00000",
        "ERET",
        "system",
        eret,
    ),
    enc!(
        "11010101 00000011 0011 mmmm 010 11111",
        "CLREX",
        "system",
        clrex,
    ),
    enc!(
        "11010101 00000011 0011 mmmm 10o 11111",
        "DSB/DMB",
        "system",
        barrier,
    ),
    enc_branch!(
        "11010101 00000011 0011 mmmm 110 11111",
        "ISB",
        "system",
        isb,
    ),
    enc!(
        "1101010100 0 01 ppp nnnn mmmm ooo ttttt",
        "SYS (DC ZVA, DC CVAU/CVAC/CIVAC, IC IVAU)",
        "system",
        sys,
    ),
    enc!(
        "1101010100 1 1 o ppp nnnn mmmm qqq ttttt",
        "MRS",
        "system",
        mrs,
    ),
    enc_branch!(
        "1101010100 0 1 o ppp nnnn mmmm qqq ttttt",
        "MSR (register)",
        "system",
        msr,
    ),
];

fn svc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.stop(Exit::Svc(bits(i.raw, 20, 5) as u16))
}

fn hvc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.stop(Exit::Hvc(bits(i.raw, 20, 5) as u16))
}

fn smc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.stop(Exit::Smc(bits(i.raw, 20, 5) as u16))
}

fn brk(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.stop(Exit::Brk(bits(i.raw, 20, 5) as u16))
}

fn hlt(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.stop(Exit::Hlt(bits(i.raw, 20, 5) as u16))
}

fn nop(_cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> Step {
    Ok(())
}

/// WFI: at the system level, the embedder sleeps until an interrupt is
/// pending (or returns at once if one already is); a no-op in user mode.
fn wfi(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> Step {
    if !cpu.system {
        return Ok(());
    }
    if cpu.sys.el == 0 && cpu.sys.sctlr_el1 & crate::system::sctlr::NTWI == 0 {
        return cpu.stop(Exit::WfxTrap { wfe: false });
    }
    if cpu.signals.load() & (crate::Signals::IRQ | crate::Signals::FIQ) != 0 {
        return Ok(());
    }
    cpu.stop(Exit::Wfi)
}

/// WFE: completes at once if the event register was set (clearing it);
/// otherwise, at the system level, waits for an event — SEV from another
/// CPU, an interrupt, a store by another CPU to the granule the exclusive
/// monitor is armed for — for a while (see [`Cpu::wait_for_event`]); a
/// spurious wake-up is always allowed, and user mode never waits. EL0
/// traps when SCTLR_EL1.nTWE is clear.
fn wfe(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    if cpu.system && cpu.sys.el == 0 && cpu.sys.sctlr_el1 & crate::system::sctlr::NTWE == 0 {
        return cpu.stop(Exit::WfxTrap { wfe: true });
    }
    if cpu.signals.take_event() || !cpu.system {
        return Ok(());
    }
    if cpu.wait_for_event() {
        Ok(())
    } else {
        // The timer deadline came: the embedder looks at the timers, and
        // the WFE runs again after (an interrupt taken first returns to it).
        cpu.pc = i.pc;
        cpu.stop(Exit::Budget)
    }
}

/// SEV: sets the event register of every CPU of the machine.
fn sev(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> Step {
    let domain = cpu.domain.clone();
    domain.send_event(&cpu.signals);
    Ok(())
}

/// SEVL: sets this CPU's event register.
fn sevl(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> Step {
    cpu.signals.send_event();
    Ok(())
}

/// DMB and DSB. On an x86-64 host (TSO) loads are kept in order with
/// loads and later stores, and stores with stores, so the LD and ST forms
/// need nothing; the full forms also order earlier stores before later
/// loads, the one reordering TSO makes: a host fence. A DSB also waits
/// until the TLB maintenance this CPU broadcast is done on every CPU.
fn barrier(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    if bits(i.raw, 9, 8) == 3 {
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }
    let dsb = !bit(i.raw, 5);
    if dsb && !cpu.tlb_pending.is_empty() {
        cpu.complete_tlb_broadcasts();
    }
    Ok(())
}

fn msr_imm(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    if !cpu.system {
        return cpu.stop(Exit::Undefined(i.raw));
    }
    let (op1, crm, op2) = (bits(i.raw, 18, 16), bits(i.raw, 11, 8), bits(i.raw, 7, 5));
    cpu.msr_immediate(op1, op2, crm, i.raw)?;
    cpu.pc = i.pc.wrapping_add(4);
    Ok(())
}

fn eret(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    if !cpu.system || cpu.sys.el == 0 {
        return cpu.stop(Exit::Undefined(i.raw));
    }
    cpu.eret();
    Ok(())
}

fn clrex(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Insn) -> Step {
    cpu.clear_exclusive();
    Ok(())
}

fn isb(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.pc = i.pc.wrapping_add(4);
    Ok(())
}

/// Reads a system register as EL0 sees it; `None` if EL0 may not read it.
pub(crate) fn read_sysreg(cpu: &Cpu, reg: u32) -> Option<u64> {
    Some(match reg {
        NZCV => cpu.nzcv as u64,
        FPCR => cpu.fpcr as u64,
        FPSR => cpu.fpsr as u64,
        TPIDR_EL0 => cpu.tpidr_el0,
        TPIDRRO_EL0 => cpu.tpidrro_el0,
        // Cortex-A72-like: 64-byte lines, VIPT I-cache; IDC/DIC clear.
        CTR_EL0 => 0x8444_c004,
        DCZID_EL0 => 4,
        CNTFRQ_EL0 => COUNTER_HZ,
        CNTVCT_EL0 | CNTPCT_EL0 => cpu.counter(),
        // Cortex-A72 r0p3, as Linux reports it to EL0.
        MIDR_EL1 => 0x410f_d083,
        MPIDR_EL1 => 0x8000_0000,
        // EL0 and EL1 AArch64-only; FP and AdvSIMD implemented (field value 0).
        ID_AA64PFR0_EL1 => 0x11,
        // CRC32 (bits 19:16 = 1) and LSE atomics (bits 23:20 = 2).
        ID_AA64ISAR0_EL1 => {
            let crc = if cpu.features.crc32 { 1 << 16 } else { 0 };
            let lse = if cpu.features.lse { 2 << 20 } else { 0 };
            crc | lse
        }
        // The rest of the ID space Linux exposes to EL0 reads as zero (nothing optional).
        r if r >> 7 == key(3, 0, 0, 0, 0) >> 7 && (r >> 3 & 0xf) != 0
            || r == key(3, 0, 0, 0, 6) =>
        {
            0
        }
        _ => return None,
    })
}

/// Writes a system register from EL0; `false` if EL0 may not write it.
pub(crate) fn write_sysreg(cpu: &mut Cpu, reg: u32, value: u64) -> bool {
    match reg {
        NZCV => cpu.nzcv = value as u32 & 0xf000_0000,
        FPCR => cpu.fpcr = value as u32 & FPCR_MASK,
        FPSR => cpu.fpsr = value as u32 & FPSR_MASK,
        TPIDR_EL0 => cpu.tpidr_el0 = value,
        _ => return false,
    }
    true
}

fn mrs(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    if cpu.system {
        let v = cpu.system_mrs(bus, bits(i.raw, 20, 5), i.raw)?;
        cpu.set_xreg(rd(i.raw), v);
        return Ok(());
    }
    match read_sysreg(cpu, bits(i.raw, 20, 5)) {
        Some(v) => {
            cpu.set_xreg(rd(i.raw), v);
            Ok(())
        }
        None => cpu.stop(Exit::Undefined(i.raw)),
    }
}

/// MSR ends its block: a later level of the CPU will let it change translation state.
fn msr(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    let v = cpu.xreg(rd(i.raw));
    if cpu.system {
        cpu.system_msr(bus, bits(i.raw, 20, 5), v, i.raw)?;
        cpu.pc = i.pc.wrapping_add(4);
        return Ok(());
    }
    if write_sysreg(cpu, bits(i.raw, 20, 5), v) {
        cpu.pc = i.pc.wrapping_add(4);
        Ok(())
    } else {
        cpu.stop(Exit::Undefined(i.raw))
    }
}

const DC_ZVA: u32 = key(1, 3, 7, 4, 1);
const DC_CVAC: u32 = key(1, 3, 7, 10, 1);
const DC_CVAU: u32 = key(1, 3, 7, 11, 1);
const DC_CIVAC: u32 = key(1, 3, 7, 14, 1);
const IC_IVAU: u32 = key(1, 3, 7, 5, 1);
const DC_CVAP: u32 = key(1, 3, 7, 12, 1);
const DC_CVADP: u32 = key(1, 3, 7, 13, 1);

fn sys(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Insn) -> Step {
    if cpu.system && cpu.system_sys(bus, bits(i.raw, 20, 5), cpu.xreg(rd(i.raw)), i.raw)? {
        return Ok(());
    }
    match bits(i.raw, 20, 5) {
        DC_ZVA => {
            let base = cpu.xreg(rd(i.raw)) & !63;
            for k in 0..4 {
                if let Err(stop) = cpu.write::<u128>(bus, base + 16 * k, 0) {
                    // Any address in the block may be reported; report the block's start.
                    cpu.exit = Exit::DataAbort {
                        addr: cpu.untag(base),
                        write: true,
                    };
                    return Err(stop);
                }
            }
            Ok(())
        }
        // IC IVAU: code written behind the CPU's back (device DMA) or by
        // another CPU is dropped here, by every CPU of the machine (the
        // architecture broadcasts it); this CPU's own stores to its code
        // pages are tracked anyway.
        IC_IVAU => {
            let va = cpu.xreg(rd(i.raw));
            if let Ok(host) = cpu.host_page_of(bus, va) {
                cpu.code_changed(host);
            }
            Ok(())
        }
        // Caches are coherent here.
        DC_CVAC | DC_CVAU | DC_CIVAC | DC_CVAP | DC_CVADP => Ok(()),
        _ => cpu.stop(Exit::Undefined(i.raw)),
    }
}
