//! The GICv3 CPU interface: the ICC_* system registers.

use super::{mpidr_of, Gic, PRIORITY_BITS, PRIORITY_MASK, SPURIOUS};

/// Builds a system register key from (op0, op1, CRn, CRm, op2).
const fn key(op0: u32, op1: u32, crn: u32, crm: u32, op2: u32) -> u32 {
    op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
}

const ICC_PMR: u32 = key(3, 0, 4, 6, 0);
const ICC_IAR0: u32 = key(3, 0, 12, 8, 0);
const ICC_EOIR0: u32 = key(3, 0, 12, 8, 1);
const ICC_HPPIR0: u32 = key(3, 0, 12, 8, 2);
const ICC_BPR0: u32 = key(3, 0, 12, 8, 3);
const ICC_AP0R0: u32 = key(3, 0, 12, 8, 4);
const ICC_AP0R3: u32 = key(3, 0, 12, 8, 7);
const ICC_AP1R0: u32 = key(3, 0, 12, 9, 0);
const ICC_AP1R3: u32 = key(3, 0, 12, 9, 3);
const ICC_DIR: u32 = key(3, 0, 12, 11, 1);
const ICC_RPR: u32 = key(3, 0, 12, 11, 3);
const ICC_SGI1R: u32 = key(3, 0, 12, 11, 5);
const ICC_ASGI1R: u32 = key(3, 0, 12, 11, 6);
const ICC_SGI0R: u32 = key(3, 0, 12, 11, 7);
const ICC_IAR1: u32 = key(3, 0, 12, 12, 0);
const ICC_EOIR1: u32 = key(3, 0, 12, 12, 1);
const ICC_HPPIR1: u32 = key(3, 0, 12, 12, 2);
const ICC_BPR1: u32 = key(3, 0, 12, 12, 3);
const ICC_CTLR: u32 = key(3, 0, 12, 12, 4);
const ICC_SRE: u32 = key(3, 0, 12, 12, 5);
const ICC_IGRPEN0: u32 = key(3, 0, 12, 12, 6);
const ICC_IGRPEN1: u32 = key(3, 0, 12, 12, 7);

impl Gic {
    /// MRS of an ICC_* register by `cpu`. `None`: not a GIC register.
    pub fn icc_read(&mut self, cpu: usize, reg: u32) -> Option<u64> {
        let cpu = cpu.min(self.cpus.len() - 1);
        let c = &self.cpus[cpu];
        Some(match reg {
            ICC_PMR => c.pmr as u64,
            ICC_IAR1 => self.acknowledge(cpu, true) as u64,
            ICC_IAR0 => self.acknowledge(cpu, false) as u64,
            ICC_HPPIR1 | ICC_HPPIR0 => {
                let group1 = reg == ICC_HPPIR1;
                match self.highest_pending(cpu) {
                    Some((intid, _))
                        if self.irq(cpu, intid).is_some_and(|i| i.group1 == group1) =>
                    {
                        intid as u64
                    }
                    _ => SPURIOUS as u64,
                }
            }
            ICC_BPR0 => c.bpr0 as u64,
            ICC_BPR1 => c.bpr1 as u64,
            ICC_AP1R0 | ICC_AP0R0 => c.active_priorities as u64,
            ICC_AP1R0..=ICC_AP1R3 | ICC_AP0R0..=ICC_AP0R3 => 0,
            ICC_RPR => self.running_priority(cpu) as u64,
            // PRIbits = 4 (5 bits), IDbits = 0 (16 bits), no SEIS/A3V/RSS.
            ICC_CTLR => ((PRIORITY_BITS as u64 - 1) << 8) | (c.eoi_mode as u64) << 1,
            // SRE, DFB, DIB: the system register interface is always on.
            ICC_SRE => 0x7,
            ICC_IGRPEN0 => c.grp0_enabled as u64,
            ICC_IGRPEN1 => c.grp1_enabled as u64,
            ICC_DIR | ICC_EOIR0 | ICC_EOIR1 | ICC_SGI0R | ICC_SGI1R | ICC_ASGI1R => 0,
            _ => return None,
        })
    }

