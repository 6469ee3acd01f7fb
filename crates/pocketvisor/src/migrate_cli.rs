//! The live migration commands: `phone migrate VM --to ADDR:PORT
//! --target-key KEY` on the source phone and `phone receive --listen
//! ADDR:PORT --source-key KEY` on the target. Each asks its phone's API to
//! start, then follows the migration until it ends, showing its progress;
//! Ctrl-C (SIGINT or SIGTERM) cancels it (the guest runs on at the source,
//! the target keeps nothing).

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use phone::client::Client;
use serde_json::Value;

use crate::phone_cli::fail;

/// A phone's identity key given as `option`: as `phone identity` prints
/// it, or a file holding that.
pub fn identity_key(arg: &Path, option: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    if let Ok(key) = trust::identity::parse_public_key(&arg.to_string_lossy()) {
        return Ok(key);
    }
    let text = std::fs::read_to_string(arg).map_err(|e| {
        format!(
            "{option} '{}' is neither a key nor a readable file: {e}",
            arg.display()
        )
    })?;
    trust::identity::parse_public_key(&text).map_err(|e| format!("'{}': {e}", arg.display()))
}

/// [`identity_key`] as the API takes it (hex).
fn key_hex(arg: &Path, option: &str) -> Result<String, String> {
    identity_key(arg, option).map(|k| trust::hex::encode(&k.to_bytes()))
}

/// Set by SIGINT or SIGTERM while a migration is followed.
fn interrupted() -> Result<Arc<AtomicBool>, String> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone()).map_err(|e| e.to_string())?;
    }
    Ok(flag)
}

fn mb(bytes: &Value) -> f64 {
    bytes.as_f64().unwrap_or(0.0) / 1e6
}

/// Follows `GET path` until the migration ends; cancels with `DELETE
/// path` on a signal. The final status.
fn follow(client: &Client, path: &str, quiet: bool) -> Result<Value, String> {
    let stop = interrupted()?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("a template"));
    let mut cancelled = false;
    loop {
        if stop.load(Ordering::Relaxed) && !cancelled {
            cancelled = true;
            let _ = client.call("DELETE", path, None);
        }
        let s = client.call("GET", path, None).and_then(|a| a.ok())?;
        let phase = s["phase"].as_str().unwrap_or("?").to_string();
        bar.set_message(format!(
            "{phase}: round {}, {:.1} MB sent at {:.0} MB/s, guest dirtying {:.1} MB/s, {:.1} MB remaining",
            s["round"],
            mb(&s["sent_bytes"]),
            s["rate_mbps"].as_f64().unwrap_or(0.0),
            s["dirty_mbps"].as_f64().unwrap_or(0.0),
            mb(&s["remaining_bytes"]),
        ));
        bar.tick();
        if matches!(phase.as_str(), "done" | "failed" | "cancelled") {
            bar.finish_and_clear();
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ended(s: &Value, what: &str) -> ExitCode {
    match s["phase"].as_str() {
        Some("done") => {
            let stop_copy = s["stop_copy_ms"]
                .as_f64()
                .map(|ms| format!(" (stop-and-copy {ms:.1} ms)"))
                .unwrap_or_default();
            println!(
                "{what}: {:.1} MB of RAM in {} rounds, downtime {:.1} ms{stop_copy}, total {:.0} ms",
                mb(&s["sent_bytes"]),
                s["round"].as_u64().unwrap_or(0) + 1,
                s["downtime_ms"].as_f64().unwrap_or(0.0),
                s["total_ms"].as_f64().unwrap_or(0.0),
            );
            ExitCode::SUCCESS
        }
        Some(phase) => fail(&format!(
            "{what} {phase}: {}",
            s["error"].as_str().unwrap_or("no reason given")
        )),
        None => fail("the phone answered nonsense"),
    }
}

/// `pocketvisor phone migrate VM --phone DIR --to ADDR:PORT --target-key
/// KEY [--max-downtime MS] [--copy-disks]`.
pub fn migrate(
    dir: &Path,
    vm: &str,
    to: &str,
    target_key: &Path,
    max_downtime: Option<u32>,
    copy_disks: bool,
    quiet: bool,
) -> ExitCode {
    let key = match key_hex(target_key, "--target-key") {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let client = Client::for_phone(dir);
    let mut body = serde_json::json!({ "to": to, "target_key": key, "copy_disks": copy_disks });
    if let Some(ms) = max_downtime {
        body["max_downtime_ms"] = ms.into();
    }
    if let Err(e) = client
        .call("POST", &format!("/vms/{vm}/migrate"), Some(&body))
        .and_then(|a| a.ok())
    {
        return fail(&e);
    }
    match follow(&client, &format!("/vms/{vm}/migration"), quiet) {
        Ok(s) => ended(&s, &format!("VM {vm} migrated to {to}")),
        Err(e) => fail(&e),
    }
}

/// `pocketvisor phone receive --phone DIR --listen ADDR:PORT --source-key
/// KEY`: waits for one VM.
pub fn receive(dir: &Path, listen: &str, source_key: &Path, quiet: bool) -> ExitCode {
    let key = match key_hex(source_key, "--source-key") {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let client = Client::for_phone(dir);
    let body = serde_json::json!({ "listen": listen, "source_key": key });
    match client
        .call("POST", "/phone/receive", Some(&body))
        .and_then(|a| a.ok())
    {
        Ok(s) => eprintln!(
            "listening on {} for a VM",
            s["peer"].as_str().unwrap_or(listen)
        ),
        Err(e) => return fail(&e),
    }
    match follow(&client, "/phone/receive", quiet) {
        Ok(s) => {
            let vm = s["vm"].as_str().unwrap_or("?").to_string();
            ended(&s, &format!("received VM {vm}"))
        }
        Err(e) => fail(&e),
    }
}
