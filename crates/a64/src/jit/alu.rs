//! Inline x86-64 code for the frequent integer instructions: add/sub
//! (immediate, shifted and extended register) and logical operations
//! (immediate and shifted register), variable shifts, bitfield moves and EXTR, moves of wide
//! immediates, conditional select and compare, multiply-add, ADR/ADRP and
//! every branch. Each emitter checks the exact encoding first and returns false
//! for anything it does not handle (reserved forms included), which then
//! goes through the handler. The handlers in `insn/` are the reference;
//! the differential tests run this code against QEMU.

use std::mem::offset_of;

use super::x86::{Alu, Asm, Cc, Shift, R};
use crate::cpu::{Cpu, CONDITIONS};

const CPU: R = R::Rbx;
const X0: i32 = offset_of!(Cpu, x) as i32;
const SP: i32 = offset_of!(Cpu, sp) as i32;
const PC: i32 = offset_of!(Cpu, pc) as i32;
const NZCV: i32 = offset_of!(Cpu, nzcv) as i32;

fn field(raw: u32, hi: u32, lo: u32) -> u32 {
    raw >> lo & ((1 << (hi - lo + 1)) - 1)
}

fn sext(v: u64, bits: u32) -> i64 {
    ((v << (64 - bits)) as i64) >> (64 - bits)
}

/// Loads Xn (31 reads as zero: `x[31]` is kept zero), 32 or 64 bits.
fn load_x(a: &mut Asm, w: bool, dst: R, n: u32) {
    a.load(w, dst, CPU, X0 + 8 * n as i32);
}

/// Loads Xn where 31 means SP.
fn load_xsp(a: &mut Asm, w: bool, dst: R, n: u32) {
    let disp = if n == 31 { SP } else { X0 + 8 * n as i32 };
    a.load(w, dst, CPU, disp);
}

/// Stores a result (already zero-extended for 32-bit forms) to Xd; XZR discards it.
fn store_x(a: &mut Asm, d: u32, src: R) {
    if d != 31 {
        a.store(true, CPU, X0 + 8 * d as i32, src);
    }
}

/// Stores to Xd where 31 means SP.
fn store_xsp(a: &mut Asm, d: u32, src: R) {
    let disp = if d == 31 { SP } else { X0 + 8 * d as i32 };
    a.store(true, CPU, disp, src);
}

/// NZCV from the host flags of the add/sub/test just executed
/// (ARM's carry after a subtraction is the inverse of the host's borrow).
fn store_nzcv(a: &mut Asm, carry: Cc) {
    a.setcc(Cc::S, R::Rcx);
    a.setcc(Cc::E, R::Rdx);
    a.setcc(carry, R::Rsi);
    a.setcc(Cc::O, R::Rdi);
    a.shift_imm(false, Shift::Shl, R::Rcx, 31);
    a.shift_imm(false, Shift::Shl, R::Rdx, 30);
    a.shift_imm(false, Shift::Shl, R::Rsi, 29);
    a.shift_imm(false, Shift::Shl, R::Rdi, 28);
    a.alu(false, Alu::Or, R::Rcx, R::Rdx);
    a.alu(false, Alu::Or, R::Rcx, R::Rsi);
    a.alu(false, Alu::Or, R::Rcx, R::Rdi);
    a.store32(CPU, NZCV, R::Rcx);
}

/// NZCV after the host add (or, with `sub`, subtract) just executed.
fn store_add_sub_nzcv(a: &mut Asm, sub: bool) {
    store_nzcv(a, if sub { Cc::Ae } else { Cc::B });
}

/// Writes an add/sub result in RAX to Xd, with NZCV for the flag-setting
/// forms, which write XZR for register 31; the others write SP.
fn store_add_sub(a: &mut Asm, d: u32, sub: bool, flags: bool) {
    if flags {
        store_add_sub_nzcv(a, sub);
        store_x(a, d, R::Rax);
    } else {
        store_xsp(a, d, R::Rax);
    }
}