    /// MSR of an ICC_* register by `cpu`. `None`: not a GIC register.
    pub fn icc_write(&mut self, cpu: usize, reg: u32, value: u64) -> Option<()> {
        let cpu = cpu.min(self.cpus.len() - 1);
        let c = &mut self.cpus[cpu];
        match reg {
            ICC_PMR => c.pmr = value as u8 & PRIORITY_MASK,
            ICC_BPR0 => c.bpr0 = (value as u8 & 7).max(2),
            ICC_BPR1 => c.bpr1 = (value as u8 & 7).max(3),
            ICC_AP1R0 | ICC_AP0R0 => c.active_priorities = value as u32,
            ICC_AP1R0..=ICC_AP1R3 | ICC_AP0R0..=ICC_AP0R3 => {}
            ICC_CTLR => c.eoi_mode = value & 2 != 0,
            ICC_SRE => {}
            ICC_IGRPEN0 => c.grp0_enabled = value & 1 != 0,
            ICC_IGRPEN1 => c.grp1_enabled = value & 1 != 0,
            ICC_EOIR1 | ICC_EOIR0 => self.end_of_interrupt(cpu, value as u32 & 0xff_ffff),
            ICC_DIR => self.deactivate(cpu, value as u32 & 0xff_ffff),
            ICC_SGI1R | ICC_ASGI1R | ICC_SGI0R => self.generate_sgi(cpu, value),
            ICC_IAR0 | ICC_IAR1 | ICC_HPPIR0 | ICC_HPPIR1 | ICC_RPR => {}
            _ => return None,
        }
        self.kicks |= 1 << (cpu % 64);
        Some(())
    }

    /// ICC_IAR*: takes the highest-priority pending interrupt of the group.
    fn acknowledge(&mut self, cpu: usize, group1: bool) -> u32 {
        let Some((intid, priority)) = self.highest_pending(cpu) else {
            return SPURIOUS;
        };
        let c = &self.cpus[cpu];
        if priority >= c.pmr || priority >= self.running_priority(cpu) {
            return SPURIOUS;
        }
        let irq = self.irq_mut(cpu, intid).expect("pending interrupt exists");
        if irq.group1 != group1 {
            return SPURIOUS;
        }
        irq.latched = false;
        irq.active = true;
        let c = &mut self.cpus[cpu];
        c.active_priorities |= 1 << (priority >> (8 - PRIORITY_BITS));
        intid
    }

    /// ICC_EOIR*: priority drop, plus deactivation unless EOImode is set.
    fn end_of_interrupt(&mut self, cpu: usize, intid: u32) {
        let c = &mut self.cpus[cpu];
        if c.active_priorities != 0 {
            c.active_priorities &= c.active_priorities - 1;
        }
        if !c.eoi_mode {
            self.deactivate(cpu, intid);
        }
    }

    /// ICC_DIR: deactivates `intid`.
    fn deactivate(&mut self, cpu: usize, intid: u32) {
        if intid >= self.num_irqs() {
            return;
        }
        if let Some(irq) = self.irq_mut(cpu, intid) {
            irq.active = false;
        }
    }

    /// ICC_SGI*R: makes SGI `INTID` pending on the targeted CPUs.
    fn generate_sgi(&mut self, cpu: usize, value: u64) {
        let intid = (value >> 24 & 0xf) as usize;
        let broadcast = value >> 40 & 1 != 0;
        let aff1 = value >> 16 & 0xff;
        let aff23 = (value >> 32 & 0xff) | (value >> 48 & 0xff) << 8;
        let targets = value & 0xffff;
        for target in 0..self.cpus.len() {
            let hit = if broadcast {
                target != cpu
            } else {
                let mpidr = mpidr_of(target);
                aff23 == 0 && mpidr >> 8 == aff1 && targets >> (mpidr & 0xf) & 1 != 0
            };
            if hit {
                self.cpus[target].private[intid].latched = true;
                self.kicks |= 1 << (target % 64);
            }
        }
    }
}
