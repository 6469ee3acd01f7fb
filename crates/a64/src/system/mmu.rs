//! Stage-1 address translation for the EL1&0 regime (VMSAv8-64, ARMv8.0):
//! 4K/16K/64K granules, 25..48-bit VA ranges through TTBR0/TTBR1, table,
//! block and page descriptors, hierarchical permissions, AF, PAN, WXN.
//!
//! The walk runs only on a software-TLB miss; its result is cached per
//! 4 KiB page in the TLB of the current privilege (EL0, EL1, EL1 with PAN).

use super::{fsc, sctlr};
use crate::bus::{Access, Bus, PageLookup, PAGE_MASK};
use crate::cpu::{Cpu, Exit, Stop};

/// Physical address size: 40 bits, as on Cortex-A53/A72 (ID_AA64MMFR0_EL1.PARange = 2).
pub(crate) const PA_BITS: u32 = 40;

/// Whose permissions an access is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Privilege {
    El0,
    El1,
    /// EL1 with PSTATE.PAN set: no data access to EL0-accessible pages.
    El1Pan,
}

impl Privilege {
    /// The privilege a TLB index stands for.
    pub fn of_tlb_index(index: usize) -> Self {
        match index {
            0 => Privilege::El0,
            1 => Privilege::El1,
            _ => Privilege::El1Pan,
        }
    }
}

/// A successful translation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk {
    /// Physical address of the byte translated.
    pub pa: u64,
    /// log2 of the size of the block or page that maps it.
    pub size_log2: u32,
    /// log2 of the translation granule.
    pub granule_log2: u32,
    /// MAIR attribute index.
    pub attr_index: u8,
    /// Shareability field.
    pub sh: u8,
}

/// The translation parameters for one half of the VA space.
struct Regime {
    ttbr: u64,
    input_bits: u32,
    granule_log2: u32,
    tbi: bool,
    disabled: bool,
}

/// Granule size (log2) for the TG0 or TG1 encoding; reserved values act as 4K.
fn granule(tg: u64, upper: bool) -> u32 {
    match (upper, tg) {
        (false, 1) | (true, 3) => 16,
        (false, 2) | (true, 1) => 14,
        _ => 12,
    }
}

fn regime(tcr: u64, ttbr0: u64, ttbr1: u64, upper: bool) -> Regime {
    let field = |shift: u32, width: u32| tcr >> shift & ((1 << width) - 1);
    let (tsz, tg, epd, tbi, ttbr) = if upper {
        (
            field(16, 6),
            field(30, 2),
            field(23, 1),
            field(38, 1),
            ttbr1,
        )
    } else {
        (field(0, 6), field(14, 2), field(7, 1), field(37, 1), ttbr0)
    };
    Regime {
        ttbr,
        input_bits: 64 - (tsz as u32).clamp(16, 39),
        granule_log2: granule(tg, upper),
        tbi: tbi != 0,
        disabled: epd != 0,
    }
}

/// Reads the 64-bit descriptor at physical address `pa`.
fn read_descriptor(bus: &mut dyn Bus, pa: u64) -> Option<u64> {
    match bus.page(pa & !PAGE_MASK, Access::Read) {
        PageLookup::Ram(host) => {
            let p = (host.as_ptr() as usize + (pa & PAGE_MASK) as usize) as *const u64;
            // SAFETY: the bus handed out this page for reads; `pa` is 8-byte aligned.
            Some(u64::from_le(unsafe { p.read_volatile() }))
        }
        _ => None,
    }
}

