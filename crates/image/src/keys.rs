//! The content key of an image: from a passphrase (Argon2id, random salt,
//! the cost in the header) or for a recipient (X25519 between a fresh
//! ephemeral key and the recipient's, then HKDF-SHA-256 salted with the
//! file id). Either way every file gets its own key, so chunk indices are
//! safe nonces. A 16-byte check value in the header tells a wrong key from
//! a damaged chunk.

use argon2::{Algorithm, Argon2, Params, Version};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::format::{ImageError, KeyHeader};

/// Argon2id memory cost of new images, in KiB (64 MiB).
pub const M_COST: u32 = 64 << 10;
/// Argon2id passes.
pub const T_COST: u32 = 3;
/// Argon2id lanes.
pub const P_COST: u32 = 1;

/// What the exporter or importer holds.
pub enum KeySource<'a> {
    /// A passphrase (its bytes).
    Passphrase(&'a [u8]),
    /// For export: the recipient's X25519 public key.
    Recipient([u8; 32]),
    /// For import: the recipient's X25519 secret.
    RecipientSecret([u8; 32]),
}

/// A derived content key.
pub struct ContentKey(pub(crate) [u8; 32]);

impl ContentKey {
    /// The check value stored in the header.
    pub fn check_value(&self) -> Vec<u8> {
        let mut out = [0u8; 16];
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(b"pocketvisor image key check v1", &mut out)
            .expect("16 bytes is a valid HKDF length");
        out.to_vec()
    }
}

fn random<const N: usize>() -> Result<[u8; N], ImageError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| ImageError::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
    Ok(out)
}

fn argon2(
    passphrase: &[u8],
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<ContentKey, ImageError> {
    let params = Params::new(m, t, p, Some(32))
        .map_err(|e| ImageError::Malformed(format!("passphrase parameters: {e}")))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut key)
        .map_err(|e| ImageError::Malformed(format!("passphrase: {e}")))?;
    Ok(ContentKey(key))
}

fn recipient_key(
    shared: &[u8; 32],
    file_id: &[u8],
    ephemeral: &[u8],
    recipient: &[u8],
) -> ContentKey {
    let mut info = b"pocketvisor image key v1".to_vec();
    info.extend_from_slice(ephemeral);
    info.extend_from_slice(recipient);
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(file_id), shared)
        .expand(&info, &mut key)
        .expect("32 bytes is a valid HKDF length");
    ContentKey(key)
}

/// For export: a new file's key and how to find it again.
pub fn new_key(
    source: &KeySource<'_>,
    file_id: &[u8],
) -> Result<(ContentKey, KeyHeader), ImageError> {
    match source {
        KeySource::Passphrase(p) => {
            let salt = random::<16>()?;
            let key = argon2(p, &salt, M_COST, T_COST, P_COST)?;
            Ok((
                key,
                KeyHeader::Passphrase {
                    salt: salt.to_vec(),
                    m_cost: M_COST,
                    t_cost: T_COST,
                    p_cost: P_COST,
                },
            ))
        }
        KeySource::Recipient(recipient) => {
            let ephemeral = StaticSecret::from(random::<32>()?);
            let ephemeral_public = PublicKey::from(&ephemeral);
            let shared = ephemeral.diffie_hellman(&PublicKey::from(*recipient));
            let key = recipient_key(
                shared.as_bytes(),
                file_id,
                ephemeral_public.as_bytes(),
                recipient,
            );
            Ok((
                key,
                KeyHeader::Recipient {
                    recipient: recipient.to_vec(),
                    ephemeral: ephemeral_public.as_bytes().to_vec(),
                },
            ))
        }
        KeySource::RecipientSecret(_) => Err(ImageError::Malformed(
            "a recipient's secret key is for import, not export".into(),
        )),
    }
}

/// For import: the key of an image with this key header and check value.
pub fn open_key(
    source: &KeySource<'_>,
    header: &KeyHeader,
    file_id: &[u8],
    check: &[u8],
) -> Result<ContentKey, ImageError> {
    let key = match (source, header) {
        (
            KeySource::Passphrase(p),
            KeyHeader::Passphrase {
                salt,
                m_cost,
                t_cost,
                p_cost,
            },
        ) => argon2(p, salt, *m_cost, *t_cost, *p_cost)?,
        (
            KeySource::RecipientSecret(secret),
            KeyHeader::Recipient {
                recipient,
                ephemeral,
            },
        ) => {
            let secret = StaticSecret::from(*secret);
            if PublicKey::from(&secret).as_bytes() != recipient.as_slice() {
                return Err(ImageError::WrongKey);
            }
            let ephemeral: [u8; 32] = ephemeral
                .as_slice()
                .try_into()
                .map_err(|_| ImageError::Malformed("bad ephemeral key".into()))?;
            let shared = secret.diffie_hellman(&PublicKey::from(ephemeral));
            recipient_key(shared.as_bytes(), file_id, &ephemeral, recipient)
        }
        (_, KeyHeader::Passphrase { .. }) => {
            return Err(ImageError::Malformed(
                "the image is encrypted to a passphrase: give --passphrase-file".into(),
            ))
        }
        (_, KeyHeader::Recipient { .. }) => {
            return Err(ImageError::Malformed(
                "the image is encrypted to a recipient phone: import it into that phone".into(),
            ))
        }
    };
    if key.check_value() != check {
        return Err(ImageError::WrongKey);
    }
    Ok(key)
}

/// A recipient's X25519 public key from its secret.
pub fn recipient_public(secret: &[u8; 32]) -> [u8; 32] {
    *PublicKey::from(&StaticSecret::from(*secret)).as_bytes()
}
