//! A phone under test: a manifest in a temporary directory, brought up with
//! `pocketvisor phone up --detach`, driven through the CLI and the API
//! client, and always brought down — by `phone down`, then by killing what
//! is left by PID — when dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use phone::client::Client;
use serde_json::Value;

use super::linux_guest_dir;

/// One `[[vm]]` of a test manifest.
pub struct VmSpec {
    /// Its name.
    pub name: &'static str,
    /// open, corporate or trusted.
    pub role: &'static str,
    /// Guest RAM.
    pub mem: &'static str,
    /// Further TOML lines for the entry (restart, balloon, disks...).
    pub extra: String,
    /// Its initramfs, in the Linux guest directory.
    pub initrd: &'static str,
    /// What its console shows once it is up.
    pub ready: &'static str,
    /// A data disk of 1 MiB made beside the manifest, if named.
    pub data_disk: Option<&'static str>,
}

impl VmSpec {
    /// A VM named `name` with role `role` and 128 MiB.
    pub fn new(name: &'static str, role: &'static str) -> Self {
        VmSpec {
            name,
            role,
            mem: "128M",
            extra: String::new(),
            initrd: "initramfs.cpio.gz",
            ready: "Pocketvisor guest shell",
            data_disk: None,
        }
    }

    /// A trusted VM running the reference services (pv-trustd as /init of
    /// the trusted initramfs) with a data disk `NAME.img`.
    pub fn trusted_services(name: &'static str) -> Self {
        let disk: &'static str = Box::leak(format!("{name}.img").into_boxed_str());
        let mut v = VmSpec::new(name, "trusted").with("rng = true");
        v.initrd = "trusted-initramfs.cpio.gz";
        v.ready = "PV-TRUSTD-READY";
        v.data_disk = Some(disk);
        v
    }

    /// Adds TOML lines to the entry.
    pub fn with(mut self, lines: &str) -> Self {
        self.extra.push_str(lines);
        self.extra.push('\n');
        self
    }
}

/// A running phone (brought down on drop).
pub struct TestPhone {
    /// The temporary directory holding the manifest and the state dir.
    pub dir: tempfile::TempDir,
    /// The manifest's path.
    pub manifest: PathBuf,
    /// The state directory.
    pub state: PathBuf,
    /// PIDs seen (supervisor and workers), killed on drop if still there.
    seen: std::cell::RefCell<Vec<u32>>,
}

/// The pocketvisor binary.
pub fn pocketvisor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pocketvisor"))
}

/// Whether process `pid` exists and has not ended (a zombie waiting for a
/// parent that may never reap it — PID 1 of some containers — has ended).
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let exists = unsafe { libc::kill(pid as i32, 0) == 0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    exists && !matches!(state, Some("Z") | Some("X") | None)
}

