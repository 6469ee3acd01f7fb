//! Inline loads and stores of general registers through the software TLB:
//! unsigned-offset, unscaled/pre/post-indexed, register-offset and pair
//! forms. The fast path checks the TLB entry of the access's last byte
//! (so an access crossing into another page, or a page not cached for this
//! kind of access, misses) and then touches host memory directly. A miss
//! runs the instruction's handler instead, which faults, fills the TLB or
//! goes to a device exactly as the interpreter does.

use std::mem::{offset_of, size_of};

use super::x86::{Alu, Asm, Cc, Label, Shift, R};
use crate::cpu::Cpu;
use crate::tlb::{Tlb, TlbEntry, TLB_ENTRIES};

const CPU: R = R::Rbx;
const X0: i32 = offset_of!(Cpu, x) as i32;
const SP: i32 = offset_of!(Cpu, sp) as i32;
const TLB_BASE: i32 = offset_of!(Cpu, tlb_base) as i32;
const TLB_ENTRIES_PTR: i32 = (offset_of!(Cpu, tlb) + offset_of!(Tlb, entries)) as i32;
const READ_TAG: i32 = offset_of!(TlbEntry, read) as i32;
const WRITE_TAG: i32 = offset_of!(TlbEntry, write) as i32;
const ADDEND: i32 = offset_of!(TlbEntry, addend) as i32;

fn field(raw: u32, hi: u32, lo: u32) -> u32 {
    raw >> lo & ((1 << (hi - lo + 1)) - 1)
}

