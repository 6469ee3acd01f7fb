//! `pocketvisor phone ...`: bring a phone up and down, and drive it through
//! its management API (every command but `up` and the hidden `supervise`
//! and `worker` is a client of `STATE_DIR/api.sock`).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use phone::client::Client;
use phone::Manifest;
use serde_json::Value;

use crate::console::{raw_mode, restore_terminal};
use crate::{bad_input, say};

/// Ctrl-A, the escape key.
const ESCAPE: u8 = 0x01;
/// How long `phone up` waits for the phone to answer.
const UP_TIMEOUT: Duration = Duration::from_secs(30);

/// The exit code of a phone command that failed after its input was fine.
const FAILED: u8 = 1;

/// One line on stderr and exit status 1: how every phone, trust and image
/// command reports a failure.
pub(crate) fn fail(message: &str) -> ExitCode {
    say(&format!("pocketvisor: {message}"));
    ExitCode::from(FAILED)
}

/// The command that runs a phone's worker for VM `name`.
fn worker_command(manifest: PathBuf) -> phone::supervisor::WorkerCommand {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pocketvisor"));
    Box::new(move |name: &str| {
        let mut c = Command::new(&exe);
        c.args([
            "phone",
            "worker",
            "--supervised",
            "--vm",
            name,
            "--manifest",
        ])
        .arg(&manifest)
        .stdin(Stdio::null());
        c
    })
}

fn load(path: &Path) -> Result<(Manifest, PathBuf), ExitCode> {
    let manifest = Manifest::load(path).map_err(|e| bad_input(&e.to_string()))?;
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((manifest, abs))
}