/// Waits for `done`, failing the test with `what` after `limit`.
pub fn wait(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text of a manifest: `[phone]` lines and VMs booting the test guest
/// with `pv.vm=NAME` on their command lines.
pub fn manifest_text(phone_lines: &str, vms: &[VmSpec], channels: &str) -> String {
    let guest = linux_guest_dir();
    let mut text = format!("[phone]\nname = \"test\"\nstate_dir = \"state\"\n{phone_lines}\n");
    for v in vms {
        text.push_str(&format!(
            "[[vm]]\nname = \"{}\"\nrole = \"{}\"\nkernel = \"{}\"\ninitrd = \"{}\"\n\
             cmdline = \"console=ttyAMA0 quiet cryptomgr.notests pv.vm={}\"\nmem = \"{}\"\n{}\n",
            v.name,
            v.role,
            guest.join("Image").display(),
            guest.join(v.initrd).display(),
            v.name,
            v.mem,
            v.extra
        ));
        if let Some(disk) = v.data_disk {
            text.push_str(&format!("disks = [\"{disk}\"]\n"));
        }
    }
    text.push_str(channels);
    text
}

impl TestPhone {
    /// Writes the manifest (see [`manifest_text`]) without starting anything.
    pub fn prepare(phone_lines: &str, vms: &[VmSpec], channels: &str) -> TestPhone {
        let dir = tempfile::Builder::new()
            .prefix("pv-phone-")
            .tempdir()
            .unwrap();
        let manifest = dir.path().join("phone.toml");
        std::fs::write(&manifest, manifest_text(phone_lines, vms, channels)).unwrap();
        for disk in vms.iter().filter_map(|v| v.data_disk) {
            std::fs::write(dir.path().join(disk), vec![0u8; 1 << 20]).unwrap();
        }
        let state = dir.path().join("state");
        TestPhone {
            dir,
            manifest,
            state,
            seen: Default::default(),
        }
    }

    /// Writes the manifest and brings the phone up detached; waits until
    /// every VM that starts with it is up (its `ready` text).
    pub fn up(phone_lines: &str, vms: &[VmSpec], channels: &str) -> TestPhone {
        let p = Self::prepare(phone_lines, vms, channels);
        p.bring_up(vms);
        p
    }

    /// `phone up --detach` of the manifest as it is now; waits for `vms`
    /// that start with it to be up.
    pub fn bring_up(&self, vms: &[VmSpec]) {
        // Consoles keep earlier boots' output: wait for one more.
        let before: Vec<usize> = vms
            .iter()
            .map(|v| self.console_log(v.name).matches(v.ready).count())
            .collect();
        let out = pocketvisor()
            .args(["phone", "up", "--detach"])
            .arg(&self.manifest)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "phone up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.remember();
        for (v, n) in vms.iter().zip(before) {
            if !v.extra.contains("autostart = false") {
                self.wait_for_console_n(v.name, v.ready, n + 1, Duration::from_secs(120));
            }
        }
    }

    /// `phone down`, waiting for it.
    pub fn down(&self) {
        let out = self.cli(&["down"]);
        assert!(
            out.status.success(),
            "phone down failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The API client.
    pub fn client(&self) -> Client {
        Client::for_phone(&self.state)
    }

    /// Runs `pocketvisor phone ARGS --phone STATE`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let out = pocketvisor()
            .arg("phone")
            .args(args)
            .arg("--phone")
            .arg(&self.state)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        self.remember();
        out
    }

    /// Runs `pocketvisor phone ARGS --phone STATE`, which must succeed.
    pub fn cli_ok(&self, args: &[&str]) -> Output {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "phone {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `phone status --json`.
    pub fn status(&self) -> Value {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status --json is JSON")
    }

    /// VM `name`'s row of the status.
    pub fn vm(&self, name: &str) -> Value {
        self.status()["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no VM {name} in the status"))
    }

    /// Notes every PID the phone has now, to kill on drop.
    fn remember(&self) {
        if let Ok(a) = self.client().call("GET", "/phone", None) {
            let mut seen = self.seen.borrow_mut();
            if let Some(p) = a.body["supervisor_pid"].as_u64() {
                seen.push(p as u32);
            }
            for v in a.body["vms"].as_array().into_iter().flatten() {
                if let Some(p) = v["pid"].as_u64() {
                    seen.push(p as u32);
                }
            }
        }
    }

    /// Every PID seen so far.
    pub fn pids(&self) -> Vec<u32> {
        self.remember();
        self.seen.borrow().clone()
    }

    /// VM `name`'s console log.
    pub fn console_log(&self, name: &str) -> String {
        let path = self.state.join("vms").join(name).join("console.log");
        String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
    }

    /// Waits until VM `name`'s console log holds `text` `count` times.
    pub fn wait_for_console_n(&self, name: &str, text: &str, count: usize, limit: Duration) {
        let start = Instant::now();
        while self.console_log(name).matches(text).count() < count {
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {text:?} on {name}'s console:\n{}\n--- phone.log:\n{}",
                self.console_log(name),
                self.phone_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until VM `name`'s console log holds `text`.
    pub fn wait_for_console(&self, name: &str, text: &str, limit: Duration) {
        self.wait_for_console_n(name, text, 1, limit);
    }

    /// The phone's log.
    pub fn phone_log(&self) -> String {
        std::fs::read_to_string(self.state.join("phone.log")).unwrap_or_default()
    }

    /// Types `line` into VM `name`'s console (through the API's console
    /// stream) and waits until it has run: the line is followed by an echo
    /// of a marker the shell computes, so the typed line's own echo does
    /// not count.
    pub fn run_in(&self, name: &str, line: &str, limit: Duration) {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1000);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (mut stream, _) = self
            .client()
            .console(&format!("/vms/{name}/console"))
            .expect("console stream");
        let join = if line.trim_end().ends_with('&') {
            " "
        } else {
            "; "
        };
        let typed = format!("{line}{join}echo PV-DONE-$(({n}+1))\n");
        stream.write_all(typed.as_bytes()).unwrap();
        self.wait_for_console(name, &format!("PV-DONE-{}", n + 1), limit);
    }

    /// Opens VM `name`'s console stream.
    pub fn console_stream(&self, path: &str) -> UnixStream {
        let (stream, _) = self.client().console(path).expect("console stream");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream
    }
}

/// Reads from `stream` until `text` has arrived (after what `seen` held).
pub fn read_until(stream: &mut UnixStream, seen: &mut String, text: &str, limit: Duration) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !seen.contains(text) {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {text:?}; got:\n{seen}"
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!("the stream closed before {text:?}; got:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
}

impl Drop for TestPhone {
    fn drop(&mut self) {
        let pids = self.pids();
        let _ = pocketvisor()
            .args(["phone", "down", "--phone"])
            .arg(&self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for pid in pids {
            // Only if the PID is still one of ours (not reused meanwhile).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline).contains("pocketvisor")
                && String::from_utf8_lossy(&cmdline).contains(&*self.dir.path().to_string_lossy());
            if alive(pid) && ours {
                // SAFETY: killing a process this test started (by PID).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// Whether process `pid`'s mapping of exactly `size` bytes (a guest's RAM)
/// is offered to the host's same-page merging (`mg` in its VmFlags), or
/// `None` if it has no such mapping.
pub fn ram_is_mergeable(pid: u32, size: u64) -> Option<bool> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut in_ram = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                in_ram = b - a == size;
                continue;
            }
        }
        if in_ram {
            if let Some(flags) = line.strip_prefix("VmFlags:") {
                return Some(flags.split_whitespace().any(|f| f == "mg"));
            }
        }
    }
    None
}
