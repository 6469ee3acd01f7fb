//! The GIC's state in the architecture's terms, for moving it to or from
//! another implementation of the same controller (KVM's in-kernel vGICv3):
//! each interrupt's bits, the SPI routes, GICD_CTLR and each CPU
//! interface's registers. Everything set here is vetted as a restored
//! state is.

use super::{CpuState, Gic, Irq, PRIORITY_MASK};

/// One interrupt, as its GICD/GICR register bits describe it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IrqBits {
    /// GIC[DR]_ISENABLER.
    pub enabled: bool,
    /// The pending latch (software- or edge-set), without the line.
    pub latched: bool,
    /// The input line's level (level-sensitive interrupts pend while high).
    pub level: bool,
    /// GIC[DR]_ISACTIVER.
    pub active: bool,
    /// GIC[DR]_ICFGR: edge-triggered.
    pub edge: bool,
    /// GIC[DR]_IGROUPR: Group 1.
    pub group1: bool,
    /// GIC[DR]_IPRIORITYR.
    pub priority: u8,
}

/// One CPU's redistributor and CPU interface registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuBits {
    /// GICR_WAKER.ProcessorSleep.
    pub asleep: bool,
    /// ICC_PMR_EL1.
    pub pmr: u8,
    /// ICC_BPR0_EL1.
    pub bpr0: u8,
    /// ICC_BPR1_EL1.
    pub bpr1: u8,
    /// ICC_CTLR_EL1.EOImode.
    pub eoi_mode: bool,
    /// ICC_IGRPEN0_EL1.
    pub grp0_enabled: bool,
    /// ICC_IGRPEN1_EL1.
    pub grp1_enabled: bool,
    /// ICC_AP1R0_EL1 (with 5 priority bits, the only active-priority register).
    pub active_priorities: u32,
}

impl From<Irq> for IrqBits {
    fn from(i: Irq) -> Self {
        IrqBits {
            enabled: i.enabled,
            latched: i.latched,
            level: i.level,
            active: i.active,
            edge: i.edge,
            group1: i.group1,
            priority: i.priority,
        }
    }
}

impl From<IrqBits> for Irq {
    fn from(b: IrqBits) -> Self {
        Irq {
            enabled: b.enabled,
            latched: b.latched,
            level: b.level,
            active: b.active,
            edge: b.edge,
            group1: b.group1,
            priority: b.priority & PRIORITY_MASK,
        }
    }
}

impl Gic {
    /// Number of SPIs.
    pub fn num_spis(&self) -> usize {
        self.spis.len()
    }

    /// Interrupt `intid` as seen by `cpu` (SGIs and PPIs are per CPU);
    /// `None` past the last SPI.
    pub fn irq_bits(&self, cpu: usize, intid: u32) -> Option<IrqBits> {
        self.irq(cpu, intid).map(|&i| i.into())
    }

    /// Sets interrupt `intid` of `cpu`; ignored past the last SPI.
    pub fn set_irq_bits(&mut self, cpu: usize, intid: u32, bits: IrqBits) {
        if let Some(i) = self.irq_mut(cpu, intid) {
            *i = bits.into();
        }
        self.kicks = u64::MAX;
    }

    /// GICD_IROUTER of SPI `spi` (0-based).
    pub fn route(&self, spi: usize) -> u64 {
        self.routes.get(spi).copied().unwrap_or(0)
    }

    /// Sets GICD_IROUTER of SPI `spi` (0-based).
    pub fn set_route(&mut self, spi: usize, route: u64) {
        if let Some(r) = self.routes.get_mut(spi) {
            *r = route & (0xff_00ff_ffff | 1 << 31);
        }
    }

    /// GICD_CTLR's group enables (bits 0 and 1).
    pub fn group_enables(&self) -> u32 {
        self.ctlr & (super::regs::CTLR_GRP0 | super::regs::CTLR_GRP1)
    }

    /// Sets GICD_CTLR's group enables (affinity routing and DS stay on).
    pub fn set_group_enables(&mut self, bits: u32) {
        let grp = super::regs::CTLR_GRP0 | super::regs::CTLR_GRP1;
        self.ctlr = self.ctlr & !grp | bits & grp;
        self.kicks = u64::MAX;
    }

    /// CPU `cpu`'s redistributor and CPU interface registers.
    pub fn cpu_bits(&self, cpu: usize) -> CpuBits {
        let c = &self.cpus[cpu.min(self.cpus.len() - 1)];
        CpuBits {
            asleep: c.asleep,
            pmr: c.pmr,
            bpr0: c.bpr0,
            bpr1: c.bpr1,
            eoi_mode: c.eoi_mode,
            grp0_enabled: c.grp0_enabled,
            grp1_enabled: c.grp1_enabled,
            active_priorities: c.active_priorities,
        }
    }

    /// Sets CPU `cpu`'s registers (values no guest could write are clamped).
    pub fn set_cpu_bits(&mut self, cpu: usize, b: CpuBits) {
        let last = self.cpus.len() - 1;
        let private = self.cpus[cpu.min(last)].private;
        self.cpus[cpu.min(last)] = CpuState {
            private,
            asleep: b.asleep,
            pmr: b.pmr & PRIORITY_MASK,
            bpr0: b.bpr0.clamp(2, 7),
            bpr1: b.bpr1.clamp(3, 7),
            eoi_mode: b.eoi_mode,
            grp0_enabled: b.grp0_enabled,
            grp1_enabled: b.grp1_enabled,
            active_priorities: b.active_priorities,
        };
        self.kicks = u64::MAX;
    }
}
