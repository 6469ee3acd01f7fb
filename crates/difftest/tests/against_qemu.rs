//! Random instructions of every class, on our CPU and on qemu-aarch64, must
//! leave identical state. `DIFFTEST_COUNT` scales the per-class count (the
//! default totals over 200,000 instructions); `DIFFTEST_SEED` changes the seed.

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
        Err(_) => default,
    }
}

#[test]
fn every_class_matches_qemu() {
    let classes = difftest::classes();
    let per_class = env_number("DIFFTEST_COUNT", (200_000 / classes.len() as u64) + 1000) as usize;
    let seed = env_number("DIFFTEST_SEED", 2026);
    let mut total = 0;
    let mut failures = Vec::new();
    for class in classes {
        let report = difftest::run_class(class, per_class, seed, 5)
            .unwrap_or_else(|e| panic!("{class}: {e}"));
        println!(
            "{class:<10} {:>7} instructions, {} mismatches",
            report.cases, report.mismatches
        );
        total += report.cases;
        if report.mismatches > 0 {
            failures.push(format!(
                "{class}: {} mismatches {:?}\n{}",
                report.mismatches,
                report.by_mnemonic,
                report.details.join("\n")
            ));
        }
    }
    println!("{total} instructions in all");
    assert!(
        total >= 200_000 || std::env::var("DIFFTEST_COUNT").is_ok(),
        "the default run must cover 200,000 instructions"
    );
    assert!(
        failures.is_empty(),
        "mismatches against qemu-aarch64:\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_wrong_result_is_reported() {
    // The comparison itself must notice a difference: flip one register of a real outcome.
    let case = difftest::protocol::Case {
        regs: Default::default(),
        insn: 0x9100_1420, // add x0, x1, #5
        insn2: difftest::protocol::BRK_FILL,
        mem_seed: 1,
    };
    let (image, qemu) = difftest::run_qemu(&[case]).expect("harness runs");
    let mut ours = difftest::ours::OurSide::new(&image).run(&case);
    assert!(difftest::differences(case.insn, &ours, &qemu[0]).is_empty());
    assert_eq!(ours.regs.x[0], 5);
    ours.regs.x[0] ^= 1;
    let diff = difftest::differences(case.insn, &ours, &qemu[0]);
    assert_eq!(diff, vec!["x0: ours 0x4 qemu 0x5".to_string()]);
}
