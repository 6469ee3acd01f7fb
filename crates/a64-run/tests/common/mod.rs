//! What the runner's comparison tests share: building one of our C test
//! programs (guests/c/NAME.c) as a static aarch64 executable and running it
//! under `a64-run` and under qemu-aarch64.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Builds guests/c/`name`.c with aarch64-linux-gnu-gcc -static and `flags`
/// (optimisation level, libraries) into a temporary file.
pub fn build_static(name: &str, flags: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../guests/c/{name}.c"));
    let exe = std::env::temp_dir().join(format!("a64-run-{name}-{}", std::process::id()));
    let status = Command::new("aarch64-linux-gnu-gcc")
        .arg("-static")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .args(flags)
        .status()
        .expect(
            "aarch64-linux-gnu-gcc is needed for this test (apt-get install gcc-aarch64-linux-gnu)",
        );
    assert!(status.success(), "building {name}.c");
    exe
}

/// Runs `exe` under a64-run and under qemu-aarch64, then deletes it:
/// (ours, qemu).
pub fn run_both(exe: &Path) -> (Output, Output) {
    let ours = Command::new(env!("CARGO_BIN_EXE_a64-run"))
        .arg(exe)
        .output()
        .expect("runs a64-run");
    let qemu = Command::new("qemu-aarch64")
        .args(["-cpu", "cortex-a76"])
        .arg(exe)
        .output()
        .expect("runs qemu-aarch64");
    let _ = std::fs::remove_file(exe);
    (ours, qemu)
}
