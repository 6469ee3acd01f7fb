//! Signal delivery (guests/c/signals.c: handlers with siginfo and ucontext,
//! faults caught and skipped, the alternate stack, nesting and masks,
//! SA_RESETHAND, SIGCHLD with sigsuspend, SA_RESTART against EINTR, sigqueue
//! with sigtimedwait, death by signal) must behave exactly as under qemu-aarch64.

use std::os::unix::process::ExitStatusExt;

mod common;

#[test]
fn signals_behave_as_under_qemu() {
    let exe = common::build_static("signals", &["-O2"]);
    let (ours, qemu) = common::run_both(&exe);
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
