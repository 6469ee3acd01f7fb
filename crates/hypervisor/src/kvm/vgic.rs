//! The in-kernel vGICv3 behind the board's [`KernelIrqchip`]: device lines
//! go to irqfds (`kvm/irqfd.rs`; `KVM_IRQ_LINE` where KVM refuses them);
//! saving and restoring move the controller's state
//! between KVM's register interface (the device attribute groups) and the
//! board's GIC model, register by register in the architecture's terms —
//! so a state saved under KVM has the same form as one saved by the
//! software CPU, and either restores under either.

use std::sync::Arc;

use board::gic::{mpidr_of, CpuBits, Gic, IrqBits};
use board::KernelIrqchip;
use kvm_bindings::{
    kvm_device_attr, KVM_ARM_IRQ_TYPE_SHIFT, KVM_ARM_IRQ_TYPE_SPI,
    KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
    KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
};

use super::irqfd::SpiLines;
use super::KvmShared;

/// Distributor and redistributor register offsets (the redistributor's SGI
/// frame sits 64 KiB above RD_base in KVM's interface, as in the map).
mod off {
    pub const CTLR: u64 = 0x0;
    pub const IGROUPR: u64 = 0x080;
    pub const ISENABLER: u64 = 0x100;
    pub const ICENABLER: u64 = 0x180;
    pub const ISPENDR: u64 = 0x200;
    pub const ICPENDR: u64 = 0x280;
    pub const ISACTIVER: u64 = 0x300;
    pub const ICACTIVER: u64 = 0x380;
    pub const IPRIORITYR: u64 = 0x400;
    pub const ICFGR: u64 = 0xc00;
    pub const IROUTER: u64 = 0x6000;
    pub const SGI_FRAME: u64 = 0x1_0000;
    pub const WAKER: u64 = 0x14;
}

/// ICC_* registers by (op0, op1, CRn, CRm, op2), as KVM's CPU_SYSREGS group names them.
mod icc {
    const fn key(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
        op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
    }
    pub const PMR: u64 = key(3, 0, 4, 6, 0);
    pub const BPR0: u64 = key(3, 0, 12, 8, 3);
    pub const AP1R0: u64 = key(3, 0, 12, 9, 0);
    pub const BPR1: u64 = key(3, 0, 12, 12, 3);
    pub const CTLR: u64 = key(3, 0, 12, 12, 4);
    pub const IGRPEN0: u64 = key(3, 0, 12, 12, 6);
    pub const IGRPEN1: u64 = key(3, 0, 12, 12, 7);
}

/// ICC_CTLR_EL1.EOImode.
const EOI_MODE: u64 = 1 << 1;
/// GICR_WAKER.ProcessorSleep.
const PROCESSOR_SLEEP: u32 = 1 << 1;

/// The board's view of KVM's vGIC.
pub(crate) struct Vgic {
    pub(crate) vm: Arc<KvmShared>,
    /// The SPIs as irqfds; `None` where KVM refused them (lines are then
    /// `KVM_IRQ_LINE` calls).
    pub(crate) lines: Option<SpiLines>,
}

/// KVM's name for CPU `cpu` in attribute numbers: its affinity in bits 63..32.
fn cpu_attr(cpu: usize) -> u64 {
    let m = mpidr_of(cpu);
    ((m >> 8 & 0xff_0000_0000) >> 8 | m & 0xff_ffff) << 32
}

/// Where a bank of 32 interrupts' registers is: the distributor's
/// (`cpu` None) or CPU `cpu`'s redistributor SGI frame, as (attribute
/// group, attribute prefix, frame offset).
fn bank(cpu: Option<usize>) -> (u32, u64, u64) {
    match cpu {
        None => (KVM_DEV_ARM_VGIC_GRP_DIST_REGS, 0, 0),
        Some(c) => (
            KVM_DEV_ARM_VGIC_GRP_REDIST_REGS,
            cpu_attr(c),
            off::SGI_FRAME,
        ),
    }
}

impl Vgic {
    fn access(&self, group: u32, attr: u64, data: *mut u8, write: bool) -> Result<(), String> {
        let mut a = kvm_device_attr {
            group,
            attr,
            addr: data as u64,
            flags: 0,
        };
        let r = if write {
            self.vm.gic.set_device_attr(&a)
        } else {
            // SAFETY: `data` points to a buffer as large as the group's
            // registers (u32 for register groups, u64 for CPU sysregs).
            unsafe { self.vm.gic.get_device_attr(&mut a) }
        };
        r.map_err(|e| format!("vGIC register {group}/{attr:#x}: {e}"))
    }

    fn read32(&self, group: u32, attr: u64) -> Result<u32, String> {
        let mut v = 0u32;
        self.access(group, attr, &mut v as *mut u32 as *mut u8, false)?;
        Ok(v)
    }

