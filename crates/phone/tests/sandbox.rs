//! The worker sandbox: a VM (two vCPUs) whose VMM entered it (seccomp on
//! every thread) boots Debian and uses its disk, entropy, network and vsock devices —
//! including a new vsock stream to a host port, which opens a socket after
//! the filter is in — and powers off; a process that makes a forbidden
//! system call after entering dies of SIGSYS, and opening a file fails.
//!
//! Each case runs in a child process (this test binary again, with
//! PV_SANDBOX_CHILD set), since a seccomp filter cannot be removed.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vmm::{DiskConfig, NetBackendConfig, NetConfig, Vm, VmConfig, VmEnd, VsockConfig};

fn linux_guest() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ok = Command::new(root.join("guests/fetch-linux-guests.sh"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run guests/fetch-linux-guests.sh");
    assert!(ok.success());
    root.join("guests/cache/linux")
}

/// Runs this binary's `child` test with PV_SANDBOX_CHILD=`mode`.
fn run_child(mode: &str, dir: &Path) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PV_SANDBOX_CHILD", mode)
        .env("PV_SANDBOX_DIR", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
#[ignore = "run by the other tests in a process of its own"]
fn child() {
    let (Ok(mode), Ok(dir)) = (
        std::env::var("PV_SANDBOX_CHILD"),
        std::env::var("PV_SANDBOX_DIR"),
    ) else {
        panic!("only run as a child of this file's tests");
    };
    let dir = PathBuf::from(dir);
    let filter = phone::sandbox::worker_filter().unwrap();
    match mode.as_str() {
        "forbidden" => {
            phone::sandbox::enter(&filter).unwrap();
            println!("ENTERED");
            std::io::stdout().flush().unwrap();
            // Opening a file is refused (the C library may try; it
            // carries on without the file), and the worker lives on.
            let opened = std::fs::File::open("/etc/hostname").map_err(|e| e.raw_os_error());
            println!("OPEN {:?}", opened.map(|_| ()));
            std::io::stdout().flush().unwrap();
            // An internet socket is not something a running VM makes.
            let _ = std::net::UdpSocket::bind("127.0.0.1:0");
            println!("STILL ALIVE");
        }
        "connect" => {
            phone::sandbox::enter_supervised().unwrap();
            println!("ENTERED");
            std::io::stdout().flush().unwrap();
            // Removing a file fails (it is not the worker's to remove).
            let victim = dir.join("user-file");
            let removed = std::fs::remove_file(&victim);
            println!(
                "REMOVE {:?} {}",
                removed.map_err(|e| e.raw_os_error()),
                victim.exists()
            );
            std::io::stdout().flush().unwrap();
            // A supervised worker gets its streams; it never connects.
            let _ = std::os::unix::net::UnixStream::connect(dir.join("anything.sock"));
            println!("STILL ALIVE");
        }
        "vm" => {
            let guest = linux_guest();
            let mut cfg = VmConfig::new(guest.join("Image"));
            cfg.initrd = Some(guest.join("initramfs.cpio.gz"));
            cfg.cmdline = "console=ttyAMA0 quiet cryptomgr.notests pv.run=sandboxed".into();
            cfg.disks = vec![DiskConfig {
                path: dir.join("disk.img"),
                read_only: false,
            }];
            cfg.rng = true;
            // Two vCPUs: the second one's thread starts inside the sandbox.
            cfg.cpus = 2;
            cfg.balloon = true;
            cfg.vconsole = true;
            cfg.nets = vec![NetConfig {
                backend: NetBackendConfig::Socket(dir.join("lan")),
                mac: None,
            }];
            cfg.vsock = Some(VsockConfig {
                cid: 3,
                uds: dir.join("v.sock"),
            });
            let mut vm = Vm::with_hvc(
                &cfg,
                Box::new(std::io::stdout()),
                Some(Box::new(std::io::stdout())),
            )
            .unwrap();
            phone::sandbox::enter(&filter).unwrap();
            let end = vm.run();
            drop(vm);
            println!("VM-END {end:?}");
            assert_eq!(end, VmEnd::PoweredOff);
        }
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn a_forbidden_system_call_kills_the_worker_with_sigsys() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child("forbidden", dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ENTERED"), "{stdout}");
    assert!(
        stdout.contains(&format!("OPEN Err(Some({}))", libc::EACCES)),
        "{stdout}"
    );
    assert!(!stdout.contains("STILL ALIVE"), "{stdout}");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
}

#[test]
fn a_supervised_worker_cannot_connect_or_remove_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("user-file"), b"mine").unwrap();
    let out = run_child("connect", dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ENTERED"), "{stdout}");
    assert!(
        stdout.contains(&format!("REMOVE Err(Some({})) true", libc::EPERM)),
        "{stdout}"
    );
    assert!(!stdout.contains("STILL ALIVE"), "{stdout}");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
}

#[test]
fn a_vm_runs_all_its_devices_inside_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("disk.img"), vec![0u8; 4 << 20]).unwrap();
    // The host's echo service for the guest's stream to port 6000.
    let listener = UnixListener::bind(dir.path().join("v.sock_6000")).unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break total;
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
    });
    let out = run_child("vm", dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "{:?}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    for device in ["disk", "rng", "net", "vsock"] {
        assert!(
            stdout.contains(&format!("CHECK {device} ok")),
            "{device}\n{report}"
        );
    }
    assert!(stdout.contains("VM-END PoweredOff"), "{report}");
    assert_eq!(echo.join().unwrap(), 65536);
}
