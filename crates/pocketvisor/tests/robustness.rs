//! Everyday mistakes never lose data or leave a mess: socket paths never
//! replace a user's file or a live VM's socket; a writable disk belongs to
//! one VM; signals and a closed terminal stop the VM in order (disk data
//! synced by the guest intact, terminal restored, sockets removed); the
//! control socket stays bounded under abuse; a guest kernel panic ends the
//! VM instead of hanging it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::host_checks::{api, debugfs_cat, make_ext4, md5_hex, replayed_copy};
use common::linux_args;
use common::vmm_process::{termios, VmmProcess};

const BOOT: Duration = Duration::from_secs(120);
const QUICK: &str = "console=ttyAMA0 cryptomgr.notests";

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// An ext4 image of 32 MiB made with mke2fs.
fn make_disk(dir: &Path) -> PathBuf {
    let img = dir.join("disk.img");
    make_ext4(&img, None);
    img
}

/// Sockets left in `dir`.
fn sockets_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.path())
        .collect()
}

/// The file system on a journal-replayed copy of `img` must be clean for
/// a second e2fsck -fn (exit 0). Returns the copy.
fn check_clean(img: &Path) -> PathBuf {
    let copy = replayed_copy(img);
    let check = Command::new("e2fsck")
        .arg("-fn")
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "e2fsck -fn: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    copy
}

/// Every "SYNCED n md5" line of the guest, checked against the file on the host.
fn synced_files_intact(img: &Path, output: &str) -> usize {
    let mut checked = 0;
    for line in output.lines() {
        let mut w = line.split_whitespace();
        let (Some("SYNCED"), Some(n), Some(md5)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let sum = md5_hex(&debugfs_cat(img, &format!("/f{n}")));
        assert!(
            sum.starts_with(md5),
            "f{n}: guest synced {md5}, host has {sum}"
        );
        checked += 1;
    }
    checked
}

/// Lets this process hold up to `n` descriptors (the soft limit is often
/// 1024); returns how many it may hold.
fn raise_fd_limit(n: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_cur.max(n.min(l.rlim_max));
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur
    }
}

#[test]
fn user_files_survive_api_and_port_paths() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("notes.txt");
    let data = vec![b'n'; 1 << 20];
    std::fs::write(&precious, &data).unwrap();
    let p = precious.display().to_string();
    for extra in [
        vec!["--api".to_string(), p.clone()],
        vec!["--port".to_string(), format!("p={p}")],
        vec!["--vsock".to_string(), format!("cid=3,uds={p}")],
    ] {
        let a = linux_args(QUICK, &args(&extra));
        let mut vm = VmmProcess::start(&args(&a));
        let code = vm.wait_exit(Duration::from_secs(30));
        assert_eq!(code, Some(1), "{extra:?}: {}", vm.output());
        assert!(
            vm.output().contains("exists and is not a socket"),
            "{}",
            vm.output()
        );
        assert_eq!(
            std::fs::read(&precious).unwrap(),
            data,
            "{extra:?} changed the file"
        );
    }
}

#[test]
fn a_live_vms_sockets_and_disk_are_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let disk = make_disk(dir.path());
    let sock = dir.path().join("api.sock");
    let port = dir.path().join("port.sock");
    let (disk_s, sock_s) = (disk.display().to_string(), sock.display().to_string());
    let port_arg = format!("p={}", port.display());
    let first_args = linux_args(
        &format!("{QUICK} pv.run=disk-writer"),
        &["--disk", &disk_s, "--api", &sock_s, "--port", &port_arg],
    );
    let mut first = VmmProcess::start_on_pty(&args(&first_args));
    let before = first.pty_before.expect("started on a pty");
    first.wait_for("SYNCED 3 ", BOOT);
    let raw = termios(first.pty.as_ref().unwrap());
    assert_eq!(
        raw.c_lflag & libc::ICANON,
        0,
        "the console is in raw mode while the VM runs"
    );
    // A second VM may take neither the control socket, nor the port, nor the disk.
    for (extra, error) in [
        (vec!["--api", &sock_s], "is already in use by another VM"),
        (vec!["--port", &port_arg], "is already in use by another VM"),
        (vec!["--disk", &disk_s], "is in use by another process"),
        (
            vec!["--disk", &format!("{disk_s},ro")],
            "is in use by another process",
        ),
    ] {
        let mut second = VmmProcess::start(&args(&linux_args(QUICK, &extra)));
        assert_eq!(
            second.wait_exit(Duration::from_secs(30)),
            Some(1),
            "{}",
            second.output()
        );
        assert!(
            second.output().contains(error),
            "{extra:?}: {}",
            second.output()
        );
    }
    assert!(
        sock.exists() && port.exists(),
        "the first VM's sockets stay"
    );
    assert!(api(&sock, "balloon").starts_with("error: the VM has no balloon"));

    // SIGTERM in the middle of the guest's writes: an orderly stop.
    first.wait_for("SYNCED 6 ", BOOT);
    first.signal(libc::SIGTERM);
    assert_eq!(
        first.wait_exit(Duration::from_secs(30)),
        Some(3),
        "{}",
        first.output()
    );
    let out = first.output();
    assert!(out.contains("stopped by SIGTERM"), "{out}");
    let after = termios(first.pty.as_ref().unwrap());
    assert_eq!(
        (after.c_iflag, after.c_oflag, after.c_lflag),
        (before.c_iflag, before.c_oflag, before.c_lflag),
        "terminal modes restored"
    );
    assert!(
        sockets_in(dir.path()).is_empty(),
        "sockets left: {:?}",
        sockets_in(dir.path())
    );
    let copy = check_clean(&disk);
    assert!(synced_files_intact(&copy, &out) >= 6);
}

