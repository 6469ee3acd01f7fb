//! A trusted VM's secrets follow its measurement: two boots of the same
//! software measure the same and open the same sealed ledger; one byte
//! changed in its initrd changes the measurement, the ledger no longer
//! unseals and `attest verify --expect` rejects its evidence; the same
//! software made debuggable measures differently and gets other secrets
//! too. Going back to the original software opens the ledger again (so
//! the failures came from the measurement, not from damage).

mod common;

use std::time::Duration;

use common::phone::{manifest_text, TestPhone, VmSpec};
use common::trusted::{attest_verify, owner_evidence, root_key, service};
use pv_trust::wire::{ServiceRequest as Q, ServiceResponse as A, BILLING_PORT};

const LIMIT: Duration = Duration::from_secs(120);

/// An uncompressed newc cpio holding one file `name` with `data` (the
/// kernel unpacks archives appended to the initrd after it).
fn cpio_with(name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |name: &str, mode: u32, data: &[u8]| {
        let fields = [
            1,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    entry(name, 0o100644, data);
    entry("TRAILER!!!", 0, &[]);
    out
}

/// The trusted initrd plus a file `variant` holding `byte`.
fn write_variant(path: &std::path::Path, byte: u8) {
    let mut initrd =
        std::fs::read(common::linux_guest_dir().join("trusted-initramfs.cpio.gz")).unwrap();
    initrd.resize(initrd.len().next_multiple_of(512), 0);
    initrd.extend_from_slice(&cpio_with("variant", &[byte]));
    std::fs::write(path, initrd).unwrap();
}

fn measured(p: &TestPhone) -> Vec<String> {
    p.phone_log()
        .lines()
        .filter_map(|l| l.split("VM keys: measured ").nth(1).map(str::to_string))
        .collect()
}

fn ledger(p: &TestPhone) -> A {
    service(p, "keys", BILLING_PORT)
        .call(&Q::BillingLedger)
        .unwrap()
}

/// `attest verify --expect` of fresh evidence from VM keys.
fn verify_expecting(p: &TestPhone, expect: &str) -> (bool, String) {
    let (_, root) = root_key(p);
    attest_verify(p, &owner_evidence(p, "5eed"), "5eed", &root, Some(expect))
}

#[test]
fn secrets_follow_the_measurement() {
    let variant = tempfile::Builder::new()
        .prefix("pv-variant-")
        .tempdir()
        .unwrap();
    let initrd = variant.path().join("trusted-variant.cpio");
    write_variant(&initrd, b'a');
    let initrd_name: &'static str =
        Box::leak(initrd.to_str().unwrap().to_string().into_boxed_str());
    let spec = |debug: bool| {
        let mut v = VmSpec::trusted_services("keys");
        v.initrd = initrd_name;
        if debug {
            v = v.with("debug = true");
        }
        [v]
    };
    let p = TestPhone::up("memory = \"256M\"", &spec(false), "");
    p.cli_ok(&["stop", "keys"]);
    p.cli_ok(&["start", "keys"]);
    p.wait_for_console_n("keys", "PV-TRUSTD-READY", 2, LIMIT);
    let m = measured(&p);
    assert_eq!(m.len(), 2, "{}", p.phone_log());
    assert_eq!(
        m[0], m[1],
        "two boots of the same software measure differently"
    );
    let original = m[0].clone();
    let charge = Q::BillingCharge {
        amount: 7,
        merchant: "kiosk".into(),
    };
    assert!(matches!(
        service(&p, "keys", BILLING_PORT).call(&charge).unwrap(),
        A::Signed { .. }
    ));
    assert_eq!(
        ledger(&p),
        A::Ledger {
            charges: 1,
            total: 7
        }
    );
    assert!(verify_expecting(&p, &original).0);

    // One byte of the initrd changed.
    p.down();
    write_variant(&initrd, b'b');
    p.bring_up(&spec(false));
    let changed = measured(&p).last().unwrap().clone();
    assert_ne!(changed, original);
    let A::Error { message } = ledger(&p) else {
        panic!("the changed software opened the ledger")
    };
    assert!(message.contains("cannot be unsealed"), "{message}");
    let (ok, why) = verify_expecting(&p, &original);
    assert!(!ok && why.contains("measurement mismatch"), "{why}");

    // The original software, debuggable.
    p.down();
    write_variant(&initrd, b'a');
    std::fs::write(
        &p.manifest,
        manifest_text("memory = \"256M\"", &spec(true), ""),
    )
    .unwrap();
    p.bring_up(&spec(true));
    let debug = measured(&p).last().unwrap().clone();
    assert_ne!(debug, original);
    let A::Error { message } = ledger(&p) else {
        panic!("the debuggable VM opened the ledger")
    };
    assert!(message.contains("cannot be unsealed"), "{message}");

    // The original again: its ledger is intact.
    p.down();
    std::fs::write(
        &p.manifest,
        manifest_text("memory = \"256M\"", &spec(false), ""),
    )
    .unwrap();
    p.bring_up(&spec(false));
    assert_eq!(measured(&p).last().unwrap(), &original);
    assert_eq!(
        ledger(&p),
        A::Ledger {
            charges: 1,
            total: 7
        }
    );
}
