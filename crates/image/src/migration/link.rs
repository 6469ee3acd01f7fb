//! The encrypted, mutually authenticated link between two phones that a
//! migration travels over.
//!
//! A Noise `NN` handshake (X25519, AES-256-GCM, SHA-256; the `snow`
//! crate) gives both ends fresh keys; then each end proves it is the
//! phone the other expects: it sends its identity key (the phone's
//! Ed25519 root key, what `phone identity` prints) and a signature over
//! the handshake hash and its role, inside the encrypted channel. A
//! signature by another key, or over another handshake, ends the link
//! before anything else is sent. Messages are length-prefixed (two
//! bytes, big-endian, as the Noise specification suggests) Noise
//! transport messages.

use std::io::{Read, Write};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The Noise protocol the link speaks.
const PROTOCOL: &str = "Noise_NN_25519_AESGCM_SHA256";
/// Largest Noise message.
const MAX_NOISE: usize = 65535;
/// AES-GCM's tag.
const TAG: usize = 16;
/// Largest plaintext one message carries.
pub const MAX_PLAINTEXT: usize = MAX_NOISE - TAG;

/// Which end of a migration this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The phone the VM leaves (it connects).
    Source,
    /// The phone the VM moves to (it listens).
    Target,
}

impl Side {
    fn label(self) -> &'static [u8] {
        match self {
            Side::Source => b"pocketvisor migration v1: source",
            Side::Target => b"pocketvisor migration v1: target",
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Source => Side::Target,
            Side::Target => Side::Source,
        }
    }
}

/// Why the link failed.
#[derive(Debug)]
pub enum LinkError {
    /// The connection failed or closed.
    Io(std::io::Error),
    /// The Noise layer refused a message (tampered, replayed, out of order).
    Noise(String),
    /// The other phone is not the one expected, or did not prove it.
    Identity(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "the connection failed: {e}"),
            LinkError::Noise(e) => write!(f, "the encrypted link refused a message: {e}"),
            LinkError::Identity(e) => write!(f, "the other phone is not authenticated: {e}"),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(e)
    }
}

fn noise(e: snow::Error) -> LinkError {
    LinkError::Noise(e.to_string())
}

/// An established link over the byte stream `S` (a TCP connection).
pub struct Link<S> {
    stream: S,
    noise: snow::TransportState,
    buf: Vec<u8>,
    plain: Vec<u8>,
}

fn write_frame<S: Write>(stream: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed)
}

fn read_frame<S: Read>(stream: &mut S, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    buf.resize(u16::from_be_bytes(len) as usize, 0);
    stream.read_exact(buf)
}

impl<S: Read + Write> Link<S> {
    /// Runs the handshake as `side` over `stream`: proves this phone is
    /// `ours` and checks the other end is `theirs`.
    pub fn establish(
        mut stream: S,
        side: Side,
        ours: &SigningKey,
        theirs: &VerifyingKey,
    ) -> Result<Link<S>, LinkError> {
        let params = PROTOCOL.parse().map_err(noise)?;
        let builder = snow::Builder::new(params);
        let mut hs = match side {
            Side::Source => builder.build_initiator(),
            Side::Target => builder.build_responder(),
        }
        .map_err(noise)?;
        let mut buf = vec![0u8; MAX_NOISE];
        let mut scratch = vec![0u8; MAX_NOISE];
        // -> e ; <- e, ee
        let mut turn = side == Side::Source;
        while !hs.is_handshake_finished() {
            if turn {
                let n = hs.write_message(&[], &mut buf).map_err(noise)?;
                write_frame(&mut stream, &buf[..n])?;
            } else {
                read_frame(&mut stream, &mut scratch)?;
                hs.read_message(&scratch, &mut buf).map_err(noise)?;
            }
            turn = !turn;
        }
        let hash = hs.get_handshake_hash().to_vec();
        let noise_state = hs.into_transport_mode().map_err(noise)?;
        let mut link = Link {
            stream,
            noise: noise_state,
            buf,
            plain: scratch,
        };
        let proof = |side: Side| [side.label(), &hash].concat();
        let mut mine = ours.verifying_key().to_bytes().to_vec();
        mine.extend_from_slice(&ours.sign(&proof(side)).to_bytes());
        // The source proves itself first; the target answers only then.
        if side == Side::Source {
            link.send(&mine)?;
            link.check_proof(theirs, &proof(side.other()))?;
        } else {
            link.check_proof(theirs, &proof(side.other()))?;
            link.send(&mine)?;
        }
        Ok(link)
    }

