//! [`VmState`]: everything guest-visible about a VM except its RAM, in one
//! versioned, serialisable root, and its byte format.
//!
//! The bytes are a fixed header followed by the state in postcard:
//!
//! | bytes | what |
//! | --- | --- |
//! | 8 | magic `PVSTATE\0` |
//! | 4 | format version, little-endian ([`FORMAT_VERSION`]) |
//! | 8 | length of the body, little-endian |
//! | 32 | SHA-256 of the body |
//! | … | the body: [`VmState`] in postcard |
//!
//! Reading checks each in turn, so a file that is not a state, a state of
//! another format version, a truncated one and a corrupted one each get
//! their own clear error before anything is decoded.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use board::BoardState;
use hypervisor::VcpuState;
use virtio::TransportState;

/// The magic bytes that open a VM state.
pub const MAGIC: [u8; 8] = *b"PVSTATE\0";
/// The format version this build writes and reads. Bump it whenever a
/// state type changes shape.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes before the body.
const HEADER_LEN: usize = 8 + 4 + 8 + 32;
/// Largest body accepted (a VM's state is a few hundred KiB at most).
const MAX_BODY: u64 = 64 << 20;

/// Everything guest-visible about a VM except its RAM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmState {
    /// Each vCPU's architectural state, vCPU 0 first.
    pub vcpus: Vec<VcpuState>,
    /// The board: interrupt controller, timers, UART, RTC and the guest clock.
    pub board: BoardState,
    /// Each virtio device with its transport, in the VM's device order.
    pub devices: Vec<TransportState>,
}

/// Why bytes could not be read as a [`VmState`].
#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// The bytes do not start with [`MAGIC`].
    NotAState,
    /// Written by a build with another format version.
    Version {
        /// The version in the bytes.
        found: u32,
    },
    /// Fewer bytes than the header says.
    Truncated {
        /// Bytes present.
        have: u64,
        /// Bytes the header promises.
        need: u64,
    },
    /// The body's checksum does not match: the bytes were changed.
    Corrupt,
    /// The body does not decode (a bug, or a forged checksum).
    Decode(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::NotAState => write!(f, "not a Pocketvisor VM state"),
            StateError::Version { found } => write!(
                f,
                "VM state format version {found} is not supported (this build reads version {FORMAT_VERSION})"
            ),
            StateError::Truncated { have, need } => {
                write!(f, "VM state is truncated: {have} of {need} bytes")
            }
            StateError::Corrupt => write!(f, "VM state is corrupt: its checksum does not match"),
            StateError::Decode(e) => write!(f, "VM state does not decode: {e}"),
        }
    }
}

impl std::error::Error for StateError {}

impl VmState {
    /// The state as bytes, header first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = postcard::to_allocvec(self).expect("VM state always serialises");
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Reads a state written by [`VmState::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<VmState, StateError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(StateError::NotAState);
        }
        if bytes.len() < HEADER_LEN {
            return Err(StateError::Truncated {
                have: bytes.len() as u64,
                need: HEADER_LEN as u64,
            });
        }
        let word = |at: usize, n: usize| {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&bytes[at..at + n]);
            u64::from_le_bytes(b)
        };
        let version = word(8, 4) as u32;
        if version != FORMAT_VERSION {
            return Err(StateError::Version { found: version });
        }
        let body_len = word(12, 8);
        let have = (bytes.len() - HEADER_LEN) as u64;
        if body_len > MAX_BODY {
            return Err(StateError::Decode(format!(
                "the header claims a {body_len}-byte body"
            )));
        }
        if have < body_len {
            return Err(StateError::Truncated {
                have: bytes.len() as u64,
                need: HEADER_LEN as u64 + body_len,
            });
        }
        let body = &bytes[HEADER_LEN..HEADER_LEN + body_len as usize];
        if Sha256::digest(body).as_slice() != &bytes[20..52] {
            return Err(StateError::Corrupt);
        }
        let (state, rest) = postcard::take_from_bytes::<VmState>(body)
            .map_err(|e| StateError::Decode(e.to_string()))?;
        if !rest.is_empty() || have != body_len {
            return Err(StateError::Decode("bytes after the state".into()));
        }
        Ok(state)
    }
}
