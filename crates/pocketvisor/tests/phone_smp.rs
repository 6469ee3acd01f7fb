//! An SMP VM in a phone (`cpus = 4` in the manifest) is snapshotted while
//! all its CPUs are busy and one is offline, and restored: the guest
//! counts on from the snapshot, the offline CPU is still offline (its PSCI
//! power state was saved) and comes back online when asked.

mod common;

use std::time::Duration;

use common::counting::{check_carries_on, last_tick};
use common::phone::{wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(180);

/// What `/sys/devices/system/cpu/online` says in VM `vm` now.
fn online(p: &TestPhone, vm: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tag = format!("ONLINE{n}=");
    p.run_in(
        vm,
        &format!("echo {}$(cat /sys/devices/system/cpu/online)", tag),
        LIMIT,
    );
    let log = p.console_log(vm);
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with(&tag))
        .expect("the online line")
        .to_string();
    line[tag.len()..].trim().to_string()
}

#[test]
fn an_smp_vm_with_a_cpu_offline_snapshots_and_restores() {
    let mut vm = VmSpec::new("work", "open").with("cpus = 4");
    vm.data_disk = Some("work.img");
    let p = TestPhone::up("memory = \"300M\"", &[vm], "");
    assert_eq!(online(&p, "work"), "0-3");
    p.run_in(
        "work",
        "echo 0 > /sys/devices/system/cpu/cpu3/online",
        LIMIT,
    );
    assert_eq!(online(&p, "work"), "0-2");
    // Every online CPU busy while the snapshot is taken.
    for cpu in 0..3 {
        p.run_in(
            "work",
            &format!("taskset -c {cpu} sh -c 'while :; do :; done' &"),
            LIMIT,
        );
    }
    common::counting::start(&p, "work");

    let low = last_tick(&p.console_log("work")).unwrap();
    let snap = p.dir.path().join("snap");
    p.cli_ok(&["snapshot", "work", "--out", snap.to_str().unwrap()]);
    let high = last_tick(&p.console_log("work")).unwrap();
    wait("ticks after the snapshot", LIMIT, || {
        last_tick(&p.console_log("work")).unwrap() > high + 3
    });

    p.cli_ok(&["stop", "work"]);
    let start = std::time::Instant::now();
    while p.vm("work")["state"] != "stopped" {
        if start.elapsed() > LIMIT {
            panic!("work did not stop: {}\n{}", p.vm("work"), p.phone_log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = p.console_log("work").len();
    p.cli_ok(&["restore", snap.to_str().unwrap()]);
    check_carries_on(&p, "work", before, low, high);
    assert_eq!(online(&p, "work"), "0-2", "CPU 3 stays offline");
    p.run_in(
        "work",
        "echo 1 > /sys/devices/system/cpu/cpu3/online",
        LIMIT,
    );
    assert_eq!(online(&p, "work"), "0-3", "and comes back when asked");
}
