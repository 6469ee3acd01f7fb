//! GICv3 distributor and redistributor registers (MMIO).

use super::{mpidr_of, Gic, Irq, PRIORITY_MASK};

/// GICD_CTLR.EnableGrp0.
pub(super) const CTLR_GRP0: u32 = 1 << 0;
/// GICD_CTLR.EnableGrp1 (single security state).
pub(super) const CTLR_GRP1: u32 = 1 << 1;
/// GICD_CTLR.ARE: affinity routing, always on.
pub(super) const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR.DS: one security state.
pub(super) const CTLR_DS: u32 = 1 << 6;

/// Implementer/revision: Arm (0x43b), our own product number.
const IIDR: u64 = 0x0100_043b;
/// PIDR2: architecture revision 3 (GICv3).
const PIDR2: u64 = 0x3b;
const PIDR2_OFFSET: u64 = 0xffe8;

/// Offset of the SGI_base frame inside a CPU's redistributor.
const SGI_FRAME: u64 = 0x1_0000;
/// Size of one CPU's redistributor.
const REDIST_STRIDE: u64 = 0x2_0000;

/// The bit-per-interrupt register banks shared by distributor and SGI frame,
/// by their offset range.
#[derive(Clone, Copy)]
enum Bank {
    Group,
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

fn bank_at(offset: u64) -> Option<(Bank, u32)> {
    let bank = match offset & !0x7f {
        0x080 => Bank::Group,
        0x100 => Bank::SetEnable,
        0x180 => Bank::ClearEnable,
        0x200 => Bank::SetPending,
        0x280 => Bank::ClearPending,
        0x300 => Bank::SetActive,
        0x380 => Bank::ClearActive,
        _ => return None,
    };
    Some((bank, (offset & 0x7f) as u32 / 4 * 32))
}

fn bank_read(irq: &Irq, bank: Bank) -> bool {
    match bank {
        Bank::Group => irq.group1,
        Bank::SetEnable | Bank::ClearEnable => irq.enabled,
        Bank::SetPending | Bank::ClearPending => irq.pending(),
        Bank::SetActive | Bank::ClearActive => irq.active,
    }
}

/// Applies a write of bit value `set` to one interrupt.
fn bank_write(irq: &mut Irq, bank: Bank, set: bool) {
    match bank {
        Bank::Group => irq.group1 = set,
        Bank::SetEnable if set => irq.enabled = true,
        Bank::ClearEnable if set => irq.enabled = false,
        Bank::SetPending if set => irq.latched = true,
        Bank::ClearPending if set => irq.latched = false,
        Bank::SetActive if set => irq.active = true,
        Bank::ClearActive if set => irq.active = false,
        _ => {}
    }
}

impl Gic {
    /// Reads the bit bank or priority/config register at `offset` for
    /// interrupts `first..` (INTIDs as seen by `cpu`); `None` if not such a register.
    fn irq_reg_read(&self, cpu: usize, offset: u64, size: u8, private: bool) -> Option<u64> {
        let limit = if private { 32 } else { self.num_irqs() };
        let lo = if private { 0 } else { 32 };
        let visible = |intid: u32| intid >= lo && intid < limit;
        if let Some((bank, first)) = bank_at(offset) {
            let mut v = 0u64;
            for bit in 0..32 {
                let intid = first + bit;
                if visible(intid) && bank_read(self.irq(cpu, intid)?, bank) {
                    v |= 1 << bit;
                }
            }
            return Some(v);
        }
        if (0x400..0x800).contains(&offset) {
            let mut v = 0u64;
            for b in 0..size.min(8) as u64 {
                let intid = (offset - 0x400 + b) as u32;
                if visible(intid) {
                    v |= (self.irq(cpu, intid)?.priority as u64) << (8 * b);
                }
            }
            return Some(v);
        }
        if (0xc00..0xd00).contains(&offset) {
            let first = (offset - 0xc00) as u32 * 4;
            let mut v = 0u64;
            for k in 0..16 {
                let intid = first + k;
                if visible(intid) && self.irq(cpu, intid)?.edge {
                    v |= 2 << (2 * k);
                }
            }
            return Some(v);
        }
        None
    }

