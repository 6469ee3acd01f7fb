//! Our FP/SIMD conformance program (guests/c/fpsimd.c: gcc -O3 vectorised loops,
//! libm, conversions at the limits, rounding modes, exception flags, printf of
//! doubles) must print exactly the same under `a64-run` as under qemu-aarch64.

mod common;

#[test]
fn fpsimd_program_matches_qemu() {
    let exe = common::build_static("fpsimd", &["-O3", "-lm"]);
    let (ours, qemu) = common::run_both(&exe);
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