/// NZCV of a logical result in `r`: N and Z from it, C and V clear.
fn store_nz(a: &mut Asm, w: bool, r: R) {
    a.test(w, r, r);
    a.setcc(Cc::S, R::Rcx);
    a.setcc(Cc::E, R::Rdx);
    a.shift_imm(false, Shift::Shl, R::Rcx, 31);
    a.shift_imm(false, Shift::Shl, R::Rdx, 30);
    a.alu(false, Alu::Or, R::Rcx, R::Rdx);
    a.store32(CPU, NZCV, R::Rcx);
}

/// Sets the host carry flag to whether condition `cond` holds.
fn condition_to_carry(a: &mut Asm, cond: u32) {
    a.load(false, R::Rax, CPU, NZCV);
    a.shift_imm(false, Shift::Shr, R::Rax, 28);
    a.mov_imm(R::Rcx, CONDITIONS[cond as usize & 15] as u64);
    a.bt(false, R::Rcx, R::Rax);
}

/// Shifts `r` by the ARM shift type and amount.
fn shift_reg(a: &mut Asm, w: bool, r: R, kind: u32, amount: u32) {
    if amount == 0 {
        return;
    }
    let op = match kind {
        0 => Shift::Shl,
        1 => Shift::Shr,
        2 => Shift::Sar,
        _ => Shift::Ror,
    };
    a.shift_imm(w, op, r, amount as u8);
}

