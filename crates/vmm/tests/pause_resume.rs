//! Pause and resume, a thousand times, while Debian's kernel writes and
//! syncs files on a virtio disk (guests/scripts/linux/disk-writer.sh):
//! while paused, nothing — no vCPU, no device — writes guest memory (the
//! dirty log stays empty); the guest keeps going between pauses; and every
//! file it reported synced is intact on the host afterwards. And a
//! thousand times more, alternating between two VMs that move files back
//! and forth over the socket switch (guests/scripts/linux/net-loop.sh):
//! every download, upload and ping the guests check arrives whole, once.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{linux_guest, run, Console};
use vmm::board_types::Power;
use vmm::{DirtyLog, DiskConfig, NetBackendConfig, NetConfig, Vm, VmConfig};

impl Console {
    /// The highest n of the guest's "SYNCED n md5" lines.
    fn synced(&self) -> u64 {
        self.text()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("SYNCED "))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .max()
            .unwrap_or(0)
    }
}

#[test]
fn a_thousand_pauses_during_disk_writes_lose_nothing() {
    let guest = linux_guest();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    assert!(run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&img)
        .arg("32M"))
    .status
    .success());
    let mut cfg = VmConfig::new(guest.join("Image"));
    cfg.initrd = Some(guest.join("initramfs.cpio.gz"));
    cfg.cmdline = "console=ttyAMA0 cryptomgr.notests pv.run=disk-writer".into();
    cfg.disks = vec![DiskConfig {
        path: img.clone(),
        read_only: false,
    }];
    let console = Console::default();
    let mut vm = Vm::new(&cfg, Box::new(console.clone())).expect("build the VM");
    let (control, log, board, out) = (vm.control(), vm.dirty_log(), vm.board(), console.clone());
    let host = std::thread::spawn(move || {
        let start = Instant::now();
        while out.synced() < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "no writes:\n{}",
                out.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let before = out.synced();
        let mut noisy = Vec::new();
        for i in 0..1000 {
            control.pause();
            assert!(control.is_paused());
            log.take().unwrap();
            std::thread::sleep(Duration::from_micros(500));
            let quiet = DirtyLog::pages(&log.take().unwrap());
            if !quiet.is_empty() {
                noisy.push((i, quiet));
            }
            control.resume();
            std::thread::sleep(Duration::from_micros(1500));
        }
        // The guest goes on after all that.
        let target = out.synced() + 3;
        let start = Instant::now();
        while out.synced() < target {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "stalled:\n{}",
                out.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        board.set_power(Power::Off);
        (noisy, before, out.synced())
    });
    vm.run();
    drop(vm); // closes and syncs the disk
    let (noisy, before, after) = host.join().expect("host thread");
    assert!(
        noisy.is_empty(),
        "guest memory changed while paused: {:?}",
        &noisy[..noisy.len().min(5)]
    );
    assert!(after > before, "no progress");

    // Every synced file intact: journal replayed on a copy, then md5s.
    let copy = dir.path().join("check.img");
    std::fs::copy(&img, &copy).unwrap();
    let fsck = run(Command::new("e2fsck").arg("-fy").arg(&copy));
    assert!(
        fsck.status.code().unwrap_or(8) < 4,
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let mut checked = 0;
    for line in console.text().lines() {
        let mut w = line.split_whitespace();
        let (Some("SYNCED"), Some(n), Some(md5)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let data = run(Command::new("debugfs")
            .arg("-R")
            .arg(format!("cat /f{n}"))
            .arg(&copy))
        .stdout;
        let mut sum = Command::new("md5sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        sum.stdin.take().unwrap().write_all(&data).unwrap();
        let sum = String::from_utf8_lossy(&sum.wait_with_output().unwrap().stdout).into_owned();
        assert!(
            sum.starts_with(md5),
            "f{n}: guest synced {md5}, disk has {sum}"
        );
        checked += 1;
    }
    assert!(checked as u64 >= after, "checked {checked} of {after}");
}

/// A VM of the network pair (guests/scripts/linux/net-loop.sh).
fn net_vm(guest: &Path, lan: &Path, role: &str, ip: &str, peer: &str) -> (Vm, Console) {
    let mut cfg = VmConfig::new(guest.join("Image"));
    cfg.initrd = Some(guest.join("initramfs.cpio.gz"));
    cfg.cmdline = format!(
        "console=ttyAMA0 cryptomgr.notests pv.run=net-loop pv.role={role} pv.ip={ip}/24 pv.peer={peer}"
    );
    cfg.nets = vec![NetConfig {
        backend: NetBackendConfig::Socket(lan.to_path_buf()),
        mac: None,
    }];
    let console = Console::default();
    let vm = Vm::new(&cfg, Box::new(console.clone())).expect("build the VM");
    (vm, console)
}

/// The fetcher's rounds: (number of "ok" rounds, the failed ones).
fn rounds(console: &Console) -> (usize, Vec<String>) {
    let text = console.text();
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NET-ROUND "))
        .collect();
    let ok = lines.iter().filter(|l| l.ends_with(" ok")).count();
    let failed = lines
        .iter()
        .filter(|l| !l.ends_with(" ok"))
        .map(|l| l.to_string())
        .collect();
    (ok, failed)
}

#[test]
fn a_thousand_pauses_during_network_transfers_lose_nothing() {
    let guest = linux_guest();
    let dir = tempfile::tempdir().unwrap();
    let lan = dir.path().join("lan");
    let (mut server, server_out) = net_vm(&guest, &lan, "serve", "10.0.9.1", "10.0.9.2");
    let (mut fetcher, fetcher_out) = net_vm(&guest, &lan, "fetch", "10.0.9.2", "10.0.9.1");
    let controls = [server.control(), fetcher.control()];
    let boards = [server.board(), fetcher.board()];
    let server = std::thread::spawn(move || {
        server.run();
    });
    let fetcher = std::thread::spawn(move || {
        fetcher.run();
    });
    let wait_rounds = |n: usize, limit: Duration| {
        let start = Instant::now();
        while rounds(&fetcher_out).0 < n {
            let failed = rounds(&fetcher_out).1;
            assert!(
                start.elapsed() < limit && failed.is_empty(),
                "rounds: {:?}\nfetcher:\n{}\nserver:\n{}",
                rounds(&fetcher_out),
                fetcher_out.text(),
                server_out.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_rounds(1, Duration::from_secs(300));
    let before = rounds(&fetcher_out).0;
    // Pause the fetcher and the server in turn, 500 times each.
    for i in 0..1000 {
        let control = &controls[i % 2];
        control.pause();
        assert!(control.is_paused());
        std::thread::sleep(Duration::from_micros(500));
        control.resume();
        std::thread::sleep(Duration::from_millis(4));
    }
    let during = rounds(&fetcher_out).0 - before;
    // The transfers go on afterwards.
    wait_rounds(rounds(&fetcher_out).0 + 2, Duration::from_secs(120));
    for b in &boards {
        b.set_power(Power::Off);
    }
    server.join().unwrap();
    fetcher.join().unwrap();
    let (ok, failed) = rounds(&fetcher_out);
    assert!(failed.is_empty(), "failed rounds: {failed:?}");
    assert!(during >= 1, "no round completed while pausing");
    assert!(ok >= before + during + 2);
    let uploads = server_out.text().matches("NET-UPLOAD ").count();
    let want = server_out
        .text()
        .lines()
        .find_map(|l| l.trim().strip_prefix("NET-SERVING ").map(str::to_string))
        .expect("the server's md5");
    for line in server_out.text().lines() {
        if let Some(rest) = line.trim().strip_prefix("NET-UPLOAD ") {
            assert_eq!(rest, format!("{want} 1048576"), "an upload arrived damaged");
        }
    }
    assert!(uploads >= ok, "{uploads} uploads for {ok} rounds");
    for out in [&fetcher_out, &server_out] {
        let text = out.text();
        assert!(
            !text.contains("is not a head") && !text.contains("WARNING") && !text.contains("BUG"),
            "{text}"
        );
    }
    eprintln!("network rounds: {before} before, {during} while pausing, {ok} in all");
}