/// `pocketvisor phone supervise`: the phone itself (started by `up`).
pub fn supervise(path: &Path) -> ExitCode {
    let (manifest, abs) = match load(path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    // `image import` finds the manifest through the state directory.
    if phone::daemon::make_state_dir(&manifest).is_ok() {
        let _ = std::fs::write(
            manifest.state_dir.join("manifest.path"),
            abs.display().to_string(),
        );
    }
    match phone::daemon::run(&manifest, worker_command(abs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// `pocketvisor phone up MANIFEST [--detach]`.
pub fn up(path: &Path, detach: bool) -> ExitCode {
    let (manifest, abs) = match load(path) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let dir = &manifest.state_dir;
    let client = Client::for_phone(dir);
    if client.is_up() {
        return bad_input(&format!(
            "a phone is already running in '{}' (pocketvisor phone down --phone {})",
            dir.display(),
            dir.display()
        ));
    }
    if let Err(e) = phone::daemon::make_state_dir(&manifest) {
        return bad_input(&e);
    }
    let log_path = phone::daemon::log_file(dir);
    let log = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
    {
        Ok(f) => f,
        Err(e) => return bad_input(&format!("cannot open '{}': {e}", log_path.display())),
    };
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("pocketvisor"));
    let mut command = Command::new(exe);
    command
        .args(["phone", "supervise", "--manifest"])
        .arg(&abs)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null()))
        .stderr(Stdio::from(log));
    // SAFETY: setsid is async-signal-safe; the phone leaves this
    // terminal's session so closing the terminal does not take it down.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut daemon = match command.spawn() {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot start the phone: {e}")),
    };
    let deadline = Instant::now() + UP_TIMEOUT;
    loop {
        if client.is_up() {
            break;
        }
        if let Ok(Some(status)) = daemon.try_wait() {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let tail = String::from_utf8_lossy(&text[(log_start as usize).min(text.len())..]);
            return fail(&format!(
                "the phone did not start ({status}):\n{}",
                tail.trim_end()
            ));
        }
        if Instant::now() > deadline {
            return fail(&format!(
                "the phone did not answer within {} s (see '{}')",
                UP_TIMEOUT.as_secs(),
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The phone is on its own now; its exit is collected by init.
    drop(daemon);
    say(&format!(
        "pocketvisor: phone {} is up: {} VMs, state in {}",
        manifest.name,
        manifest.vms.len(),
        dir.display()
    ));
    if detach {
        return ExitCode::SUCCESS;
    }
    let names: Vec<String> = manifest.vms.iter().map(|v| v.name.clone()).collect();
    say(&format!(
        "pocketvisor: Ctrl-A 1..{} switches VM ({}), Ctrl-A x detaches, Ctrl-A q shuts the phone down",
        names.len().min(9),
        names.join(", ")
    ));
    attach(&client, "/console", &names, dir)
}

/// `pocketvisor phone console VM`.
pub fn console(dir: &Path, vm: &str) -> ExitCode {
    let client = Client::for_phone(dir);
    attach(&client, &format!("/vms/{vm}/console"), &[], dir)
}

/// Shows a console stream on this terminal until the user detaches, the
/// phone goes down, or (Ctrl-A q, when `switchable` names VMs) shuts it down.
fn attach(client: &Client, path: &str, switchable: &[String], dir: &Path) -> ExitCode {
    let (stream, early) = match client.console(path) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let tty = raw_mode();
    let mut out = stream.try_clone();
    let reader = std::thread::spawn(move || {
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(&early);
        let _ = stdout.flush();
        let Ok(out) = out.as_mut() else { return };
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                break;
            }
            let _ = stdout.flush();
        }
    });
    let mut input = stream;
    let code = forward_keys(client, &mut input, switchable, dir, tty, &reader);
    restore_terminal();
    let _ = input.shutdown(std::net::Shutdown::Both);
    let _ = reader.join();
    code
}

/// What the user asked for with Ctrl-A.
enum Key {
    Switch(usize),
    Detach,
    Down,
}

/// Sends typed input to the console stream, handling Ctrl-A escapes.
fn forward_keys(
    client: &Client,
    input: &mut std::os::unix::net::UnixStream,
    switchable: &[String],
    dir: &Path,
    tty: bool,
    reader: &std::thread::JoinHandle<()>,
) -> ExitCode {
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 256];
    let mut escaped = false;
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => {
                if tty {
                    return detached(dir);
                }
                // Input from a file or pipe ended: keep showing output
                // until the phone goes down (or a signal ends us).
                while !reader.is_finished() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return ExitCode::SUCCESS;
            }
            Ok(n) => n,
        };
        let mut send = Vec::with_capacity(n);
        for &b in &buf[..n] {
            let key = if escaped {
                escaped = false;
                match b {
                    b'x' | b'X' => Some(Key::Detach),
                    b'q' | b'Q' if !switchable.is_empty() => Some(Key::Down),
                    b'1'..=b'9' if (b - b'1') < switchable.len() as u8 => {
                        Some(Key::Switch((b - b'1') as usize))
                    }
                    ESCAPE => {
                        send.push(ESCAPE);
                        None
                    }
                    _ => None,
                }
            } else if b == ESCAPE {
                escaped = true;
                None
            } else {
                send.push(b);
                None
            };
            match key {
                Some(Key::Detach) => {
                    let _ = input.write_all(&send);
                    return detached(dir);
                }
                Some(Key::Down) => {
                    restore_terminal();
                    say("\r\npocketvisor: shutting the phone down");
                    return down_with(client);
                }
                Some(Key::Switch(i)) => {
                    let _ = input.write_all(&send);
                    send.clear();
                    let path = format!("/vms/{}/switch", switchable[i]);
                    if let Err(e) = client.call("POST", &path, None).and_then(|a| a.ok()) {
                        say(&format!("\r\npocketvisor: {e}\r"));
                    }
                }
                None => {}
            }
        }
        if input.write_all(&send).is_err() {
            return ExitCode::SUCCESS; // the phone went down
        }
    }
}

fn detached(dir: &Path) -> ExitCode {
    restore_terminal();
    say(&format!(
        "\r\npocketvisor: detached; the phone keeps running (pocketvisor phone console VM --phone {})",
        dir.display()
    ));
    ExitCode::SUCCESS
}