/// Emits `raw` inline when it is one of the handled forms.
pub(super) fn emit(a: &mut Asm, raw: u32, pc: u64) -> bool {
    let w = raw >> 31 == 1;
    let (d, n, m) = (raw & 31, raw >> 5 & 31, raw >> 16 & 31);
    // ADD/ADDS/SUB/SUBS (immediate).
    if raw & 0x1f80_0000 == 0x1100_0000 {
        let (sub, flags) = (raw >> 30 & 1 == 1, raw >> 29 & 1 == 1);
        let imm = field(raw, 21, 10) << (12 * field(raw, 22, 22));
        load_xsp(a, w, R::Rax, n);
        a.alu_imm(w, if sub { Alu::Sub } else { Alu::Add }, R::Rax, imm as i32);
        store_add_sub(a, d, sub, flags);
        return true;
    }
    // ADD/ADDS/SUB/SUBS (shifted register).
    if raw & 0x1f20_0000 == 0x0b00_0000 {
        let (kind, amount) = (field(raw, 23, 22), field(raw, 15, 10));
        if kind == 3 || (!w && amount >= 32) {
            return false;
        }
        let (sub, flags) = (raw >> 30 & 1 == 1, raw >> 29 & 1 == 1);
        load_x(a, w, R::Rcx, m);
        shift_reg(a, w, R::Rcx, kind, amount);
        load_x(a, w, R::Rax, n);
        a.alu(w, if sub { Alu::Sub } else { Alu::Add }, R::Rax, R::Rcx);
        if flags {
            store_add_sub_nzcv(a, sub);
        }
        store_x(a, d, R::Rax);
        return true;
    }
    // AND/BIC/ORR/ORN/EOR/EON/ANDS/BICS (shifted register).
    if raw & 0x1f00_0000 == 0x0a00_0000 {
        let (kind, amount) = (field(raw, 23, 22), field(raw, 15, 10));
        if !w && amount >= 32 {
            return false;
        }
        let opc = field(raw, 30, 29);
        load_x(a, w, R::Rcx, m);
        shift_reg(a, w, R::Rcx, kind, amount);
        if raw >> 21 & 1 == 1 {
            a.not(w, R::Rcx);
        }
        if opc == 1 && n == 31 {
            // MOV (register) and MVN.
            if !w {
                a.mov32(R::Rcx, R::Rcx);
            }
            store_x(a, d, R::Rcx);
            return true;
        }
        load_x(a, w, R::Rax, n);
        let op = [Alu::And, Alu::Or, Alu::Xor, Alu::And][opc as usize];
        a.alu(w, op, R::Rax, R::Rcx);
        if opc == 3 {
            store_nz(a, w, R::Rax);
        }
        store_x(a, d, R::Rax);
        return true;
    }
    // MOVN/MOVZ/MOVK.
    if raw & 0x1f80_0000 == 0x1280_0000 {
        let (opc, hw) = (field(raw, 30, 29), field(raw, 22, 21));
        if opc == 1 || (!w && hw >= 2) {
            return false;
        }
        let shift = 16 * hw;
        let imm = (field(raw, 20, 5) as u64) << shift;
        if d == 31 {
            return true;
        }
        let width_mask = if w { u64::MAX } else { 0xffff_ffff };
        match opc {
            0 => a.store_imm(CPU, X0 + 8 * d as i32, !imm & width_mask, R::Rax),
            2 => a.store_imm(CPU, X0 + 8 * d as i32, imm, R::Rax),
            _ => {
                load_x(a, w, R::Rax, d);
                a.mov_imm(R::Rcx, !(0xffffu64 << shift) & width_mask);
                a.alu(true, Alu::And, R::Rax, R::Rcx);
                a.mov_imm(R::Rcx, imm);
                a.alu(true, Alu::Or, R::Rax, R::Rcx);
                store_x(a, d, R::Rax);
            }
        }
        return true;
    }
    // CSEL/CSINC/CSINV/CSNEG.
    if raw & 0x3fe0_0800 == 0x1a80_0000 {
        let variant = field(raw, 30, 30) << 1 | field(raw, 10, 10);
        load_x(a, w, R::R8, m);
        match variant {
            1 => a.alu_imm(w, Alu::Add, R::R8, 1),
            2 => a.not(w, R::R8),
            3 => a.neg(w, R::R8),
            _ => {}
        }
        if !w {
            a.mov32(R::R8, R::R8);
        }
        load_x(a, w, R::R9, n);
        condition_to_carry(a, field(raw, 15, 12));
        // Condition false: the (transformed) second operand.
        a.cmov(Cc::Ae, R::R9, R::R8);
        store_x(a, d, R::R9);
        return true;
    }
    // LSLV/LSRV/ASRV/RORV: the host masks the amount as A64 does.
    if raw & 0x7fe0_f000 == 0x1ac0_2000 {
        load_x(a, w, R::Rax, n);
        load_x(a, true, R::Rcx, m);
        let op = [Shift::Shl, Shift::Shr, Shift::Sar, Shift::Ror][field(raw, 11, 10) as usize];
        a.shift_cl(w, op, R::Rax);
        store_x(a, d, R::Rax);
        return true;
    }
    // MADD/MSUB.
    if raw & 0x7fe0_0000 == 0x1b00_0000 {
        let ra = field(raw, 14, 10);
        load_x(a, w, R::Rcx, n);
        load_x(a, w, R::Rdx, m);
        a.imul(w, R::Rcx, R::Rdx);
        load_x(a, w, R::Rax, ra);
        let op = if raw >> 15 & 1 == 1 {
            Alu::Sub
        } else {
            Alu::Add
        };
        a.alu(w, op, R::Rax, R::Rcx);
        store_x(a, d, R::Rax);
        return true;
    }
    // ADR/ADRP.
    if raw & 0x1f00_0000 == 0x1000_0000 {
        let imm = sext((field(raw, 23, 5) << 2 | field(raw, 30, 29)) as u64, 21);
        let value = if raw >> 31 == 1 {
            (pc & !0xfff).wrapping_add((imm << 12) as u64)
        } else {
            pc.wrapping_add(imm as u64)
        };
        if d != 31 {
            a.store_imm(CPU, X0 + 8 * d as i32, value, R::Rax);
        }
        return true;
    }
    emit_bits(a, raw) || emit_compare(a, raw) || emit_branch(a, raw, pc)
}

