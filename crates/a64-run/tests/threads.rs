//! Threads under `a64-run`: guests/c/pthreads.c (mutexes, condition
//! variables, barriers, thread-local storage, read-write locks, atomics,
//! priority-inheritance mutexes, a signal to one thread, cancellation,
//! hundreds of short threads, malloc in every thread, fork from a threaded
//! process, raw futex and clone calls, code rewritten under a running
//! thread, the main thread leaving first) must print exactly what it prints
//! under qemu-aarch64, run after run; what qemu-aarch64 7.2 cannot do
//! (robust mutexes, threads in a forked child, execve from a thread) is
//! checked against what Linux does.

mod common;

use std::process::Command;

#[test]
fn threaded_program_behaves_as_under_qemu() {
    let exe = common::build_static("pthreads", &["-O2", "-pthread"]);
    // Several runs of ours: a race would show as a difference in one of them.
    let mut ours = Vec::new();
    for _ in 0..3 {
        ours.push(
            Command::new(env!("CARGO_BIN_EXE_a64-run"))
                .arg(&exe)
                .output()
                .expect("runs a64-run"),
        );
    }
    let beyond = Command::new(env!("CARGO_BIN_EXE_a64-run"))
        .arg(&exe)
        .arg("beyond-qemu")
        .output()
        .expect("runs a64-run");
    let (first, qemu) = common::run_both(&exe);
    ours.push(first);
    let qemu_out = String::from_utf8_lossy(&qemu.stdout);
    assert!(
        qemu_out.contains("last thread: main has gone") && qemu_out.lines().count() >= 30,
        "qemu ran every case: {qemu_out}"
    );
    assert!(qemu.status.success(), "{qemu:?}");
    for run in &ours {
        assert_eq!(String::from_utf8_lossy(&run.stdout), qemu_out);
        assert_eq!(String::from_utf8_lossy(&run.stderr), "");
        assert_eq!(run.status.code(), qemu.status.code());
    }

    assert_eq!(
        String::from_utf8_lossy(&beyond.stdout),
        "robust: lock after the owner died: EOWNERDEAD\n\
         robust: lock again: 0\n\
         fork: child's thread returned 42\n\
         fork: child exited with 3\n\
         exec: the new program runs with 1 thread(s), PTHREADS_MARK=42, PATH unset\n",
        "stderr: {}",
        String::from_utf8_lossy(&beyond.stderr)
    );
    assert!(beyond.status.success(), "{beyond:?}");
}