#[test]
fn closing_the_terminal_stops_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let sock_s = sock.display().to_string();
    let a = linux_args(QUICK, &["--api", &sock_s]);
    let mut vm = VmmProcess::start_on_pty(&args(&a));
    vm.wait_for("POCKETVISOR-GUEST-READY", BOOT);
    // Hang up: the terminal's master side goes away.
    vm.hang_up();
    assert_eq!(vm.wait_exit(Duration::from_secs(30)), Some(3));
    assert!(!sock.exists(), "socket removed");
}

#[test]
fn the_control_socket_stays_bounded_under_abuse() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("api.sock");
    let sock_s = sock.display().to_string();
    let a = linux_args(QUICK, &["--balloon", "--api", &sock_s]);
    let mut vm = VmmProcess::start(&args(&a));
    vm.wait_for("POCKETVISOR-GUEST-READY", BOOT);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        std::fs::symlink_metadata(&sock).unwrap().mode() & 0o777,
        0o600,
        "socket mode"
    );
    let (rss0, threads0) = (vm.status_field("VmRSS"), vm.status_field("Threads"));

    // A 64 MiB line: refused after 4 KiB, the client closed.
    let mut huge = UnixStream::connect(&sock).unwrap();
    huge.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent = 0;
    for _ in 0..64 {
        match huge.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        sent < 64 << 20,
        "the VMM kept reading a line of {sent} bytes"
    );
    // The answer comes before the close (a reset may follow it).
    let mut reply = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = huge.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("longer than 4096 bytes"), "{reply:?}");

    // Binary garbage gets an error line, and the connection still works.
    let mut g = UnixStream::connect(&sock).unwrap();
    g.write_all(b"\x00\xff\xfe\x01garbage\x7f\n").unwrap();
    let mut r = BufReader::new(g.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("error: unknown command"), "{line:?}");
    drop((g, r));

    // 1,000 idle connections: a handful served, the rest told so; no thread each.
    // Other tests of this process hold descriptors too: leave them room.
    let count = 1000.min(raise_fd_limit(1400).saturating_sub(300)) as usize;
    let idle: Vec<UnixStream> = (0..count)
        .filter_map(|_| UnixStream::connect(&sock).ok())
        .collect();
    assert_eq!(idle.len(), count);
    std::thread::sleep(Duration::from_millis(500));
    let threads = vm.status_field("Threads");
    assert!(threads <= threads0 + 2, "threads {threads0} -> {threads}");
    // Out-of-range balloon targets are refused; the VM still answers.
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    let r = api(&sock, "balloon 100T");
    assert!(r.contains("more than the guest can give"), "{r}");
    assert!(
        api(&sock, "balloon 300M").starts_with("error"),
        "more than RAM"
    );
    assert_eq!(api(&sock, "balloon 32M"), "ok");
    assert_eq!(api(&sock, "pause"), "ok");
    assert_eq!(api(&sock, "state"), "paused");
    assert_eq!(api(&sock, "resume"), "ok");
    assert_eq!(api(&sock, "state"), "running");
    assert!(api(&sock, "balloon").starts_with("target=33554432"));
    let rss = vm.status_field("VmRSS");
    assert!(rss < rss0 + 16 * 1024, "RSS {rss0} KiB -> {rss} KiB");

    // SIGINT without a raw console stops in order; a second signal right
    // behind it may force the exit, which still removes the socket.
    vm.signal(libc::SIGINT);
    vm.signal(libc::SIGTERM);
    assert_eq!(
        vm.wait_exit(Duration::from_secs(30)),
        Some(3),
        "{}",
        vm.output()
    );
    assert!(!sock.exists(), "socket removed");
}

#[test]
fn a_guest_kernel_panic_ends_the_vm_or_reboots_it_with_panic_n() {
    let a = linux_args(&format!("{QUICK} rdinit=/none init=/none"), &[]);
    let mut vm = VmmProcess::start(&args(&a));
    assert_eq!(vm.wait_exit(BOOT), Some(2), "{}", vm.output());
    assert!(
        vm.output()
            .contains("the guest crashed: the guest kernel panicked: VFS: Unable to mount root fs"),
        "{}",
        vm.output()
    );

    let a = linux_args(&format!("{QUICK} rdinit=/none init=/none panic=1"), &[]);
    let mut vm = VmmProcess::start(&args(&a));
    let start = std::time::Instant::now();
    while vm.output().matches("Booting Linux").count() < 2 {
        assert!(
            start.elapsed() < BOOT,
            "no reboot after the panic:\n{}",
            vm.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    vm.signal(libc::SIGTERM);
    assert_eq!(vm.wait_exit(Duration::from_secs(30)), Some(3));
}
