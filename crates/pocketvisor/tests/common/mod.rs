//! Shared helpers: the guest parts and running the pocketvisor binary.
#![allow(dead_code)] // each test binary uses a different subset

pub mod counting;
pub mod host_checks;
pub mod phone;
pub mod trusted;
pub mod vmm_process;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the guest build script `guests/SCRIPT` (no terminal input: it must
/// not stop to ask anything) and panics unless it succeeded. Callers run
/// it once per test binary.
pub fn run_guest_script(script: &str) {
    let status = Command::new(repo_root().join("guests").join(script))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("run guests/{script}: {e}"));
    assert!(status.success(), "guests/{script} failed");
}

/// The directory `guests/fetch-linux-guests.sh` fills. The script runs once
/// per test binary: it is quick when everything is cached, and it rebuilds
/// the initramfs when a guest script changed.
pub fn linux_guest_dir() -> PathBuf {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    READY.get_or_init(|| run_guest_script("fetch-linux-guests.sh"));
    let dir = repo_root().join("guests/cache/linux");
    assert!(
        dir.join("Image").is_file() && dir.join("initramfs.cpio.gz").is_file(),
        "Linux guest parts missing in {}: run guests/fetch-linux-guests.sh",
        dir.display()
    );
    dir
}

/// Starts `pocketvisor run` with the Debian kernel and test initramfs.
pub fn spawn_linux(cmdline: &str, extra: &[&str]) -> Child {
    let dir = linux_guest_dir();
    Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
        .arg("run")
        .arg("--kernel")
        .arg(dir.join("Image"))
        .arg("--initrd")
        .arg(dir.join("initramfs.cpio.gz"))
        .arg("--cmdline")
        .arg(cmdline)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pocketvisor")
}

/// Waits for `child` up to `limit`, killing it on timeout. Returns
/// (exit code or None if killed, stdout, stderr).
pub fn wait_with_limit(mut child: Child, limit: Duration) -> (Option<i32>, String, String) {
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let start = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = String::from_utf8_lossy(&out_reader.join().expect("reader")).into_owned();
    let err = String::from_utf8_lossy(&err_reader.join().expect("reader")).into_owned();
    (code, out, err)
}

/// `run` arguments for the Debian kernel and test initramfs, then `extra`.
pub fn linux_args(cmdline: &str, extra: &[&str]) -> Vec<String> {
    let dir = linux_guest_dir();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--kernel".into(),
        dir.join("Image").display().to_string(),
        "--initrd".into(),
        dir.join("initramfs.cpio.gz").display().to_string(),
        "--cmdline".into(),
        cmdline.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}
