//! System: exception generation (SVC, HVC, SMC, BRK, HLT), hints, barriers,
//! and system register access (MRS, MSR, SYS).

use crate::bus::Bus;
use crate::cpu::{Cpu, Exit, Step};
use crate::decode::{Encoding, Insn};
use crate::insn::fields::*;

pub(crate) const ENCODINGS: &[Encoding] = &[
    Encoding::branch("11010100 000 iiiiiiiiiiiiiiii 000 01", "SVC", "system", svc),
    Encoding::branch("11010100 001 iiiiiiiiiiiiiiii 000 00", "BRK", "system", brk),
    Encoding::branch("11010100 010 iiiiiiiiiiiiiiii 000 00", "HLT", "system", hlt),
    Encoding::new(
        "11010101 00000011 0010 0000 000 11111",
        "NOP",
        "system",
        nop,
    ),
];

fn svc(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Insn) -> Step {
    cpu.stop(Exit::Svc(bits(i.raw, 20, 5) as u16))
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