fn sext(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

fn xsp(n: u32) -> i32 {
    if n == 31 {
        SP
    } else {
        X0 + 8 * n as i32
    }
}

/// How one general-register transfer moves data.
#[derive(Clone, Copy)]
struct Access {
    size: u8,
    load: bool,
    signed: bool,
    to64: bool,
}

/// The access of a single-register LDR/STR form (`size`, `opc`), if inlined:
/// not prefetches, not SIMD&FP registers, not unallocated forms.
fn single_access(raw: u32) -> Option<Access> {
    if raw >> 26 & 1 == 1 {
        return None;
    }
    let size = 1u8 << field(raw, 31, 30);
    match field(raw, 23, 22) {
        0 => Some(Access {
            size,
            load: false,
            signed: false,
            to64: true,
        }),
        1 => Some(Access {
            size,
            load: true,
            signed: false,
            to64: true,
        }),
        2 if size < 8 => Some(Access {
            size,
            load: true,
            signed: true,
            to64: true,
        }),
        3 if size < 4 => Some(Access {
            size,
            load: true,
            signed: true,
            to64: false,
        }),
        _ => None,
    }
}

/// Checks the TLB for `len` bytes at the guest address in RAX and turns RAX
/// into the host address; jumps to the returned label on a miss.
fn tlb_lookup(a: &mut Asm, len: i32, write: bool) -> Label {
    a.mov(R::Rcx, R::Rax);
    a.shift_imm(true, Shift::Shr, R::Rcx, 12);
    a.alu_imm(false, Alu::And, R::Rcx, TLB_ENTRIES as i32 - 1);
    a.alu_load(true, Alu::Add, R::Rcx, CPU, TLB_BASE);
    a.shift_imm(
        true,
        Shift::Shl,
        R::Rcx,
        size_of::<TlbEntry>().trailing_zeros() as u8,
    );
    a.alu_load(true, Alu::Add, R::Rcx, CPU, TLB_ENTRIES_PTR);
    a.lea(R::Rdx, R::Rax, len - 1);
    a.alu_imm(true, Alu::And, R::Rdx, -4096);
    a.alu_load(
        true,
        Alu::Cmp,
        R::Rdx,
        R::Rcx,
        if write { WRITE_TAG } else { READ_TAG },
    );
    let miss = a.jcc(Cc::Ne);
    a.alu_load(true, Alu::Add, R::Rax, R::Rcx, ADDEND);
    miss
}

/// Moves register `t` to or from host memory at RAX + `disp`.
fn transfer(a: &mut Asm, acc: Access, t: u32, disp: i32) {
    if acc.load {
        a.load_sized(acc.size, acc.signed, acc.to64, R::R9, R::Rax, disp);
        if t != 31 {
            a.store(true, CPU, X0 + 8 * t as i32, R::R9);
        }
    } else {
        a.load(true, R::R9, CPU, X0 + 8 * t as i32);
        a.store_sized(acc.size, R::Rax, disp, R::R9);
    }
}

/// Emits `raw` inline when it is a handled load/store; `slow` emits the
/// call of its handler for TLB misses.
pub(super) fn emit(a: &mut Asm, raw: u32, slow: &mut dyn FnMut(&mut Asm)) -> bool {
    let (t, n) = (raw & 31, raw >> 5 & 31);
    // Fast path body: returns the miss label; RAX holds the host address.
    let miss: Label;
    if raw & 0x3b00_0000 == 0x3900_0000 {
        // LDR/STR (immediate, unsigned offset).
        let Some(acc) = single_access(raw) else {
            return false;
        };
        let offset = field(raw, 21, 10) << field(raw, 31, 30);
        a.load(true, R::Rax, CPU, xsp(n));
        if offset != 0 {
            a.alu_imm(true, Alu::Add, R::Rax, offset as i32);
        }
        miss = tlb_lookup(a, acc.size as i32, !acc.load);
        transfer(a, acc, t, 0);
    } else if raw & 0x3b20_0000 == 0x3800_0000 {
        // LDUR/STUR, LDR/STR (pre/post-index); not the unprivileged forms.
        let mode = field(raw, 11, 10);
        let Some(acc) = single_access(raw) else {
            return false;
        };
        if mode == 2 {
            return false;
        }
        let offset = sext(field(raw, 20, 12) as u64, 9) as i32;
        a.load(true, R::Rax, CPU, xsp(n));
        a.mov(R::R8, R::Rax);
        a.alu_imm(true, Alu::Add, R::R8, offset);
        if mode != 1 {
            a.mov(R::Rax, R::R8);
        }
        miss = tlb_lookup(a, acc.size as i32, !acc.load);
        transfer(a, acc, t, 0);
        if mode & 1 == 1 {
            a.store(true, CPU, xsp(n), R::R8);
        }
    } else if raw & 0x3b20_0c00 == 0x3820_0800 {
        // LDR/STR (register offset).
        let option = field(raw, 15, 13);
        let Some(acc) = single_access(raw) else {
            return false;
        };
        if option & 2 == 0 {
            return false;
        }
        let m = field(raw, 20, 16);
        match option {
            2 => a.load(false, R::Rcx, CPU, X0 + 8 * m as i32),
            6 => a.load_sized(4, true, true, R::Rcx, CPU, X0 + 8 * m as i32),
            _ => a.load(true, R::Rcx, CPU, X0 + 8 * m as i32),
        }
        if raw >> 12 & 1 == 1 && acc.size > 1 {
            a.shift_imm(true, Shift::Shl, R::Rcx, acc.size.trailing_zeros() as u8);
        }
        a.load(true, R::Rax, CPU, xsp(n));
        a.alu(true, Alu::Add, R::Rax, R::Rcx);
        miss = tlb_lookup(a, acc.size as i32, !acc.load);
        transfer(a, acc, t, 0);
    } else if raw & 0x3e00_0000 == 0x2800_0000 {
        // LDP/STP (and LDNP/STNP) of 32- or 64-bit general registers.
        let (opc, mode, load) = (field(raw, 31, 30), field(raw, 24, 23), raw >> 22 & 1 == 1);
        let t2 = field(raw, 14, 10);
        if opc & 1 == 1 || (load && t == t2) {
            return false;
        }
        let size: u8 = if opc == 2 { 8 } else { 4 };
        let offset = (sext(field(raw, 21, 15) as u64, 7) << size.trailing_zeros()) as i32;
        let acc = Access {
            size,
            load,
            signed: false,
            to64: true,
        };
        a.load(true, R::Rax, CPU, xsp(n));
        a.mov(R::R8, R::Rax);
        a.alu_imm(true, Alu::Add, R::R8, offset);
        if mode != 1 {
            a.mov(R::Rax, R::R8);
        }
        miss = tlb_lookup(a, 2 * size as i32, !load);
        transfer(a, acc, t, 0);
        transfer(a, acc, t2, size as i32);
        if mode & 1 == 1 {
            a.store(true, CPU, xsp(n), R::R8);
        }
    } else {
        return false;
    }
    let done = a.jmp();
    a.bind(miss);
    slow(a);
    a.bind(done);
    true
}
