//! A phone of three VMs (open, corporate, trusted) from one manifest, the
//! way a user runs it: `phone up` shows the foreground VM's console, typed
//! input reaches that VM, `phone switch` and Ctrl-A 3 change which console
//! it shows, `status --json` shows every VM running in its own process, and
//! open and corporate guests' RAM is offered to the host's same-page
//! merging (a trusted VM's never), and Ctrl-A q brings the whole phone down: `phone up` ends with 0 and no
//! process of the phone is left.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::phone::{alive, pocketvisor, wait, TestPhone, VmSpec};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn three_vms_switch_consoles_and_go_down() {
    let vms = [
        VmSpec::new("personal", "open").with("balloon = true"),
        VmSpec::new("work", "corporate"),
        // Debuggable: the test types into its shell.
        VmSpec::new("keys", "trusted").with("debug = true"),
    ];
    let p = TestPhone::prepare("memory = \"512M\"", &vms, "");
    let mut up = pocketvisor()
        .args(["phone", "up"])
        .arg(&p.manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = up.stdout.take().unwrap();
    let sink = shown.clone();
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
    let mut keys = up.stdin.take().unwrap();
    for v in &vms {
        p.wait_for_console(v.name, "Pocketvisor guest shell", LIMIT);
    }
    let status = p.status();
    let rows = status["vms"].as_array().unwrap();
    assert_eq!(status["phone"], "test");
    assert_eq!(rows.len(), 3);
    let mut pids = Vec::new();
    for (v, row) in vms.iter().zip(rows) {
        assert_eq!(row["name"], v.name);
        assert_eq!(row["role"], v.role);
        assert_eq!(row["state"], "running", "{row}");
        assert!(row["rss_bytes"].as_u64().unwrap() > 0, "{row}");
        assert_eq!(row["mem_bytes"], 128u64 << 20);
        pids.push(row["pid"].as_u64().unwrap() as u32);
    }
    assert_eq!(rows[0]["cid"], 3);
    assert_eq!(rows[2]["cid"], 5);
    assert_eq!(rows[0]["foreground"], true);
    // Open and corporate RAM is offered to the host's page merging; a
    // trusted VM's never is.
    for (pid, mergeable) in pids.iter().zip([true, true, false]) {
        assert_eq!(
            common::phone::ram_is_mergeable(*pid, 128 << 20),
            Some(mergeable),
            "worker {pid}"
        );
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "one process per VM: {status}");

    // `phone up` shows the foreground VM (personal): typed input reaches it.
    let ask = |keys: &mut std::process::ChildStdin, vm: &str| {
        let marker = format!("pv.vm={vm}");
        keys.write_all(b"cat /proc/cmdline; echo\n").unwrap();
        wait(
            &format!("{vm}'s command line on phone up's terminal"),
            LIMIT,
            || shown.lock().unwrap().contains(&marker),
        );
    };
    ask(&mut keys, "personal");
    assert!(!shown.lock().unwrap().contains("pv.vm=work"));

    // `phone switch work` changes the console phone up shows.
    let out = p.cli(&["switch", "work"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait("the switch banner", LIMIT, || {
        shown.lock().unwrap().contains("console of VM 2 (work)")
    });
    ask(&mut keys, "work");
    let status = p.status();
    assert_eq!(status["vms"][1]["foreground"], true, "{status}");
    assert_eq!(status["vms"][0]["foreground"], false, "{status}");

    // Ctrl-A 3: the trusted VM.
    keys.write_all(b"\x013").unwrap();
    wait("the switch to keys", LIMIT, || {
        shown.lock().unwrap().contains("console of VM 3 (keys)")
    });
    ask(&mut keys, "keys");
    assert_eq!(p.vm("keys")["foreground"], true);

    // Ctrl-A q: the phone goes down and phone up ends.
    let all = p.pids();
    keys.write_all(b"\x01q").unwrap();
    let start = std::time::Instant::now();
    let code = loop {
        if let Some(s) = up.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < LIMIT,
            "phone up did not end after Ctrl-A q"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    reader.join().unwrap();
    assert!(code.success(), "phone up ended with {code}");
    for pid in all {
        wait(
            &format!("process {pid} to end"),
            Duration::from_secs(10),
            || !alive(pid),
        );
    }
    assert!(
        !p.state.join("api.sock").exists(),
        "the API socket is removed"
    );
    assert!(!p.client().is_up());
}
