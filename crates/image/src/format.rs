//! The `.pvi` layout (version [`VERSION`]):
//!
//! | bytes | what |
//! |---|---|
//! | 8 | magic `PVIMAGE\0` |
//! | 4 | version, big-endian |
//! | 4 | header length, big-endian (≤ [`MAX_HEADER`]) |
//! | … | the [`Header`], CBOR |
//! | … | chunks, each: section index (4, BE), flags (4, BE; bit 0: last chunk of its section), ciphertext length (4, BE), ciphertext |
//! | 8 | end magic `PVIEND\0\0` |
//! | 8 | chunk count, big-endian |
//! | 64 | Ed25519 signature by the header's signer over SHA-256 of everything before the end magic, then the chunk count |
//!
//! A chunk's plaintext is up to [`CHUNK_SIZE`] bytes of one section,
//! zstd-compressed, then sealed with AES-256-GCM under the content key
//! ([`crate::keys`]) with nonce = the chunk's index (8 bytes, BE) and 4
//! zero bytes, and associated data = file id ‖ index ‖ section ‖ flags.
//! Sections come in header order, each as one run of chunks (an empty
//! section is one empty last chunk).

use serde::{Deserialize, Serialize};

/// Magic at the start of an image.
pub const MAGIC: &[u8; 8] = b"PVIMAGE\0";
/// Magic before the trailer.
pub const END_MAGIC: &[u8; 8] = b"PVIEND\0\0";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Largest header.
pub const MAX_HEADER: usize = 64 << 10;
/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Largest ciphertext of a chunk (zstd's worst case plus the tag).
pub const MAX_CIPHERTEXT: usize = CHUNK_SIZE + (CHUNK_SIZE >> 7) + 4096;
/// Most sections.
pub const MAX_SECTIONS: usize = 64;
/// Flag: the last chunk of its section.
pub const LAST: u32 = 1;

/// How the content key is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyHeader {
    /// Argon2id of a passphrase.
    Passphrase {
        /// Random salt.
        #[serde(with = "serde_bytes")]
        salt: Vec<u8>,
        /// Memory in KiB.
        m_cost: u32,
        /// Passes.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
    /// X25519 with the recipient's key.
    Recipient {
        /// The recipient's public key.
        #[serde(with = "serde_bytes")]
        recipient: Vec<u8>,
        /// This file's ephemeral public key.
        #[serde(with = "serde_bytes")]
        ephemeral: Vec<u8>,
    },
}

/// One section: a named byte stream (a file of the VM).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionHeader {
    /// Its name (1 to 64 bytes, `[A-Za-z0-9._-]`).
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
}

/// What `image inspect` shows: everything but the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Random per file.
    #[serde(with = "serde_bytes")]
    pub file_id: Vec<u8>,
    /// The VM's name.
    pub vm: String,
    /// Its role.
    pub role: String,
    /// Its RAM in bytes.
    pub mem: u64,
    /// "snapshot" (a running VM) or "cold" (configuration and disks).
    pub kind: String,
    /// The cipher suite: "zstd+aes-256-gcm".
    pub cipher: String,
    /// How the key is made.
    pub key: KeyHeader,
    /// 16 bytes that show whether a key is the right one.
    #[serde(with = "serde_bytes")]
    pub key_check: Vec<u8>,
    /// The exporting phone's Ed25519 public key.
    #[serde(with = "serde_bytes")]
    pub signer: Vec<u8>,
    /// When it was made (Unix seconds).
    pub created: u64,
    /// Its sections, in order.
    pub sections: Vec<SectionHeader>,
}

impl Header {
    /// Checks the limits a reader relies on.
    pub fn check(&self) -> Result<(), ImageError> {
        let bad = |why: &str| Err(ImageError::Malformed(why.to_string()));
        if self.file_id.len() != 16 || self.key_check.len() != 16 || self.signer.len() != 32 {
            return bad("a field of the header has the wrong length");
        }
        if self.cipher != "zstd+aes-256-gcm" {
            return Err(ImageError::Malformed(format!(
                "unknown cipher {:?}",
                self.cipher
            )));
        }
        if self.sections.is_empty() || self.sections.len() > MAX_SECTIONS {
            return bad("too many or no sections");
        }
        for s in &self.sections {
            let ok = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && s.name != "."
                && s.name != "..";
            if !ok {
                return Err(ImageError::Malformed(format!(
                    "bad section name {:?}",
                    s.name
                )));
            }
        }
        match &self.key {
            KeyHeader::Passphrase {
                salt,
                m_cost,
                t_cost,
                p_cost,
            } => {
                if salt.len() != 16 || *m_cost > 256 << 10 || *t_cost > 16 || *p_cost > 4 {
                    return bad("passphrase parameters out of range");
                }
            }
            KeyHeader::Recipient {
                recipient,
                ephemeral,
            } => {
                if recipient.len() != 32 || ephemeral.len() != 32 {
                    return bad("recipient keys have the wrong length");
                }
            }
        }
        Ok(())
    }
}

/// Why an image was refused.
#[derive(Debug)]
pub enum ImageError {
    /// Not a `.pvi` file.
    NotAnImage,
    /// A version this build does not read.
    Version(u32),
    /// The structure is wrong.
    Malformed(String),
    /// The key (passphrase or recipient) is not this image's.
    WrongKey,
    /// A chunk was changed, reordered, duplicated, dropped, or the file cut.
    Tampered(String),
    /// Signed by a key the importer does not trust.
    UnknownSigner(String),
    /// The signature does not verify.
    BadSignature,
    /// Reading or writing failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageError::NotAnImage => f.write_str("not a Pocketvisor image (.pvi)"),
            ImageError::Version(v) => write!(
                f,
                "image format version {v} is not supported (this build reads version {VERSION})"
            ),
            ImageError::Malformed(why) => write!(f, "malformed image: {why}"),
            ImageError::WrongKey => {
                f.write_str("wrong key: the passphrase or recipient key does not open this image")
            }
            ImageError::Tampered(why) => write!(f, "the image was tampered with: {why}"),
            ImageError::UnknownSigner(key) => write!(
                f,
                "unknown signer {key}: not this phone and not a --trust-signer key"
            ),
            ImageError::BadSignature => f.write_str("the image's signature does not verify"),
            ImageError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ImageError {}

impl From<std::io::Error> for ImageError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ImageError::Tampered("the file ends early (truncated)".into())
        } else {
            ImageError::Io(e)
        }
    }
}

/// The nonce of chunk `index`.
pub fn nonce(index: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n
}

/// The associated data of a chunk.
pub fn chunk_aad(file_id: &[u8], index: u64, section: u32, flags: u32) -> Vec<u8> {
    let mut aad = file_id.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.extend_from_slice(&section.to_be_bytes());
    aad.extend_from_slice(&flags.to_be_bytes());
    aad
}
