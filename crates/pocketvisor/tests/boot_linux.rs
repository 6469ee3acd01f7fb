//! Boots Debian's stock arm64 6.1 cloud kernel with the project's busybox
//! initramfs under `pocketvisor run`, as a user would.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{spawn_linux, wait_with_limit};

/// The kernel's crypto self-tests are skipped to keep CI quick; the boot
/// benchmark measures the full boot.
const BASE_CMDLINE: &str = "console=ttyAMA0 cryptomgr.notests";

#[test]
fn boots_runs_checks_and_powers_off() {
    let child = spawn_linux(&format!("{BASE_CMDLINE} pv.run=boot-check"), &[]);
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(600));
    let context = format!("--- stdout ---\n{out}\n--- stderr ---\n{err}");
    assert!(
        out.contains("POCKETVISOR-GUEST-READY"),
        "no ready marker\n{context}"
    );
    for check in ["uname-m", "cpuinfo", "rtc-date", "sleep-1", "dd-md5"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("CHECK {check} ok"))),
            "check {check} did not pass\n{context}"
        );
    }
    assert!(out.contains("CHECK uname-m ok aarch64"), "{context}");
    assert!(out.contains("POCKETVISOR-SCRIPT-EXIT=0"), "{context}");
    assert_eq!(
        code,
        Some(0),
        "pocketvisor must exit 0 on power-off\n{context}"
    );
}

#[test]
fn console_is_interactive() {
    let mut child = spawn_linux(BASE_CMDLINE, &[]);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    // Type like a user: wait for each prompt, then type a line.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut prompts = 0;
    // `reboot -f` resets the VM, which boots again to a new prompt.
    for line in [
        "echo typed-$((6 * 7))\n",
        "cat /proc/version\n",
        "reboot -f\n",
        "echo after-reboot\n",
        "poweroff -f\n",
    ] {
        loop {
            let count = seen.lock().unwrap().matches("/ # ").count();
            if count > prompts {
                prompts = count;
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no shell prompt:\n{}",
                seen.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().expect("wait");
    reader.join().unwrap();
    let out = seen.lock().unwrap().clone();
    assert!(
        out.contains("typed-42"),
        "shell did not run typed input\n{out}"
    );
    assert!(out.contains("Linux version 6.1"), "{out}");
    assert_eq!(
        out.matches("POCKETVISOR-GUEST-READY").count(),
        2,
        "reboot\n{out}"
    );
    assert!(out.contains("after-reboot"), "{out}");
    assert_eq!(status.code(), Some(0), "{out}");
}

#[test]
fn ctrl_a_x_quits() {
    let mut child = spawn_linux(BASE_CMDLINE, &[]);
    let mut stdin = child.stdin.take().expect("piped stdin");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let _ = stdin.write_all(b"\x01x");
        let _ = stdin.flush();
        std::thread::sleep(Duration::from_secs(600));
    });
    let (code, out, err) = wait_with_limit(child, Duration::from_secs(120));
    assert_eq!(code, Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("quit"), "{err}");
}