    fn irq_reg_write(
        &mut self,
        cpu: usize,
        offset: u64,
        size: u8,
        value: u64,
        private: bool,
    ) -> bool {
        let limit = if private { 32 } else { self.num_irqs() };
        let lo = if private { 0 } else { 32 };
        let visible = move |intid: u32| intid >= lo && intid < limit;
        if let Some((bank, first)) = bank_at(offset) {
            for bit in 0..32.min(size as u32 * 8) {
                let intid = first + bit;
                if visible(intid) {
                    if let Some(irq) = self.irq_mut(cpu, intid) {
                        bank_write(irq, bank, value >> bit & 1 != 0);
                    }
                }
            }
            return true;
        }
        if (0x400..0x800).contains(&offset) {
            for b in 0..size.min(8) as u64 {
                let intid = (offset - 0x400 + b) as u32;
                if visible(intid) {
                    if let Some(irq) = self.irq_mut(cpu, intid) {
                        irq.priority = (value >> (8 * b)) as u8 & PRIORITY_MASK;
                    }
                }
            }
            return true;
        }
        if (0xc00..0xd00).contains(&offset) {
            let first = (offset - 0xc00) as u32 * 4;
            for k in 0..16.min(size as u32 * 4) {
                let intid = first + k;
                // SGIs are always edge-triggered; their configuration is read-only.
                if visible(intid) && intid >= 16 {
                    if let Some(irq) = self.irq_mut(cpu, intid) {
                        irq.edge = value >> (2 * k + 1) & 1 != 0;
                    }
                }
            }
            return true;
        }
        false
    }

    /// Reads a distributor register; unknown registers read as zero.
    pub fn distributor_read(&mut self, offset: u64, size: u8) -> u64 {
        match offset {
            0x0000 => (self.ctlr) as u64,
            // ITLinesNumber, IDbits = 9 (10-bit INTIDs), no LPIs/MBIs, no security extension.
            0x0004 => ((self.num_irqs() / 32 - 1) as u64) | 9 << 19,
            0x0008 => IIDR,
            PIDR2_OFFSET => PIDR2,
            0x6100..=0x7fd8 => {
                let n = ((offset - 0x6000) / 8) as usize;
                let v = self.routes.get(n.wrapping_sub(32)).copied().unwrap_or(0);
                if offset % 8 == 4 {
                    v >> 32
                } else {
                    v
                }
            }
            0x0d00..=0x0d7c => 0,
            _ => self.irq_reg_read(0, offset, size, false).unwrap_or(0),
        }
    }

    /// Writes a distributor register; unknown registers ignore writes.
    pub fn distributor_write(&mut self, offset: u64, size: u8, value: u64) {
        match offset {
            0x0000 => {
                self.ctlr = (value as u32 & (CTLR_GRP0 | CTLR_GRP1)) | CTLR_ARE | CTLR_DS;
            }
            0x6100..=0x7fd8 => {
                let n = ((offset - 0x6000) / 8) as usize;
                if let Some(route) = self.routes.get_mut(n.wrapping_sub(32)) {
                    let mask = 0xff_8000_ffffu64;
                    *route = match (offset % 8, size) {
                        (0, 8) => value & mask,
                        (0, _) => (*route & !0xffff_ffff) | (value & 0xffff_ffff & mask),
                        _ => (*route & 0xffff_ffff) | ((value << 32) & mask),
                    };
                }
            }
            _ => {
                self.irq_reg_write(0, offset, size, value, false);
            }
        }
        self.kicks = u64::MAX;
    }

    /// Reads the redistributor region at `offset` (CPU = offset / 128 KiB).
    pub fn redistributor_read(&mut self, offset: u64, size: u8) -> u64 {
        let cpu = (offset / REDIST_STRIDE) as usize;
        if cpu >= self.cpus.len() {
            return 0;
        }
        let off = offset % REDIST_STRIDE;
        if off >= SGI_FRAME {
            let o = off - SGI_FRAME;
            return match o {
                0x0d00 | 0x0e00 => 0,
                _ => self.irq_reg_read(cpu, o, size, true).unwrap_or(0),
            };
        }
        let last = (cpu + 1 == self.cpus.len()) as u64;
        match off {
            0x0000 => 0,
            0x0004 => IIDR,
            0x0008 | 0x000c => {
                let typer = mpidr_of(cpu) << 32 | (cpu as u64) << 8 | last << 4;
                if off == 0x000c {
                    typer >> 32
                } else if size == 4 {
                    typer & 0xffff_ffff
                } else {
                    typer
                }
            }
            0x0014 => {
                let sleep = self.cpus[cpu].asleep as u64;
                sleep << 1 | sleep << 2
            }
            PIDR2_OFFSET => PIDR2,
            _ => 0,
        }
    }

    /// Writes the redistributor region at `offset` (CPU = offset / 128 KiB).
    pub fn redistributor_write(&mut self, offset: u64, size: u8, value: u64) {
        let cpu = (offset / REDIST_STRIDE) as usize;
        if cpu >= self.cpus.len() {
            return;
        }
        let off = offset % REDIST_STRIDE;
        if off >= SGI_FRAME {
            self.irq_reg_write(cpu, off - SGI_FRAME, size, value, true);
        } else if off == 0x0014 {
            self.cpus[cpu].asleep = value & 2 != 0;
        }
        self.kicks |= 1 << (cpu % 64);
    }
}
