//! A GICv3 interrupt controller: distributor, one redistributor per CPU
//! (SGIs and PPIs), and the system-register CPU interface (ICC_*).
//!
//! One security state (GICD_CTLR.DS = 1), affinity routing always on, no
//! LPIs/ITS. 5 bits of priority; all interrupts are signalled on the IRQ
//! line (Linux uses Group 1 only). The model is plain data: the board
//! serialises access and turns [`Gic::irq_pending`] into each CPU's IRQ line.

mod cpu_if;
mod exchange;
mod regs;

pub use exchange::{CpuBits, IrqBits};

use serde::{Deserialize, Serialize};

/// Priority bits implemented (ICC_CTLR_EL1.PRIbits + 1).
const PRIORITY_BITS: u32 = 5;
/// Mask of the implemented priority bits.
const PRIORITY_MASK: u8 = 0xff << (8 - PRIORITY_BITS);
/// INTID returned when nothing is pending.
pub const SPURIOUS: u32 = 1023;

/// State of one interrupt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Irq {
    enabled: bool,
    /// Software or edge-latched pending state.
    latched: bool,
    /// The input line (level-sensitive interrupts stay pending while high).
    level: bool,
    active: bool,
    edge: bool,
    group1: bool,
    priority: u8,
}

impl Irq {
    fn pending(&self) -> bool {
        self.latched || (self.level && !self.edge)
    }
}

/// Per-CPU state: its SGIs/PPIs and its CPU interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CpuState {
    private: [Irq; 32],
    /// GICR_WAKER.ProcessorSleep.
    asleep: bool,
    pmr: u8,
    bpr0: u8,
    bpr1: u8,
    /// ICC_CTLR_EL1.EOImode: priority drop and deactivation are separate.
    eoi_mode: bool,
    grp0_enabled: bool,
    grp1_enabled: bool,
    /// Active priorities: bit n set = an interrupt of priority n << 3 is active.
    active_priorities: u32,
}

impl Default for CpuState {
    fn default() -> Self {
        CpuState {
            private: [Irq::default(); 32],
            asleep: true,
            pmr: 0,
            bpr0: 2,
            bpr1: 3,
            eoi_mode: false,
            grp0_enabled: false,
            grp1_enabled: false,
            active_priorities: 0,
        }
    }
}

/// The interrupt controller. It is plain data: its saved state is itself
/// (serialisable; [`Gic::check_restored`] vets one read back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gic {
    cpus: Vec<CpuState>,
    spis: Vec<Irq>,
    /// GICD_IROUTER<n> for each SPI.
    routes: Vec<u64>,
    /// GICD_CTLR (EnableGrp0, EnableGrp1, ARE, DS).
    ctlr: u32,
    /// CPUs that may need to re-evaluate their IRQ line (bit per CPU).
    #[serde(skip)]
    kicks: u64,
}

/// The MPIDR affinity value of CPU `cpu` (16 CPUs per cluster).
pub fn mpidr_of(cpu: usize) -> u64 {
    ((cpu as u64 / 16) << 8) | (cpu as u64 % 16)
}

impl Gic {
    /// A GIC for `num_cpus` CPUs with `num_spis` SPIs (rounded up to a multiple of 32, at most 988).
    pub fn new(num_cpus: usize, num_spis: u32) -> Self {
        let num_spis = num_spis.next_multiple_of(32).min(988) as usize;
        Gic {
            cpus: vec![CpuState::default(); num_cpus.max(1)],
            spis: vec![Irq::default(); num_spis],
            routes: vec![0; num_spis],
            ctlr: regs::CTLR_DS | regs::CTLR_ARE,
            kicks: 0,
        }
    }

    /// Checks a state read back from a snapshot against the GIC it
    /// replaces (same number of CPUs and SPIs) and clears what no guest can
    /// set (priority bits beyond those implemented, unknown control bits).
    pub fn check_restored(mut self, like: &Gic) -> Result<Gic, String> {
        if self.cpus.len() != like.cpus.len() || self.spis.len() != like.spis.len() {
            return Err(format!(
                "the GIC state has {} CPUs and {} SPIs, this VM {} and {}",
                self.cpus.len(),
                self.spis.len(),
                like.cpus.len(),
                like.spis.len()
            ));
        }
        if self.routes.len() != self.spis.len() {
            return Err("the GIC state's routing table does not match its SPIs".into());
        }
        self.ctlr =
            self.ctlr & (regs::CTLR_GRP0 | regs::CTLR_GRP1) | regs::CTLR_DS | regs::CTLR_ARE;
        for c in &mut self.cpus {
            c.pmr &= PRIORITY_MASK;
            c.bpr0 = c.bpr0.clamp(2, 7);
            c.bpr1 = c.bpr1.clamp(3, 7);
        }
        self.kicks = u64::MAX;
        Ok(self)
    }

