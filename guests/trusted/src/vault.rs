//! Sealed, rollback-protected state for the services.
//!
//! Each service keeps one record in its slot of the trusted VM's data disk
//! ([`Storage`]). A record is its state (CBOR) with the value its rollback
//! counter will have once saved, encrypted with AES-256-GCM under a key
//! derived from the VM's instance secret for that service — so only the
//! same software (measurement), instance and debug setting on the same
//! phone can open it. Saving writes the record with counter `c + 1`, then
//! increments the phone's counter to `c + 1`; loading accepts a record at
//! the counter's value (or one ahead: a save cut short before its
//! increment, which loading completes). Any older record — a restored
//! copy of the disk — is reported as a rollback; a missing record with a
//! counter above zero too.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use trust::{Request, Response};

use crate::crypto;

/// How the services reach the phone's trust device.
pub trait TrustLink: Send + Sync {
    /// Sends one request, returns the answer.
    fn call(&self, request: &Request) -> Result<Response, String>;
}

/// A 32-byte instance secret for `label`.
pub fn instance_secret(trust: &dyn TrustLink, label: &str) -> Result<[u8; 32], String> {
    match trust.call(&Request::InstanceSecret {
        label: label.to_string(),
    })? {
        Response::Secret { secret } => secret
            .try_into()
            .map_err(|_| "the trust device gave a short secret".to_string()),
        Response::Error { message } => Err(message),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

fn counter(trust: &dyn TrustLink, request: Request) -> Result<u64, String> {
    match trust.call(&request)? {
        Response::Counter { value } => Ok(value),
        Response::Error { message } => Err(message),
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// Where records live: one slot per service.
pub trait Storage: Send + Sync {
    /// The record in `slot`, if one was written.
    fn read(&self, slot: usize) -> Result<Option<Vec<u8>>, String>;
    /// Replaces the record in `slot`, durably.
    fn write(&self, slot: usize, record: &[u8]) -> Result<(), String>;
}

/// Bytes per slot.
pub const SLOT_SIZE: u64 = 64 << 10;
/// A slot's header: magic and length.
const MAGIC: &[u8; 4] = b"PVSL";

/// A block device (or file) divided into [`SLOT_SIZE`] slots.
pub struct DiskStorage {
    file: Mutex<File>,
}

impl DiskStorage {
    /// Opens `path` for reading and writing.
    pub fn open(path: &Path) -> Result<DiskStorage, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
        Ok(DiskStorage {
            file: Mutex::new(file),
        })
    }
}

impl Storage for DiskStorage {
    fn read(&self, slot: usize) -> Result<Option<Vec<u8>>, String> {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut header = [0u8; 8];
        f.seek(SeekFrom::Start(slot as u64 * SLOT_SIZE))
            .and_then(|_| f.read_exact(&mut header))
            .map_err(|e| format!("cannot read slot {slot}: {e}"))?;
        if &header[..4] != MAGIC {
            return Ok(None);
        }
        let len = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as u64;
        if len > SLOT_SIZE - 8 {
            return Err(format!("slot {slot} is damaged"));
        }
        let mut record = vec![0u8; len as usize];
        f.read_exact(&mut record)
            .map_err(|e| format!("cannot read slot {slot}: {e}"))?;
        Ok(Some(record))
    }

    fn write(&self, slot: usize, record: &[u8]) -> Result<(), String> {
        if record.len() as u64 > SLOT_SIZE - 8 {
            return Err("the state outgrew its slot".into());
        }
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
        bytes.extend_from_slice(record);
        f.seek(SeekFrom::Start(slot as u64 * SLOT_SIZE))
            .and_then(|_| f.write_all(&bytes))
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("cannot write slot {slot}: {e}"))
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    counter: u64,
    #[serde(with = "serde_bytes")]
    state: Vec<u8>,
}

/// Sealed state of the services.
pub struct Vault<'a> {
    trust: &'a dyn TrustLink,
    storage: &'a dyn Storage,
}

impl<'a> Vault<'a> {
    /// A vault over `storage`, sealed with `trust`'s secrets.
    pub fn new(trust: &'a dyn TrustLink, storage: &'a dyn Storage) -> Self {
        Vault { trust, storage }
    }

    /// The trust device.
    pub fn trust(&self) -> &dyn TrustLink {
        self.trust
    }

    fn key(&self, service: &str) -> Result<[u8; 32], String> {
        instance_secret(self.trust, &format!("sealed:{service}"))
    }

    /// `service`'s state from `slot`: `None` before its first save.
    pub fn load<T: DeserializeOwned>(
        &self,
        service: &str,
        slot: usize,
    ) -> Result<Option<T>, String> {
        let current = counter(
            self.trust,
            Request::CounterRead {
                name: service.into(),
            },
        )?;
        let Some(blob) = self.storage.read(slot)? else {
            if current == 0 {
                return Ok(None);
            }
            return Err(format!(
                "rollback detected: the {service} state is missing but was saved {current} times"
            ));
        };
        let key = self.key(service)?;
        let plain = crypto::open(&key, service.as_bytes(), &blob).ok_or_else(|| {
            format!("the {service} state cannot be unsealed (other software, another phone, or tampered)")
        })?;
        let record: Record = ciborium::from_reader(plain.as_slice())
            .map_err(|e| format!("the {service} state does not parse: {e}"))?;
        if record.counter == current + 1 {
            counter(
                self.trust,
                Request::CounterIncrement {
                    name: service.into(),
                },
            )?;
        } else if record.counter != current {
            return Err(format!(
                "rollback detected: the {service} state is version {}, the phone's counter is at {current}",
                record.counter
            ));
        }
        ciborium::from_reader(record.state.as_slice())
            .map(Some)
            .map_err(|e| format!("the {service} state does not parse: {e}"))
    }

    /// Saves `service`'s `state` into `slot` and moves its counter on.
    pub fn save<T: Serialize>(&self, service: &str, slot: usize, state: &T) -> Result<(), String> {
        let current = counter(
            self.trust,
            Request::CounterRead {
                name: service.into(),
            },
        )?;
        let mut bytes = Vec::new();
        ciborium::into_writer(state, &mut bytes).expect("CBOR to memory");
        let record = Record {
            counter: current + 1,
            state: bytes,
        };
        let mut plain = Vec::new();
        ciborium::into_writer(&record, &mut plain).expect("CBOR to memory");
        let key = self.key(service)?;
        self.storage
            .write(slot, &crypto::seal(&key, service.as_bytes(), &plain))?;
        counter(
            self.trust,
            Request::CounterIncrement {
                name: service.into(),
            },
        )?;
        Ok(())
    }
}
