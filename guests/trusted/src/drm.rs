//! The DRM service. A content provider licenses content to one DRM VM:
//! the VM's **device key** (X25519, derived from its instance secret, so
//! bound to this phone and this software) is published as a statement the
//! VM signs ([`device_key_statement`]); the provider checks it against the
//! phone's root key and wraps the content key to it in a **license** it
//! signs with its own key, with an expiry. The VM checks the license's
//! signature against the provider key it was built with, its expiry and
//! that it names this device; then it decrypts the content to its
//! **secure output** (a console port only the phone's supervisor reads)
//! and answers only a digest and a length — the open VM that relayed the
//! license and content never sees the content or its key.
//!
//! The provider key here is a **test key** derived from a published label
//! ([`provider_test_key`]); a real deployment builds the DRM VM with its
//! provider's public key instead (which changes its measurement).

use std::io::Write;
use std::sync::Mutex;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::crypto;
use crate::vault::{instance_secret, TrustLink};
use crate::wire::{ServiceResponse, Statement};

/// The test content provider's public key, built into the DRM service.
pub const PROVIDER_PUBLIC_KEY: [u8; 32] = [
    0x55, 0x58, 0xa5, 0x7e, 0x33, 0xf5, 0xb7, 0xb0, 0xd6, 0x03, 0xa6, 0x44, 0xff, 0x1b, 0xc3, 0x98,
    0x47, 0xa8, 0xc9, 0xde, 0x9c, 0xed, 0xf7, 0xeb, 0x94, 0x6c, 0x49, 0x90, 0x88, 0xe2, 0x65, 0xf3,
];

/// The test content provider's signing key (tests and the demo's
/// provider only).
pub fn provider_test_key() -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(b"pocketvisor test content provider key v1").into();
    SigningKey::from_bytes(&seed)
}

