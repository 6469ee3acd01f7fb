//! Signal delivery (guests/c/signals.c: handlers with siginfo and ucontext,
//! faults caught and skipped, the alternate stack, nesting and masks,
//! SA_RESETHAND, SIGCHLD with sigsuspend, SA_RESTART against EINTR, sigqueue
//! with sigtimedwait, death by signal) must behave exactly as under qemu-aarch64.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

#[test]
fn signals_behave_as_under_qemu() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests/c/signals.c");
    let exe = std::env::temp_dir().join(format!("a64-run-signals-{}", std::process::id()));
    let status = Command::new("aarch64-linux-gnu-gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect(
            "aarch64-linux-gnu-gcc is needed for this test (apt-get install gcc-aarch64-linux-gnu)",
        );
    assert!(status.success(), "building signals.c");
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
    let qemu_out = String::from_utf8_lossy(&qemu.stdout);
    assert!(
        qemu_out.contains("dying of SIGTERM") && qemu_out.lines().count() >= 20,
        "qemu ran every case: {qemu_out}"
    );
    assert_eq!(String::from_utf8_lossy(&ours.stdout), qemu_out);
    // qemu-user reports the child's fatal signal on stderr itself; the program prints nothing there.
    let qemu_err: String = String::from_utf8_lossy(&qemu.stderr)
        .lines()
        .filter(|l| !l.starts_with("qemu:"))
        .collect();
    assert_eq!(String::from_utf8_lossy(&ours.stderr), qemu_err);
    const SIGTERM: i32 = 15;
    assert_eq!(qemu.status.signal(), Some(SIGTERM));
    assert_eq!(ours.status.signal(), qemu.status.signal());
}
