//! The authentication service: an Ed25519 signing key made at enrolment,
//! sealed to the VM ([`crate::vault`]), used only with the right PIN.
//! Every wrong PIN is counted in the sealed state (so it survives reboots,
//! and restoring an older copy is detected as a rollback); after
//! [`MAX_FAILURES`] wrong PINs the key is locked for good.

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::vault::Vault;
use crate::wire::{ServiceResponse, Statement};

/// Wrong PINs before the key locks.
pub const MAX_FAILURES: u32 = 5;
/// The auth state's slot on the data disk.
pub const SLOT: usize = 0;
/// Longest challenge, in bytes.
pub const MAX_CHALLENGE: usize = 1024;
const SERVICE: &str = "auth";

#[derive(Serialize, Deserialize)]
struct AuthState {
    #[serde(with = "serde_bytes")]
    seed: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pin_hash: Vec<u8>,
    failures: u32,
}

fn pin_hash(seed: &[u8], pin: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"pocketvisor auth pin v1");
    h.update(seed);
    h.update(pin.as_bytes());
    h.finalize().to_vec()
}

fn check_pin(pin: &str) -> Result<(), String> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("a PIN is 4 to 12 digits".into())
    }
}

fn key(state: &AuthState) -> SigningKey {
    let seed: [u8; 32] = state
        .seed
        .as_slice()
        .try_into()
        .expect("sealed 32-byte seed");
    SigningKey::from_bytes(&seed)
}

/// `enroll(pin)`: makes the key; answers a statement of its public key
/// signed by the VM (so a relying party knows where the key lives).
pub fn enroll(vault: &Vault<'_>, pin: &str) -> Result<ServiceResponse, String> {
    check_pin(pin)?;
    if vault.load::<AuthState>(SERVICE, SLOT)?.is_some() {
        return Err("already enrolled".into());
    }
    let seed = crate::crypto::random::<32>().to_vec();
    let state = AuthState {
        pin_hash: pin_hash(&seed, pin),
        seed,
        failures: 0,
    };
    vault.save(SERVICE, SLOT, &state)?;
    let statement = Statement {
        purpose: "auth-key".into(),
        content: key(&state).verifying_key().to_bytes().to_vec(),
    };
    crate::server::sign_statement(vault.trust(), &statement)
}

/// `sign(challenge, pin)`.
pub fn sign(vault: &Vault<'_>, challenge: &[u8], pin: &str) -> Result<ServiceResponse, String> {
    if challenge.is_empty() || challenge.len() > MAX_CHALLENGE {
        return Err(format!("a challenge is 1 to {MAX_CHALLENGE} bytes"));
    }
    let mut state = vault
        .load::<AuthState>(SERVICE, SLOT)?
        .ok_or("not enrolled")?;
    if state.failures >= MAX_FAILURES {
        return Err(format!("locked: {MAX_FAILURES} wrong PINs"));
    }
    if check_pin(pin).is_err() || pin_hash(&state.seed, pin) != state.pin_hash {
        state.failures += 1;
        vault.save(SERVICE, SLOT, &state)?;
        let left = MAX_FAILURES - state.failures;
        return Err(if left == 0 {
            format!("wrong PIN; locked: {MAX_FAILURES} wrong PINs")
        } else {
            format!("wrong PIN ({left} tries left)")
        });
    }
    if state.failures != 0 {
        state.failures = 0;
        vault.save(SERVICE, SLOT, &state)?;
    }
    let key = key(&state);
    Ok(ServiceResponse::Signature {
        signature: key.sign(challenge).to_bytes().to_vec(),
        public_key: key.verifying_key().to_bytes().to_vec(),
    })
}
