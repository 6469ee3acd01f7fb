//! AdvSIMD integer edge cases: reserved encodings are Undefined, FPSR.QC is
//! sticky and only set by active lanes, and random encodings never panic.

use a64::{Cpu, Exit, FlatMemory};

const BASE: u64 = 0x1000;
const QC: u32 = 1 << 27;

fn run(cpu: &mut Cpu, raw: u32) -> Exit {
    let mut mem = FlatMemory::new(BASE, 0x1000);
    mem.load_code(BASE, &[raw, 0xd400_0001]);
    cpu.flush_code_cache();
    cpu.flush_tlb();
    cpu.pc = BASE;
    cpu.run(&mut mem, 100)
}

#[test]
fn reserved_encodings_are_undefined() {
    // Each checked as unallocated with aarch64-linux-gnu-objdump.
    let reserved = [
        0x0ee0_8400u32, // ADD .1d (size 11, Q=0)
        0x4ee0_9c00,    // MUL .2d
        0x0e20_b400,    // SQDMULH .8b
        0x5e20_8400,    // ADD (scalar) size 00
        0x0eb1_b800,    // ADDV .2s
        0x0ee1_2800,    // XTN size 11
        0x0f40_0400,    // SSHR .1d (immh 1xxx, Q=0)
        0x0f40_8400,    // SHRN immh 1xxx
        0x0ee0_e000,    // PMULL .1q (crypto extension, not implemented)
        0x0e60_e000,    // PMULL size 01
        0x0f00_8000,    // MUL (by element) size 00
        0x0fc0_8000,    // MUL (by element) size 11
        0x5f20_0400,    // SSHR (scalar) with a 32-bit element
        0x0e60_5800,    // CNT size 01
        0x5eb1_b800,    // ADDP (scalar) size 10
        0x2e20_bc00,    // U=1 opcode 10111 of three same
        0x0ef1_b800,    // ADDV size 11
    ];
    for raw in reserved {
        let mut cpu = Cpu::new();
        cpu.v[0] = 0x1234;
        assert_eq!(run(&mut cpu, raw), Exit::Undefined(raw), "{raw:#010x}");
        assert_eq!(cpu.v[0], 0x1234, "{raw:#010x} changed V0");
        assert_eq!(cpu.pc, BASE);
    }
}

#[test]
fn qc_is_sticky_and_other_fpsr_bits_are_kept() {
    let mut cpu = Cpu::new();
    // sqadd v0.16b, v1.16b, v2.16b saturating in one lane.
    cpu.fpsr = 1; // IOC
    cpu.v[1] = 0x7f;
    cpu.v[2] = 0x01;
    assert_eq!(run(&mut cpu, 0x4e22_0c20), Exit::Svc(0));
    assert_eq!(cpu.v[0], 0x7f);
    assert_eq!(cpu.fpsr, 1 | QC);
    // A non-saturating sqadd leaves QC set.
    cpu.v[1] = 0x10;
    assert_eq!(run(&mut cpu, 0x4e22_0c20), Exit::Svc(0));
    assert_eq!(cpu.v[0], 0x11);
    assert_eq!(cpu.fpsr, 1 | QC);
}

#[test]
fn inactive_lanes_do_not_saturate() {
    let mut cpu = Cpu::new();
    // sqadd v0.8b, v1.8b, v2.8b: only the high halves would saturate.
    cpu.v[0] = u128::MAX;
    cpu.v[1] = 0x7f7f_7f7f_7f7f_7f7f_0000_0000_0000_0001;
    cpu.v[2] = 0x7f7f_7f7f_7f7f_7f7f_0000_0000_0000_0002;
    assert_eq!(run(&mut cpu, 0x0e22_0c20), Exit::Svc(0));
    assert_eq!(cpu.v[0], 3);
    assert_eq!(cpu.fpsr & QC, 0);
    // sqadd b0, b1, b2: only element 0 counts.
    cpu.v[1] = 0x7f00;
    cpu.v[2] = 0x7f01;
    assert_eq!(run(&mut cpu, 0x5e22_0c20), Exit::Svc(0));
    assert_eq!(cpu.v[0], 1);
    assert_eq!(cpu.fpsr & QC, 0);
}

/// xorshift64 for reproducible random encodings.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn random_simd_int_encodings_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut ran = 0;
    let mut mem = FlatMemory::new(BASE, 0x1000);
    let mut cpu = Cpu::new();
    for _ in 0..400_000 {
        // AdvSIMD data processing space: bits 28:25 = x111, bit 24 random.
        let raw = (next(&mut seed) as u32 & !(0b111 << 25)) | 0b111 << 25;
        if a64::decode(raw).map(|e| e.class) != Some("simd-int") {
            continue;
        }
        ran += 1;
        for r in 0..4 {
            cpu.v[r] = (next(&mut seed) as u128) << 64 | next(&mut seed) as u128;
        }
        mem.load_code(BASE, &[raw, 0xd400_0001]);
        cpu.flush_code_cache();
        cpu.pc = BASE;
        match cpu.run(&mut mem, 10) {
            Exit::Svc(0) | Exit::Undefined(_) => {}
            e => panic!("{raw:#010x}: unexpected exit {e:?}"),
        }
    }
    assert!(ran > 10_000, "only {ran} simd-int encodings generated");
}