/// Logical (immediate), SBFM/BFM/UBFM and EXTR.
fn emit_bits(a: &mut Asm, raw: u32) -> bool {
    let w = raw >> 31 == 1;
    let (d, n, m) = (raw & 31, raw >> 5 & 31, raw >> 16 & 31);
    let size = if w { 64 } else { 32 };
    // AND/ORR/EOR/ANDS (immediate); a reserved mask reads as 0 in the table.
    if raw & 0x1f80_0000 == 0x1200_0000 {
        let imm =
            crate::insn::int::logical_immediates()[(raw >> 31 << 13 | field(raw, 22, 10)) as usize];
        if imm == 0 {
            return false;
        }
        let opc = field(raw, 30, 29);
        load_x(a, w, R::Rax, n);
        a.mov_imm(R::Rcx, imm);
        a.alu(
            w,
            [Alu::And, Alu::Or, Alu::Xor, Alu::And][opc as usize],
            R::Rax,
            R::Rcx,
        );
        if opc == 3 {
            store_nz(a, w, R::Rax);
            store_x(a, d, R::Rax);
        } else {
            store_xsp(a, d, R::Rax);
        }
        return true;
    }
    // SBFM/BFM/UBFM: the field is moved to the top with one left shift and
    // back down to its place with one logical or arithmetic right shift.
    if raw & 0x1f80_0000 == 0x1300_0000 {
        let (opc, immr, imms) = (field(raw, 30, 29), field(raw, 21, 16), field(raw, 15, 10));
        if opc == 3 || (raw >> 22 & 1 == 1) != w || (!w && (immr >= 32 || imms >= 32)) {
            return false;
        }
        let left = size - 1 - imms;
        let right = if imms >= immr {
            left + immr
        } else {
            immr - 1 - imms
        };
        load_x(a, w, R::Rax, n);
        if left != 0 {
            a.shift_imm(w, Shift::Shl, R::Rax, left as u8);
        }
        if right != 0 {
            let op = if opc == 0 { Shift::Sar } else { Shift::Shr };
            a.shift_imm(w, op, R::Rax, right as u8);
        }
        if opc == 1 {
            // BFM keeps the destination's bits outside the field.
            let (width, lsb) = if imms >= immr {
                (imms - immr + 1, 0)
            } else {
                (imms + 1, size - immr)
            };
            let ones = if width == 64 {
                u64::MAX
            } else {
                (1u64 << width) - 1
            };
            let mask = ones << lsb;
            let keep = !mask & if w { u64::MAX } else { 0xffff_ffff };
            load_x(a, w, R::Rdx, d);
            a.mov_imm(R::Rcx, keep);
            a.alu(true, Alu::And, R::Rdx, R::Rcx);
            a.alu(true, Alu::Or, R::Rax, R::Rdx);
        }
        store_x(a, d, R::Rax);
        return true;
    }
    // EXTR (ROR when Rn = Rm).
    if raw & 0x7fa0_0000 == 0x1380_0000 {
        let lsb = field(raw, 15, 10);
        if (raw >> 22 & 1 == 1) != w || (!w && lsb >= 32) {
            return false;
        }
        load_x(a, w, R::Rax, m);
        if lsb != 0 {
            load_x(a, w, R::Rcx, n);
            a.shift_imm(w, Shift::Shr, R::Rax, lsb as u8);
            a.shift_imm(w, Shift::Shl, R::Rcx, (size - lsb) as u8);
            a.alu(w, Alu::Or, R::Rax, R::Rcx);
        }
        store_x(a, d, R::Rax);
        return true;
    }
    false
}

