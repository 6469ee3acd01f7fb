//! The trusted services end to end: a phone with an open VM and a trusted
//! VM running the reference services (pv-trustd, guests/trusted).
//! * the trusted VM is measured at boot as `pocketvisor measure` predicts;
//!   its evidence, fetched by the open VM through `pv-trust` or by the
//!   owner with `phone attest`, passes `attest verify` against `phone
//!   identity`'s root key, and a wrong nonce, a flipped byte or a wrong
//!   expected measurement is rejected with the reason;
//! * auth: enrol, sign with the PIN; 5 wrong PINs lock it, and the lock
//!   survives a restart of the trusted VM;
//! * billing: receipts verify against the phone's root; a replayed older
//!   data disk is detected as a rollback;
//! * DRM: a license from the (test) content provider plays the content to
//!   the trusted VM's secure output, never to the open VM;
//! * the open VM cannot reach the trust device; the trusted VM takes no
//!   console input and refuses snapshot, export and memory dumps;
//! * a flipped byte of its sealed data, or of the phone's counter file, is
//!   detected and reported (and the counter file is not reset).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::phone::{pocketvisor, TestPhone, VmSpec};
use common::trusted::{
    attest_verify, hex_after, owner_evidence, pv_trust, root_key, service_channels,
};

const LIMIT: Duration = Duration::from_secs(120);

fn predicted_measurement(p: &TestPhone) -> String {
    let out = pocketvisor()
        .arg("measure")
        .arg(&p.manifest)
        .arg("keys")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .last()
        .unwrap()
        .strip_prefix("measurement ")
        .unwrap()
        .to_string()
}

/// Stops keys, runs `meanwhile`, starts it again and waits for its
/// `boot`-th PV-TRUSTD-READY.
fn with_keys_stopped(p: &TestPhone, boot: usize, meanwhile: impl FnOnce()) {
    p.cli_ok(&["stop", "keys"]);
    meanwhile();
    p.cli_ok(&["start", "keys"]);
    p.wait_for_console_n("keys", "PV-TRUSTD-READY", boot, LIMIT);
}

