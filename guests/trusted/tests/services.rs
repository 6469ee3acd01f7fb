//! The reference services on the host, against an in-process trust
//! device and a data "disk" in a temporary file: what the trusted VM runs,
//! minus the VM (the end-to-end tests are in crates/pocketvisor/tests).

use std::io::Write;
use std::sync::{Arc, Mutex};

use pv_trust::server::Services;
use pv_trust::vault::{DiskStorage, TrustLink};
use pv_trust::wire::{
    verify_statement, ServiceRequest as Q, ServiceResponse as A, AUTH_PORT, BILLING_PORT, DRM_PORT,
};
use trust::{DeviceSecret, Measurement, Request, Response, TrustDevice};

struct Local(TrustDevice);

impl TrustLink for Local {
    fn call(&self, request: &Request) -> Result<Response, String> {
        Ok(self.0.handle(request))
    }
}

/// What the DRM service played.
#[derive(Clone, Default)]
struct Output(Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Phone {
    dir: tempfile::TempDir,
    disk: std::path::PathBuf,
}

impl Phone {
    fn new() -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("data.img");
        std::fs::write(&disk, vec![0u8; 256 << 10]).unwrap();
        Phone { dir, disk }
    }

    fn identity(&self) -> std::path::PathBuf {
        self.dir.path().join("identity")
    }

    fn root(&self) -> ed25519_dalek::VerifyingKey {
        DeviceSecret::open(&self.identity())
            .unwrap()
            .root()
            .public()
    }

    /// The trusted VM booting software `m` (debug off), with `output`.
    fn boot(&self, m: u8, output: Output) -> Services {
        let secret = DeviceSecret::open_or_create(&self.identity()).unwrap();
        let device = TrustDevice::for_vm(&secret, "keys", Measurement([m; 32]), false).unwrap();
        Services::new(
            Box::new(Local(device)),
            Box::new(DiskStorage::open(&self.disk).unwrap()),
            Box::new(output),
        )
    }
}