    /// Number of CPUs.
    pub fn num_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// Number of interrupt IDs (SGIs + PPIs + SPIs).
    fn num_irqs(&self) -> u32 {
        32 + self.spis.len() as u32
    }

    fn irq(&self, cpu: usize, intid: u32) -> Option<&Irq> {
        if intid < 32 {
            self.cpus.get(cpu).map(|c| &c.private[intid as usize])
        } else {
            self.spis.get(intid as usize - 32)
        }
    }

    fn irq_mut(&mut self, cpu: usize, intid: u32) -> Option<&mut Irq> {
        if intid < 32 {
            self.cpus
                .get_mut(cpu)
                .map(|c| &mut c.private[intid as usize])
        } else {
            self.spis.get_mut(intid as usize - 32)
        }
    }

    /// Drives the input line of PPI `intid` (16..32) of `cpu`, or of SPI
    /// `intid` (32..) (then `cpu` is ignored). Out-of-range numbers are ignored.
    pub fn set_level(&mut self, intid: u32, cpu: usize, level: bool) {
        if (16..32).contains(&intid) && cpu >= self.cpus.len() {
            return;
        }
        if intid < 16 {
            return;
        }
        let Some(irq) = self.irq_mut(cpu, intid) else {
            return;
        };
        if irq.edge && level && !irq.level {
            irq.latched = true;
        }
        let changed = irq.level != level;
        irq.level = level;
        if changed {
            self.kick_for(intid, cpu);
        }
    }

    /// Marks the CPUs that an interrupt may now be signalled to.
    fn kick_for(&mut self, intid: u32, cpu: usize) {
        if intid < 32 {
            self.kicks |= 1 << (cpu % 64);
        } else {
            self.kicks |= 1 << (self.target_of(intid) % 64);
        }
    }

    /// Which CPUs need to re-evaluate their IRQ line since the last call
    /// (bit n = CPU n). The board uses it to wake sleeping vCPUs.
    pub fn take_kicks(&mut self) -> u64 {
        std::mem::take(&mut self.kicks)
    }

    /// The CPU that SPI `intid` is delivered to.
    fn target_of(&self, intid: u32) -> usize {
        let route = self.routes[intid as usize - 32];
        if route >> 31 & 1 != 0 {
            // Interrupt_Routing_Mode = 1: any awake CPU; pick the first.
            return self.cpus.iter().position(|c| !c.asleep).unwrap_or(0);
        }
        let aff = route & 0xff_00ff_ffff;
        self.cpus
            .iter()
            .enumerate()
            .position(|(i, _)| mpidr_of(i) == (aff & 0xffff))
            .unwrap_or(0)
    }

    fn group_enabled(&self, cpu: usize, group1: bool) -> bool {
        let c = &self.cpus[cpu];
        if group1 {
            c.grp1_enabled && self.ctlr & regs::CTLR_GRP1 != 0
        } else {
            c.grp0_enabled && self.ctlr & regs::CTLR_GRP0 != 0
        }
    }

    /// The highest-priority pending, enabled interrupt for `cpu` whose group
    /// is enabled: (INTID, priority).
    fn highest_pending(&self, cpu: usize) -> Option<(u32, u8)> {
        let mut best: Option<(u32, u8)> = None;
        let mut consider = |intid: u32, irq: &Irq| {
            if irq.enabled && irq.pending() && !irq.active && self.group_enabled(cpu, irq.group1) {
                let p = irq.priority & PRIORITY_MASK;
                if best.is_none_or(|(_, bp)| p < bp) {
                    best = Some((intid, p));
                }
            }
        };
        for (i, irq) in self.cpus[cpu].private.iter().enumerate() {
            consider(i as u32, irq);
        }
        for (i, irq) in self.spis.iter().enumerate() {
            if irq.enabled && irq.pending() && self.target_of(32 + i as u32) == cpu {
                consider(32 + i as u32, irq);
            }
        }
        best
    }

    /// The running priority of `cpu` (0xff when idle).
    fn running_priority(&self, cpu: usize) -> u8 {
        let ap = self.cpus[cpu].active_priorities;
        if ap == 0 {
            0xff
        } else {
            (ap.trailing_zeros() as u8) << (8 - PRIORITY_BITS)
        }
    }

    /// Whether `cpu`'s IRQ line should be asserted now.
    pub fn irq_pending(&self, cpu: usize) -> bool {
        if cpu >= self.cpus.len() {
            return false;
        }
        match self.highest_pending(cpu) {
            Some((_, p)) => p < self.cpus[cpu].pmr && p < self.running_priority(cpu),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
