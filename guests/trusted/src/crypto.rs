//! Authenticated encryption of sealed state and content: AES-256-GCM with
//! a random 96-bit nonce stored in front of the ciphertext.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

/// Bytes of the nonce in front of a sealed blob.
const NONCE_LEN: usize = 12;

/// Encrypts `plaintext` under `key`, binding `aad`.
pub fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the kernel gives random bytes");
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key");
    let ct = cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encrypts any message of this size");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

/// Decrypts what [`seal`] made; `None` if the key, `aad` or any byte differ.
pub fn open(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
    if blob.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ct) = blob.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .ok()
}

/// A 32-byte key from `secret` for `purpose` (HKDF-SHA-256).
pub fn derive(secret: &[u8], purpose: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, secret)
        .expand(purpose, &mut out)
        .expect("32 bytes is a valid HKDF length");
    out
}

/// Random bytes.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the kernel gives random bytes");
    out
}
