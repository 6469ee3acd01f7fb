//! `pocketvisor phone worker`: one VM of a phone in a sandboxed process —
//! its console in STATE_DIR/vms/NAME/console.log (a private directory and
//! file), its exit code saying how the VM ended, SIGTERM stopping it in
//! order, and a name the manifest lacks refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{linux_guest_dir, wait_with_limit};

/// A manifest in `dir` with one trusted VM running `script` (none: the shell).
fn manifest(dir: &Path, script: Option<&str>) -> std::path::PathBuf {
    let guest = linux_guest_dir();
    let run = script.map_or(String::new(), |s| format!(" pv.run={s}"));
    let text = format!(
        r#"[phone]
name = "test"
state_dir = "state"
memory = "512M"

[[vm]]
name = "keys"
role = "trusted"
kernel = "{kernel}"
initrd = "{initrd}"
cmdline = "console=ttyAMA0 quiet cryptomgr.notests{run}"
mem = "128M"
"#,
        kernel = guest.join("Image").display(),
        initrd = guest.join("initramfs.cpio.gz").display(),
    );
    let path = dir.join("phone.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn worker(manifest: &Path, vm: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
        .args(["phone", "worker", "--manifest"])
        .arg(manifest)
        .args(["--vm", vm])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_worker_runs_its_vm_and_says_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), Some("poweroff"));
    let (code, out, err) = wait_with_limit(worker(&m, "keys"), Duration::from_secs(300));
    assert_eq!(code, Some(0), "{out}{err}");
    let vm_dir = dir.path().join("state/vms/keys");
    let log = std::fs::read_to_string(vm_dir.join("console.log")).unwrap();
    assert!(log.contains("POCKETVISOR-GUEST-READY"), "{log}");
    assert!(log.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{log}");
    assert_eq!(mode(&vm_dir), 0o700);
    assert_eq!(mode(&vm_dir.join("console.log")), 0o600);
    assert!(
        !vm_dir.join("vsock.sock").exists(),
        "its socket goes with it"
    );
    // A second run appends to the same log.
    let (code, ..) = wait_with_limit(worker(&m, "keys"), Duration::from_secs(300));
    assert_eq!(code, Some(0));
    let log = std::fs::read_to_string(vm_dir.join("console.log")).unwrap();
    assert_eq!(log.matches("POCKETVISOR-GUEST-READY").count(), 2);
}

#[test]
fn sigterm_stops_a_worker_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), None);
    let child = worker(&m, "keys");
    let log = dir.path().join("state/vms/keys/console.log");
    let start = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Pocketvisor guest shell")) {
        assert!(start.elapsed() < Duration::from_secs(300), "never booted");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling the child we started, by its PID.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(code, Some(3), "{out}{err}");
}

#[test]
fn a_vm_the_manifest_lacks_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), None);
    let (code, _, err) = wait_with_limit(worker(&m, "nobody"), Duration::from_secs(30));
    assert_eq!(code, Some(1));
    assert!(err.contains("no VM named \"nobody\""), "{err}");
    let (code, _, err) = wait_with_limit(
        worker(&dir.path().join("missing.toml"), "keys"),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read manifest"), "{err}");
}
