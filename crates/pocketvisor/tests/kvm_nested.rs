//! The KVM backend, tested nested: QEMU emulates an ARM64 host with
//! virtualization on (`-M virt,virtualization=on,gic-version=3`), whose
//! Debian kernel has `/dev/kvm`; inside it, the aarch64 build of
//! `pocketvisor run` boots our test guest with `--accel kvm` (and, for
//! comparison, `--accel soft`). `guests/build-kvm-host.sh` builds the host's
//! initramfs; `guests/kvm-host/scenarios/*.sh` are what the host runs.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Builds (incrementally) the emulated host's parts; once per test binary.
fn host_dir() -> PathBuf {
    static READY: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    common::linux_guest_dir();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    READY.get_or_init(|| {
        let status = Command::new(root.join("guests/build-kvm-host.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("run guests/build-kvm-host.sh");
        assert!(status.success(), "guests/build-kvm-host.sh failed");
    });
    root.join("guests/cache")
}

/// Boots the emulated host with `append` on its command line and returns
/// its console once it powers off. QEMU is killed (by PID) past `limit`.
fn run_host(append: &str, limit: Duration) -> String {
    let cache = host_dir();
    let mut child = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            "max,pauth-impdef=on",
            "-m",
            "1G",
            "-smp",
            "2",
            "-nographic",
            "-nodefaults",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
        ])
        .arg(cache.join("linux/Image"))
        .arg("-initrd")
        .arg(cache.join("kvm-host/initramfs.cpio"))
        .arg("-append")
        .arg(format!("console=ttyAMA0 quiet {append}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-aarch64 (apt-get install qemu-system-arm)");
    let out = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = out.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            panic!(
                "the emulated host did not finish in {limit:?}; its console:\n{}",
                out.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = reader.join();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let text = out.lock().unwrap().clone();
    assert!(
        text.contains("PVHOST-KVM=yes"),
        "the emulated host has no /dev/kvm:\n{text}\n{err}"
    );
    text
}

/// Asserts that `out` has `CHECK <name> ok` for each name.
fn assert_checks(out: &str, names: &[&str]) {
    for name in names {
        let line = format!("CHECK {name} ok");
        assert!(out.contains(&line), "no '{line}' in:\n{out}");
    }
    assert!(!out.contains(" FAIL"), "a check failed:\n{out}");
}

const DEVICE_CHECKS: &[&str] = &[
    "mount",
    "disk-read",
    "umount",
    "disk-write",
    "hvc0",
    "vsock-dev",
    "vsock-host-to-guest",
    "vsock-guest-to-host",
];

#[test]
fn kvm_guest_uses_its_devices() {
    let out = run_host(
        "pvhost.run=devices pvhost.accel=kvm",
        Duration::from_secs(600),
    );
    assert!(
        out.contains("pocketvisor: vCPUs on kvm (asked for)"),
        "the VM did not run under KVM:\n{out}"
    );
    assert_checks(&out, DEVICE_CHECKS);
    assert!(out.contains("via-hvc0"), "{out}");
    assert!(out.contains("HOST VSOCK-PING ok"), "{out}");
    assert!(out.contains("HOST VSOCK-ECHOED 1048576"), "{out}");
    assert!(out.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{out}");
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
}

#[test]
fn kvm_guests_share_an_ethernet() {
    let out = run_host("pvhost.run=net pvhost.accel=kvm", Duration::from_secs(600));
    let field = |prefix: &str, key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(prefix)?.trim().strip_prefix(key))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_else(|| panic!("no {prefix}{key} in:\n{out}"))
    };
    assert_eq!(field("A: ", "NET-SENT "), field("B: ", "NET-GOT "), "{out}");
    assert_eq!(field("B: ", "NET-SENT "), field("A: ", "NET-GOT "), "{out}");
    assert!(out.contains("B: CHECK net-ping ok"), "{out}");
    assert_eq!(out.matches("vCPUs on kvm").count(), 2, "{out}");
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
}

/// The software CPU inside the same emulated host (no JIT there: it
/// interprets), to show both backends run the same VM.
#[test]
fn soft_guest_in_the_arm_host_too() {
    let out = run_host(
        "pvhost.run=devices pvhost.accel=soft",
        Duration::from_secs(900),
    );
    assert!(
        out.contains("pocketvisor: vCPUs on soft (asked for)"),
        "{out}"
    );
    assert_checks(&out, DEVICE_CHECKS);
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
}

/// `auto` takes KVM in the ARM host and says so.
#[test]
fn auto_takes_kvm_on_an_arm_host() {
    let out = run_host(
        "pvhost.run=devices pvhost.accel=auto",
        Duration::from_secs(600),
    );
    assert!(
        out.contains("pocketvisor: vCPUs on kvm (auto: /dev/kvm works)"),
        "{out}"
    );
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
}