impl Cpu {
    /// Walks the translation tables for `va`, checking `access` against `privilege`.
    /// On failure returns the fault status code (type and level).
    pub(crate) fn walk(
        &self,
        bus: &mut dyn Bus,
        va: u64,
        access: Access,
        privilege: Privilege,
    ) -> Result<Walk, u8> {
        let s = &self.sys;
        let upper = va >> 55 & 1 != 0;
        let r = regime(s.tcr_el1, s.ttbr0_el1, s.ttbr1_el1, upper);
        // Bits above the VA range must all equal bit 55 (bits 63:56 too unless TBI).
        let top = if r.tbi { 56 } else { 64 };
        let high = (va & (u64::MAX >> (64 - top))) >> r.input_bits;
        let expected = if upper {
            (1u64 << (top - r.input_bits)) - 1
        } else {
            0
        };
        if r.disabled || high != expected {
            return Err(fsc::TRANSLATION);
        }
        let g = r.granule_log2;
        let stride = g - 3;
        let levels = (r.input_bits - g).div_ceil(stride);
        let mut level = 4 - levels;
        let first_bits = r.input_bits - g - (levels - 1) * stride;
        let pa_mask = (1u64 << 48) - 1;
        let mut table = r.ttbr & pa_mask & !((8u64 << first_bits) - 1);
        if table >> PA_BITS != 0 {
            return Err(fsc::ADDRESS_SIZE | level as u8);
        }
        // Hierarchical restrictions collected from table descriptors.
        let (mut no_el0, mut read_only, mut uxn, mut pxn) = (false, false, false, false);
        let (desc, size_log2) = loop {
            let shift = g + (3 - level) * stride;
            let index_bits = if level == 4 - levels {
                first_bits
            } else {
                stride
            };
            let index = (va >> shift) & ((1 << index_bits) - 1);
            let Some(desc) = read_descriptor(bus, table + index * 8) else {
                return Err(fsc::EXTERNAL_WALK | level as u8);
            };
            if desc & 1 == 0 {
                return Err(fsc::TRANSLATION | level as u8);
            }
            let is_table = desc & 2 != 0;
            if level == 3 {
                if !is_table {
                    return Err(fsc::TRANSLATION | 3);
                }
                break (desc, shift);
            }
            if !is_table {
                // Blocks: level 1 or 2 with 4K, level 2 with 16K or 64K.
                let allowed = if g == 12 { level >= 1 } else { level == 2 };
                if !allowed {
                    return Err(fsc::TRANSLATION | level as u8);
                }
                break (desc, shift);
            }
            no_el0 |= desc >> 61 & 1 != 0;
            read_only |= desc >> 62 & 1 != 0;
            uxn |= desc >> 60 & 1 != 0;
            pxn |= desc >> 59 & 1 != 0;
            table = desc & pa_mask & !((1u64 << g) - 1);
            if table >> PA_BITS != 0 {
                return Err(fsc::ADDRESS_SIZE | level as u8);
            }
            level += 1;
        };
        let lvl = level as u8;
        let oa = desc & pa_mask & !((1u64 << size_log2) - 1);
        if oa >> PA_BITS != 0 {
            return Err(fsc::ADDRESS_SIZE | lvl);
        }
        if desc >> 10 & 1 == 0 {
            return Err(fsc::ACCESS_FLAG | lvl);
        }
        let el0_access = desc >> 6 & 1 != 0 && !no_el0;
        let writable = desc >> 7 & 1 == 0 && !read_only;
        uxn |= desc >> 54 & 1 != 0;
        pxn |= desc >> 53 & 1 != 0;
        let wxn = s.sctlr_el1 & sctlr::WXN != 0;
        let permitted = match (privilege, access) {
            (Privilege::El0, Access::Read) => el0_access,
            (Privilege::El0, Access::Write) => el0_access && writable,
            (Privilege::El0, Access::Fetch) => {
                let writable_here = el0_access && writable;
                let never = uxn || (wxn && writable_here);
                !never
            }
            (Privilege::El1Pan, Access::Read | Access::Write) if el0_access => false,
            (_, Access::Read) => true,
            (_, Access::Write) => writable,
            (_, Access::Fetch) => {
                // Memory EL0 can write is never executable at EL1.
                let user_writable = el0_access && writable;
                let never = pxn || user_writable || (wxn && writable);
                !never
            }
        };
        if !permitted {
            return Err(fsc::PERMISSION | lvl);
        }
        Ok(Walk {
            pa: oa | (va & ((1u64 << size_log2) - 1)),
            size_log2,
            granule_log2: g,
            attr_index: (desc >> 2 & 7) as u8,
            sh: (desc >> 8 & 3) as u8,
        })
    }

    /// The physical address for guest address `va`, or a fault raised as a
    /// data/instruction abort. Without the system level (user-mode
    /// emulation) or with the MMU off, addresses are physical.
    pub(crate) fn translate(
        &mut self,
        bus: &mut dyn Bus,
        va: u64,
        access: Access,
    ) -> Result<u64, Stop> {
        if !self.system || self.sys.sctlr_el1 & sctlr::M == 0 {
            // Instruction addresses are never untagged (TBI covers data only here).
            return Ok(if access == Access::Fetch {
                va
            } else {
                self.untag(va)
            });
        }
        let privilege = Privilege::of_tlb_index(self.tlb_base / crate::tlb::TLB_ENTRIES);
        match self.walk(bus, va, access, privilege) {
            Ok(w) => {
                if w.size_log2 > w.granule_log2 {
                    self.tlb.note_large(va, w.size_log2);
                }
                Ok(w.pa)
            }
            Err(status) => {
                self.fault_status = status;
                self.exit = match access {
                    Access::Fetch => Exit::InsnAbort { addr: va },
                    _ => Exit::DataAbort {
                        addr: va,
                        write: access == Access::Write,
                    },
                };
                Err(Stop)
            }
        }
    }