    fn write32(&self, group: u32, attr: u64, mut v: u32) -> Result<(), String> {
        self.access(group, attr, &mut v as *mut u32 as *mut u8, true)
    }

    fn read64(&self, group: u32, attr: u64) -> Result<u64, String> {
        let mut v = 0u64;
        self.access(group, attr, &mut v as *mut u64 as *mut u8, false)?;
        Ok(v)
    }

    fn write64(&self, group: u32, attr: u64, mut v: u64) -> Result<(), String> {
        self.access(group, attr, &mut v as *mut u64 as *mut u8, true)
    }

    /// Reads the bits of interrupts `base..base + count` (at most 32, in
    /// one register bank) from the distributor (`cpu` None) or CPU
    /// `cpu`'s redistributor, into `gic`.
    fn read_bank(
        &self,
        gic: &mut Gic,
        cpu: Option<usize>,
        base: u32,
        count: u32,
    ) -> Result<(), String> {
        let (group, prefix, frame) = bank(cpu);
        let word = |reg: u64| prefix | (frame + reg + (base as u64 / 32) * 4);
        let group1 = self.read32(group, word(off::IGROUPR))?;
        let enabled = self.read32(group, word(off::ISENABLER))?;
        let pending = self.read32(group, word(off::ISPENDR))?;
        let active = self.read32(group, word(off::ISACTIVER))?;
        let levels = match cpu {
            // Line levels of the SPIs: the devices' lines (KVM's may still
            // be high for a line lowered before the guest's EOI).
            None => match &self.lines {
                Some(lines) => (0..count).fold(0u32, |w, i| {
                    w | (lines.level((base + i - 32) as usize) as u32) << i
                }),
                None => self.read32(KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO, base as u64)?,
            },
            // Private lines are the timers' (recomputed from the timers).
            Some(_) => 0,
        };
        for i in 0..count {
            let intid = base + i;
            let cfg = self.read32(
                group,
                prefix | (frame + off::ICFGR + (intid as u64 / 16) * 4),
            )?;
            let prio = self.read32(
                group,
                prefix | (frame + off::IPRIORITYR + (intid as u64 & !3)),
            )?;
            let bit = |w: u32| w >> i & 1 != 0;
            let bits = IrqBits {
                enabled: bit(enabled),
                latched: bit(pending),
                level: bit(levels),
                active: bit(active),
                edge: cfg >> ((intid % 16) * 2 + 1) & 1 != 0,
                group1: bit(group1),
                priority: (prio >> ((intid % 4) * 8)) as u8,
            };
            gic.set_irq_bits(cpu.unwrap_or(0), intid, bits);
        }
        Ok(())
    }

    /// Writes the bits of interrupts `base..base + count` from `gic` into
    /// the distributor or CPU `cpu`'s redistributor.
    fn write_bank(
        &self,
        gic: &Gic,
        cpu: Option<usize>,
        base: u32,
        count: u32,
    ) -> Result<(), String> {
        let (group, prefix, frame) = bank(cpu);
        let irqs: Vec<IrqBits> = (0..count)
            .map(|i| gic.irq_bits(cpu.unwrap_or(0), base + i).unwrap_or_default())
            .collect();
        let mask = |f: fn(&IrqBits) -> bool| {
            irqs.iter()
                .enumerate()
                .fold(0u32, |w, (i, b)| w | (f(b) as u32) << i)
        };
        // Configuration and priorities first: what pending means depends on them.
        for (i, b) in irqs.iter().enumerate() {
            let intid = base as u64 + i as u64;
            let cfg_at = prefix | (frame + off::ICFGR + (intid / 16) * 4);
            let shift = (intid % 16) * 2 + 1;
            let cfg = self.read32(group, cfg_at)? & !(1 << shift) | (b.edge as u32) << shift;
            // SGIs are always edge-triggered (their ICFGR bits are read-only).
            if intid >= 16 {
                self.write32(group, cfg_at, cfg)?;
            }
            let prio_at = prefix | (frame + off::IPRIORITYR + (intid & !3));
            let shift = (intid % 4) * 8;
            let prio =
                self.read32(group, prio_at)? & !(0xff << shift) | (b.priority as u32) << shift;
            self.write32(group, prio_at, prio)?;
        }
        let word = |reg: u64| prefix | (frame + reg + (base as u64 / 32) * 4);
        let set_clear = |set: u64, clear: u64, bits: u32| -> Result<(), String> {
            self.write32(group, word(clear), !bits)?;
            self.write32(group, word(set), bits)
        };
        self.write32(group, word(off::IGROUPR), mask(|b| b.group1))?;
        set_clear(off::ISENABLER, off::ICENABLER, mask(|b| b.enabled))?;
        set_clear(off::ISPENDR, off::ICPENDR, mask(|b| b.latched))?;
        set_clear(off::ISACTIVER, off::ICACTIVER, mask(|b| b.active))?;
        if cpu.is_none() {
            self.write32(
                KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO,
                base as u64,
                mask(|b| b.level),
            )?;
            if let Some(lines) = &self.lines {
                for (i, b) in irqs.iter().enumerate() {
                    lines.restore_level((base - 32) as usize + i, b.level);
                }
            }
        }
        Ok(())
    }
}

