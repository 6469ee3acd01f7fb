//! Save and restore a running Linux guest in-process: Debian's kernel with
//! a disk, vsock and the virtio console runs guests/scripts/linux/snapshot.sh
//! (counts, writing and syncing a file per step); the test pauses it, saves
//! its `VmState` as bytes and its RAM to a file, drops the VM, waits, builds
//! a new VM from the bytes and the RAM image and runs it. The guest must
//! continue its count on both consoles, its clock must not jump over the
//! time it spent saved, a vsock stream must work after the restore, and
//! every file written before and after must be intact on the disk.
//! Also: states from another format version, truncated or corrupted, or
//! for another VM shape, are refused with a clear error.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{linux_guest, run, Console};
use vmm::board_types::Power;
use vmm::{DiskConfig, StateError, Vm, VmConfig, VmState, VsockConfig, FORMAT_VERSION};

/// One "COUNT n date uptime" line.
#[derive(Clone, Copy, Debug)]
struct Count {
    n: u64,
    date: u64,
    uptime: f64,
}

impl Console {
    fn counts(&self) -> Vec<Count> {
        self.text()
            .lines()
            .filter_map(|l| {
                let mut w = l.trim().strip_prefix("COUNT ")?.split_whitespace();
                Some(Count {
                    n: w.next()?.parse().ok()?,
                    date: w.next()?.parse().ok()?,
                    uptime: w.next()?.parse().ok()?,
                })
            })
            .collect()
    }

    fn last(&self) -> Option<Count> {
        self.counts().last().copied()
    }

