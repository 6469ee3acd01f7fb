//! The guest's trust device: how software in a trusted VM asks the phone
//! for its evidence, its sealing secrets and its rollback counters.
//!
//! Transport: a vsock stream to the host (CID 2) on port [`TRUST_PORT`],
//! offered to trusted VMs only (connections from other roles are refused,
//! so they cannot tell it from a closed port). On it, requests and
//! responses alternate, each one *frame*: a 4-byte big-endian length then
//! that many bytes of CBOR, at most [`MAX_FRAME`]. The messages are
//! [`Request`] and [`Response`], encoded by serde as CBOR maps keyed by the
//! variant name (e.g. `{"Evidence": {"nonce": h'…'}}`). A malformed or
//! oversized frame ends the connection; a request the phone cannot carry
//! out gets [`Response::Error`]. See docs/TRUST.md.

use std::io::{Read, Write};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::counters::{CounterError, CounterStore};
use crate::evidence::{certify, make_evidence, sign_as_vm, CertifiedVmInput};
use crate::identity::{DeviceSecret, VmIdentity, VmInputs};
use crate::measure::Measurement;

/// The host vsock port of the trust device.
pub const TRUST_PORT: u32 = 5100;
/// Largest frame, in bytes (after the length).
pub const MAX_FRAME: usize = 16 << 10;
/// Longest nonce, label or counter name a request may carry.
pub const MAX_SHORT: usize = 64;
/// Most bytes a [`Request::Sign`] may carry.
pub const MAX_SIGN: usize = 8 << 10;

/// What a guest asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Evidence answering `nonce` (1 to 64 bytes): the VM's certificate
    /// and a COSE_Sign1 over {measurement, nonce, VM name, debug flag}.
    Evidence {
        /// The relying party's challenge.
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// 32 bytes derived from CDI_Seal and `label` (1 to 64 bytes).
    InstanceSecret {
        /// What the secret is for.
        label: String,
    },
    /// Counter `name`'s value.
    CounterRead {
        /// The counter.
        name: String,
    },
    /// Adds one to counter `name`; answers the new value once stored.
    CounterIncrement {
        /// The counter.
        name: String,
    },
    /// `data` (up to 8 KiB) signed with the VM's attestation key, with
    /// its certificate: a statement anyone trusting the phone's root can
    /// check (a [`crate::VmSigned`], never valid as evidence).
    Sign {
        /// What to sign.
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

/// The phone's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A [`crate::VmSigned`]'s bytes: evidence, or signed data.
    Signed {
        /// CBOR of the [`crate::VmSigned`].
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// An instance secret.
    Secret {
        /// 32 bytes.
        #[serde(with = "serde_bytes")]
        secret: Vec<u8>,
    },
    /// A counter's value.
    Counter {
        /// The value.
        value: u64,
    },
    /// The request was not carried out.
    Error {
        /// Why, for people.
        message: String,
    },
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(stream: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    read_frame_up_to(stream, MAX_FRAME)
}

/// Reads one frame of at most `max` bytes (protocols built on the same
/// framing with larger messages).
pub fn read_frame_up_to(stream: &mut impl Read, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes is larger than {max}"),
        ));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Writes `message` as one frame.
pub fn write_message<T: Serialize>(stream: &mut impl Write, message: &T) -> std::io::Result<()> {
    write_message_up_to(stream, message, MAX_FRAME)
}

/// Writes `message` as one frame of at most `max` bytes.
pub fn write_message_up_to<T: Serialize>(
    stream: &mut impl Write,
    message: &T,
    max: usize,
) -> std::io::Result<()> {
    let mut body = Vec::new();
    ciborium::into_writer(message, &mut body).map_err(std::io::Error::other)?;
    if body.len() > max {
        return Err(std::io::Error::other("message too large"));
    }
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame)?;
    stream.flush()
}

/// Parses a request frame's body.
pub fn parse_request(body: &[u8]) -> std::io::Result<Request> {
    ciborium::from_reader(body)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// Sends `request` and waits for the answer (the guest's side).
pub fn call(stream: &mut (impl Read + Write), request: &Request) -> std::io::Result<Response> {
    write_message(stream, request)?;
    let body = read_frame(stream)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the trust device hung up",
        )
    })?;
    ciborium::from_reader(body.as_slice())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
}

/// The phone's side of one trusted VM's trust device: everything it needs
/// to answer, derived when the VM started.
pub struct TrustDevice {
    vm: String,
    measurement: Measurement,
    debug: bool,
    identity: VmIdentity,
    key: SigningKey,
    certificate: Vec<u8>,
    counters: Arc<CounterStore>,
}

