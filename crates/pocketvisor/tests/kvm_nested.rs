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
    READY.get_or_init(|| common::run_guest_script("build-kvm-host.sh"));
    common::repo_root().join("guests/cache")
}

/// An emulated ARM64 host: its CPU and its kernel.
struct Host {
    /// QEMU's -cpu.
    cpu: &'static str,
    /// The kernel under guests/cache.
    kernel: &'static str,
}

/// Every Armv8 feature QEMU has, and Debian 12's 6.1 kernel: KVM runs in
/// VHE mode and shows the guest the host's features (many our software CPU
/// lacks).
const MAX_61: Host = Host {
    cpu: "max,pauth-impdef=on",
    kernel: "linux/Image",
};

/// A Cortex-A72 (Armv8.0, KVM in nVHE mode) with Debian 12's 6.12 kernel,
/// whose KVM lets us lower the vCPU's ID registers to our software CPU's:
/// a guest can move between the backends both ways.
const A72_612: Host = Host {
    cpu: "cortex-a72",
    kernel: "kvm-host/Image-6.12",
};

/// One emulated host at a time: each takes both of the machine's cores
/// (-smp 2), and two at once starve each other's guests.
static ONE_HOST: Mutex<()> = Mutex::new(());

/// Boots `host` with `append` on its command line and returns its console
/// once it powers off. QEMU is killed (by PID) past `limit`.
fn run_host(host: &Host, append: &str, limit: Duration) -> String {
    let cache = host_dir();
    let _turn = ONE_HOST.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new("qemu-system-aarch64")
        .args([
            "-M",
            "virt,virtualization=on,gic-version=3",
            "-cpu",
            host.cpu,
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
        .arg(cache.join(host.kernel))
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
    let reader = common::vmm_process::collect(child.stdout.take().unwrap(), out.clone());
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

/// `--accel auto` takes KVM in the ARM host, says so, and the guest's
/// disk, hvc0 and vsock work, with queue kicks through ioeventfd and
/// interrupts through irqfd.
#[test]
fn kvm_guest_uses_its_devices() {
    let out = run_host(
        &MAX_61,
        "pvhost.run=devices pvhost.accel=auto",
        Duration::from_secs(600),
    );
    assert!(
        out.contains("pocketvisor: vCPUs on kvm (auto: /dev/kvm works)"),
        "the VM did not run under KVM:\n{out}"
    );
    assert_checks(&out, DEVICE_CHECKS);
    // Queue kicks by ioeventfd, interrupts by irqfd: their threads run.
    let threads = out
        .lines()
        .find_map(|l| l.strip_prefix("THREADS "))
        .unwrap_or_else(|| panic!("no THREADS in:\n{out}"));
    assert!(
        threads.contains("virtio-kicks") && threads.contains("irq-resample"),
        "{threads}"
    );
    assert!(out.contains("via-hvc0"), "{out}");
    assert!(out.contains("HOST VSOCK-PING ok"), "{out}");
    assert!(out.contains("HOST VSOCK-ECHOED 1048576"), "{out}");
    assert!(out.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{out}");
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
}

#[test]
fn kvm_guests_share_an_ethernet() {
    let out = run_host(
        &MAX_61,
        "pvhost.run=net pvhost.accel=kvm",
        Duration::from_secs(600),
    );
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
        &MAX_61,
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

/// The numbers after `key` on the line starting with `prefix` (e.g.
/// "CLONE kvmclone" → first, last, boots).
fn clone_report(out: &str, vm: &str) -> (u64, u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("CLONE {vm} ")))
        .unwrap_or_else(|| panic!("no report of {vm}:\n{out}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "{line}");
    (n[0], n[1], n[2])
}

fn snapshot_count(out: &str, vm: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("SNAP {vm} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no snapshot of {vm}:\n{out}"))
}

/// A VM counting (and writing a file per count) under KVM is snapshotted
/// in a phone and continues: as a clone under KVM (and, snapshotted in
/// turn, as a clone of that clone under KVM), as a clone on the software
/// CPU, and — snapshotted there — under KVM again. No clone
/// reboots; each continues within a count or two of where the snapshot
/// was taken (a line the guest was printing may be cut), and keeps going.
#[test]
fn snapshots_move_between_kvm_and_the_software_cpu() {
    let out = run_host(&A72_612, "pvhost.run=snapshot", Duration::from_secs(900));
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
    let from_kvm = snapshot_count(&out, "open");
    let from_clone = snapshot_count(&out, "kvmclone");
    for (vm, after) in [
        ("kvmclone", from_kvm),
        ("kvm2", from_clone),
        ("softclone", from_kvm),
    ] {
        let (first, last, boots) = clone_report(&out, vm);
        assert_eq!(boots, 0, "{vm} booted again:\n{out}");
        assert!(
            first > after && first <= after + 2,
            "{vm} began at {first}, the snapshot was at {after}:\n{out}"
        );
        assert!(last > first, "{vm} did not keep counting:\n{out}");
    }
    let from_soft = snapshot_count(&out, "softclone");
    let (first, last, boots) = clone_report(&out, "back");
    assert_eq!(boots, 0, "{out}");
    assert!(first > from_soft && first <= from_soft + 2, "{out}");
    assert!(last >= from_soft + 20, "{out}");
    for (vm, backend) in [
        ("kvmclone", "kvm"),
        ("kvm2", "kvm"),
        ("softclone", "soft"),
        ("back", "kvm"),
    ] {
        let line = format!("VM {vm}: vCPUs on {backend} (asked for)");
        assert!(out.contains(&line), "no '{line}':\n{out}");
    }
}

/// Where KVM cannot hide the host's features (Linux 6.1, a CPU with many
/// our software CPU lacks), a KVM snapshot is refused on the software CPU,
/// with the features named — never a guest that crashes later.
#[test]
fn kvm_snapshot_needing_more_than_the_software_cpu_is_refused() {
    let out = run_host(&MAX_61, "pvhost.run=refuse", Duration::from_secs(600));
    assert!(
        out.contains("the guest cannot continue on the software CPU, which lacks features it was offered at boot: ID_AA64"),
        "{out}"
    );
    assert!(out.contains("could not start"), "{out}");
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
}

/// Live migration under KVM: a VM rewriting and checking 32 MiB of its
/// memory (at 16 MiB/s) moves between two phones in the emulated host,
/// KVM on both sides. Its checker goes on passing on the target without a
/// mismatch — a page KVM's dirty log missed would be one — and without a
/// reboot; the source keeps it stopped, "migrated".
#[test]
fn kvm_guest_migrates_live() {
    let out = run_host(&MAX_61, "pvhost.run=migrate", Duration::from_secs(900));
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
    assert!(out.contains("VM open migrated to 127.0.0.1:7070"), "{out}");
    assert!(!out.contains("MEMCHECK MISMATCH"), "{out}");
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("PASSES-ON-B "))
        .unwrap_or_else(|| panic!("no PASSES-ON-B in:\n{out}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 3, "{line}");
    let (passes, last_on_a, first_on_b) = (n[0], n[1], n[2]);
    assert!(passes >= 4, "{out}");
    // The count goes on (a pass may end between the last log line read on
    // A and the pause).
    assert!(
        first_on_b > last_on_a && first_on_b <= last_on_a + 3,
        "{out}"
    );
    assert!(out.contains("BOOTS-ON-B 0"), "the VM booted again:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("A-STATUS ") && l.contains("stopped")),
        "{out}"
    );
    assert!(
        out.contains("A-LOG ") && out.contains("VM open: migrated to"),
        "{out}"
    );
    assert!(out.contains("VM open: vCPUs on kvm"), "{out}");
}

/// The counts VM `vm` printed in the smp scenario, as (count, online CPUs),
/// and whether it said it brought its CPU back online.
fn smp_counts(out: &str, vm: &str) -> (Vec<(u64, String)>, bool) {
    let prefix = format!("{vm} COUNT ");
    let counts = out
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (n, online) = rest.split_once(" online=")?;
            Some((n.parse().ok()?, online.trim().to_string()))
        })
        .collect();
    let back = out.contains(&format!("{vm} BACK online=0-1 ran=ran"));
    (counts, back)
}

/// SMP under KVM: a VM with 2 vCPUs has both online, takes one offline and
/// back, and counts exactly with atomics on both (litmus tests here would
/// test the emulated host's CPU — QEMU's — not ours). A 2-vCPU KVM VM with its second CPU offline is snapshotted and
/// continues as a clone on the software CPU and as a clone under KVM; the
/// software clone's own snapshot continues under KVM. No clone boots again,
/// each keeps the CPU offline (its power state moved with the snapshot),
/// and the KVM clones bring it back online when the guest asks.
#[test]
fn kvm_runs_smp_guests_whose_snapshots_cross_backends() {
    let out = run_host(&A72_612, "pvhost.run=smp", Duration::from_secs(900));
    assert!(out.contains("SMP-RUN-EXIT=0"), "{out}");
    assert_checks(&out, &["cpus-online", "hotplug", "atomics"]);
    assert!(out.contains("PVHOST-EXIT=0"), "{out}");
    for (vm, snapshot_of, brings_back) in [
        ("softclone", "open", false),
        ("kvmclone", "open", true),
        ("back", "softclone", true),
    ] {
        assert!(
            out.contains(&format!("BOOTS {vm} 0")),
            "{vm} booted again:\n{out}"
        );
        let taken = snapshot_count(&out, snapshot_of);
        let (counts, back) = smp_counts(&out, vm);
        let first = counts.first().expect("the clone counted").0;
        assert!(
            first > taken && first <= taken + 2,
            "{vm} began at {first}, the snapshot was at {taken}:\n{out}"
        );
        for (n, online) in &counts {
            let want = if *n < 40 { "0" } else { "0-1" };
            assert_eq!(online, want, "{vm} at count {n}:\n{out}");
        }
        assert_eq!(back, brings_back, "{vm}:\n{out}");
        let last = counts.last().expect("counts").0;
        assert!(last >= if brings_back { 42 } else { 20 }, "{vm}:\n{out}");
    }
    for (vm, backend) in [("softclone", "soft"), ("kvmclone", "kvm"), ("back", "kvm")] {
        let line = format!("VM {vm}: vCPUs on {backend} (asked for)");
        assert!(out.contains(&line), "no '{line}':\n{out}");
    }
}
