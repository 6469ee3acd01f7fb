//! Code generation for one block: a prologue, each instruction inline or
//! as a call to its shim, an exit path per instruction that can stop, and
//! at the end a jump to a remembered successor block when nothing asks for
//! the dispatcher (budget, interrupt lines, changed translations).

use std::mem::{offset_of, size_of};

use super::x86::{Alu, Asm, Cc, Label, Shift, R};
use super::{BlockShape, JitCtx, Link, Shim, TARGETS};
use crate::cpu::Cpu;
use crate::decode::Insn;
use crate::tlb::Tlb;

/// Registers that hold the CPU, the context and the block's instructions.
const CPU: R = R::Rbx;
const CTX: R = R::R12;
const INSNS: R = R::R13;

const PC: i32 = offset_of!(Cpu, pc) as i32;
const RETIRED: i32 = offset_of!(Cpu, insns_retired) as i32;
const GENERATION: i32 = (offset_of!(Cpu, tlb) + offset_of!(Tlb, generation)) as i32;
const LIMIT: i32 = offset_of!(JitCtx, limit) as i32;
const SIGNALS: i32 = offset_of!(JitCtx, signals) as i32;
const LAST_LINKS: i32 = offset_of!(JitCtx, last_links) as i32;
const STOPPED: i32 = offset_of!(JitCtx, stopped_insns) as i32;
const TARGET_TABLE: i32 = offset_of!(JitCtx, targets) as i32;
const LINK_PC: i32 = offset_of!(Link, pc) as i32;
const LINK_GEN: i32 = offset_of!(Link, generation) as i32;
const LINK_TARGET: i32 = offset_of!(Link, target) as i32;
const LINK_SIZE: i32 = size_of::<Link>() as i32;
const _: () = assert!(LINK_SIZE == 24, "the target lookup scales by 24");

/// Compiles a block to x86-64 code; returns it and the offset of its chain entry.
pub(super) fn compile_block(block: &BlockShape<'_>, shims: &[Shim]) -> (Vec<u8>, usize) {
    // About 40 bytes per instruction and 200 for the prologue and chaining.
    let mut a = Asm::with_capacity(256 + 48 * block.insns.len());
    // Five pushes after the return address keep calls 16-byte aligned.
    for r in [R::Rbx, R::R12, R::R13, R::R14, R::R15] {
        a.push(r);
    }
    a.mov(CPU, R::Rdi);
    a.mov(CTX, R::Rsi);
    let chain_entry = a.here();
    a.mov_imm(INSNS, block.insns.as_ptr() as u64);
    let mut stops: Vec<(Label, usize)> = Vec::new();
    for (k, (insn, shim)) in block.insns.iter().zip(shims).enumerate() {
        if super::alu::emit(&mut a, insn.raw, insn.pc) {
            continue;
        }
        let mut call = |a: &mut Asm| {
            a.mov(R::Rdi, CPU);
            a.mov(R::Rsi, CTX);
            a.lea(R::Rdx, INSNS, (k * size_of::<Insn>()) as i32);
            a.mov_imm(R::Rax, *shim as usize as u64);
            a.call(R::Rax);
            a.test_al();
            stops.push((a.jcc(Cc::Ne), k));
        };
        if !super::ldst::emit(&mut a, insn.raw, &mut call)
            && !super::sysreg::emit(&mut a, insn.raw, &mut call)
        {
            call(&mut a);
        }
    }
    // The block ran to its end: account for it as the dispatcher would.
    if !block.ends_with_jump {
        a.store_imm(CPU, PC, block.end_pc, R::Rax);
    }
    a.alu_mem_imm(Alu::Add, CPU, RETIRED, block.insns.len() as i32);
    a.mov_imm(R::Rcx, block.links as u64);
    a.store(true, CTX, LAST_LINKS, R::Rcx);
    // Chain only within the budget, with no line up, to a known successor.
    let mut to_dispatcher = Vec::new();
    a.load(true, R::Rax, CPU, RETIRED);
    a.alu_load(true, Alu::Cmp, R::Rax, CTX, LIMIT);
    to_dispatcher.push(a.jcc(Cc::Ae));
    a.load(true, R::Rax, CTX, SIGNALS);
    a.load(false, R::Rax, R::Rax, 0);
    a.test(false, R::Rax, R::Rax);
    to_dispatcher.push(a.jcc(Cc::Ne));
    a.load(true, R::Rdx, CPU, GENERATION);
    a.load(true, R::Rax, CPU, PC);
    let mut missed = Vec::new();
    for slot in 0..2 {
        let base = slot * LINK_SIZE;
        a.alu_load(true, Alu::Cmp, R::Rax, R::Rcx, base + LINK_PC);
        let other = a.jcc(Cc::Ne);
        a.alu_load(true, Alu::Cmp, R::Rdx, R::Rcx, base + LINK_GEN);
        missed.push(a.jcc(Cc::Ne));
        a.jmp_mem(R::Rcx, base + LINK_TARGET);
        a.bind(other);
    }
    for l in missed {
        a.bind(l);
    }
    // Neither link: the CPU's table of recent block entries, same rules.
    a.mov(R::Rcx, R::Rax);
    a.shift_imm(true, Shift::Shr, R::Rcx, 2);
    a.alu_imm(false, Alu::And, R::Rcx, (TARGETS - 1) as i32);
    a.mov(R::R8, R::Rcx);
    a.alu(true, Alu::Add, R::Rcx, R::R8);
    a.alu(true, Alu::Add, R::Rcx, R::R8);
    a.shift_imm(true, Shift::Shl, R::Rcx, 3);
    a.alu_load(true, Alu::Add, R::Rcx, CTX, TARGET_TABLE);
    a.alu_load(true, Alu::Cmp, R::Rax, R::Rcx, LINK_PC);
    to_dispatcher.push(a.jcc(Cc::Ne));
    a.alu_load(true, Alu::Cmp, R::Rdx, R::Rcx, LINK_GEN);
    to_dispatcher.push(a.jcc(Cc::Ne));
    a.jmp_mem(R::Rcx, LINK_TARGET);
    for l in to_dispatcher {
        a.bind(l);
    }
    a.mov_imm(R::Rax, 0);
    let done = a.here();
    for r in [R::R15, R::R14, R::R13, R::R12, R::Rbx] {
        a.pop(r);
    }
    a.ret();
    for (label, k) in stops {
        a.bind(label);
        a.store(true, CTX, STOPPED, INSNS);
        a.mov_imm(R::Rax, k as u64 + 1);
        a.jmp_back(done);
    }
    (a.code, chain_entry)
}