fn error(a: A) -> String {
    match a {
        A::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn sign(s: &Services, pin: &str) -> A {
    s.handle(
        AUTH_PORT,
        &Q::AuthSign {
            challenge: b"login".to_vec(),
            pin: pin.into(),
        },
    )
}

#[test]
fn auth_signs_with_the_right_pin_and_locks_after_five_wrong_ones_for_good() {
    let phone = Phone::new();
    let s = phone.boot(1, Output::default());
    let A::Signed { bytes } = s.handle(AUTH_PORT, &Q::AuthEnroll { pin: "1234".into() }) else {
        panic!()
    };
    let (vm, key) = verify_statement(&bytes, &phone.root(), "auth-key").unwrap();
    assert_eq!(vm.vm, "keys");
    assert!(error(s.handle(AUTH_PORT, &Q::AuthEnroll { pin: "1234".into() })).contains("already"));
    let A::Signature {
        signature,
        public_key,
    } = sign(&s, "1234")
    else {
        panic!()
    };
    assert_eq!(public_key, key);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key.try_into().unwrap()).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
    key.verify_strict(b"login", &signature).unwrap();

    for left in (2..5).rev() {
        assert!(error(sign(&s, "0000")).contains(&format!("{left} tries left")));
    }
    // A reboot keeps the count.
    let s = phone.boot(1, Output::default());
    assert!(error(sign(&s, "0000")).contains("1 tries left"));
    let before_lock = std::fs::read(&phone.disk).unwrap();
    assert!(error(sign(&s, "0000")).contains("locked"));
    assert!(error(sign(&s, "1234")).contains("locked"));
    let s = phone.boot(1, Output::default());
    assert!(
        error(sign(&s, "1234")).contains("locked"),
        "a reboot unlocks"
    );
    // Putting back the disk from before the lock is a rollback.
    std::fs::write(&phone.disk, before_lock).unwrap();
    let s = phone.boot(1, Output::default());
    assert!(error(sign(&s, "1234")).contains("rollback detected"));
}

#[test]
fn other_software_cannot_unseal_the_state() {
    let phone = Phone::new();
    let s = phone.boot(1, Output::default());
    assert!(matches!(
        s.handle(
            BILLING_PORT,
            &Q::BillingCharge {
                amount: 5,
                merchant: "cafe".into()
            }
        ),
        A::Signed { .. }
    ));
    let other = phone.boot(2, Output::default());
    assert!(error(other.handle(BILLING_PORT, &Q::BillingLedger)).contains("cannot be unsealed"));
}

#[test]
fn billing_receipts_verify_and_a_replayed_ledger_is_detected() {
    let phone = Phone::new();
    let s = phone.boot(1, Output::default());
    let charge = |s: &Services, amount| match s.handle(
        BILLING_PORT,
        &Q::BillingCharge {
            amount,
            merchant: "shop".into(),
        },
    ) {
        A::Signed { bytes } => bytes,
        other => panic!("{other:?}"),
    };
    let first = charge(&s, 250);
    let old_disk = std::fs::read(&phone.disk).unwrap();
    let second = charge(&s, 100);
    let (vm, receipt) = pv_trust::billing::verify_receipt(&second, &phone.root()).unwrap();
    assert_eq!(
        (vm.vm.as_str(), receipt.charge.seq, receipt.total),
        ("keys", 2, 350)
    );
    assert_eq!(
        pv_trust::billing::verify_receipt(&first, &phone.root())
            .unwrap()
            .1
            .total,
        250
    );
    let mut forged = second.clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    assert!(pv_trust::billing::verify_receipt(&forged, &phone.root()).is_err());
    assert_eq!(
        s.handle(BILLING_PORT, &Q::BillingLedger),
        A::Ledger {
            charges: 2,
            total: 350
        }
    );
    std::fs::write(&phone.disk, old_disk).unwrap();
    let s = phone.boot(1, Output::default());
    assert!(error(s.handle(BILLING_PORT, &Q::BillingLedger)).contains("rollback detected"));
    assert!(error(s.handle(
        BILLING_PORT,
        &Q::BillingCharge {
            amount: 1,
            merchant: "x".into()
        }
    ))
    .contains("rollback detected"));
}

fn licensed(phone: &Phone, s: &Services, ttl: u64) -> (Vec<u8>, Vec<u8>) {
    let A::Signed { bytes } = s.handle(DRM_PORT, &Q::DrmDeviceKey) else {
        panic!()
    };
    let provider = pv_trust::drm::Provider {
        key: pv_trust::drm::provider_test_key(),
        root: phone.root(),
        expect: Some(Measurement([1; 32])),
        content_id: "movie".into(),
        plaintext: b"the secret movie".to_vec(),
        ttl,
    };
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    trust::device::write_message(&mut a, &pv_trust::drm::ProviderRequest { statement: bytes })
        .unwrap();
    provider.serve(&mut b).unwrap();
    let body = trust::device::read_frame_up_to(&mut a, 1 << 20)
        .unwrap()
        .unwrap();
    match ciborium::from_reader(body.as_slice()).unwrap() {
        pv_trust::drm::ProviderReply::Licensed { license, content } => (license, content),
        pv_trust::drm::ProviderReply::Refused { message } => panic!("{message}"),
    }
}

#[test]
fn drm_plays_to_the_secure_output_only_with_a_valid_license_for_this_device() {
    let phone = Phone::new();
    let out = Output::default();
    let s = phone.boot(1, out.clone());
    let (license, content) = licensed(&phone, &s, 3600);
    let played = s.handle(
        DRM_PORT,
        &Q::DrmPlay {
            license: license.clone(),
            content: content.clone(),
        },
    );
    let A::Played { sha256, bytes } = played else {
        panic!("{played:?}")
    };
    use sha2::Digest;
    assert_eq!(sha256, sha2::Sha256::digest(b"the secret movie").to_vec());
    assert_eq!(bytes, 16);
    assert_eq!(out.0.lock().unwrap().as_slice(), b"the secret movie");

    let (expired, content2) = licensed(&phone, &s, 0);
    assert!(error(s.handle(
        DRM_PORT,
        &Q::DrmPlay {
            license: expired,
            content: content2
        }
    ))
    .contains("expired"));
    // Another phone's DRM VM is another device.
    let phone2 = Phone::new();
    let s2 = phone2.boot(1, Output::default());
    assert!(error(s2.handle(
        DRM_PORT,
        &Q::DrmPlay {
            license: license.clone(),
            content: content.clone()
        }
    ))
    .contains("another device"));
    let mut bad = license.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(error(s.handle(
        DRM_PORT,
        &Q::DrmPlay {
            license: bad,
            content: content.clone()
        }
    ))
    .contains("not signed"));
    let mut bad = content.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(error(s.handle(
        DRM_PORT,
        &Q::DrmPlay {
            license,
            content: bad
        }
    ))
    .contains("does not decrypt"));
    // The provider licenses only DRM VMs certified by the phone it trusts.
    let provider = pv_trust::drm::Provider {
        key: pv_trust::drm::provider_test_key(),
        root: phone.root(),
        expect: None,
        content_id: "movie".into(),
        plaintext: vec![],
        ttl: 60,
    };
    let A::Signed { bytes } = s2.handle(DRM_PORT, &Q::DrmDeviceKey) else {
        panic!()
    };
    assert!(pv_trust::drm::check_device_key(&bytes, &provider.root, None).is_err());
}

#[test]
fn each_port_serves_only_its_service() {
    let phone = Phone::new();
    let s = phone.boot(1, Output::default());
    assert!(error(s.handle(DRM_PORT, &Q::BillingLedger)).contains("does not serve"));
    assert!(
        error(s.handle(BILLING_PORT, &Q::AuthEnroll { pin: "1234".into() }))
            .contains("does not serve")
    );
}