impl KernelIrqchip for Vgic {
    fn set_line(&self, intid: u32, level: bool) {
        if let Some(lines) = &self.lines {
            return lines.set(intid.saturating_sub(32) as usize, level);
        }
        let irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | intid;
        // Fails only for an INTID the vGIC does not have: the board's fixed
        // layout rules that out.
        let _ = self.vm.vm.set_irq_line(irq, level);
    }

    fn save(&self, gic: &mut Gic) -> Result<(), String> {
        let ctlr = self.read32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, off::CTLR)?;
        gic.set_group_enables(ctlr);
        for cpu in 0..gic.num_cpus() {
            self.read_bank(gic, Some(cpu), 0, 32)?;
            let sys = |reg| self.read64(KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, cpu_attr(cpu) | reg);
            let waker =
                self.read32(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, cpu_attr(cpu) | off::WAKER)?;
            gic.set_cpu_bits(
                cpu,
                CpuBits {
                    asleep: waker & PROCESSOR_SLEEP != 0,
                    pmr: sys(icc::PMR)? as u8,
                    bpr0: sys(icc::BPR0)? as u8,
                    bpr1: sys(icc::BPR1)? as u8,
                    eoi_mode: sys(icc::CTLR)? & EOI_MODE != 0,
                    grp0_enabled: sys(icc::IGRPEN0)? & 1 != 0,
                    grp1_enabled: sys(icc::IGRPEN1)? & 1 != 0,
                    active_priorities: sys(icc::AP1R0)? as u32,
                },
            );
        }
        let spis = gic.num_spis() as u32;
        for base in (32..32 + spis).step_by(32) {
            self.read_bank(gic, None, base, 32)?;
        }
        for spi in 0..spis as u64 {
            let at = off::IROUTER + (32 + spi) * 8;
            let lo = self.read32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, at)? as u64;
            let hi = self.read32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, at + 4)? as u64;
            gic.set_route(spi as usize, hi << 32 | lo);
        }
        Ok(())
    }

    fn counter_hz(&self) -> u64 {
        let hz: u64;
        // SAFETY: CNTFRQ_EL0 is readable at EL0 (Linux allows it); no side effects.
        unsafe { std::arch::asm!("mrs {}, cntfrq_el0", out(reg) hz, options(nomem, nostack)) };
        hz
    }

    fn restore(&self, gic: &Gic) -> Result<(), String> {
        // The distributor's enables first: KVM queues an interrupt made
        // pending (a latch, an asserted line) to its vCPU only while its
        // group is enabled, and enabling it later does not look again — a
        // device line high at the snapshot would never be delivered.
        let ctlr =
            self.read32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, off::CTLR)? & !3 | gic.group_enables();
        self.write32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, off::CTLR, ctlr)?;
        for cpu in 0..gic.num_cpus() {
            let b = gic.cpu_bits(cpu);
            let rd = cpu_attr(cpu);
            let waker = if b.asleep { PROCESSOR_SLEEP } else { 0 };
            self.write32(KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, rd | off::WAKER, waker)?;
            self.write_bank(gic, Some(cpu), 0, 32)?;
            let group = KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS;
            // KVM checks ICC_CTLR's read-only fields: change EOImode only.
            let ctlr = self.read64(group, rd | icc::CTLR)? & !EOI_MODE
                | if b.eoi_mode { EOI_MODE } else { 0 };
            self.write64(group, rd | icc::CTLR, ctlr)?;
            self.write64(group, rd | icc::PMR, b.pmr as u64)?;
            self.write64(group, rd | icc::BPR0, b.bpr0 as u64)?;
            self.write64(group, rd | icc::BPR1, b.bpr1 as u64)?;
            self.write64(group, rd | icc::AP1R0, b.active_priorities as u64)?;
            self.write64(group, rd | icc::IGRPEN0, b.grp0_enabled as u64)?;
            self.write64(group, rd | icc::IGRPEN1, b.grp1_enabled as u64)?;
        }
        let spis = gic.num_spis() as u32;
        for spi in 0..spis as u64 {
            let at = off::IROUTER + (32 + spi) * 8;
            let route = gic.route(spi as usize);
            self.write32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, at, route as u32)?;
            self.write32(KVM_DEV_ARM_VGIC_GRP_DIST_REGS, at + 4, (route >> 32) as u32)?;
        }
        for base in (32..32 + spis).step_by(32) {
            self.write_bank(gic, None, base, 32)?;
        }
        Ok(())
    }
}
