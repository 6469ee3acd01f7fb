//! virtio-net under the Debian kernel: two VMs on one socket switch swap
//! files both ways (HTTP with busybox httpd/wget, then nc), and a VM on a
//! TAP device reaches a host listener.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{spawn_linux, wait_with_limit};

const CMDLINE: &str = "console=ttyAMA0 quiet cryptomgr.notests pv.run=net-pair";

/// The value after `key ` on the line starting with it.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines()
        .find_map(|l| l.trim_end().strip_prefix(key)?.strip_prefix(' '))
}

fn md5(bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("pv-net-md5-{}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("md5sum").arg(&path).output().expect("md5sum");
    let _ = std::fs::remove_file(&path);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn two_vms_exchange_files_over_the_socket_switch() {
    let lan = std::env::temp_dir().join(format!("pv-lan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&lan);
    let net = format!("socket={}", lan.display());
    let server = spawn_linux(
        &format!("{CMDLINE} pv.role=serve pv.ip=10.0.0.1/24 pv.peer=10.0.0.2"),
        &["--net", &net],
    );
    let fetcher = spawn_linux(
        &format!("{CMDLINE} pv.role=fetch pv.ip=10.0.0.2/24 pv.peer=10.0.0.1"),
        &["--net", &net],
    );
    let fetcher = std::thread::spawn(move || wait_with_limit(fetcher, Duration::from_secs(600)));
    let (code_s, out_s, err_s) = wait_with_limit(server, Duration::from_secs(600));
    let (code_f, out_f, err_f) = fetcher.join().unwrap();
    let report = format!("server:\n{out_s}{err_s}\nfetcher:\n{out_f}{err_f}");
    assert_eq!((code_s, code_f), (Some(0), Some(0)), "{report}");
    for out in [&out_s, &out_f] {
        assert!(out.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{report}");
        assert!(!out.contains("FAIL"), "{report}");
    }
    assert!(out_f.contains("CHECK net-ping ok"), "{report}");
    // What one side sent, the other got, byte for byte (md5 and size).
    let served = field(&out_s, "NET-SENT").expect("server sent");
    let fetched = field(&out_f, "NET-GOT").expect("fetcher got");
    assert_eq!(
        fetched,
        format!("{served} 786432"),
        "HTTP download\n{report}"
    );
    let pushed = field(&out_f, "NET-SENT").expect("fetcher sent");
    let received = field(&out_s, "NET-GOT").expect("server got");
    assert_eq!(received, format!("{pushed} 655360"), "nc upload\n{report}");
    // Both NICs left the switch when their VMs ended.
    let left = std::fs::read_dir(&lan).map_or(0, |d| d.count());
    assert_eq!(left, 0, "sockets left in {}", lan.display());
    let _ = std::fs::remove_dir_all(&lan);
}

/// Deletes the TAP interface when the test ends, however it ends.
struct TapGuard(String);

impl Drop for TapGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn tap_backend_reaches_a_host_listener() {
    let name = format!("pvtap{}", std::process::id() % 100_000);
    if let Err(e) = ip(&["tuntap", "add", "dev", &name, "mode", "tap"]) {
        // Only a host that forbids TAP devices skips this test.
        assert!(
            e.contains("Operation not permitted") || e.contains("Permission denied"),
            "cannot create tap {name}: {e}"
        );
        eprintln!("SKIPPED: this host does not allow creating TAP devices ({e})");
        return;
    }
    let _guard = TapGuard(name.clone());
    ip(&["addr", "add", "10.211.0.1/24", "dev", &name]).unwrap();
    ip(&["link", "set", &name, "up"]).unwrap();
    let listener = TcpListener::bind("10.211.0.1:7777").unwrap();
    let host = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let vm = spawn_linux(
        &format!("{CMDLINE} pv.role=push pv.ip=10.211.0.2/24 pv.peer=10.211.0.1"),
        &["--net", &format!("tap={name},mac=02:00:0a:d3:00:02")],
    );
    let (code, out, err) = wait_with_limit(vm, Duration::from_secs(600));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("CHECK net-link ok 02:00:0a:d3:00:02"),
        "{out}{err}"
    );
    assert!(out.contains("CHECK net-ping ok"), "{out}{err}");
    let got = host.join().unwrap();
    assert_eq!(got.len(), 256 * 1024, "{out}");
    assert_eq!(Some(md5(&got).as_str()), field(&out, "NET-SENT"), "{out}");
}