    /// Translates the page of `va` and asks the bus what backs it.
    pub(crate) fn lookup_page(
        &mut self,
        bus: &mut dyn Bus,
        va: u64,
        access: Access,
    ) -> Result<PageLookup, Stop> {
        let pa = self.translate(bus, va & !PAGE_MASK, access)?;
        Ok(bus.page(pa, access))
    }

    /// The granule (log2) used by the half of the VA space holding `va`.
    pub(crate) fn granule_of(&self, va: u64) -> u32 {
        let upper = va >> 55 & 1 != 0;
        let tg = if upper {
            self.sys.tcr_el1 >> 30 & 3
        } else {
            self.sys.tcr_el1 >> 14 & 3
        };
        granule(tg, upper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlatMemory;

    const RAM: u64 = 0x4000_0000;
    const VALID_AF: u64 = 1 | 1 << 10;
    const TABLE: u64 = 3;
    const PAGE: u64 = 3 | 1 << 10;

    fn put(mem: &mut FlatMemory, pa: u64, desc: u64) {
        mem.load(pa, &desc.to_le_bytes());
    }

    /// TCR for TTBR0 with `tsz` and granule `g` (log2), TTBR1 walks disabled.
    fn tcr(tsz: u64, g: u32) -> u64 {
        let tg0 = match g {
            12 => 0,
            14 => 2,
            _ => 1,
        };
        tsz | tg0 << 14 | 1 << 23 | 2 << 32
    }

    /// Builds a chain of tables from TTBR0 down to a page mapping `va` to
    /// `pa`, for every level the granule and VA size need; returns the CPU.
    fn map_page(mem: &mut FlatMemory, g: u32, tsz: u64, va: u64, pa: u64, leaf_bits: u64) -> Cpu {
        let stride = g - 3;
        let input = 64 - tsz as u32;
        let levels = (input - g).div_ceil(stride);
        let mut table = RAM;
        let mut next = RAM + (1 << g);
        for level in (4 - levels)..4 {
            let shift = g + (3 - level) * stride;
            let index = (va >> shift) & ((1 << stride) - 1);
            let index = if level == 4 - levels {
                (va >> shift) & ((1 << (input - shift)) - 1)
            } else {
                index
            };
            if level == 3 {
                put(mem, table + index * 8, pa | PAGE | leaf_bits);
            } else {
                put(mem, table + index * 8, next | TABLE);
                table = next;
                next += 1 << g;
            }
        }
        let mut cpu = Cpu::new_system(0);
        cpu.sys.tcr_el1 = tcr(tsz, g);
        cpu.sys.ttbr0_el1 = RAM;
        cpu.sys.sctlr_el1 |= sctlr::M;
        cpu
    }

    #[test]
    fn every_granule_and_va_size_translates() {
        for g in [12u32, 14, 16] {
            for tsz in [16u64, 20, 25, 28, 33] {
                if 64 - tsz as u32 <= g + (g - 3) {
                    continue;
                }
                let mut mem = FlatMemory::new(RAM, 8 << 20);
                let va = (0x1234_5678_9abc_u64 & ((1 << (64 - tsz)) - 1)) & !((1 << g) - 1);
                let pa = RAM + (4 << 20);
                let cpu = map_page(&mut mem, g, tsz, va, pa, 0);
                let w = cpu
                    .walk(&mut mem, va + 0x18, Access::Read, Privilege::El1)
                    .unwrap_or_else(|f| panic!("granule {g} tsz {tsz}: fault {f:#x}"));
                assert_eq!(w.pa, pa + 0x18, "granule {g} tsz {tsz}");
                assert_eq!(w.size_log2, g);
                // The next page is unmapped: a translation fault at level 3.
                let miss = cpu.walk(&mut mem, va + (1 << g), Access::Read, Privilege::El1);
                assert_eq!(
                    miss.unwrap_err(),
                    fsc::TRANSLATION | 3,
                    "granule {g} tsz {tsz}"
                );
                // Beyond the VA range: level 0 translation fault.
                let out = cpu.walk(&mut mem, 1 << (64 - tsz), Access::Read, Privilege::El1);
                assert_eq!(out.unwrap_err(), fsc::TRANSLATION, "granule {g} tsz {tsz}");
            }
        }
    }

    #[test]
    fn permissions_access_flag_and_pan() {
        let mut mem = FlatMemory::new(RAM, 8 << 20);
        let va = 0x1000_0000;
        let pa = RAM + (4 << 20);
        // EL0 read/write, not executable anywhere.
        let mut cpu = map_page(&mut mem, 12, 25, va, pa, 1 << 6 | 1 << 53 | 1 << 54);
        assert!(cpu
            .walk(&mut mem, va, Access::Write, Privilege::El0)
            .is_ok());
        assert_eq!(
            cpu.walk(&mut mem, va, Access::Fetch, Privilege::El0)
                .unwrap_err(),
            fsc::PERMISSION | 3
        );
        assert_eq!(
            cpu.walk(&mut mem, va, Access::Read, Privilege::El1Pan)
                .unwrap_err(),
            fsc::PERMISSION | 3
        );
        // Read-only for everyone, executable at EL0 only.
        cpu = map_page(&mut mem, 12, 25, va, pa, 1 << 6 | 1 << 7 | 1 << 53);
        assert_eq!(
            cpu.walk(&mut mem, va, Access::Write, Privilege::El1)
                .unwrap_err(),
            fsc::PERMISSION | 3
        );
        assert!(cpu
            .walk(&mut mem, va, Access::Fetch, Privilege::El0)
            .is_ok());
        assert!(cpu
            .walk(&mut mem, va, Access::Fetch, Privilege::El1)
            .is_err());
        // EL1 only: EL0 gets a permission fault; clearing AF gives an access-flag fault.
        cpu = map_page(&mut mem, 12, 25, va, pa, 0);
        assert_eq!(
            cpu.walk(&mut mem, va, Access::Read, Privilege::El0)
                .unwrap_err(),
            fsc::PERMISSION | 3
        );
        let l3 = RAM + 2 * 4096 + ((va >> 12) & 511) * 8;
        put(&mut mem, l3, pa | 3);
        assert_eq!(
            cpu.walk(&mut mem, va, Access::Read, Privilege::El1)
                .unwrap_err(),
            fsc::ACCESS_FLAG | 3
        );
    }

    #[test]
    fn blocks_tables_restrictions_and_walk_errors() {
        let mut mem = FlatMemory::new(RAM, 8 << 20);
        let mut cpu = Cpu::new_system(0);
        cpu.sys.tcr_el1 = tcr(25, 12);
        cpu.sys.ttbr0_el1 = RAM;
        cpu.sys.sctlr_el1 |= sctlr::M;
        // Level 1: a 1 GiB block at VA 0; a table with APTable = no EL0 at 1 GiB.
        put(&mut mem, RAM, RAM | VALID_AF | 1 << 6);
        put(&mut mem, RAM + 8, (RAM + 0x1000) | TABLE | 1 << 61);
        put(&mut mem, RAM + 0x1000, RAM | VALID_AF | 1 << 6);
        let w = cpu
            .walk(&mut mem, 0x1234_5678, Access::Read, Privilege::El0)
            .unwrap();
        assert_eq!((w.pa, w.size_log2), (RAM + 0x1234_5678, 30));
        let w = cpu
            .walk(&mut mem, 0x4012_3456, Access::Read, Privilege::El1)
            .unwrap();
        assert_eq!((w.pa, w.size_log2), (RAM + 0x12_3456, 21));
        assert_eq!(
            cpu.walk(&mut mem, 0x4012_3456, Access::Read, Privilege::El0)
                .unwrap_err(),
            fsc::PERMISSION | 2
        );
        // A table outside memory: external abort on the walk at the next level.
        put(&mut mem, RAM + 16, (0x80_0000_0000 - 0x1000) | TABLE);
        assert_eq!(
            cpu.walk(&mut mem, 0x8000_0000, Access::Read, Privilege::El1)
                .unwrap_err(),
            fsc::EXTERNAL_WALK | 2
        );
        // An output address above 40 bits: address size fault.
        put(&mut mem, RAM + 24, 1 << 44 | VALID_AF);
        assert_eq!(
            cpu.walk(&mut mem, 0xc000_0000, Access::Read, Privilege::El1)
                .unwrap_err(),
            fsc::ADDRESS_SIZE | 1
        );
        // With 64K pages a 39-bit VA starts at level 2, where blocks are fine
        // (512 MiB); a 48-bit VA starts at level 1, where they are not.
        cpu.sys.tcr_el1 = tcr(25, 16);
        put(&mut mem, RAM, RAM | VALID_AF);
        let w = cpu
            .walk(&mut mem, 0x10, Access::Read, Privilege::El1)
            .unwrap();
        assert_eq!(w.size_log2, 29);
        cpu.sys.tcr_el1 = tcr(16, 16);
        assert_eq!(
            cpu.walk(&mut mem, 0x10, Access::Read, Privilege::El1)
                .unwrap_err(),
            fsc::TRANSLATION | 1
        );
    }
}
