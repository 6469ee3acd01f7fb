//! `phone snapshot` and `phone restore`: an open VM counting on its
//! console, with a file in its tmpfs (RAM) and a mark on its disk, is
//! snapshotted while it runs (it carries on), stopped, and restored: its
//! counter continues from the snapshot's value (not from 1) and the file
//! in RAM is back. Two clones of the same snapshot (`--as`, with copies of
//! the disk) join the running phone beside it, each with its own CID, and
//! each carries on from the snapshot too; a third, over the phone's memory
//! budget, is refused. The snapshot's RAM is sparse. A changed disk, a
//! snapshot directory that exists, one that is damaged, and a running VM
//! are refused with one clear error each.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::counting::{check_carries_on, last_tick};
use common::phone::{wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_snapshot_continues_where_it_was_taken() {
    let mut vm = VmSpec::new("personal", "open");
    vm.data_disk = Some("personal.img");
    // Room for the VM and two clones: a third is over the budget.
    let p = TestPhone::up("memory = \"400M\"", &[vm], "");
    let disk = p.dir.path().join("personal.img");
    common::counting::start(&p, "personal");

    let before_snapshot = last_tick(&p.console_log("personal")).unwrap();
    let snap = p.dir.path().join("snap");
    let out = p.cli_ok(&["snapshot", "personal", "--out", snap.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("snapshot of personal"), "{said}");
    let (low, at) = (
        before_snapshot,
        last_tick(&p.console_log("personal")).unwrap(),
    );
    // Sparse: far fewer bytes allocated than the 128 MiB of RAM.
    let memory = std::fs::metadata(snap.join("memory.bin")).unwrap();
    assert_eq!(memory.len(), 128 << 20);
    assert!(
        memory.blocks() * 512 < 100 << 20,
        "memory.bin allocates {} bytes",
        memory.blocks() * 512
    );
    let meta = std::fs::read_to_string(snap.join("snapshot.toml")).unwrap();
    assert!(
        meta.contains("vm = \"personal\"") && meta.contains("sha256"),
        "{meta}"
    );
    // The VM carries on.
    wait("ticks after the snapshot", LIMIT, || {
        last_tick(&p.console_log("personal")).unwrap() > at + 5
    });

    // Refusals: a running VM, a directory that exists.
    let out = p.cli(&["restore", snap.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is running: stop it first"));
    let out = p.cli(&["snapshot", "personal", "--out", snap.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot create"));

    // Restore: the counter goes on from the snapshot.
    p.cli_ok(&["stop", "personal"]);
    wait("personal to stop", LIMIT, || {
        p.vm("personal")["state"] == "stopped"
    });
    let before = p.console_log("personal").len();
    p.cli_ok(&["restore", snap.to_str().unwrap()]);
    check_carries_on(&p, "personal", before, low, at);
    assert!(p.phone_log().contains("VM personal: restoring from"));

    // Two clones from the same snapshot, beside the original.
    let s = snap.to_str().unwrap();
    let out = p.cli(&["restore", s, "--as", "personal"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already has a VM named"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for twin in ["twin-a", "twin-b"] {
        p.cli_ok(&["restore", s, "--as", twin, "--copy-disks"]);
    }
    let mut cids = vec![];
    for twin in ["twin-a", "twin-b"] {
        check_carries_on(&p, twin, 0, low, at);
        let entry =
            std::fs::read_to_string(p.state.join(format!("imported/{twin}/vm.toml"))).unwrap();
        assert!(entry.contains(&format!("imported/{twin}/disk0")), "{entry}");
        cids.push(
            entry
                .lines()
                .find(|l| l.starts_with("cid"))
                .unwrap()
                .to_string(),
        );
    }
    // A clone the phone's memory budget has no room for: refused, and
    // nothing of it is left.
    let out = p.cli(&["restore", s, "--as", "twin-c"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("the phone cannot take VM twin-c")
            && err.contains("phone.memory"),
        "{err}"
    );
    assert!(!p.state.join("imported/twin-c").exists());
    assert_ne!(cids[0], cids[1]);
    assert!(!cids.contains(&"cid = 3".to_string()), "{cids:?}");
    assert_eq!(p.vm("personal")["state"], "running");
    for twin in ["twin-a", "twin-b"] {
        p.cli_ok(&["stop", twin]);
    }

    // A changed disk is refused; so is a damaged snapshot.
    p.cli_ok(&["stop", "personal"]);
    wait("personal to stop", LIMIT, || {
        p.vm("personal")["state"] == "stopped"
    });
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[4096] ^= 1;
    std::fs::write(&disk, &bytes).unwrap();
    let out = p.cli(&["restore", snap.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("changed since the snapshot"),
        "{err}"
    );
    bytes[4096] ^= 1;
    std::fs::write(&disk, &bytes).unwrap();
    std::fs::remove_file(snap.join("state.bin")).unwrap();
    let out = p.cli(&["restore", snap.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no state.bin"),
        "{err}"
    );
    assert_eq!(p.vm("personal")["state"], "stopped");
}
