//! The trust commands: `measure`, `attest verify`, `phone identity`,
//! `phone attest`. Every failure is one line on stderr and exit status 1.

use std::path::Path;
use std::process::ExitCode;

use crate::phone_cli::fail;
use phone::client::Client;
use trust::identity::{identity_dir, parse_public_key};
use trust::{DeviceSecret, Measurement};

/// `pocketvisor measure MANIFEST VM`.
pub fn measure(path: &Path, name: &str) -> ExitCode {
    let manifest = match phone::Manifest::load(path) {
        Ok(m) => m,
        Err(e) => return fail(&e.to_string()),
    };
    match phone::measure::measure_files(&manifest, name) {
        Ok(log) => {
            print!("{}", log.render());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// `pocketvisor attest verify`: checks evidence, prints its claims as JSON.
pub fn verify(evidence: &Path, nonce: &str, root_key: &Path, expect: Option<&str>) -> ExitCode {
    let bytes = match std::fs::read(evidence) {
        Ok(b) => b,
        Err(e) => return fail(&format!("cannot read '{}': {e}", evidence.display())),
    };
    let Some(nonce) = trust::hex::decode(nonce.trim()) else {
        return fail("--nonce is not hex");
    };
    let root = match std::fs::read_to_string(root_key) {
        Ok(text) => match parse_public_key(&text) {
            Ok(k) => k,
            Err(e) => return fail(&format!("'{}': {e}", root_key.display())),
        },
        Err(e) => return fail(&format!("cannot read '{}': {e}", root_key.display())),
    };
    let expect = match expect.map(str::parse::<Measurement>).transpose() {
        Ok(m) => m,
        Err(e) => return fail(&format!("--expect: {e}")),
    };
    match trust::verify_evidence(&bytes, &nonce, &root, expect) {
        Ok(claims) => {
            let vm = &claims.vm;
            let out = serde_json::json!({
                "verified": true,
                "vm": vm.vm,
                "measurement": vm.measurement.to_string(),
                "debug": vm.debug,
                "nonce": trust::hex::encode(&claims.nonce),
                "root_key_id": trust::hex::encode(&vm.root_key_id),
                "attestation_key": trust::hex::encode(&vm.attestation_key.to_bytes()),
            });
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("evidence rejected: {e}")),
    }
}

/// `pocketvisor phone identity --phone DIR [--recipient]`: the phone's
/// root public key, or its X25519 image recipient key.
pub fn identity(dir: &Path, recipient: bool) -> ExitCode {
    match phone_secret(dir) {
        Ok(secret) => {
            let key = if recipient {
                image::keys::recipient_public(&secret.recipient_secret())
            } else {
                secret.root().public().to_bytes()
            };
            println!("{}", trust::hex::encode(&key));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

/// The identity of the phone whose state directory is `dir`.
pub(crate) fn phone_secret(dir: &Path) -> Result<DeviceSecret, String> {
    let id = identity_dir(dir);
    if !id.join("uds").exists() {
        return Err(format!(
            "'{}' has no phone identity (it is made when the phone first starts)",
            dir.display()
        ));
    }
    DeviceSecret::open(&id).map_err(|e| e.to_string())
}

/// `pocketvisor phone attest VM --nonce HEX --out FILE`: evidence for a
/// running trusted VM, from the host side.
pub fn attest(dir: &Path, vm: &str, nonce: &str, out: &Path) -> ExitCode {
    if trust::hex::decode(nonce.trim()).is_none() {
        return fail("--nonce is not hex");
    }
    let body = serde_json::json!({ "nonce": nonce.trim() });
    let answer =
        match Client::for_phone(dir).call("POST", &format!("/vms/{vm}/evidence"), Some(&body)) {
            Ok(a) => a,
            Err(e) => return fail(&e),
        };
    if answer.status != 200 {
        return match answer.ok() {
            Err(e) => fail(&e),
            Ok(_) => fail("the phone gave no evidence"),
        };
    }
    match std::fs::write(out, &answer.bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("cannot write '{}': {e}", out.display())),
    }
}
