//! The AArch64 ID registers as data: which CPU features a guest may use.
//!
//! A guest reads them once, at boot, and from then on uses what they
//! offered. A state saved on one backend and restored on another (our CPU,
//! KVM) may continue only where the new CPU has every feature the guest
//! was offered; [`IdRegisters::missing_from`] names the ones it lacks.

use serde::{Deserialize, Serialize};

/// The feature ID registers (ID_AA64*_EL1) a guest saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRegisters {
    /// ID_AA64PFR0_EL1.
    pub pfr0: u64,
    /// ID_AA64PFR1_EL1.
    pub pfr1: u64,
    /// ID_AA64DFR0_EL1.
    pub dfr0: u64,
    /// ID_AA64ISAR0_EL1.
    pub isar0: u64,
    /// ID_AA64ISAR1_EL1.
    pub isar1: u64,
    /// ID_AA64ISAR2_EL1.
    pub isar2: u64,
    /// ID_AA64MMFR0_EL1.
    pub mmfr0: u64,
    /// ID_AA64MMFR1_EL1.
    pub mmfr1: u64,
    /// ID_AA64MMFR2_EL1.
    pub mmfr2: u64,
}

/// Which register a field is in.
#[derive(Clone, Copy)]
enum Reg {
    Pfr0,
    Pfr1,
    Isar0,
    Isar1,
    Isar2,
    Mmfr0,
    Mmfr1,
    Mmfr2,
}

/// A 4-bit feature field: register, lowest bit, name; `signed` fields use
/// 0xf for "not implemented" (below 0).
struct Field {
    reg: Reg,
    shift: u32,
    name: &'static str,
    signed: bool,
}

const fn f(reg: Reg, shift: u32, name: &'static str) -> Field {
    Field {
        reg,
        shift,
        name,
        signed: false,
    }
}

const fn s(reg: Reg, shift: u32, name: &'static str) -> Field {
    Field {
        reg,
        shift,
        name,
        signed: true,
    }
}

