//! Reading an image: the header alone (`image inspect`), or every chunk
//! in order — authenticated, decompressed, handed to a sink — with the
//! signature checked at the end. A caller that writes what it is handed
//! must keep it provisional until [`ImageReader::read_all`] returns `Ok`.

use std::io::Read;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::format::{
    chunk_aad, nonce, Header, ImageError, CHUNK_SIZE, END_MAGIC, LAST, MAGIC, MAX_CIPHERTEXT,
    MAX_HEADER, VERSION,
};
use crate::keys::{open_key, ContentKey, KeySource};

/// An image being read, its header parsed.
pub struct ImageReader<R> {
    inner: R,
    hash: Sha256,
    header: Header,
}

fn tampered(why: String) -> ImageError {
    ImageError::Tampered(why)
}

impl<R: Read> ImageReader<R> {
    /// Reads and checks the header.
    pub fn open(mut inner: R) -> Result<Self, ImageError> {
        let mut hash = Sha256::new();
        let mut magic = [0u8; 8];
        inner
            .read_exact(&mut magic)
            .map_err(|_| ImageError::NotAnImage)?;
        if &magic != MAGIC {
            return Err(ImageError::NotAnImage);
        }
        hash.update(magic);
        let mut word = [0u8; 4];
        inner.read_exact(&mut word)?;
        hash.update(word);
        let version = u32::from_be_bytes(word);
        if version != VERSION {
            return Err(ImageError::Version(version));
        }
        inner.read_exact(&mut word)?;
        hash.update(word);
        let len = u32::from_be_bytes(word) as usize;
        if len > MAX_HEADER {
            return Err(ImageError::Malformed(format!("a header of {len} bytes")));
        }
        let mut bytes = vec![0u8; len];
        inner.read_exact(&mut bytes)?;
        hash.update(&bytes);
        let header: Header = ciborium::from_reader(bytes.as_slice())
            .map_err(|e| ImageError::Malformed(format!("the header does not decode: {e}")))?;
        header.check()?;
        Ok(ImageReader {
            inner,
            hash,
            header,
        })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The content key from `source`, checked against the header.
    pub fn key(&self, source: &KeySource<'_>) -> Result<ContentKey, ImageError> {
        open_key(
            source,
            &self.header.key,
            &self.header.file_id,
            &self.header.key_check,
        )
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), ImageError> {
        self.inner.read_exact(buf)?;
        self.hash.update(&*buf);
        Ok(())
    }

    /// Reads every chunk: `sink` gets (section index, plaintext) in order,
    /// `progress` the plaintext bytes so far. `Ok` only when every chunk
    /// authenticated, every section had its size, the signer is one of
    /// `trusted` and the signature verifies.
    pub fn read_all(
        mut self,
        key: &ContentKey,
        trusted: &[VerifyingKey],
        sink: &mut dyn FnMut(usize, &[u8]) -> std::io::Result<()>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ImageError> {
        let signer_bytes: [u8; 32] = self.header.signer.as_slice().try_into().expect("checked");
        let signer = VerifyingKey::from_bytes(&signer_bytes)
            .map_err(|_| ImageError::Malformed("the signer is not an Ed25519 key".into()))?;
        if !trusted.contains(&signer) {
            return Err(ImageError::UnknownSigner(hex(&signer_bytes)));
        }
        let cipher = Aes256Gcm::new_from_slice(&key.0).expect("a 32-byte key");
        let sections = self.header.sections.clone();
        let file_id = self.header.file_id.clone();
        let mut index = 0u64;
        let mut done = 0u64;
        for (s, section) in sections.iter().enumerate() {
            let mut left = section.size;
            loop {
                let mut head = [0u8; 12];
                self.read(&mut head)?;
                let word = |i: usize| u32::from_be_bytes(head[i..i + 4].try_into().expect("4"));
                let (at, flags, len) = (word(0), word(4), word(8) as usize);
                if at as usize != s {
                    return Err(tampered(format!(
                        "chunk {index} belongs to section {at}, expected {s} (reordered or dropped)"
                    )));
                }
                if flags & !LAST != 0 || len > MAX_CIPHERTEXT {
                    return Err(tampered(format!("chunk {index} has a bad frame")));
                }
                let mut sealed = vec![0u8; len];
                self.read(&mut sealed)?;
                let aad = chunk_aad(&file_id, index, s as u32, flags);
                let compressed = cipher
                    .decrypt(
                        &Nonce::from(nonce(index)),
                        Payload {
                            msg: &sealed,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| {
                        tampered(format!(
                            "chunk {index} does not authenticate (changed, moved or duplicated)"
                        ))
                    })?;
                let plain = zstd::bulk::decompress(&compressed, CHUNK_SIZE)
                    .map_err(|e| tampered(format!("chunk {index} does not decompress: {e}")))?;
                let last = flags & LAST != 0;
                let want = left.min(CHUNK_SIZE as u64) as usize;
                if plain.len() != want || last != (left == want as u64) {
                    return Err(tampered(format!(
                        "chunk {index} of section {} has the wrong size",
                        section.name
                    )));
                }
                sink(s, &plain)?;
                left -= want as u64;
                index += 1;
                done += want as u64;
                progress(done);
                if last {
                    break;
                }
            }
        }
        let digest = self.hash.clone().finalize();
        let mut trailer = [0u8; 8 + 8 + 64];
        self.inner.read_exact(&mut trailer)?;
        if &trailer[..8] != END_MAGIC {
            return Err(tampered("more chunks than its sections hold".into()));
        }
        let count = u64::from_be_bytes(trailer[8..16].try_into().expect("8"));
        if count != index {
            return Err(tampered(format!(
                "the trailer counts {count} chunks, the file has {index}"
            )));
        }
        let mut signed = digest.to_vec();
        signed.extend_from_slice(&count.to_be_bytes());
        let signature =
            Signature::from_slice(&trailer[16..]).map_err(|_| ImageError::BadSignature)?;
        signer
            .verify_strict(&signed, &signature)
            .map_err(|_| ImageError::BadSignature)?;
        let mut extra = [0u8; 1];
        if self.inner.read(&mut extra)? != 0 {
            return Err(tampered("data after the end".into()));
        }
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
