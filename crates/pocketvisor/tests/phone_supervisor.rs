//! The supervisor's core with real workers: three VMs boot, each in its own
//! process; SIGKILL of one worker leaves the others running; the one whose
//! policy is on-crash is back, the one whose policy is never stays
//! crashed; stopping the phone ends every worker in order.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::linux_guest_dir;
use phone::supervisor::{Supervisor, VmState};
use phone::Manifest;

fn manifest(dir: &Path) -> Manifest {
    let guest = linux_guest_dir();
    let vm = |name: &str, role: &str, restart: &str| {
        format!(
            r#"
[[vm]]
name = "{name}"
role = "{role}"
kernel = "{kernel}"
initrd = "{initrd}"
cmdline = "console=ttyAMA0 quiet cryptomgr.notests"
mem = "128M"
restart = "{restart}"
"#,
            kernel = guest.join("Image").display(),
            initrd = guest.join("initramfs.cpio.gz").display(),
        )
    };
    let text = format!(
        "[phone]\nname = \"sup\"\nstate_dir = \"state\"\nmemory = \"512M\"\n{}{}{}",
        vm("personal", "open", "on-crash"),
        vm("work", "corporate", "never"),
        vm("keys", "trusted", "on-crash"),
    );
    let path = dir.join("phone.toml");
    std::fs::write(&path, text).unwrap();
    Manifest::load(&path).unwrap()
}

/// How many times VM `name` reached its shell, by its console log.
fn boots(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join("state/vms").join(name).join("console.log"))
        .map_or(0, |l| l.matches("Pocketvisor guest shell").count())
}

fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[test]
fn workers_crash_alone_and_come_back_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let manifest_path = dir.path().join("phone.toml");
    let mut sup = Supervisor::start(
        &m,
        Box::new(move |name| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_pocketvisor"));
            c.args(["phone", "worker", "--manifest"])
                .arg(&manifest_path)
                .args(["--vm", name])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c
        }),
    )
    .unwrap();
    wait("three shells", Duration::from_secs(300), || {
        ["personal", "work", "keys"]
            .iter()
            .all(|n| boots(dir.path(), n) == 1)
    });
    let before = sup.status();
    assert!(
        before.iter().all(|v| v.state == VmState::Running),
        "{before:?}"
    );
    let pid = |name: &str| before.iter().find(|v| v.name == name).unwrap().pid.unwrap();
    let (personal, work, keys) = (pid("personal"), pid("work"), pid("keys"));
    for p in [personal, work] {
        // SAFETY: killing our own workers by PID.
        assert_eq!(unsafe { libc::kill(p as i32, libc::SIGKILL) }, 0);
    }
    wait("the supervisor to notice", Duration::from_secs(30), || {
        sup.poll();
        let s = sup.status();
        s[0].restarts == 1 && s[1].state != VmState::Running
    });
    let after = sup.status();
    assert_eq!(after[0].state, VmState::Running);
    assert_ne!(after[0].pid, Some(personal), "a new worker");
    assert_eq!(after[1].state, VmState::Crashed("killed by SIGKILL".into()));
    assert_eq!(after[1].pid, None);
    assert_eq!(
        (after[2].state.clone(), after[2].pid, after[2].restarts),
        (VmState::Running, Some(keys), 0),
        "untouched"
    );
    wait("the restarted VM's shell", Duration::from_secs(300), || {
        boots(dir.path(), "personal") == 2
    });
    let pids: Vec<u32> = sup.status().iter().filter_map(|v| v.pid).collect();
    sup.stop_all(Duration::from_secs(30));
    for v in sup.status() {
        assert_ne!(v.state, VmState::Running, "{v:?}");
    }
    assert_eq!(sup.status()[2].state, VmState::Stopped("stopped".into()));
    for p in pids {
        assert!(!alive(p), "worker {p} still running");
    }
}
