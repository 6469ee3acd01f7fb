//! The phone's identity, evidence and its verifier, sealing secrets and
//! rollback counters, through the trust device as a guest uses it.

use std::os::unix::fs::PermissionsExt;

use trust::device::{call, Request, Response};
use trust::{verify_evidence, DeviceSecret, Measurement, TrustDevice, VerifyError, VmSigned};

const M1: Measurement = Measurement([1; 32]);
const M2: Measurement = Measurement([2; 32]);

fn device(dir: &std::path::Path, vm: &str, m: Measurement, debug: bool) -> TrustDevice {
    let secret = DeviceSecret::open_or_create(dir).unwrap();
    TrustDevice::for_vm(&secret, vm, m, debug).unwrap()
}

fn root(dir: &std::path::Path) -> ed25519_dalek::VerifyingKey {
    DeviceSecret::open(dir).unwrap().root().public()
}

fn secret(d: &TrustDevice, label: &str) -> Vec<u8> {
    match d.handle(&Request::InstanceSecret {
        label: label.into(),
    }) {
        Response::Secret { secret } => secret,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_uds_is_private_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("identity");
    let a = DeviceSecret::open_or_create(&id).unwrap().root().public();
    let mode = std::fs::metadata(id.join("uds"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(DeviceSecret::open(&id).unwrap().root().public(), a);
    // Another phone has another root.
    let other = tempfile::tempdir().unwrap();
    assert_ne!(
        DeviceSecret::open_or_create(other.path())
            .unwrap()
            .root()
            .public(),
        a
    );
    // A UDS others may read is refused, not used.
    std::fs::set_permissions(id.join("uds"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = DeviceSecret::open(&id).err().unwrap().to_string();
    assert!(err.contains("readable by others"), "{err}");
}

#[test]
fn evidence_verifies_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path(), "keys", M1, false);
    let root = root(dir.path());
    let evidence = d.evidence(b"nonce-1");
    let claims = verify_evidence(&evidence, b"nonce-1", &root, Some(M1)).unwrap();
    assert_eq!(claims.vm.vm, "keys");
    assert_eq!(claims.vm.measurement, M1);
    assert!(!claims.vm.debug);

    assert_eq!(
        verify_evidence(&evidence, b"nonce-2", &root, None).unwrap_err(),
        VerifyError::WrongNonce
    );
    assert!(matches!(
        verify_evidence(&evidence, b"nonce-1", &root, Some(M2)).unwrap_err(),
        VerifyError::MeasurementMismatch { .. }
    ));
    // Another phone's root does not vouch for this VM.
    let other = tempfile::tempdir().unwrap();
    let other_root = DeviceSecret::open_or_create(other.path())
        .unwrap()
        .root()
        .public();
    assert_eq!(
        verify_evidence(&evidence, b"nonce-1", &other_root, None).unwrap_err(),
        VerifyError::UnknownRoot
    );
    // A chain from another phone, presented against this phone's root.
    let foreign = device(other.path(), "keys", M1, false).evidence(b"nonce-1");
    assert_eq!(
        verify_evidence(&foreign, b"nonce-1", &root, None).unwrap_err(),
        VerifyError::UnknownRoot
    );
    assert!(matches!(
        verify_evidence(b"\xa1garbage", b"nonce-1", &root, None).unwrap_err(),
        VerifyError::Malformed(_)
    ));
    // Every single flipped byte is rejected.
    for i in 0..evidence.len() {
        let mut bad = evidence.clone();
        bad[i] ^= 0x01;
        assert!(
            verify_evidence(&bad, b"nonce-1", &root, Some(M1)).is_err(),
            "flipping byte {i} of {} went unnoticed",
            evidence.len()
        );
    }
}

#[test]
fn a_statement_the_vm_signs_is_not_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path(), "keys", M1, false);
    let root = root(dir.path());
    let Response::Signed { bytes } = d.handle(&Request::Sign {
        data: b"nonce-1".to_vec(),
    }) else {
        panic!()
    };
    let signed = VmSigned::decode(&bytes).unwrap();
    let (vm, data) = trust::verify_vm_signed(&signed, &root).unwrap();
    assert_eq!((vm.vm.as_str(), data.as_slice()), ("keys", &b"nonce-1"[..]));
    assert_eq!(
        verify_evidence(&bytes, b"nonce-1", &root, None).unwrap_err(),
        VerifyError::BadSignature("evidence")
    );
}

#[test]
fn secrets_follow_measurement_debug_and_instance() {
    let dir = tempfile::tempdir().unwrap();
    let base = secret(&device(dir.path(), "keys", M1, false), "ledger");
    assert_eq!(base.len(), 32);
    assert_eq!(
        secret(&device(dir.path(), "keys", M1, false), "ledger"),
        base
    );
    assert_ne!(secret(&device(dir.path(), "keys", M1, false), "pin"), base);
    assert_ne!(
        secret(&device(dir.path(), "keys", M2, false), "ledger"),
        base
    );
    assert_ne!(
        secret(&device(dir.path(), "keys", M1, true), "ledger"),
        base
    );
    assert_ne!(
        secret(&device(dir.path(), "drm", M1, false), "ledger"),
        base
    );
    let other = tempfile::tempdir().unwrap();
    assert_ne!(
        secret(&device(other.path(), "keys", M1, false), "ledger"),
        base
    );
}

#[test]
fn counters_are_monotonic_and_tampering_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path(), "keys", M1, false);
    let inc = |d: &TrustDevice| {
        d.handle(&Request::CounterIncrement {
            name: "ledger".into(),
        })
    };
    assert_eq!(inc(&d), Response::Counter { value: 1 });
    assert_eq!(inc(&d), Response::Counter { value: 2 });
    // A restart keeps them.
    let d = device(dir.path(), "keys", M1, false);
    assert_eq!(
        d.handle(&Request::CounterRead {
            name: "ledger".into()
        }),
        Response::Counter { value: 2 }
    );
    let file = dir.path().join("counters/keys");
    let good = std::fs::read(&file).unwrap();
    // Editing the value (any byte) is detected, and nothing is reset.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        std::fs::write(&file, &bad).unwrap();
        let Response::Error { message } = inc(&d) else {
            panic!("flipping byte {i} went unnoticed")
        };
        assert!(message.contains("tampered"), "{message}");
        assert_eq!(std::fs::read(&file).unwrap(), bad);
    }
    // Removing the file is tampering too, not a fresh start.
    std::fs::remove_file(&file).unwrap();
    let d = device(dir.path(), "keys", M1, false);
    assert!(matches!(inc(&d), Response::Error { .. }));
    assert!(!file.exists());
}

#[test]
fn the_wire_protocol_round_trips_and_bounds_requests() {
    let dir = tempfile::tempdir().unwrap();
    let d = device(dir.path(), "keys", M1, false);
    let (mut guest, mut host) = std::os::unix::net::UnixStream::pair().unwrap();
    let server = std::thread::spawn(move || d.serve(&mut host, &mut |_| {}));
    let r = call(&mut guest, &Request::Evidence { nonce: vec![7; 16] }).unwrap();
    let Response::Signed { bytes } = r else {
        panic!("{r:?}")
    };
    verify_evidence(&bytes, &[7; 16], &root(dir.path()), Some(M1)).unwrap();
    let r = call(&mut guest, &Request::Evidence { nonce: vec![7; 65] }).unwrap();
    assert!(matches!(r, Response::Error { .. }), "{r:?}");
    let r = call(
        &mut guest,
        &Request::InstanceSecret {
            label: String::new(),
        },
    )
    .unwrap();
    assert!(matches!(r, Response::Error { .. }), "{r:?}");
    // A frame that is not a request ends the connection with an error.
    use std::io::Write;
    guest.write_all(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).unwrap();
    assert!(server.join().unwrap().is_err());
}