#[derive(Serialize, Deserialize)]
struct LicenseBody {
    content_id: String,
    expires: u64,
    #[serde(with = "serde_bytes")]
    device_key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    ephemeral: Vec<u8>,
    #[serde(with = "serde_bytes")]
    wrapped_key: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct License {
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Content {
    content_id: String,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

fn cbor<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("CBOR to memory");
    out
}

fn wrap_key(shared: &[u8; 32], content_id: &str) -> [u8; 32] {
    let mut purpose = b"pocketvisor drm key wrap v1\0".to_vec();
    purpose.extend_from_slice(content_id.as_bytes());
    crypto::derive(shared, &purpose)
}

fn content_aad(content_id: &str) -> Vec<u8> {
    let mut aad = b"pocketvisor drm content v1\0".to_vec();
    aad.extend_from_slice(content_id.as_bytes());
    aad
}

/// The VM's device key pair.
fn device_secret(trust: &dyn TrustLink) -> Result<StaticSecret, String> {
    Ok(StaticSecret::from(instance_secret(
        trust,
        "drm device key",
    )?))
}

/// The device key, as a statement the VM signs.
pub fn device_key_statement(trust: &dyn TrustLink) -> Result<ServiceResponse, String> {
    let public = PublicKey::from(&device_secret(trust)?);
    crate::server::sign_statement(
        trust,
        &Statement {
            purpose: "drm-device-key".into(),
            content: public.as_bytes().to_vec(),
        },
    )
}

/// The provider's side: a license for `content_id` until `expires` (Unix
/// seconds) to `device_key`, carrying `content_key`.
pub fn make_license(
    provider: &SigningKey,
    device_key: [u8; 32],
    content_id: &str,
    expires: u64,
    content_key: &[u8; 32],
) -> Vec<u8> {
    let ephemeral = StaticSecret::from(crypto::random::<32>());
    let shared = ephemeral.diffie_hellman(&PublicKey::from(device_key));
    let kek = wrap_key(shared.as_bytes(), content_id);
    let body = cbor(&LicenseBody {
        content_id: content_id.to_string(),
        expires,
        device_key: device_key.to_vec(),
        ephemeral: PublicKey::from(&ephemeral).as_bytes().to_vec(),
        wrapped_key: crypto::seal(&kek, content_id.as_bytes(), content_key),
    });
    let signature = provider.sign(&body).to_bytes().to_vec();
    cbor(&License { body, signature })
}

/// The provider's side: `plaintext` encrypted under `content_key`.
pub fn encrypt_content(content_key: &[u8; 32], content_id: &str, plaintext: &[u8]) -> Vec<u8> {
    cbor(&Content {
        content_id: content_id.to_string(),
        blob: crypto::seal(content_key, &content_aad(content_id), plaintext),
    })
}

/// The provider's side: checks a device-key statement against the phone's
/// `root` (and, if given, the DRM VM's expected measurement); returns the
/// device key to license.
pub fn check_device_key(
    statement: &[u8],
    root: &VerifyingKey,
    expect: Option<trust::Measurement>,
) -> Result<[u8; 32], String> {
    let (vm, key) = crate::wire::verify_statement(statement, root, "drm-device-key")?;
    if let Some(m) = expect {
        if vm.measurement != m {
            return Err(format!("the DRM VM runs {}, expected {m}", vm.measurement));
        }
    }
    key.try_into()
        .map_err(|_| "a device key is 32 bytes".to_string())
}

/// Plays `content` under `license` at time `now` (Unix seconds): the
/// plaintext goes to `output`; the answer is its digest and length.
pub fn play(
    trust: &dyn TrustLink,
    output: &Mutex<Box<dyn Write + Send>>,
    license: &[u8],
    content: &[u8],
    now: u64,
) -> Result<ServiceResponse, String> {
    let license: License =
        ciborium::from_reader(license).map_err(|e| format!("not a license: {e}"))?;
    let provider = VerifyingKey::from_bytes(&PROVIDER_PUBLIC_KEY).expect("a valid built-in key");
    let signature =
        Signature::from_slice(&license.signature).map_err(|_| "bad license signature")?;
    provider
        .verify_strict(&license.body, &signature)
        .map_err(|_| "the license is not signed by the content provider")?;
    let body: LicenseBody = ciborium::from_reader(license.body.as_slice())
        .map_err(|e| format!("not a license: {e}"))?;
    if body.expires <= now {
        return Err(format!(
            "the license expired (at {}, now {now})",
            body.expires
        ));
    }
    let secret = device_secret(trust)?;
    if body.device_key != PublicKey::from(&secret).as_bytes() {
        return Err("the license is bound to another device".into());
    }
    let ephemeral: [u8; 32] = body
        .ephemeral
        .as_slice()
        .try_into()
        .map_err(|_| "not a license: bad ephemeral key")?;
    let shared = secret.diffie_hellman(&PublicKey::from(ephemeral));
    let kek = wrap_key(shared.as_bytes(), &body.content_id);
    let key: [u8; 32] = crypto::open(&kek, body.content_id.as_bytes(), &body.wrapped_key)
        .and_then(|k| k.try_into().ok())
        .ok_or("the license's content key cannot be unwrapped")?;
    let content: Content =
        ciborium::from_reader(content).map_err(|e| format!("not content: {e}"))?;
    if content.content_id != body.content_id {
        return Err(format!(
            "the license is for {}, not {}",
            body.content_id, content.content_id
        ));
    }
    let plaintext = crypto::open(&key, &content_aad(&content.content_id), &content.blob)
        .ok_or("the content does not decrypt (damaged?)")?;
    {
        let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(&plaintext)
            .and_then(|_| out.flush())
            .map_err(|e| format!("the secure output failed: {e}"))?;
    }
    Ok(ServiceResponse::Played {
        sha256: Sha256::digest(&plaintext).to_vec(),
        bytes: plaintext.len() as u64,
    })
}

/// What the open VM sends the content provider: the DRM VM's device-key
/// statement.
#[derive(Serialize, Deserialize)]
pub struct ProviderRequest {
    /// The statement ([`device_key_statement`]).
    #[serde(with = "serde_bytes")]
    pub statement: Vec<u8>,
}

/// The content provider's answer.
#[derive(Serialize, Deserialize)]
pub enum ProviderReply {
    /// A license for the device and the encrypted content.
    Licensed {
        /// The license.
        #[serde(with = "serde_bytes")]
        license: Vec<u8>,
        /// The content.
        #[serde(with = "serde_bytes")]
        content: Vec<u8>,
    },
    /// Refused.
    Refused {
        /// Why.
        message: String,
    },
}

/// A content provider for tests and the demo: licenses `plaintext` as
/// `content_id` for `ttl` seconds to DRM VMs certified by `root`.
pub struct Provider {
    /// The provider's signing key.
    pub key: SigningKey,
    /// The phone root it trusts.
    pub root: VerifyingKey,
    /// The DRM VM measurement it requires, if any.
    pub expect: Option<trust::Measurement>,
    /// The content's name.
    pub content_id: String,
    /// The content.
    pub plaintext: Vec<u8>,
    /// How long a license lasts (seconds; 0 makes expired licenses).
    pub ttl: u64,
}

impl Provider {
    /// Answers one request on `stream`.
    pub fn serve(&self, stream: &mut std::os::unix::net::UnixStream) -> std::io::Result<()> {
        use trust::device::{read_frame_up_to, write_message_up_to};
        let Some(body) = read_frame_up_to(stream, crate::wire::MAX_FRAME)? else {
            return Ok(());
        };
        let reply = match ciborium::from_reader::<ProviderRequest, _>(body.as_slice()) {
            Err(e) => ProviderReply::Refused {
                message: format!("bad request: {e}"),
            },
            Ok(r) => match check_device_key(&r.statement, &self.root, self.expect) {
                Err(message) => ProviderReply::Refused { message },
                Ok(device) => {
                    let content_key = crypto::random::<32>();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let expires = if self.ttl == 0 {
                        now.saturating_sub(60)
                    } else {
                        now + self.ttl
                    };
                    ProviderReply::Licensed {
                        license: make_license(
                            &self.key,
                            device,
                            &self.content_id,
                            expires,
                            &content_key,
                        ),
                        content: encrypt_content(&content_key, &self.content_id, &self.plaintext),
                    }
                }
            },
        };
        write_message_up_to(stream, &reply, crate::wire::MAX_FRAME)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_built_in_provider_key_is_the_test_key() {
        assert_eq!(
            super::provider_test_key().verifying_key().to_bytes(),
            super::PROVIDER_PUBLIC_KEY
        );
    }
}
