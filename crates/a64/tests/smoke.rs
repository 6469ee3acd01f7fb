//! End-to-end smoke test of the block loop: a small loop that counts down.

use a64::{Cpu, Exit, FlatMemory};

#[test]
fn countdown_loop_then_svc() {
    let mut mem = FlatMemory::new(0x1000, 0x4000);
    // movz x0, #5 ; loop: subs x0, x0, #1 ; (b.ne emulated with B to self is not yet here)
    mem.load_code(
        0x1000,
        &[
            0xd28000a0, // movz x0, #5
            0xd2800021, // movz x1, #1
            0x91000421, // add x1, x1, #1
            0xf1000400, // subs x0, x0, #1
            0xd4000001, // svc #0
        ],
    );
    let mut cpu = Cpu::new();
    cpu.pc = 0x1000;
    let exit = cpu.run(&mut mem, 1000);
    assert_eq!(exit, Exit::Svc(0));
    assert_eq!(cpu.pc, 0x1010);
    assert_eq!(cpu.xreg(0), 4);
    assert_eq!(cpu.xreg(1), 2);
    assert_eq!(cpu.nzcv, 0x2000_0000, "C set, no borrow");
}

#[test]
fn self_modifying_code_is_seen_after_block_boundary() {
    let mut mem = FlatMemory::new(0x1000, 0x4000);
    // 0x1000: movz x0,#1 ; svc ; 0x1008: ret-target
    mem.load_code(0x1000, &[0xd2800020, 0xd4000001]);
    let mut cpu = Cpu::new();
    cpu.pc = 0x1000;
    assert_eq!(cpu.run(&mut mem, 100), Exit::Svc(0));
    assert_eq!(cpu.xreg(0), 1);
    // The guest rewrites the first instruction to movz x0,#2 through a store:
    // emulate with the embedder API, which goes through the same write path.
    cpu.write_bytes(&mut mem, 0x1000, &0xd2800040u32.to_le_bytes())
        .unwrap();
    cpu.pc = 0x1000;
    assert_eq!(cpu.run(&mut mem, 100), Exit::Svc(0));
    assert_eq!(cpu.xreg(0), 2);
}

#[test]
fn unknown_encoding_is_undefined_not_a_panic() {
    let mut mem = FlatMemory::new(0x1000, 0x1000);
    mem.load_code(0x1000, &[0x0000_0000]);
    let mut cpu = Cpu::new();
    cpu.pc = 0x1000;
    assert_eq!(cpu.run(&mut mem, 10), Exit::Undefined(0));
    assert_eq!(cpu.pc, 0x1000);
}

#[test]
fn fetch_outside_memory_is_an_instruction_abort() {
    let mut mem = FlatMemory::new(0x1000, 0x1000);
    let mut cpu = Cpu::new();
    cpu.pc = 0x9000;
    assert_eq!(cpu.run(&mut mem, 10), Exit::InsnAbort { addr: 0x9000 });
}