/// The fields a guest's code depends on (instructions, system registers,
/// memory-system behaviour at EL1 and EL0; fields that only matter to a
/// hypervisor, like stage-2 controls, are left out). Larger is more,
/// except for signed fields.
const FIELDS: &[Field] = &[
    s(Reg::Pfr0, 16, "ID_AA64PFR0_EL1.FP"),
    s(Reg::Pfr0, 20, "ID_AA64PFR0_EL1.AdvSIMD"),
    f(Reg::Pfr0, 28, "ID_AA64PFR0_EL1.RAS"),
    f(Reg::Pfr0, 32, "ID_AA64PFR0_EL1.SVE"),
    f(Reg::Pfr0, 40, "ID_AA64PFR0_EL1.MPAM"),
    f(Reg::Pfr0, 44, "ID_AA64PFR0_EL1.AMU"),
    f(Reg::Pfr0, 48, "ID_AA64PFR0_EL1.DIT"),
    f(Reg::Pfr1, 0, "ID_AA64PFR1_EL1.BT"),
    f(Reg::Pfr1, 4, "ID_AA64PFR1_EL1.SSBS"),
    f(Reg::Pfr1, 8, "ID_AA64PFR1_EL1.MTE"),
    f(Reg::Pfr1, 24, "ID_AA64PFR1_EL1.SME"),
    f(Reg::Isar0, 4, "ID_AA64ISAR0_EL1.AES"),
    f(Reg::Isar0, 8, "ID_AA64ISAR0_EL1.SHA1"),
    f(Reg::Isar0, 12, "ID_AA64ISAR0_EL1.SHA2"),
    f(Reg::Isar0, 16, "ID_AA64ISAR0_EL1.CRC32"),
    f(Reg::Isar0, 20, "ID_AA64ISAR0_EL1.Atomic"),
    f(Reg::Isar0, 28, "ID_AA64ISAR0_EL1.RDM"),
    f(Reg::Isar0, 32, "ID_AA64ISAR0_EL1.SHA3"),
    f(Reg::Isar0, 36, "ID_AA64ISAR0_EL1.SM3"),
    f(Reg::Isar0, 40, "ID_AA64ISAR0_EL1.SM4"),
    f(Reg::Isar0, 44, "ID_AA64ISAR0_EL1.DP"),
    f(Reg::Isar0, 48, "ID_AA64ISAR0_EL1.FHM"),
    f(Reg::Isar0, 52, "ID_AA64ISAR0_EL1.TS"),
    f(Reg::Isar0, 56, "ID_AA64ISAR0_EL1.TLB"),
    f(Reg::Isar0, 60, "ID_AA64ISAR0_EL1.RNDR"),
    f(Reg::Isar1, 0, "ID_AA64ISAR1_EL1.DPB"),
    f(Reg::Isar1, 4, "ID_AA64ISAR1_EL1.APA"),
    f(Reg::Isar1, 8, "ID_AA64ISAR1_EL1.API"),
    f(Reg::Isar1, 12, "ID_AA64ISAR1_EL1.JSCVT"),
    f(Reg::Isar1, 16, "ID_AA64ISAR1_EL1.FCMA"),
    f(Reg::Isar1, 20, "ID_AA64ISAR1_EL1.LRCPC"),
    f(Reg::Isar1, 24, "ID_AA64ISAR1_EL1.GPA"),
    f(Reg::Isar1, 28, "ID_AA64ISAR1_EL1.GPI"),
    f(Reg::Isar1, 32, "ID_AA64ISAR1_EL1.FRINTTS"),
    f(Reg::Isar1, 36, "ID_AA64ISAR1_EL1.SB"),
    f(Reg::Isar1, 40, "ID_AA64ISAR1_EL1.SPECRES"),
    f(Reg::Isar1, 44, "ID_AA64ISAR1_EL1.BF16"),
    f(Reg::Isar1, 48, "ID_AA64ISAR1_EL1.DGH"),
    f(Reg::Isar1, 52, "ID_AA64ISAR1_EL1.I8MM"),
    f(Reg::Isar2, 0, "ID_AA64ISAR2_EL1.WFxT"),
    f(Reg::Isar2, 4, "ID_AA64ISAR2_EL1.RPRES"),
    f(Reg::Isar2, 8, "ID_AA64ISAR2_EL1.GPA3"),
    f(Reg::Isar2, 12, "ID_AA64ISAR2_EL1.APA3"),
    f(Reg::Isar2, 16, "ID_AA64ISAR2_EL1.MOPS"),
    f(Reg::Isar2, 20, "ID_AA64ISAR2_EL1.BC"),
    f(Reg::Mmfr0, 0, "ID_AA64MMFR0_EL1.PARange"),
    f(Reg::Mmfr0, 4, "ID_AA64MMFR0_EL1.ASIDBits"),
    f(Reg::Mmfr0, 20, "ID_AA64MMFR0_EL1.TGran16"),
    s(Reg::Mmfr0, 24, "ID_AA64MMFR0_EL1.TGran64"),
    s(Reg::Mmfr0, 28, "ID_AA64MMFR0_EL1.TGran4"),
    f(Reg::Mmfr0, 60, "ID_AA64MMFR0_EL1.ECV"),
    f(Reg::Mmfr1, 0, "ID_AA64MMFR1_EL1.HAFDBS"),
    f(Reg::Mmfr1, 12, "ID_AA64MMFR1_EL1.HPDS"),
    f(Reg::Mmfr1, 16, "ID_AA64MMFR1_EL1.LO"),
    f(Reg::Mmfr1, 20, "ID_AA64MMFR1_EL1.PAN"),
    f(Reg::Mmfr1, 32, "ID_AA64MMFR1_EL1.TWED"),
    f(Reg::Mmfr1, 36, "ID_AA64MMFR1_EL1.ETS"),
    f(Reg::Mmfr1, 44, "ID_AA64MMFR1_EL1.AFP"),
    f(Reg::Mmfr2, 0, "ID_AA64MMFR2_EL1.CnP"),
    f(Reg::Mmfr2, 4, "ID_AA64MMFR2_EL1.UAO"),
    f(Reg::Mmfr2, 16, "ID_AA64MMFR2_EL1.VARange"),
    f(Reg::Mmfr2, 20, "ID_AA64MMFR2_EL1.CCIDX"),
    f(Reg::Mmfr2, 32, "ID_AA64MMFR2_EL1.AT"),
    f(Reg::Mmfr2, 48, "ID_AA64MMFR2_EL1.TTL"),
    f(Reg::Mmfr2, 52, "ID_AA64MMFR2_EL1.BBM"),
    f(Reg::Mmfr2, 60, "ID_AA64MMFR2_EL1.E0PD"),
];

