//! Reads of SP_EL0, TPIDR_EL1 and TPIDR_EL0, which compiled code does inline
//! in their plain cases: the values at EL1, TPIDR_EL0 at EL0, and
//! Undefined Instruction for SP_EL0/TPIDR_EL1 at EL0 or SP_EL0 with SPSel 0.
//! Blocks are compiled from their first run so the inline code is what runs.

use a64::{Cpu, Exit, FlatMemory};

/// EL1 (MMU off): vectors at 0x2000, SP_EL0 = 0x1234, TPIDR_EL0 = 0x5678,
/// TPIDR_EL1 = 0x9abc; then case x9: 0 reads all three at EL1, 1..=3 run
/// the EL0 read at 0x1800 + 8·(x9-1) followed by SVC, 4 reads SP_EL0 with
/// SPSel = 0. Every exception handler puts ESR_EL1 in x1 and waits.
fn run_case(case: u64) -> Cpu {
    let mut mem = FlatMemory::new(0x1000, 0x2000);
    mem.load_code(
        0x1000,
        &[
            0xd2840002, 0xd518c002, 0xd2824683, 0xd5184103, 0xd28acf04, 0xd51bd044, 0xd2935785,
            0xd518d085, 0xb4000149, 0xf100113f, 0x54000180, 0xd1000526, 0xd37df0c6, 0xd2830007,
            0x8b0600e7, 0xd5184027, 0xd518401f, 0xd69f03e0, // eret to EL0
            0xd5384100, 0xd538d081, 0xd53bd04a, 0xd503207f, // EL1: mrs x0, x1, x10; wfi
            0xd50040bf, 0xd5384100, 0xd503207f, // msr spsel, #0; mrs x0, sp_el0; wfi
        ],
    );
    mem.load_code(
        0x1800,
        &[
            0xd5384100, 0xd4000001, // mrs x0, sp_el0; svc
            0xd538d080, 0xd4000001, // mrs x0, tpidr_el1; svc
            0xd53bd040, 0xd4000001, // mrs x0, tpidr_el0; svc
        ],
    );
    mem.load_code(0x2000, &[0xd5385201, 0xd503207f]); // current EL, SP0: x1 = ESR; wfi
    mem.load_code(0x2400, &[0xd5385201, 0xd503207f]); // lower EL: x1 = ESR; wfi
    let mut cpu = Cpu::new_system(0);
    cpu.compile_on_first_run();
    cpu.set_xreg(9, case);
    cpu.pc = 0x1000;
    assert_eq!(cpu.run(&mut mem, 10_000), Exit::Wfi, "case {case}");
    cpu
}

fn exception_class(cpu: &Cpu) -> u64 {
    cpu.xreg(1) >> 26
}

#[test]
fn el1_reads_see_the_values() {
    let cpu = run_case(0);
    assert_eq!(cpu.xreg(0), 0x1234, "SP_EL0");
    assert_eq!(cpu.xreg(1), 0x9abc, "TPIDR_EL1");
    assert_eq!(cpu.xreg(10), 0x5678, "TPIDR_EL0");
}

#[test]
fn el0_may_read_only_its_own_thread_pointer() {
    for case in [1, 2] {
        let cpu = run_case(case);
        assert_eq!(exception_class(&cpu), 0x00, "case {case}: Undefined");
        assert_eq!(cpu.xreg(0), 0, "case {case}: X0 untouched");
    }
    let cpu = run_case(3);
    assert_eq!(exception_class(&cpu), 0x15, "SVC after the read");
    assert_eq!(cpu.xreg(0), 0x5678);
}

#[test]
fn sp_el0_is_undefined_while_it_is_the_stack_pointer() {
    let cpu = run_case(4);
    assert_eq!(exception_class(&cpu), 0x00);
    assert_eq!(cpu.xreg(0), 0);
}
