//! Runs every `cargo fuzz` target in fuzz/ briefly (PV_FUZZ_SECONDS each,
//! default 10): each device's queue handling under coverage-guided input.
//! Needs cargo-fuzz (`cargo install cargo-fuzz --locked`; .ci/run does it).
//! Longer runs: `cargo fuzz run -s none TARGET` in the repository root.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_device_fuzz_target_runs_without_a_finding() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let version = Command::new(&cargo).args(["fuzz", "--version"]).output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "cargo-fuzz is needed for this test: cargo install cargo-fuzz --locked"
    );
    let list = Command::new(&cargo)
        .args(["fuzz", "list"])
        .current_dir(&root)
        .output()
        .expect("cargo fuzz list");
    let targets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    for device in [
        "blk",
        "net",
        "vsock",
        "rng",
        "balloon",
        "console",
        "image",
        "migration",
    ] {
        assert!(
            targets.iter().any(|t| t == device),
            "no fuzz target for {device}: {targets:?}"
        );
    }
    let seconds = std::env::var("PV_FUZZ_SECONDS").unwrap_or_else(|_| "10".into());
    for target in &targets {
        let out = Command::new(&cargo)
            .args(["fuzz", "run", "-s", "none", target, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=1024")
            .current_dir(&root)
            .output()
            .expect("cargo fuzz run");
        let err = String::from_utf8_lossy(&out.stderr);
        let done = err
            .lines()
            .rev()
            .find(|l| l.starts_with("Done "))
            .unwrap_or("");
        eprintln!("fuzz {target}: {done}");
        assert!(
            out.status.success(),
            "fuzz target {target} found a problem:\n{err}"
        );
        assert!(
            done.contains(" runs in "),
            "fuzz target {target} did not run:\n{err}"
        );
    }
}