impl IdRegisters {
    fn reg(&self, r: Reg) -> u64 {
        match r {
            Reg::Pfr0 => self.pfr0,
            Reg::Pfr1 => self.pfr1,
            Reg::Isar0 => self.isar0,
            Reg::Isar1 => self.isar1,
            Reg::Isar2 => self.isar2,
            Reg::Mmfr0 => self.mmfr0,
            Reg::Mmfr1 => self.mmfr1,
            Reg::Mmfr2 => self.mmfr2,
        }
    }

    fn value(&self, field: &Field) -> i8 {
        let v = (self.reg(field.reg) >> field.shift & 0xf) as i8;
        if field.signed && v == 0xf {
            -1
        } else {
            v
        }
    }

    /// `self` with every feature field above `cpu`'s lowered to `cpu`'s:
    /// what a CPU presenting `self` presents to offer no more than `cpu`.
    pub fn limited_to(&self, cpu: &IdRegisters) -> IdRegisters {
        let mut out = *self;
        for field in FIELDS {
            if self.value(field) > cpu.value(field) {
                let reg = out.reg_mut(field.reg);
                let nibble = cpu.reg(field.reg) >> field.shift & 0xf;
                *reg = *reg & !(0xf << field.shift) | nibble << field.shift;
            }
        }
        out
    }

    fn reg_mut(&mut self, r: Reg) -> &mut u64 {
        match r {
            Reg::Pfr0 => &mut self.pfr0,
            Reg::Pfr1 => &mut self.pfr1,
            Reg::Isar0 => &mut self.isar0,
            Reg::Isar1 => &mut self.isar1,
            Reg::Isar2 => &mut self.isar2,
            Reg::Mmfr0 => &mut self.mmfr0,
            Reg::Mmfr1 => &mut self.mmfr1,
            Reg::Mmfr2 => &mut self.mmfr2,
        }
    }

    /// The features a guest offered `self` would lose on a CPU offering
    /// `cpu`, as "NAME FIELD saw/has" phrases (empty: it may move there).
    pub fn missing_from(&self, cpu: &IdRegisters) -> Vec<String> {
        FIELDS
            .iter()
            .filter(|field| self.value(field) > cpu.value(field))
            .map(|field| {
                format!(
                    "{} (the guest saw {}, this CPU has {})",
                    field.name,
                    self.value(field),
                    cpu.value(field)
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_features_are_named() {
        let ours = IdRegisters {
            pfr0: 0x11,
            isar0: 1 << 16,
            mmfr0: 0x0010_0022,
            ..Default::default()
        };
        assert!(ours.missing_from(&ours).is_empty());
        let host = IdRegisters {
            isar0: 1 << 16 | 2 << 4 | 1 << 60,
            ..ours
        };
        // Ours moves to a CPU with more; the richer one does not move back.
        assert!(ours.missing_from(&host).is_empty());
        let missing = host.missing_from(&ours);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].starts_with("ID_AA64ISAR0_EL1.AES (the guest saw 2"));
        assert!(missing[1].starts_with("ID_AA64ISAR0_EL1.RNDR"));
        // FP = 0xf means no FP: less than FP = 0.
        let no_fp = IdRegisters {
            pfr0: 0x000f_0011,
            ..ours
        };
        assert!(no_fp.missing_from(&ours).is_empty());
        assert_eq!(ours.missing_from(&no_fp).len(), 1);
        // Limiting the richer set to ours leaves nothing to lose.
        let limited = host.limited_to(&ours);
        assert!(limited.missing_from(&ours).is_empty());
        assert_eq!(limited.isar0, ours.isar0);
    }
}
