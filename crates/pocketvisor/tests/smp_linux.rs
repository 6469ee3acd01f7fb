//! SMP guests: Debian's stock kernel under `pocketvisor run --cpus 4`
//! brings up every CPU, takes one offline and back through sysfs, runs a
//! program with one thread per CPU whose atomics and spinlock must give
//! exact totals, and the litmus tests (a million runs each: no forbidden
//! outcome) — while each vCPU runs on a host thread of its own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{spawn_linux, wait_with_limit};

/// The CPU time (user + system, in clock ticks) of each thread of process
/// `pid` whose name starts with "vcpu", by name.
fn vcpu_thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut ticks = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return ticks;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (name) state ... utime stime ..." — the name may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        if name.starts_with("vcpu") && fields.len() > 12 {
            let used =
                fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
            ticks.insert(name, used);
        }
    }
    ticks
}

#[test]
fn four_vcpus_boot_hotplug_and_keep_atomics_exact() {
    let child = spawn_linux(
        "console=ttyAMA0 cryptomgr.notests pv.run=smp pv.cpus=4",
        &["--cpus", "4"],
    );
    let pid = child.id();
    // Watch the vCPU threads' CPU time while the guest works.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let mut last = BTreeMap::new();
        loop {
            let now = vcpu_thread_ticks(pid);
            if !now.is_empty() {
                last = now;
            }
            if stop_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                return last;
            }
        }
    });
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(900));
    stop_tx.send(()).unwrap();
    let threads = watcher.join().unwrap();
    let context = format!("--- stdout ---\n{out}\n--- stderr ---\n{err}");
    for check in ["cpus-online", "hotplug", "atomics", "litmus"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("CHECK {check} ok"))),
            "check {check} did not pass\n{context}"
        );
    }
    // Every litmus test ran (IRIW needs all 4 CPUs).
    for test in [
        "MP+dmb.st+dmb.ld",
        "SB+dmb.ish",
        "SB+stlr+ldar",
        "IRIW+dmb.ld",
    ] {
        assert!(
            out.contains(&format!("LITMUS {test} ok runs=")),
            "litmus test {test} did not run\n{context}"
        );
    }
    assert!(out.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{context}");
    assert_eq!(code, Some(0), "{context}");
    // vCPUs 1..3 ran on threads of their own, and each did real work.
    for n in 1..4 {
        let name = format!("vcpu {n}");
        let used = threads.get(&name).copied().unwrap_or(0);
        assert!(
            used > 0,
            "thread {name} used no CPU time: {threads:?}\n{context}"
        );
    }
}
