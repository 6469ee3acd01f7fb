//! kvm-unit-tests' SMP tests (the suite QEMU's and KVM's developers check
//! their CPUs, GICs and PSCI with) under `pocketvisor run --cpus 2` and
//! `--cpus 4`: selftest-setup, selftest-smp, gicv3-ipi, gicv3-active, psci
//! and spinlock-test must each end with `EXIT: STATUS=1` (pass) and no
//! FAIL line, as they do under QEMU. `guests/build-kvm-unit-tests.sh`
//! builds the suite into the guest cache.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::wait_with_limit;

/// Builds (incrementally) the suite; once per test binary.
fn suite_dir() -> PathBuf {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| common::run_guest_script("build-kvm-unit-tests.sh"));
    common::repo_root().join("guests/cache/kvm-unit-tests")
}

/// The suite's raw program `flat` (linked at 0, entered at RAM base +
/// 0x80000 with x0 = the device tree, as QEMU's -kernel loads it) behind
/// an arm64 Image header whose text offset puts the program itself at
/// RAM base + 0x80000: `pocketvisor run` boots Images only.
fn as_image(flat: &Path, dir: &Path) -> PathBuf {
    let program = std::fs::read(flat).unwrap();
    let size = (program.len() as u64 + 64).next_multiple_of(4096);
    let mut image = Vec::with_capacity(size as usize);
    image.extend_from_slice(&0x1400_0010u32.to_le_bytes()); // b +64: over the header
    image.extend_from_slice(&0u32.to_le_bytes());
    image.extend_from_slice(&(0x80000u64 - 64).to_le_bytes()); // text_offset
    image.extend_from_slice(&size.to_le_bytes()); // image_size
    image.extend_from_slice(&0xau64.to_le_bytes()); // little endian, 4K pages, anywhere
    image.extend_from_slice(&[0; 24]);
    image.extend_from_slice(b"ARM\x64");
    image.extend_from_slice(&0u32.to_le_bytes());
    image.extend_from_slice(&program);
    let path = dir.join(flat.file_name().unwrap()).with_extension("img");
    std::fs::write(&path, image).unwrap();
    path
}

/// Runs test program `file` with `args` on `cpus` vCPUs; panics unless it
/// passed.
fn run(file: &str, args: &str, cpus: usize) {
    let suite = suite_dir();
    let dir = tempfile::Builder::new()
        .prefix("pv-kut-")
        .tempdir()
        .unwrap();
    let image = as_image(&suite.join("arm").join(file), dir.path());
    let cpus = cpus.to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
        .args(["run", "--mem", "256M", "--cpus", &cpus, "--cmdline", args])
        .arg("--kernel")
        .arg(&image)
        .arg("--initrd")
        .arg(suite.join("environ.txt"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pocketvisor");
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(300));
    let context =
        format!("{file} {args} --cpus {cpus}\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert_eq!(
        code,
        Some(0),
        "pocketvisor must exit 0 at SYSTEM_OFF\n{context}"
    );
    assert!(out.contains("EXIT: STATUS=1"), "did not pass\n{context}");
    assert!(!out.contains("FAIL:"), "{context}");
    assert!(out.lines().any(|l| l.starts_with("PASS:")), "{context}");
}

#[test]
fn selftest_setup() {
    for cpus in [2, 4] {
        run("selftest.flat", &format!("setup smp={cpus} mem=256"), cpus);
    }
}

#[test]
fn selftest_smp() {
    for cpus in [2, 4] {
        run("selftest.flat", "smp", cpus);
    }
}

#[test]
fn gicv3_ipi() {
    for cpus in [2, 4] {
        run("gic.flat", "ipi", cpus);
    }
}

#[test]
fn gicv3_active() {
    for cpus in [2, 4] {
        run("gic.flat", "active", cpus);
    }
}

#[test]
fn psci() {
    for cpus in [2, 4] {
        run("psci.flat", "", cpus);
    }
}

#[test]
fn spinlock_test() {
    for cpus in [2, 4] {
        run("spinlock-test.flat", "", cpus);
    }
}
