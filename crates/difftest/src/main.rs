//! `difftest`: compare Pocketvisor's CPU with qemu-aarch64 on random instructions.

use std::process::ExitCode;

const USAGE: &str =
    "usage: difftest [--class C]... [--count N] [--seed S] [--max-report K] | --coverage
  Runs N random instructions per class (default 20000, all classes) on our CPU and on
  qemu-aarch64 from the same state and reports every difference.
  --coverage prints the encodings our CPU's decode tables implement, by class.";

fn main() -> ExitCode {
    let mut classes = Vec::new();
    let mut count = 20_000usize;
    let mut seed = 1u64;
    let mut max_report = 10usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed: Result<(), String> = match a.as_str() {
            "--class" => value("--class").map(|v| classes.push(v)),
            "--count" => value("--count").and_then(|v| {
                v.parse()
                    .map(|n| count = n)
                    .map_err(|e| format!("--count: {e}"))
            }),
            "--seed" => value("--seed").and_then(|v| {
                v.parse()
                    .map(|n| seed = n)
                    .map_err(|e| format!("--seed: {e}"))
            }),
            "--max-report" => value("--max-report").and_then(|v| {
                v.parse()
                    .map(|n| max_report = n)
                    .map_err(|e| format!("--max-report: {e}"))
            }),
            "--coverage" => {
                print!("{}", a64::coverage_report());
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}\n  classes: {}", difftest::classes().join(", "));
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        if let Err(e) = parsed {
            eprintln!("difftest: {e}");
            return ExitCode::from(2);
        }
    }
    if classes.is_empty() {
        classes = difftest::classes().into_iter().map(String::from).collect();
    }
    let mut total = 0;
    let mut bad = 0;
    for class in &classes {
        match difftest::run_class(class, count, seed, max_report) {
            Ok(r) => {
                println!(
                    "{class:<10} {:>8} instructions ({:>6} completed) {:>6} mismatches {:?}",
                    r.cases, r.completed, r.mismatches, r.by_mnemonic
                );
                for d in &r.details {
                    println!("  {d}");
                }
                total += r.cases;
                bad += r.mismatches;
            }
            Err(e) => {
                eprintln!("difftest: {class}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    println!("total: {total} instructions, {bad} mismatches");
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