    /// Waits until the guest printed count `n` (or more).
    fn wait_for(&self, n: u64, limit: Duration) {
        let start = Instant::now();
        while self.last().is_none_or(|c| c.n < n) {
            assert!(
                start.elapsed() < limit && !self.text().contains("POCKETVISOR-SCRIPT-EXIT"),
                "the guest did not reach count {n}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn config(guest: &Path, disk: &Path, uds: &Path) -> VmConfig {
    let mut cfg = VmConfig::new(guest.join("Image"));
    cfg.initrd = Some(guest.join("initramfs.cpio.gz"));
    cfg.cmdline = "console=ttyAMA0 cryptomgr.notests pv.run=snapshot".into();
    cfg.disks = vec![DiskConfig {
        path: disk.to_path_buf(),
        read_only: false,
    }];
    cfg.vconsole = true;
    cfg.vsock = Some(VsockConfig {
        cid: 3,
        uds: uds.to_path_buf(),
    });
    cfg
}

/// Sends `data` to guest port 5000 (the echo service) and returns the echo.
fn vsock_echo(uds: &Path, data: &[u8], limit: Duration) -> Vec<u8> {
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < limit,
            "the guest's echo service never answered"
        );
        if let Ok(mut s) = UnixStream::connect(uds) {
            s.write_all(b"CONNECT 5000\n").unwrap();
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok() && line.starts_with("OK ") {
                s.write_all(data).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut echo = Vec::new();
                reader.read_to_end(&mut echo).unwrap();
                return echo;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `vm` on a thread of its own; returns its control and the thread.
fn start(
    mut vm: Vm,
) -> (
    vmm::VmControl,
    Arc<vmm::board_types::Board>,
    std::thread::JoinHandle<()>,
) {
    let (control, board) = (vm.control(), vm.board());
    let thread = std::thread::spawn(move || {
        vm.run();
        drop(vm); // closes and syncs the disk, removes the vsock socket
    });
    (control, board, thread)
}

#[test]
fn a_running_debian_guest_survives_save_and_restore() {
    let guest = linux_guest();
    let dir = tempfile::tempdir().unwrap();
    let (disk, uds) = (dir.path().join("disk.img"), dir.path().join("v.sock"));
    assert!(run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4"])
        .arg(&disk)
        .arg("32M"))
    .status
    .success());
    let cfg = config(&guest, &disk, &uds);

    // First life: boot, count a while, talk over vsock.
    let (console, hvc) = (Console::default(), Console::default());
    let vm = Vm::with_hvc(&cfg, Box::new(console.clone()), Some(Box::new(hvc.clone()))).unwrap();
    let (control, board, thread) = start(vm);
    console.wait_for(5, Duration::from_secs(300));
    let hello = b"before the snapshot".repeat(100);
    assert_eq!(vsock_echo(&uds, &hello, Duration::from_secs(60)), hello);
    // A stream left open across the save: the restored guest must drop it.
    let mut open = UnixStream::connect(&uds).unwrap();
    open.write_all(b"CONNECT 5000\n").unwrap();

    // Save: pause, state to bytes, RAM to a file.
    let t = Instant::now();
    control.pause();
    let state = control.save_state().expect("save the state");
    let bytes = state.to_bytes();
    let ram = tempfile::tempfile().unwrap();
    let ram_bytes = control.ram().save_to(&ram).unwrap();
    let saved_in = t.elapsed();
    let stats_before = control.stats();
    assert!(
        stats_before.paused && stats_before.instructions > 0,
        "{stats_before:?}"
    );
    let before = console.last().expect("counts before the save");
    let hvc_before = hvc.text();
    board.set_power(Power::Stopped);
    thread.join().unwrap();
    drop(open);

    // Time passes on the host; not for the guest.
    let gap = Duration::from_secs(3);
    std::thread::sleep(gap);

    // Second life, from the bytes alone.
    let t = Instant::now();
    let state = VmState::from_bytes(&bytes).expect("read the state back");
    let (console2, hvc2) = (Console::default(), Console::default());
    let vm = Vm::restore(
        &cfg,
        Box::new(console2.clone()),
        Some(Box::new(hvc2.clone())),
        &state,
        &ram,
    )
    .expect("restore the VM");
    let restored_in = t.elapsed();
    eprintln!(
        "state {} bytes, RAM {} MiB written, saved in {saved_in:?}, restored in {restored_in:?}",
        bytes.len(),
        ram_bytes >> 20
    );
    let (control2, board2, thread2) = start(vm);
    console2.wait_for(before.n + 5, Duration::from_secs(120));
    // The vCPU's counters are part of its state: they continue too.
    let stats_after = control2.stats();
    assert!(
        stats_after.instructions > stats_before.instructions && !stats_after.paused,
        "{stats_before:?} then {stats_after:?}"
    );
    assert_eq!(stats_after.mem_bytes, cfg.mem);
    let echo = b"after the restore".repeat(1000);
    assert_eq!(vsock_echo(&uds, &echo, Duration::from_secs(60)), echo);
    board2.set_power(Power::Off);
    thread2.join().unwrap();

    // The count continues where it was: the console's lines before and
    // after the restore (the save may split one) count 1, 2, 3, ... with
    // none lost or repeated, well past the saved count.
    let (text1, text2) = (console.text(), console2.text());
    let all = Console(Arc::new(Mutex::new(format!("{text1}{text2}").into_bytes()))).counts();
    assert!(
        all.iter().enumerate().all(|(i, c)| c.n == i as u64 + 1)
            && all.len() as u64 >= before.n + 5,
        "counts before:\n{text1}\nafter:\n{text2}"
    );
    // hvc0 goes on from where it was too, the same way.
    let hvc_after = hvc2.text();
    let both = format!("{hvc_before}{hvc_after}");
    let lines: Vec<u64> = both
        .lines()
        .filter_map(|l| l.trim().strip_prefix("HVC ")?.parse().ok())
        .collect();
    assert!(
        !lines.is_empty()
            && lines.iter().enumerate().all(|(i, &n)| n == i as u64 + 1)
            && *lines.last().unwrap() > before.n,
        "hvc0 before:\n{hvc_before}\nafter:\n{hvc_after}"
    );
    // The guest's clocks continue from the save: the host's 3 s gap is not
    // seen between any two steps (uptime from the counter, date from the
    // kernel's clock); without the VM's clock offset one step jumps by it.
    for w in all.windows(2) {
        let step = w[1].uptime - w[0].uptime;
        assert!(
            (0.0..gap.as_secs_f64() * 0.6).contains(&step),
            "uptime went from {} to {} between counts {} and {}",
            w[0].uptime,
            w[1].uptime,
            w[0].n,
            w[1].n
        );
        assert!(
            w[1].date >= w[0].date && w[1].date <= w[0].date + 2,
            "date went from {} to {} between counts {} and {}",
            w[0].date,
            w[1].date,
            w[0].n,
            w[1].n
        );
    }

    // Every file written before and after is on the disk, intact.
    let last = all.last().unwrap().n;
    let copy = dir.path().join("check.img");
    std::fs::copy(&disk, &copy).unwrap();
    let fsck = run(Command::new("e2fsck").arg("-fy").arg(&copy));
    assert!(
        fsck.status.code().unwrap_or(8) < 4,
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    let mut script = String::new();
    for n in 1..=last {
        script.push_str(&format!("cat /c{n}\n"));
    }
    let list = dir.path().join("cmds");
    std::fs::write(&list, script).unwrap();
    let out = run(Command::new("debugfs").arg("-f").arg(&list).arg(&copy));
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = text
        .lines()
        .filter(|l| !l.starts_with("debugfs"))
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(numbers, (1..=last).collect::<Vec<_>>(), "{text}");
}

/// A small state to damage: a VM built but never run.
fn small_state(dir: &Path) -> (VmConfig, VmState) {
    let guest = linux_guest();
    let disk = dir.join("d.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let cfg = config(&guest, &disk, &dir.join("s.sock"));
    let vm = Vm::new(&cfg, Box::new(std::io::sink())).unwrap();
    let state = vm.control().save_state().unwrap();
    (cfg, state)
}

#[test]
fn damaged_or_foreign_states_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, state) = small_state(dir.path());
    let good = state.to_bytes();
    assert_eq!(VmState::from_bytes(&good).unwrap(), state);

    let mut other_version = good.clone();
    other_version[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let e = VmState::from_bytes(&other_version).unwrap_err();
    assert_eq!(
        e,
        StateError::Version {
            found: FORMAT_VERSION + 1
        }
    );
    assert!(e.to_string().contains("version"), "{e}");

    for cut in [good.len() - 1, good.len() / 2, 30, 9] {
        let e = VmState::from_bytes(&good[..cut]).unwrap_err();
        assert!(
            matches!(e, StateError::Truncated { .. }) && e.to_string().contains("truncated"),
            "cut at {cut}: {e}"
        );
    }
    assert_eq!(
        VmState::from_bytes(b"#!/bin/sh\necho hi\n").unwrap_err(),
        StateError::NotAState
    );
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    assert_eq!(
        VmState::from_bytes(&flipped).unwrap_err(),
        StateError::Corrupt
    );

    // A state that decodes but does not fit the VM is refused by restore,
    // which leaves nothing behind.
    let ram = tempfile::tempfile().unwrap();
    ram.set_len(cfg.mem).unwrap();
    let mut other = cfg.clone();
    other.mem *= 2;
    let wrong_ram = tempfile::tempfile().unwrap();
    wrong_ram.set_len(other.mem).unwrap();
    let e = Vm::restore(&other, Box::new(std::io::sink()), None, &state, &wrong_ram)
        .err()
        .expect("another RAM size is refused");
    assert!(e.to_string().contains("MiB of RAM"), "{e}");
    // A guest that timed itself by another counter frequency (a phone's
    // 19.2 MHz, say) would see its clocks run at the wrong speed here.
    let mut other_clock = state.clone();
    other_clock.board.counter_hz = 19_200_000;
    let e = Vm::restore(&cfg, Box::new(std::io::sink()), None, &other_clock, &ram)
        .err()
        .expect("another counter frequency is refused");
    assert!(e.to_string().contains("19200000 Hz"), "{e}");
    let e = Vm::restore(&cfg, Box::new(std::io::sink()), None, &state, &wrong_ram)
        .err()
        .expect("a RAM image of another size is refused");
    assert!(e.to_string().contains("memory image"), "{e}");
    let mut fewer = cfg.clone();
    fewer.vsock = None;
    let e = Vm::restore(&fewer, Box::new(std::io::sink()), None, &state, &ram)
        .err()
        .expect("other devices are refused");
    assert!(e.to_string().contains("virtio devices"), "{e}");
    let mut bigger_disk = cfg.clone();
    let disk2 = dir.path().join("d2.img");
    std::fs::write(&disk2, vec![0u8; 2 << 20]).unwrap();
    bigger_disk.disks[0].path = disk2;
    let e = Vm::restore(&bigger_disk, Box::new(std::io::sink()), None, &state, &ram)
        .err()
        .expect("a disk of another size is refused");
    assert!(e.to_string().contains("sectors"), "{e}");
    // And the right configuration takes it.
    Vm::restore(&cfg, Box::new(std::io::sink()), None, &state, &ram).unwrap();
}
