//! Our FP/SIMD conformance program (guests/c/fpsimd.c: gcc -O3 vectorised loops,
//! libm, conversions at the limits, rounding modes, exception flags, printf of
//! doubles) must print exactly the same under `a64-run` as under qemu-aarch64.

use std::path::Path;
use std::process::Command;

#[test]
fn fpsimd_program_matches_qemu() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/c/fpsimd.c");
    let exe = std::env::temp_dir().join(format!("a64-run-fpsimd-{}", std::process::id()));
    let status = Command::new("aarch64-linux-gnu-gcc")
        .args(["-static", "-O3", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lm")
        .status()
        .expect(
            "aarch64-linux-gnu-gcc is needed for this test (apt-get install gcc-aarch64-linux-gnu)",
        );
    assert!(status.success(), "building fpsimd.c");
    let ours = Command::new(env!("CARGO_BIN_EXE_a64-run"))
        .arg(&exe)
        .output()
        .expect("runs a64-run");
    let qemu = Command::new("qemu-aarch64")
        .args(["-cpu", "cortex-a76"])
        .arg(&exe)
        .output()
        .expect("runs qemu-aarch64");
    let _ = std::fs::remove_file(&exe);
    assert_eq!(
        qemu.status.code(),
        Some(0),
        "qemu: {}",
        String::from_utf8_lossy(&qemu.stderr)
    );
    assert!(qemu.stdout.len() > 4000, "the program prints its results");
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&qemu.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&qemu.stdout)
    );
    assert_eq!(ours.status.code(), qemu.status.code());
}
