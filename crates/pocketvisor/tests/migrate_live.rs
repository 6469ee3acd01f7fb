//! Live migration between two phones on this machine, over loopback.
//!
//! * A counting VM that keeps writing numbered records to its disk moves
//!   from phone A to phone B: refused first when A is given the wrong key
//!   for B (nothing sent, A's guest runs on, B keeps nothing), then moved:
//!   on B its counter goes on from where it was on A, the file in its RAM
//!   and its disk records are there; on A it is stopped, "migrated".
//! * A VM whose guest rewrites and checks 48 MiB of memory all the time:
//!   a migration whose target dies in the middle, and one cancelled in
//!   the middle, leave it running on A (and the second leaves B
//!   clean); then it moves with a copy of its disk, and its checker keeps
//!   passing on B — a page the dirty tracking missed would be a mismatch —
//!   and the mark on its disk is in B's copy.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::counting::{check_carries_on, last_tick};
use common::phone::{pocketvisor, wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

/// `phone receive` on `phone`, running: killed by PID on drop.
struct Receiving {
    child: Option<Child>,
    /// The address it listens on.
    addr: String,
}

impl Receiving {
    fn start(phone: &TestPhone, source_key: &Path) -> Receiving {
        let mut child = pocketvisor()
            .args(["phone", "receive", "--listen", "127.0.0.1:0", "--quiet"])
            .arg("--source-key")
            .arg(source_key)
            .arg("--phone")
            .arg(&phone.state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("phone receive said: {line}"))
            .to_string();
        Receiving {
            child: Some(child),
            addr,
        }
    }

    /// Waits for it to end: success, and what it printed.
    fn finish(mut self) -> (bool, String) {
        let mut child = self.child.take().unwrap();
        let status = child.wait().unwrap();
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        (status.success(), text)
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes phone `p`'s identity key to a file beside it.
fn key_file(p: &TestPhone, name: &str) -> PathBuf {
    let path = p.dir.path().join(name);
    std::fs::write(&path, p.cli_ok(&["identity"]).stdout).unwrap();
    path
}

fn migrate(a: &TestPhone, vm: &str, to: &str, key: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["migrate", vm, "--to", to, "--quiet", "--target-key"];
    args.push(key.to_str().unwrap());
    args.extend_from_slice(extra);
    let out = a.cli(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Starts migrating `vm` through A's API with a downtime target of 1 ms
/// (it goes on copying for a while), and waits until pages are sent.
fn start_copying(a: &TestPhone, vm: &str, to: &str, key_hex: &str) {
    let body = serde_json::json!({ "to": to, "target_key": key_hex.trim(), "max_downtime_ms": 1 });
    let answer = a
        .client()
        .call("POST", &format!("/vms/{vm}/migrate"), Some(&body))
        .unwrap();
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    wait("pages on their way", LIMIT, || {
        let s = a
            .client()
            .call("GET", &format!("/vms/{vm}/migration"), None)
            .unwrap();
        s.body["phase"] == "copying" && s.body["sent_bytes"].as_u64() > Some(0)
    });
}

#[test]
fn a_vm_writing_its_disk_moves_live_and_carries_on() {
    let mut vm = VmSpec::new("personal", "open");
    vm.data_disk = Some("personal.img");
    let a = TestPhone::up("memory = \"256M\"", &[vm], "");
    common::counting::start(&a, "personal");
    // Numbered records written to the disk all the time.
    a.run_in(
        "personal",
        "(n=0; while :; do n=$((n+1)); echo \"REC $n\" | dd of=/dev/vda bs=512 seek=$((n%1000+16)) count=1 conv=fsync 2>/dev/null; echo $n > /tmp/lastrec; done) & echo $! > /tmp/writer",
        LIMIT,
    );
    let b = TestPhone::up("memory = \"512M\"", &[VmSpec::new("home", "open")], "");
    let (a_key, b_key) = (key_file(&a, "a.key"), key_file(&b, "b.key"));

    // A wrong key for the target: nothing moves.
    let receiving = Receiving::start(&b, &a_key);
    let (ok, text) = migrate(&a, "personal", &receiving.addr, &a_key, &[]);
    assert!(!ok && text.contains("not authenticated"), "{text}");
    let (ok, text) = receiving.finish();
    assert!(!ok, "{text}");
    assert_eq!(a.vm("personal")["state"], "running");
    assert!(
        b.client()
            .call("GET", "/vms/personal", None)
            .unwrap()
            .status
            == 404
    );
    assert!(!b.state.join("imported/personal").exists());

    let receiving = Receiving::start(&b, &a_key);
    let low = last_tick(&a.console_log("personal")).unwrap();
    let (ok, text) = migrate(&a, "personal", &receiving.addr, &b_key, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("downtime"), "{text}");
    let high = last_tick(&a.console_log("personal")).unwrap();
    let (ok, text) = receiving.finish();
    assert!(ok && text.contains("received VM personal"), "{text}");

    // Its worker at A ends once B runs the guest.
    wait("the source's worker to end", LIMIT, || {
        a.vm("personal")["state"] == "stopped"
    });
    let row = a.vm("personal");
    assert!(
        row["reason"].as_str().unwrap().contains("migrated to"),
        "{row}"
    );
    assert_eq!(b.vm("personal")["state"], "running");
    check_carries_on(&b, "personal", 0, low, high);
    // The writer went on there; its last record is on the disk.
    b.run_in(
        "personal",
        "kill $(cat /tmp/writer); sleep 0.5; n=$(cat /tmp/lastrec); echo LAST $n; dd if=/dev/vda bs=512 skip=$((n%1000+16)) count=1 2>/dev/null | head -1",
        LIMIT,
    );
    let log = b.console_log("personal");
    let last: u64 = log
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("LAST "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the writer's count");
    assert!(
        log.contains(&format!("REC {last}\n")) || log.contains(&format!("REC {last}\r")),
        "{log}"
    );
    // The moved VM is part of phone B from now on.
    assert!(b.state.join("imported/personal/vm.toml").is_file());
}

#[test]
fn memory_rewritten_all_the_time_arrives_whole() {
    let mut busy = VmSpec::new("busy", "open");
    busy.mem = "256M";
    busy.data_disk = Some("busy.img");
    let a = TestPhone::up("memory = \"512M\"", &[busy], "");
    a.run_in(
        "busy",
        "echo disk-mark | dd of=/dev/vda bs=512 count=1 conv=fsync 2>/dev/null",
        LIMIT,
    );
    a.run_in("busy", "memcheck 48 > /dev/console &", LIMIT);
    a.wait_for_console_n("busy", "MEMCHECK pass", 2, LIMIT);
    let b = TestPhone::up("memory = \"512M\"", &[VmSpec::new("home", "open")], "");
    let (a_key, b_key) = (key_file(&a, "a.key"), key_file(&b, "b.key"));
    let b_hex = std::fs::read_to_string(&b_key).unwrap();

    // The target dies in the middle: the link breaks, it runs on at A.
    let c = TestPhone::up("memory = \"512M\"", &[VmSpec::new("spare", "open")], "");
    let c_hex = String::from_utf8(c.cli_ok(&["identity"]).stdout).unwrap();
    let receiving = Receiving::start(&c, &a_key);
    start_copying(&a, "busy", &receiving.addr, &c_hex);
    let supervisor = c.status()["supervisor_pid"].as_u64().unwrap() as i32;
    // SAFETY: kill(2) on the PID of the phone this test started.
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    wait("the broken migration to end", LIMIT, || {
        let s = a.client().call("GET", "/vms/busy/migration", None).unwrap();
        s.body["phase"] == "failed"
    });
    drop(receiving);
    let passes = a.console_log("busy").matches("MEMCHECK pass").count();
    a.wait_for_console_n("busy", "MEMCHECK pass", passes + 1, LIMIT);
    assert_eq!(a.vm("busy")["state"], "running");

    // Cancelled in the middle: it runs on at A, B keeps nothing.
    let receiving = Receiving::start(&b, &a_key);
    start_copying(&a, "busy", &receiving.addr, &b_hex);
    let answer = a
        .client()
        .call("DELETE", "/vms/busy/migration", None)
        .unwrap();
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    wait("the cancel", LIMIT, || {
        let s = a.client().call("GET", "/vms/busy/migration", None).unwrap();
        s.body["phase"] == "cancelled"
    });
    let (ok, text) = receiving.finish();
    assert!(!ok && text.contains("gave up"), "{text}");
    assert!(!b.state.join("imported/busy").exists());
    assert!(b.client().call("GET", "/vms/busy", None).unwrap().status == 404);
    let passes = a.console_log("busy").matches("MEMCHECK pass").count();
    a.wait_for_console_n("busy", "MEMCHECK pass", passes + 1, LIMIT);
    assert_eq!(a.vm("busy")["state"], "running");

    // Now for real.
    let receiving = Receiving::start(&b, &a_key);
    let (ok, text) = migrate(
        &a,
        "busy",
        &receiving.addr,
        &b_key,
        &["--max-downtime", "100", "--copy-disks"],
    );
    assert!(ok, "{text}");
    let (ok, text) = receiving.finish();
    assert!(ok, "{text}");
    let before = b.console_log("busy").matches("MEMCHECK pass").count();
    b.wait_for_console_n("busy", "MEMCHECK pass", before + 3, LIMIT);
    for log in [a.console_log("busy"), b.console_log("busy")] {
        assert!(!log.contains("MISMATCH"), "{log}");
    }
    let entry = std::fs::read_to_string(b.state.join("imported/busy/vm.toml")).unwrap();
    assert!(entry.contains("imported/busy/disk0"), "{entry}");
    b.run_in("busy", "head -c 9 /dev/vda; echo", LIMIT);
    assert!(b.console_log("busy").contains("disk-mark"));
}