impl TrustDevice {
    /// The trust device of VM `vm` with these CDIs, certificate and
    /// counters.
    pub fn new(
        vm: &str,
        measurement: Measurement,
        debug: bool,
        identity: VmIdentity,
        certificate: Vec<u8>,
        counters: Arc<CounterStore>,
    ) -> TrustDevice {
        let key = identity.attestation_key();
        TrustDevice {
            vm: vm.to_string(),
            measurement,
            debug,
            identity,
            key,
            certificate,
            counters,
        }
    }

    /// Derives VM `vm`'s trust device from the phone's `secret`: its
    /// instance id (made on first use, with an empty counter file), CDIs,
    /// attestation key and certificate.
    pub fn for_vm(
        secret: &DeviceSecret,
        vm: &str,
        measurement: Measurement,
        debug: bool,
    ) -> Result<TrustDevice, String> {
        let (instance_id, created) = secret.instance_id(vm).map_err(|e| e.to_string())?;
        let identity = secret.vm_identity(&VmInputs {
            measurement,
            instance_id,
            debug,
        });
        let certificate = certify(
            &secret.root(),
            &CertifiedVmInput {
                vm,
                measurement,
                debug,
                attestation_key: identity.attestation_key().verifying_key(),
            },
        );
        let counters = CounterStore::open(secret.dir(), vm, secret.counter_key(vm), created)
            .map_err(|e| e.to_string())?;
        Ok(TrustDevice::new(
            vm,
            measurement,
            debug,
            identity,
            certificate,
            Arc::new(counters),
        ))
    }

    /// Checks the VM's counter file without changing it.
    pub fn check_counters(&self) -> Result<(), crate::CounterError> {
        self.counters.check()
    }

    /// The VM's certificate.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Evidence for `nonce`, as the guest or the phone's owner asks it.
    pub fn evidence(&self, nonce: &[u8]) -> Vec<u8> {
        let vm = CertifiedVmInput {
            vm: &self.vm,
            measurement: self.measurement,
            debug: self.debug,
            attestation_key: self.key.verifying_key(),
        };
        make_evidence(&self.certificate, &self.key, &vm, nonce).encode()
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        self.handle_noting(request, &mut |_| {})
    }

    /// Answers one request; a counter that failed is also shown to
    /// `counter_failed` (the phone logs tampering).
    pub fn handle_noting(
        &self,
        request: &Request,
        counter_failed: &mut dyn FnMut(&CounterError),
    ) -> Response {
        let mut counter_error = |e: CounterError| {
            counter_failed(&e);
            Response::Error {
                message: e.to_string(),
            }
        };
        let error = |message: String| Response::Error { message };
        let short = |what: &str, len: usize| {
            if len == 0 || len > MAX_SHORT {
                Err(error(format!("a {what} is 1 to {MAX_SHORT} bytes")))
            } else {
                Ok(())
            }
        };
        let result = match request {
            Request::Evidence { nonce } => short("nonce", nonce.len()).map(|()| Response::Signed {
                bytes: self.evidence(nonce),
            }),
            Request::InstanceSecret { label } => {
                short("label", label.len()).map(|()| Response::Secret {
                    secret: self.identity.instance_secret(label.as_bytes()).to_vec(),
                })
            }
            Request::CounterRead { name } => self
                .counters
                .read_counter(name)
                .map(|value| Response::Counter { value })
                .map_err(&mut counter_error),
            Request::CounterIncrement { name } => self
                .counters
                .increment(name)
                .map(|value| Response::Counter { value })
                .map_err(&mut counter_error),
            Request::Sign { data } if data.len() > MAX_SIGN => {
                Err(error(format!("at most {MAX_SIGN} bytes can be signed")))
            }
            Request::Sign { data } => Ok(Response::Signed {
                bytes: sign_as_vm(&self.certificate, &self.key, data).encode(),
            }),
        };
        result.unwrap_or_else(|e| e)
    }

    /// Serves one connection until the guest closes it or breaks the
    /// protocol (a frame too large or not a request ends it); counter
    /// failures also go to `counter_failed`.
    pub fn serve(
        &self,
        stream: &mut (impl Read + Write),
        counter_failed: &mut dyn FnMut(&CounterError),
    ) -> std::io::Result<()> {
        while let Some(body) = read_frame(stream)? {
            let response = self.handle_noting(&parse_request(&body)?, counter_failed);
            write_message(stream, &response)?;
        }
        Ok(())
    }
}
