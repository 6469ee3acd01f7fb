//! The dispatcher's loop detector ([`Exit::ExceptionLoop`]) must tell a
//! guest that makes progress between exceptions from one that is stuck,
//! even when the exception handler runs entirely in chained compiled code
//! and never shows the dispatcher a completed block (as Linux's page-fault
//! handler does for every page `copy_to_user` touches).

use a64::{Cpu, Exit, FlatMemory};

/// EL1 with the MMU off: a load from outside memory aborts; the handler at
/// VBAR + 0x200 counts, returns to the load 99 times, then skips it.
fn faulting_program(mem: &mut FlatMemory) {
    mem.load_code(
        0x1000,
        &[
            0xd2800001, // mov x1, #0
            0xd2840002, // mov x2, #0x2000
            0xd518c002, // msr vbar_el1, x2
            0xd2b20003, // mov x3, #0x90000000
            0xf9400064, // retry: ldr x4, [x3]
            0xd503207f, // wfi
        ],
    );
    mem.load_code(
        0x2200,
        &[
            0x91000421, // add x1, x1, #1
            0xf101903f, // cmp x1, #100
            0x54000083, // b.lo back
            0xd5384025, // mrs x5, elr_el1
            0x910010a5, // add x5, x5, #4
            0xd5184025, // msr elr_el1, x5
            0xd69f03e0, // back: eret
        ],
    );
}

#[test]
fn a_hundred_handled_faults_in_a_row_are_progress_not_a_loop() {
    let mut mem = FlatMemory::new(0x1000, 0x4000);
    faulting_program(&mut mem);
    let mut cpu = Cpu::new_system(0);
    cpu.pc = 0x1000;
    let exit = cpu.run(&mut mem, 1_000_000);
    assert_eq!(exit, Exit::Wfi, "x1 = {}", cpu.xreg(1));
    assert_eq!(cpu.xreg(1), 100, "the handler ran once per fault");
    assert_eq!(
        cpu.pc, 0x1014,
        "the PC is at the WFI, past the skipped load"
    );
}

#[test]
fn a_vector_that_faults_itself_is_a_loop() {
    let mut mem = FlatMemory::new(0x1000, 0x4000);
    faulting_program(&mut mem);
    // The handler's first instruction now loads from outside memory too.
    mem.load_code(0x2200, &[0xf9400064]);
    let mut cpu = Cpu::new_system(0);
    cpu.pc = 0x1000;
    assert_eq!(cpu.run(&mut mem, 1_000_000), Exit::ExceptionLoop);
}
