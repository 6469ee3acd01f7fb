//! The phone's memory: its budget refuses a VM that does not fit (and
//! changes nothing); under host memory pressure a background VM's balloon
//! inflates and its worker's host RSS drops, while the foreground and
//! trusted VMs are left alone; `phone down` ends every process with what
//! the guests wrote and synced on their disks.

mod common;

use std::time::Duration;

use common::phone::{alive, wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;

#[test]
fn budget_pressure_and_down() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("work.img");
    std::fs::write(&disk, vec![0u8; 160 << 20]).unwrap();
    let vms = [
        VmSpec::new("personal", "open"),
        VmSpec {
            mem: "256M",
            ..VmSpec::new("work", "corporate")
        }
        .with("balloon = true")
        .with(&format!("disks = [\"{}\"]", disk.display())),
        VmSpec::new("keys", "trusted"),
        VmSpec::new("spare", "open").with("autostart = false"),
    ];
    // The host is always "short of memory" for this phone (low_memory far
    // above what any host has), so the manager reclaims whenever it can.
    let p = TestPhone::up(
        "memory = \"512M\"\nlow_memory = \"1T\"\nbackground_cpu = 100",
        &vms,
        "",
    );

    // The budget: 128 + 256 + 128 = 512 MiB run; spare does not fit.
    let out = p.cli(&["start", "spare"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "VM spare needs 128 MiB but only 0 MiB of the phone's 512 MiB budget are free"
        ),
        "{err}"
    );
    assert_eq!(p.vm("spare")["state"], "stopped");
    assert!(p.vm("spare")["pid"].is_null());

    // work in the foreground fills its page cache from its disk: its RSS
    // grows, and nothing is reclaimed from a foreground VM.
    assert!(p.cli(&["switch", "work"]).status.success());
    // The shell keeps the disk open: its cache stays (the last close drops it).
    p.run_in("work", "exec 3</dev/vda; cat /dev/vda > /dev/null", LIMIT);
    std::thread::sleep(Duration::from_secs(3));
    let full = p.vm("work");
    assert_eq!(full["balloon_bytes"], 0, "{full}");
    let rss_full = full["rss_bytes"].as_u64().unwrap();
    assert!(rss_full > 150 * MIB, "the page cache is resident: {full}");

    // In the background, under pressure, its balloon inflates and the host
    // gets the memory back.
    assert!(p.cli(&["switch", "personal"]).status.success());
    wait("work's balloon to inflate", LIMIT, || {
        p.vm("work")["balloon_bytes"].as_u64().unwrap() >= 96 * MIB
    });
    wait("work's RSS to drop", LIMIT, || {
        p.vm("work")["rss_bytes"].as_u64().unwrap() + 64 * MIB < rss_full
    });
    let after = p.vm("work");
    println!(
        "work: RSS {} MiB full, {} MiB after reclaim (balloon {} MiB)",
        rss_full / MIB,
        after["rss_bytes"].as_u64().unwrap() / MIB,
        after["balloon_bytes"].as_u64().unwrap() / MIB
    );
    assert!(
        p.phone_log().contains("memory: host has"),
        "{}",
        p.phone_log()
    );
    for name in ["personal", "keys"] {
        assert_eq!(p.vm(name)["balloon_bytes"], 0, "{name} is never ballooned");
    }
    // The guest runs on and writes its disk.
    p.run_in(
        "work",
        "echo PHONE-DOWN-DATA | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; sync",
        LIMIT,
    );
    // Back in the foreground it gets its memory back.
    assert!(p.cli(&["switch", "work"]).status.success());
    wait("work's balloon to deflate", LIMIT, || {
        p.vm("work")["balloon_bytes"] == 0
    });

    // phone down: exit 0, every process gone, the data on the disk.
    let pids = p.pids();
    let out = p.cli(&["down"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for pid in pids {
        wait(
            &format!("process {pid} to end"),
            Duration::from_secs(10),
            || !alive(pid),
        );
    }
    // The supervisor removed what the sandboxed workers could not.
    for vm in ["personal", "work", "keys"] {
        assert!(
            !p.state.join("vms").join(vm).join("vsock.sock").exists(),
            "{vm}"
        );
    }
    let data = std::fs::read(&disk).unwrap();
    assert_eq!(&data[512..512 + 15], b"PHONE-DOWN-DATA");
}
