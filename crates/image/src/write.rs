//! Writing an image: sections streamed from their readers a chunk at a
//! time, compressed, sealed, hashed and signed (see [`crate::format`]).

use std::io::{Read, Write};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::format::{
    chunk_aad, nonce, Header, ImageError, SectionHeader, CHUNK_SIZE, END_MAGIC, LAST, MAGIC,
    MAX_HEADER, VERSION,
};
use crate::keys::{new_key, KeySource};

/// zstd level of new images.
const LEVEL: i32 = 3;

/// One section to write: its name, exact size and contents.
pub struct Section<'a> {
    /// Its name.
    pub name: String,
    /// How many bytes `reader` gives.
    pub size: u64,
    /// The contents.
    pub reader: Box<dyn Read + 'a>,
}

/// What the image carries, for its header.
pub struct Describe<'a> {
    /// The VM's name.
    pub vm: &'a str,
    /// Its role.
    pub role: &'a str,
    /// Its RAM.
    pub mem: u64,
    /// "snapshot" or "cold".
    pub kind: &'a str,
}

/// A writer that hashes what passes through it and counts it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    written: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

/// Writes an image of `sections` to `out`, encrypted for `key`, signed by
/// `signer`; `progress` hears the plaintext bytes done so far. Returns the
/// image's size.
pub fn write_image(
    out: impl Write,
    describe: &Describe<'_>,
    sections: Vec<Section<'_>>,
    key: &KeySource<'_>,
    signer: &SigningKey,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ImageError> {
    let mut file_id = [0u8; 16];
    getrandom::fill(&mut file_id)
        .map_err(|e| ImageError::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
    let (content_key, key_header) = new_key(key, &file_id)?;
    let header = Header {
        file_id: file_id.to_vec(),
        vm: describe.vm.to_string(),
        role: describe.role.to_string(),
        mem: describe.mem,
        kind: describe.kind.to_string(),
        cipher: "zstd+aes-256-gcm".into(),
        key: key_header,
        key_check: content_key.check_value(),
        signer: signer.verifying_key().to_bytes().to_vec(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        sections: sections
            .iter()
            .map(|s| SectionHeader {
                name: s.name.clone(),
                size: s.size,
            })
            .collect(),
    };
    header.check()?;
    let mut header_bytes = Vec::new();
    ciborium::into_writer(&header, &mut header_bytes).expect("CBOR to memory");
    if header_bytes.len() > MAX_HEADER {
        return Err(ImageError::Malformed("the header is too large".into()));
    }
    let cipher = Aes256Gcm::new_from_slice(&content_key.0).expect("a 32-byte key");
    let mut out = Hashing {
        inner: out,
        hash: Sha256::new(),
        written: 0,
    };
    out.put(MAGIC)?;
    out.put(&VERSION.to_be_bytes())?;
    out.put(&(header_bytes.len() as u32).to_be_bytes())?;
    out.put(&header_bytes)?;
    let mut index = 0u64;
    let mut done = 0u64;
    let mut buf = vec![0u8; CHUNK_SIZE];
    for (s, mut section) in sections.into_iter().enumerate() {
        let mut left = section.size;
        loop {
            let n = left.min(CHUNK_SIZE as u64) as usize;
            section.reader.read_exact(&mut buf[..n]).map_err(|e| {
                ImageError::Io(std::io::Error::new(
                    e.kind(),
                    format!(
                        "section {} is shorter than {} bytes: {e}",
                        section.name, section.size
                    ),
                ))
            })?;
            left -= n as u64;
            let flags = if left == 0 { LAST } else { 0 };
            let compressed = zstd::bulk::compress(&buf[..n], LEVEL)?;
            let aad = chunk_aad(&file_id, index, s as u32, flags);
            let sealed = cipher
                .encrypt(
                    &Nonce::from(nonce(index)),
                    Payload {
                        msg: &compressed,
                        aad: &aad,
                    },
                )
                .expect("AES-GCM seals any chunk of this size");
            out.put(&(s as u32).to_be_bytes())?;
            out.put(&flags.to_be_bytes())?;
            out.put(&(sealed.len() as u32).to_be_bytes())?;
            out.put(&sealed)?;
            index += 1;
            done += n as u64;
            progress(done);
            if left == 0 {
                break;
            }
        }
    }
    let digest = out.hash.clone().finalize();
    let mut signed = digest.to_vec();
    signed.extend_from_slice(&index.to_be_bytes());
    let signature = signer.sign(&signed);
    out.inner.write_all(END_MAGIC)?;
    out.inner.write_all(&index.to_be_bytes())?;
    out.inner.write_all(&signature.to_bytes())?;
    out.inner.flush()?;
    Ok(out.written + 8 + 8 + 64)
}
