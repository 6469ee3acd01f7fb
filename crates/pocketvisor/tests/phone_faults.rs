//! Faults stay inside their VM: `kill -9` of one worker leaves the others
//! running; with `restart = "on-crash"` the VM is back (a new process,
//! booted again) within seconds, with `never` it stays crashed; a worker
//! that makes a system call outside its sandbox dies of SIGSYS and the
//! supervisor reports it as such; a supervisor killed outright takes its
//! workers with it.

mod common;

use std::time::Duration;

use common::phone::{alive, wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn crashes_stay_in_their_vm_and_restart_by_policy() {
    let vms = [
        VmSpec::new("personal", "open").with("restart = \"on-crash\""),
        VmSpec::new("work", "corporate").with("restart = \"never\""),
        VmSpec::new("keys", "trusted").with("restart = \"never\""),
    ];
    // The debug build's hook makes keys' worker open an internet socket
    // once sandboxed (after a refused open, which it survives).
    std::env::set_var("PV_TEST_FORBIDDEN_CALL", "keys");
    let p = TestPhone::prepare("memory = \"512M\"\nbackground_cpu = 100", &vms, "");
    let out = common::phone::pocketvisor()
        .args(["phone", "up", "--detach"])
        .arg(&p.manifest)
        .output()
        .unwrap();
    std::env::remove_var("PV_TEST_FORBIDDEN_CALL");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    wait("keys to die of SIGSYS", LIMIT, || {
        p.vm("keys")["state"] == "crashed"
    });
    let keys = p.vm("keys");
    assert_eq!(
        keys["reason"], "killed by SIGSYS (a forbidden system call)",
        "{keys}"
    );
    assert_eq!(keys["restarts"], 0);
    assert!(keys["pid"].is_null());

    for name in ["personal", "work"] {
        p.wait_for_console(name, "Pocketvisor guest shell", LIMIT);
    }
    let personal = p.vm("personal")["pid"].as_u64().unwrap() as u32;
    let work = p.vm("work")["pid"].as_u64().unwrap() as u32;

    // kill -9 the on-crash VM: it is back with a new process and boots
    // again; the other VM is untouched.
    // SAFETY: killing a worker of the phone this test started, by PID.
    unsafe { libc::kill(personal as i32, libc::SIGKILL) };
    wait("personal to come back", Duration::from_secs(30), || {
        let v = p.vm("personal");
        v["state"] == "running" && v["pid"].as_u64() != Some(personal as u64)
    });
    assert_eq!(p.vm("personal")["restarts"], 1);
    p.wait_for_console_n("personal", "Pocketvisor guest shell", 2, LIMIT);
    assert_eq!(p.vm("work")["pid"], work as u64, "work untouched");
    assert_eq!(p.vm("work")["state"], "running");

    // kill -9 the never VM: it stays crashed, the other one runs on.
    let personal = p.vm("personal")["pid"].as_u64().unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(work as i32, libc::SIGKILL) };
    wait("work to be recorded", Duration::from_secs(30), || {
        p.vm("work")["state"] == "crashed"
    });
    std::thread::sleep(Duration::from_secs(2));
    let w = p.vm("work");
    assert_eq!(w["state"], "crashed", "{w}");
    assert_eq!(w["reason"], "killed by SIGKILL", "{w}");
    assert!(!alive(work));
    assert_eq!(p.vm("personal")["pid"], personal, "personal untouched");
    // The log says what happened.
    let log = p.phone_log();
    assert!(
        log.contains("VM keys: worker ended: killed by SIGSYS"),
        "{log}"
    );
    assert!(
        log.contains("VM work: worker ended: killed by SIGKILL"),
        "{log}"
    );

    // A crashed VM can be started again by hand.
    let out = p.cli(&["start", "work"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.wait_for_console_n("work", "Pocketvisor guest shell", 2, LIMIT);

    // A supervisor that dies takes its workers with it: each sees its
    // control socket close and stops its VM. No orphan runs on.
    let status = p.status();
    let supervisor = status["supervisor_pid"].as_u64().unwrap() as u32;
    let workers: Vec<u32> = status["vms"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["pid"].as_u64().map(|p| p as u32))
        .collect();
    assert_eq!(workers.len(), 2, "{status}");
    // SAFETY: killing the supervisor of the phone this test started.
    unsafe { libc::kill(supervisor as i32, libc::SIGKILL) };
    for pid in workers {
        wait(
            &format!("worker {pid} to end"),
            Duration::from_secs(30),
            || !alive(pid),
        );
    }
}