    /// Reads the other end's proof and checks it against `theirs`.
    fn check_proof(&mut self, theirs: &VerifyingKey, signed: &[u8]) -> Result<(), LinkError> {
        let proof = self.receive()?;
        if proof.len() != 32 + 64 {
            return Err(LinkError::Identity("a malformed proof".into()));
        }
        if proof[..32] != theirs.to_bytes() {
            return Err(LinkError::Identity(format!(
                "it is phone {}, not the one given",
                hex(&proof[..32])
            )));
        }
        let signature =
            Signature::from_slice(&proof[32..]).map_err(|e| LinkError::Identity(e.to_string()))?;
        theirs
            .verify_strict(signed, &signature)
            .map_err(|_| LinkError::Identity("its signature does not verify".into()))
    }

    /// Sends one message (at most [`MAX_PLAINTEXT`] bytes).
    pub fn send(&mut self, plaintext: &[u8]) -> Result<(), LinkError> {
        let n = self
            .noise
            .write_message(plaintext, &mut self.buf)
            .map_err(noise)?;
        write_frame(&mut self.stream, &self.buf[..n])?;
        Ok(())
    }

    /// Receives one message.
    pub fn receive(&mut self) -> Result<Vec<u8>, LinkError> {
        read_frame(&mut self.stream, &mut self.plain)?;
        let n = self
            .noise
            .read_message(&self.plain, &mut self.buf)
            .map_err(noise)?;
        Ok(self.buf[..n].to_vec())
    }

    /// The underlying stream (to set timeouts or shut it down).
    pub fn stream(&self) -> &S {
        &self.stream
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn pair(
        source_key: SigningKey,
        expect_target: VerifyingKey,
        target_key: SigningKey,
        expect_source: VerifyingKey,
    ) -> (
        Result<Link<UnixStream>, LinkError>,
        Result<Link<UnixStream>, LinkError>,
    ) {
        let (a, b) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            Link::establish(b, Side::Target, &target_key, &expect_source)
        });
        let s = Link::establish(a, Side::Source, &source_key, &expect_target);
        (s, t.join().unwrap())
    }

    #[test]
    fn the_right_phones_talk() {
        let (s, t) = pair(
            key(1),
            key(2).verifying_key(),
            key(2),
            key(1).verifying_key(),
        );
        let (mut s, mut t) = (s.unwrap(), t.unwrap());
        s.send(b"hello").unwrap();
        assert_eq!(t.receive().unwrap(), b"hello");
        t.send(&vec![7u8; MAX_PLAINTEXT]).unwrap();
        assert_eq!(s.receive().unwrap().len(), MAX_PLAINTEXT);
    }

    /// Relays framed messages from `from` to `to`, flipping a bit in the
    /// message numbered `flip` (0: the first).
    fn relay(mut from: UnixStream, mut to: UnixStream, flip: usize) {
        let mut buf = Vec::new();
        for n in 0.. {
            if read_frame(&mut from, &mut buf).is_err() {
                return;
            }
            if n == flip {
                let last = buf.len() - 1;
                buf[last] ^= 0x04;
            }
            if write_frame(&mut to, &buf).is_err() {
                return;
            }
        }
    }

    #[test]
    fn a_changed_message_is_refused() {
        let (a, a_far) = UnixStream::pair().unwrap();
        let (b_near, b) = UnixStream::pair().unwrap();
        // Source to target: handshake, proof, then the first message.
        let (a_back, b_back) = (a_far.try_clone().unwrap(), b_near.try_clone().unwrap());
        std::thread::spawn(move || relay(a_far, b_near, 2));
        std::thread::spawn(move || relay(b_back, a_back, usize::MAX));
        let t = std::thread::spawn(move || {
            let mut link = Link::establish(b, Side::Target, &key(2), &key(1).verifying_key())?;
            link.receive()
        });
        let mut s = Link::establish(a, Side::Source, &key(1), &key(2).verifying_key()).unwrap();
        s.send(b"pages").unwrap();
        assert!(matches!(t.join().unwrap(), Err(LinkError::Noise(_))));
    }

    #[test]
    fn a_wrong_target_gets_nothing() {
        // The source expects phone 3; phone 2 answers.
        let (s, t) = pair(
            key(1),
            key(3).verifying_key(),
            key(2),
            key(1).verifying_key(),
        );
        assert!(matches!(s, Err(LinkError::Identity(_))), "{:?}", s.err());
        // The target was happy with the source, but gets no data.
        let mut t = t.unwrap();
        assert!(t.receive().is_err());
    }

    #[test]
    fn a_wrong_source_is_refused_before_the_target_speaks() {
        let (s, t) = pair(
            key(4),
            key(2).verifying_key(),
            key(2),
            key(1).verifying_key(),
        );
        assert!(matches!(t, Err(LinkError::Identity(_))));
        assert!(s.is_err());
    }
}