/// Asks the phone to go down and waits until its API is gone.
fn down_with(client: &Client) -> ExitCode {
    match client
        .call("POST", "/phone/down", None)
        .and_then(|a| a.ok())
    {
        Ok(_) => {}
        Err(e) => return fail(&e),
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.is_up() {
        if Instant::now() > deadline {
            return fail("the phone did not go away");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ExitCode::SUCCESS
}

/// `pocketvisor phone down`.
pub fn down(dir: &Path) -> ExitCode {
    down_with(&Client::for_phone(dir))
}

/// `pocketvisor phone start|stop|pause|resume|switch VM`.
pub fn action(dir: &Path, action: &str, vm: &str) -> ExitCode {
    let client = Client::for_phone(dir);
    match client
        .call("POST", &format!("/vms/{vm}/{action}"), None)
        .and_then(|a| a.ok())
    {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// `pocketvisor phone balloon VM SIZE`.
pub fn balloon(dir: &Path, vm: &str, bytes: u64) -> ExitCode {
    let client = Client::for_phone(dir);
    let body = serde_json::json!({ "target_bytes": bytes });
    match client
        .call("PUT", &format!("/vms/{vm}/balloon"), Some(&body))
        .and_then(|a| a.ok())
    {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn mib(v: &Value) -> String {
    format!("{}M", v.as_u64().unwrap_or(0) >> 20)
}

/// `pocketvisor phone status [--json]`.
pub fn status(dir: &Path, json: bool) -> ExitCode {
    let client = Client::for_phone(dir);
    let body = match client.call("GET", "/phone", None).and_then(|a| a.ok()) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    if json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    println!("phone {}", body["phone"].as_str().unwrap_or("?"));
    println!(
        "  {:<3} {:<16} {:<10} {:<9} {:>8} {:>5} {:>6} {:>7} {:>7} {:>8} {:>8}",
        "#", "VM", "ROLE", "STATE", "PID", "CID", "CPU%", "RSS", "MEM", "BALLOON", "RESTARTS"
    );
    for (i, v) in body["vms"].as_array().into_iter().flatten().enumerate() {
        let fg = if v["foreground"].as_bool() == Some(true) {
            "*"
        } else {
            " "
        };
        println!(
            "{fg} {:<3} {:<16} {:<10} {:<9} {:>8} {:>5} {:>6.1} {:>7} {:>7} {:>8} {:>8}",
            i + 1,
            v["name"].as_str().unwrap_or("?"),
            v["role"].as_str().unwrap_or("?"),
            v["state"].as_str().unwrap_or("?"),
            v["pid"].as_u64().map_or("-".to_string(), |p| p.to_string()),
            v["cid"].as_u64().unwrap_or(0),
            v["cpu_percent"].as_f64().unwrap_or(0.0),
            mib(&v["rss_bytes"]),
            mib(&v["mem_bytes"]),
            mib(&v["balloon_bytes"]),
            v["restarts"].as_u64().unwrap_or(0),
        );
        if let Some(r) = v["reason"].as_str() {
            println!("      {r}");
        }
    }
    ExitCode::SUCCESS
}

/// `pocketvisor phone snapshot VM --out SNAPDIR`.
pub fn snapshot(dir: &Path, vm: &str, out: &Path) -> ExitCode {
    let out = match std::path::absolute(out) {
        Ok(p) => p,
        Err(e) => return fail(&format!("'{}': {e}", out.display())),
    };
    let body = serde_json::json!({ "out": out });
    match Client::for_phone(dir)
        .call("POST", &format!("/vms/{vm}/snapshot"), Some(&body))
        .and_then(|a| a.ok())
    {
        Ok(b) => {
            println!(
                "snapshot of {vm} in {}: {} bytes of state, {} bytes of RAM, paused {} ms",
                out.display(),
                b["state_bytes"],
                b["memory_bytes"],
                b["paused_ms"]
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pocketvisor phone restore SNAPDIR [--as NAME [--copy-disks] [--accel A]]`.
pub fn restore(
    dir: &Path,
    snapshot: &Path,
    as_name: Option<&str>,
    copy_disks: bool,
    accel: Option<vmm::Accel>,
) -> ExitCode {
    let snapshot = match std::path::absolute(snapshot) {
        Ok(p) => p,
        Err(e) => return fail(&format!("'{}': {e}", snapshot.display())),
    };
    let mut body = serde_json::json!({ "snapshot": snapshot });
    if let Some(name) = as_name {
        body["as"] = name.into();
        body["copy_disks"] = copy_disks.into();
        if let Some(a) = accel {
            body["accel"] = a.to_string().into();
        }
    }
    match Client::for_phone(dir)
        .call("POST", "/phone/restore", Some(&body))
        .and_then(|a| a.ok())
    {
        Ok(b) => {
            println!(
                "VM {} continues from {}",
                b["vm"].as_str().unwrap_or("?"),
                snapshot.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