#[test]
fn trusted_services_attest_seal_and_refuse() {
    let vms = [
        VmSpec::new("personal", "open"),
        VmSpec::trusted_services("keys"),
    ];
    let p = TestPhone::up(
        "memory = \"512M\"\nbackground_cpu = 100",
        &vms,
        &service_channels("personal", "keys"),
    );
    let (root, root_file) = root_key(&p);

    // Measured before boot, as predicted.
    let m = predicted_measurement(&p);
    assert!(
        p.phone_log().contains(&format!("VM keys: measured {m}")),
        "{}",
        p.phone_log()
    );

    // Evidence through the open VM.
    let line = pv_trust(&p, "personal", "attest 0badc0de");
    let evidence = hex_after(&line, "EVIDENCE");
    let (ok, claims) = attest_verify(&p, &evidence, "0badc0de", &root_file, Some(&m));
    assert!(ok, "{claims}");
    let claims: serde_json::Value = serde_json::from_str(&claims).unwrap();
    assert_eq!(
        (
            claims["vm"].as_str(),
            claims["measurement"].as_str(),
            claims["debug"].as_bool()
        ),
        (Some("keys"), Some(m.as_str()), Some(false))
    );
    let (ok, why) = attest_verify(&p, &evidence, "0badc0df", &root_file, None);
    assert!(!ok && why.contains("wrong nonce"), "{why}");
    let mut flipped = evidence.clone();
    flipped[evidence.len() / 2] ^= 0x20;
    let (ok, why) = attest_verify(&p, &flipped, "0badc0de", &root_file, None);
    assert!(!ok && why.contains("evidence rejected"), "{why}");
    let other = "00".repeat(32);
    let (ok, why) = attest_verify(&p, &evidence, "0badc0de", &root_file, Some(&other));
    assert!(!ok && why.contains("measurement mismatch"), "{why}");

    // Evidence from the host side, for the owner.
    let owner = owner_evidence(&p, "abcd");
    let (ok, claims) = attest_verify(&p, &owner, "abcd", &root_file, Some(&m));
    assert!(ok, "{claims}");
    let file = p.dir.path().join("none");
    let out = p.cli(&[
        "attest",
        "personal",
        "--nonce",
        "abcd",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a trusted VM"));
    assert!(!file.exists());

    // auth.
    let line = pv_trust(&p, "personal", "auth enroll 2468");
    let (vm, key) =
        pv_trust::wire::verify_statement(&hex_after(&line, "ENROLLED"), &root, "auth-key").unwrap();
    assert_eq!(vm.measurement.to_string(), m);
    let line = pv_trust(&p, "personal", "auth sign c0ffee 2468");
    assert_eq!(hex_after(&line, "KEY"), key, "{line}");
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&hex_after(&line, "SIGNATURE")).unwrap();
    key.verify_strict(&[0xc0, 0xff, 0xee], &sig).unwrap();
    for left in (1..5).rev() {
        let line = pv_trust(&p, "personal", "auth sign c0ffee 1111");
        assert!(
            line.contains(&format!("wrong PIN ({left} tries left)")),
            "{line}"
        );
    }
    with_keys_stopped(&p, 2, || {});
    let line = pv_trust(&p, "personal", "auth sign c0ffee 1111");
    assert!(line.starts_with("ERROR wrong PIN; locked"), "{line}");
    with_keys_stopped(&p, 3, || {});
    let line = pv_trust(&p, "personal", "auth sign c0ffee 2468");
    assert!(
        line.starts_with("ERROR locked"),
        "a restart unlocked the PIN: {line}"
    );

    // billing, and a replayed ledger.
    let line = pv_trust(&p, "personal", "billing charge 250 cafe");
    let (vm, receipt) =
        pv_trust::billing::verify_receipt(&hex_after(&line, "RECEIPT"), &root).unwrap();
    assert_eq!(
        (vm.vm.as_str(), receipt.charge.amount, receipt.total),
        ("keys", 250, 250)
    );
    let disk = p.dir.path().join("keys.img");
    let mut old = Vec::new();
    with_keys_stopped(&p, 4, || old = std::fs::read(&disk).unwrap());
    let line = pv_trust(&p, "personal", "billing charge 100 books");
    assert!(line.starts_with("RECEIPT"), "{line}");
    assert_eq!(
        pv_trust(&p, "personal", "billing ledger"),
        "LEDGER charges=2 total=350"
    );
    with_keys_stopped(&p, 5, || std::fs::write(&disk, &old).unwrap());
    let line = pv_trust(&p, "personal", "billing ledger");
    assert!(line.starts_with("ERROR rollback detected"), "{line}");

    // DRM through a content provider on the open VM's host port 7000.
    let listener = UnixListener::bind(p.state.join("vms/personal/vsock.sock_7000")).unwrap();
    let provider = pv_trust::drm::Provider {
        key: pv_trust::drm::provider_test_key(),
        root,
        expect: Some(m.parse().unwrap()),
        content_id: "film".into(),
        plaintext: b"PV-SECRET-FILM-FRAMES".to_vec(),
        ttl: 3600,
    };
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        provider.serve(&mut s).unwrap();
    });
    let line = pv_trust(&p, "personal", "drm play 7000");
    server.join().unwrap();
    use sha2::Digest;
    let digest = trust::hex::encode(&sha2::Sha256::digest(b"PV-SECRET-FILM-FRAMES"));
    assert_eq!(line, format!("PLAYED sha256={digest} bytes=21"));
    let secure = std::fs::read_to_string(p.state.join("vms/keys/secure-output.log")).unwrap();
    assert!(secure.contains("PV-SECRET-FILM-FRAMES"), "{secure}");
    assert!(!p.console_log("personal").contains("PV-SECRET-FILM-FRAMES"));

    // The open VM cannot reach the trust device.
    p.run_in("personal", "vsock-tool ping 2 5100 1", LIMIT);
    assert!(
        p.phone_log()
            .contains("trust device refused: personal: not a trusted VM"),
        "{}",
        p.phone_log()
    );

    // No console input, snapshot or export for the trusted VM.
    let mut console = p.console_stream("/vms/keys/console");
    console.write_all(b"x\n").unwrap();
    let mut seen = String::new();
    common::phone::read_until(&mut console, &mut seen, "takes no console input", LIMIT);
    let snapshot = p.cli(&[
        "snapshot",
        "keys",
        "--out",
        p.dir.path().join("snap").to_str().unwrap(),
    ]);
    assert_eq!(snapshot.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&snapshot.stderr)
        .contains("trusted VM \"keys\" cannot be snapshotted"));
    let export = pocketvisor()
        .args(["image", "export", "keys", "--phone"])
        .arg(&p.state)
        .args(["--out", "/nonexistent/x.pvi"])
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&export.stderr).contains("trusted VM \"keys\" cannot be exported"),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let dump = p.client().call("POST", "/vms/keys/dump", None).unwrap();
    assert_eq!(dump.status, 403);

    // Tampering with the sealed data (a byte of the auth slot), then with
    // the phone's counter file: each is detected, never taken for a fresh
    // start.
    let flip = |path: &std::path::Path, at: usize| {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(path, bytes).unwrap();
    };
    with_keys_stopped(&p, 6, || flip(&disk, 40));
    let line = pv_trust(&p, "personal", "auth sign c0ffee 2468");
    assert!(line.contains("cannot be unsealed"), "{line}");
    let counters = p.state.join("identity/counters/keys");
    let last = std::fs::metadata(&counters).unwrap().len() as usize - 1;
    with_keys_stopped(&p, 7, || flip(&counters, last));
    let line = pv_trust(&p, "personal", "auth sign c0ffee 2468");
    assert!(line.contains("tampered"), "{line}");
    assert!(
        p.phone_log()
            .contains("VM keys: the rollback counters were tampered with"),
        "{}",
        p.phone_log()
    );
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = console.read_to_end(&mut sink);
}
