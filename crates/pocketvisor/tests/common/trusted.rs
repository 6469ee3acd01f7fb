//! Helpers for phones with a trusted VM running the reference services
//! (guests/trusted): host-side clients of its services, the phone's root
//! key, and reading what `pv-trust` printed in the open VM.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use pv_trust::client::ServiceClient;

use super::phone::{pocketvisor, TestPhone};

/// The channels from `from` to every service port of `to`.
pub fn service_channels(from: &str, to: &str) -> String {
    (5000..=5003)
        .map(|port| format!("[[channel]]\nfrom = \"{from}\"\nto = \"{to}\"\nport = {port}\n"))
        .collect()
}

/// A host-side connection to `port` of VM `vm` (through its vsock socket).
pub fn service(p: &TestPhone, vm: &str, port: u32) -> ServiceClient {
    let path = p.state.join("vms").join(vm).join("vsock.sock");
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("CONNECT {port}\n").as_bytes()).unwrap();
    // Byte by byte: nothing after the line may be read away.
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.ends_with('\n') {
        s.read_exact(&mut byte).unwrap();
        line.push(byte[0] as char);
    }
    assert!(line.starts_with("OK "), "CONNECT {port}: {line}");
    ServiceClient::over(s)
}

/// The phone's root key as `phone identity` prints it, and a file with it.
pub fn root_key(p: &TestPhone) -> (ed25519_dalek::VerifyingKey, PathBuf) {
    let out = p.cli(&["identity"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let file = p.dir.path().join("root.key");
    std::fs::write(&file, &text).unwrap();
    (trust::identity::parse_public_key(&text).unwrap(), file)
}

/// Runs `pv-trust --cid CID ARGS` in VM `vm`, CID being the trusted VM
/// "keys", and returns the line it printed (`WORD ...` or `ERROR ...`),
/// found by a tag only this run prints.
pub fn pv_trust(p: &TestPhone, vm: &str, args: &str) -> String {
    let cid = p.vm("keys")["cid"].as_u64().unwrap();
    let args = format!("--cid {cid} {args}");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    p.run_in(
        vm,
        &format!("echo T{n}-$((0))=$(pv-trust {args} 2>&1)"),
        Duration::from_secs(120),
    );
    let log = p.console_log(vm);
    let tag = format!("T{n}-0=");
    let line = log
        .lines()
        .rev()
        .find_map(|l| {
            l.find(&tag)
                .map(|i| l[i + tag.len()..].trim_end().to_string())
        })
        .unwrap_or_else(|| panic!("no answer of pv-trust {args} in\n{log}"));
    line
}

/// The hex after `WORD ` in `line`, as bytes.
pub fn hex_after(line: &str, word: &str) -> Vec<u8> {
    let rest = line
        .split_whitespace()
        .skip_while(|w| *w != word)
        .nth(1)
        .unwrap_or_else(|| panic!("no {word} in {line}"));
    trust::hex::decode(rest).unwrap_or_else(|| panic!("not hex after {word}: {line}"))
}

/// `pocketvisor attest verify` of `evidence` for `nonce` against the root
/// key in `root` (and `expect`): whether it was accepted, and its stdout
/// (the claims) or stderr (the reason).
pub fn attest_verify(
    p: &TestPhone,
    evidence: &[u8],
    nonce: &str,
    root: &std::path::Path,
    expect: Option<&str>,
) -> (bool, String) {
    let file = p.dir.path().join(format!("evidence-{nonce}"));
    std::fs::write(&file, evidence).unwrap();
    let mut cmd = pocketvisor();
    cmd.args(["attest", "verify", "--evidence"])
        .arg(&file)
        .args(["--nonce", nonce, "--root-key"])
        .arg(root);
    if let Some(m) = expect {
        cmd.args(["--expect", m]);
    }
    let out = cmd.output().unwrap();
    let text = if out.status.success() {
        out.stdout
    } else {
        out.stderr
    };
    (
        out.status.success(),
        String::from_utf8_lossy(&text).into_owned(),
    )
}

/// Evidence for VM keys answering `nonce`, from `phone attest`.
pub fn owner_evidence(p: &TestPhone, nonce: &str) -> Vec<u8> {
    let file = p.dir.path().join(format!("owner-{nonce}"));
    p.cli_ok(&[
        "attest",
        "keys",
        "--nonce",
        nonce,
        "--out",
        file.to_str().unwrap(),
    ]);
    std::fs::read(file).unwrap()
}
