//! Every AdvSIMD integer form this CPU implements, run on fixed input sets
//! and compared with the results qemu-aarch64 produced for the same
//! instruction and inputs (see `simd_int_gen/gen.py`).

use a64::{Cpu, Exit, FlatMemory};

#[path = "simd_int_gen/cases.rs"]
#[rustfmt::skip]
mod cases;

const BASE: u64 = 0x1000;

/// Runs `raw` once with V0/V1/V2 = `set` and FPSR = 0; returns (V0, QC).
fn run(raw: u32, set: (u128, u128, u128)) -> Result<(u128, bool), Exit> {
    let mut mem = FlatMemory::new(BASE, 0x1000);
    mem.load_code(BASE, &[raw, 0xd400_0001]);
    let mut cpu = Cpu::new();
    cpu.compile_on_first_run();
    cpu.pc = BASE;
    cpu.v[0] = set.0;
    cpu.v[1] = set.1;
    cpu.v[2] = set.2;
    match cpu.run(&mut mem, 100) {
        Exit::Svc(0) => Ok((cpu.v[0], cpu.fpsr >> 27 & 1 != 0)),
        e => Err(e),
    }
}

#[test]
fn matches_qemu() {
    let mut failures = Vec::new();
    for (asm, raw, expected) in cases::CASES {
        assert_eq!(
            a64::decode(*raw).map(|e| e.class),
            Some("simd-int"),
            "{asm} ({raw:#010x}) is not decoded as simd-int"
        );
        for (k, set) in cases::SETS.iter().enumerate() {
            let got = run(*raw, *set);
            if got != Ok(expected[k]) {
                failures.push(format!(
                    "{asm} ({raw:#010x}) set {k}: got {got:x?}, qemu {:x?}",
                    expected[k]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
