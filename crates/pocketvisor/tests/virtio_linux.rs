//! virtio devices under the Debian kernel: an ext4 disk made on the host is
//! mounted, read and written by the guest and checked again on the host
//! (also after kill -9 right after the guest's sync); a read-only disk
//! refuses writes; virtio-rng gives entropy.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::host_checks::{api, debugfs_cat, make_ext4, md5_hex, replayed_copy};
use common::{spawn_linux, wait_with_limit};

const CMDLINE: &str = "console=ttyAMA0 cryptomgr.notests pv.run=virtio-blk";

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pv-virtio-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("root")).unwrap();
    d
}

/// An ext4 image with known content, made with `mke2fs -d`.
fn make_disk(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::write(root.join("known.txt"), "made on the host\n").unwrap();
    let blob: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("blob"), &blob).unwrap();
    let sum = Command::new("md5sum")
        .arg("blob")
        .current_dir(&root)
        .output()
        .unwrap();
    std::fs::write(root.join("blob.md5"), sum.stdout).unwrap();
    let img = dir.join("disk.img");
    make_ext4(&img, Some(&root));
    img
}

/// Reads `file` from a journal-replayed copy of `img`.
fn host_read(img: &Path, file: &str) -> Vec<u8> {
    debugfs_cat(&replayed_copy(img), file)
}

#[test]
fn disk_rng_and_read_only_disk() {
    let dir = workdir("blk");
    let img = make_disk(&dir);
    let ro = dir.join("ro.img");
    std::fs::write(&ro, vec![0x5a; 1 << 20]).unwrap();
    let disk = img.display().to_string();
    let ro_disk = format!("{},ro", ro.display());
    let child = spawn_linux(CMDLINE, &["--disk", &disk, "--disk", &ro_disk, "--rng"]);
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(600));
    let context = format!("--- stdout ---\n{out}\n--- stderr ---\n{err}");
    for check in ["mount", "read", "read-only", "vdb-read", "rng", "umount"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("CHECK {check} ok"))),
            "check {check} failed\n{context}"
        );
    }
    assert!(out.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{context}");
    assert_eq!(code, Some(0), "{context}");
    let synced = out
        .lines()
        .find_map(|l| l.strip_prefix("SYNCED "))
        .expect("SYNCED line");
    assert_eq!(host_read(&img, "/new.txt"), b"guest wrote this\n");
    assert_eq!(md5_hex(&host_read(&img, "/guest.bin")), synced.trim());
    assert_eq!(
        std::fs::read(&ro).unwrap(),
        vec![0x5a; 1 << 20],
        "read-only disk changed"
    );
}

#[test]
fn data_survives_kill_9_right_after_sync() {
    let dir = workdir("kill");
    let img = make_disk(&dir);
    let disk = img.display().to_string();
    let mut child = spawn_linux(CMDLINE, &["--disk", &disk]);
    let mut stdout = child.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let synced = loop {
        assert!(Instant::now() < deadline, "no SYNCED line:\n{seen}");
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "guest ended before syncing:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(line) = seen.lines().find_map(|l| l.strip_prefix("SYNCED ")) {
            if seen.contains(&format!("SYNCED {line}\n")) || line.len() >= 32 {
                break line.trim().to_string();
            }
        }
    };
    // SIGKILL: no chance for the VMM to flush anything more.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(synced.len(), 32, "{seen}");
    assert_eq!(host_read(&img, "/new.txt"), b"guest wrote this\n");
    assert_eq!(md5_hex(&host_read(&img, "/guest.bin")), synced);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

fn field(status: &str, name: &str) -> u64 {
    status
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn balloon_returns_freed_and_inflated_memory_to_the_host() {
    let dir = workdir("balloon");
    let sock = dir.join("api.sock");
    let sock_arg = sock.display().to_string();
    let mut child = spawn_linux(
        "console=ttyAMA0 cryptomgr.notests pv.run=balloon",
        &["--balloon", "--api", &sock_arg],
    );
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
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
    let wait_for = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !seen.lock().unwrap().contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what}:\n{}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("BALLOON-FILLED");
    std::thread::sleep(Duration::from_millis(500));
    let filled = rss_kib(pid);
    wait_for("BALLOON-FREED");
    // Free page reporting runs a few seconds after pages are freed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after_free = rss_kib(pid);
    while filled.saturating_sub(after_free) < 40 << 10 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after_free = rss_kib(pid);
    }
    let status = api(&sock, "balloon");
    assert!(
        filled.saturating_sub(after_free) >= 40 << 10,
        "RSS {filled} KiB -> {after_free} KiB after the guest freed 70 MiB ({status})"
    );
    assert!(field(&status, "reported") >= 40 << 20, "{status}");
    // Inflate: the guest gives 48 MiB to the balloon.
    assert_eq!(api(&sock, "balloon 48M"), "ok");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = api(&sock, "balloon");
    while field(&status, "actual") < 48 << 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        status = api(&sock, "balloon");
    }
    assert_eq!(field(&status, "actual"), 48 << 20, "{status}");
    assert!(field(&status, "inflated") >= 48 << 20, "{status}");
    assert!(api(&sock, "stats").contains('='), "balloon statistics");
    assert!(api(&sock, "nonsense").starts_with("error"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn virtio_console_hvc0_and_a_named_port() {
    use std::io::{BufRead, Write};
    let dir = workdir("vconsole");
    let sock = dir.join("chan.sock");
    let port = format!("chan={}", sock.display());
    let child = spawn_linux(
        "console=ttyAMA0 cryptomgr.notests pv.run=vconsole",
        &["--vconsole", "--port", &port],
    );
    // The host end: wait for the socket, read the guest's line, answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            break s;
        }
        assert!(Instant::now() < deadline, "port socket never appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "guest-to-host\n");
    (&stream).write_all(b"host-to-guest\n").unwrap();
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(300));
    let context = format!("--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert!(out.contains("via-hvc0"), "hvc0 output missing\n{context}");
    assert!(out.contains("CHECK vport-name ok"), "{context}");
    assert!(out.contains("CHECK vport-read ok"), "{context}");
    // The test never reads again: the guest's flood must not stall the VM.
    assert!(out.contains("CHECK vport-flood ok"), "{context}");
    assert_eq!(code, Some(0), "{context}");
}

#[test]
fn hvc0_is_an_interactive_alternative_console() {
    use std::io::Write;
    let mut child = spawn_linux(
        "console=ttyAMA0 cryptomgr.notests pv.shell=hvc0",
        &["--vconsole"],
    );
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
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
    let deadline = Instant::now() + Duration::from_secs(300);
    for (wait_for, line) in [
        (
            "shell on hvc0",
            "echo on-$((2 * 21)) $(readlink /proc/self/fd/0)\n",
        ),
        ("on-42 /dev/hvc0", "poweroff -f\n"),
    ] {
        while !seen.lock().unwrap().contains(wait_for) {
            assert!(
                Instant::now() < deadline,
                "no '{wait_for}':\n{}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Let the shell print its prompt before typing.
        std::thread::sleep(Duration::from_millis(500));
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{}", seen.lock().unwrap());
}