/// ADD/ADDS/SUB/SUBS (extended register) and CCMP/CCMN.
fn emit_compare(a: &mut Asm, raw: u32) -> bool {
    let w = raw >> 31 == 1;
    let (d, n, m) = (raw & 31, raw >> 5 & 31, raw >> 16 & 31);
    let (sub, flags) = (raw >> 30 & 1 == 1, raw >> 29 & 1 == 1);
    if raw & 0x1fe0_0000 == 0x0b20_0000 {
        let (option, amount) = (field(raw, 15, 13), field(raw, 12, 10));
        if amount > 4 {
            return false;
        }
        // Extend Xm from 8/16/32/64 bits (sign or zero), then shift left.
        let bits = 8 << (option & 3);
        load_x(a, true, R::Rcx, m);
        if bits < 64 {
            a.shift_imm(true, Shift::Shl, R::Rcx, (64 - bits) as u8);
            let op = if option >= 4 { Shift::Sar } else { Shift::Shr };
            a.shift_imm(true, op, R::Rcx, (64 - bits) as u8);
        }
        if amount != 0 {
            a.shift_imm(true, Shift::Shl, R::Rcx, amount as u8);
        }
        load_xsp(a, w, R::Rax, n);
        a.alu(w, if sub { Alu::Sub } else { Alu::Add }, R::Rax, R::Rcx);
        store_add_sub(a, d, sub, flags);
        return true;
    }
    // CCMN/CCMP (register and immediate): compare if the condition holds,
    // else NZCV from the instruction.
    let immediate = match raw & 0x3fe0_0c10 {
        0x3a40_0000 => false,
        0x3a40_0800 => true,
        _ => return false,
    };
    condition_to_carry(a, field(raw, 15, 12));
    let otherwise = a.jcc(Cc::Ae);
    load_x(a, w, R::Rax, n);
    if immediate {
        a.mov_imm(R::Rcx, m as u64);
    } else {
        load_x(a, w, R::Rcx, m);
    }
    a.alu(w, if sub { Alu::Sub } else { Alu::Add }, R::Rax, R::Rcx);
    store_add_sub_nzcv(a, sub);
    let done = a.jmp();
    a.bind(otherwise);
    a.mov_imm(R::Rcx, (field(raw, 3, 0) << 28) as u64);
    a.store32(CPU, NZCV, R::Rcx);
    a.bind(done);
    true
}

/// Every branch: sets the PC (and X30 for the linking forms).
fn emit_branch(a: &mut Asm, raw: u32, pc: u64) -> bool {
    let next = pc.wrapping_add(4);
    // B, BL.
    if raw & 0x7c00_0000 == 0x1400_0000 {
        let target = pc.wrapping_add((sext(field(raw, 25, 0) as u64, 26) << 2) as u64);
        if raw >> 31 == 1 {
            a.store_imm(CPU, X0 + 8 * 30, next, R::Rax);
        }
        a.store_imm(CPU, PC, target, R::Rax);
        return true;
    }
    let imm19 = pc.wrapping_add((sext(field(raw, 23, 5) as u64, 19) << 2) as u64);
    // Select between `target` (host flag condition `taken`) and the next PC.
    let select = |a: &mut Asm, taken: Cc, target: u64| {
        a.mov_imm(R::Rax, next);
        a.mov_imm(R::Rdx, target);
        a.cmov(taken, R::Rax, R::Rdx);
        a.store(true, CPU, PC, R::Rax);
    };
    // B.cond.
    if raw & 0xff00_0010 == 0x5400_0000 {
        condition_to_carry(a, raw & 15);
        select(a, Cc::B, imm19);
        return true;
    }
    // CBZ/CBNZ.
    if raw & 0x7e00_0000 == 0x3400_0000 {
        let w = raw >> 31 == 1;
        load_x(a, w, R::Rcx, raw & 31);
        a.test(w, R::Rcx, R::Rcx);
        select(a, if raw >> 24 & 1 == 0 { Cc::E } else { Cc::Ne }, imm19);
        return true;
    }
    // TBZ/TBNZ.
    if raw & 0x7e00_0000 == 0x3600_0000 {
        let bit = field(raw, 23, 19) | field(raw, 31, 31) << 5;
        let target = pc.wrapping_add((sext(field(raw, 18, 5) as u64, 14) << 2) as u64);
        load_x(a, true, R::Rcx, raw & 31);
        a.bt_imm(true, R::Rcx, bit as u8);
        select(a, if raw >> 24 & 1 == 0 { Cc::Ae } else { Cc::B }, target);
        return true;
    }
    // BR, BLR, RET (no pointer authentication).
    let n = raw >> 5 & 31;
    match raw & 0xffff_fc1f {
        0xd61f_0000 | 0xd65f_0000 => {
            load_x(a, true, R::Rax, n);
            a.store(true, CPU, PC, R::Rax);
            true
        }
        0xd63f_0000 => {
            load_x(a, true, R::Rax, n);
            a.store_imm(CPU, X0 + 8 * 30, next, R::Rcx);
            a.store(true, CPU, PC, R::Rax);
            true
        }
        _ => false,
    }
}
