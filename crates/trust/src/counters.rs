//! Rollback-protection counters, as Android's Secretkeeper keeps them:
//! named monotonic counters per trusted VM that its software reads and
//! increments, so it can tell that someone put back an older copy of its
//! sealed state (the state records the counter value it was saved at).
//!
//! The phone keeps them in `STATE_DIR/identity/counters/VM`, a CBOR map
//! `{counters: {name: value}, mac: HMAC-SHA-256}` whose MAC key is derived
//! from the UDS for that VM. A file that does not verify, does not parse,
//! or is missing once the VM's instance exists is reported as tampering —
//! never reset: the VM's counter requests fail until the phone's owner
//! deals with it. Updates are written to a new file and renamed into
//! place, so a crash leaves the old or the new file, never a torn one.
//!
//! Limit of the stand-in: a whole older copy of this file, MAC and all,
//! still verifies. On a handset the counters live in replay-protected
//! storage (RPMB) or a secure element, which this directory models.

use std::collections::BTreeMap;
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest counter name, in bytes.
pub const MAX_NAME: usize = 64;
/// Most counters a VM may have.
pub const MAX_COUNTERS: usize = 64;

/// Why a counter operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CounterError {
    /// The counter file was altered, damaged or removed.
    Tampered(String),
    /// The name is empty, too long, or one too many.
    BadName(String),
    /// The counter is at its maximum.
    Exhausted,
    /// The file could not be read or written.
    Io(String),
}

impl std::fmt::Display for CounterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CounterError::Tampered(why) => {
                write!(f, "the rollback counters were tampered with: {why}")
            }
            CounterError::BadName(why) => write!(f, "bad counter name: {why}"),
            CounterError::Exhausted => f.write_str("the counter is at its maximum"),
            CounterError::Io(why) => write!(f, "counter storage: {why}"),
        }
    }
}

impl std::error::Error for CounterError {}

#[derive(Serialize, Deserialize)]
struct CounterFile {
    counters: BTreeMap<String, u64>,
    #[serde(with = "serde_bytes")]
    mac: Vec<u8>,
}

/// One VM's counters.
pub struct CounterStore {
    path: PathBuf,
    vm: String,
    key: [u8; 32],
    lock: Mutex<()>,
}

impl CounterStore {
    /// The counters of VM `vm` under the identity directory `dir`, keyed
    /// with `key` ([`crate::DeviceSecret::counter_key`]). With `create`
    /// (the VM's instance was just made) an empty file is written; a file
    /// that already exists is kept.
    pub fn open(dir: &Path, vm: &str, key: [u8; 32], create: bool) -> Result<Self, CounterError> {
        let counters_dir = dir.join("counters");
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&counters_dir)
            .map_err(|e| {
                CounterError::Io(format!("cannot create '{}': {e}", counters_dir.display()))
            })?;
        let store = CounterStore {
            path: counters_dir.join(vm),
            vm: vm.to_string(),
            key,
            lock: Mutex::new(()),
        };
        if create && !store.path.exists() {
            store.write(&BTreeMap::new())?;
        }
        Ok(store)
    }

    fn mac(&self, counters: &BTreeMap<String, u64>) -> Vec<u8> {
        let mut body = Vec::new();
        ciborium::into_writer(&(&self.vm, counters), &mut body)
            .expect("writing CBOR to memory cannot fail");
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(&body);
        mac.finalize().into_bytes().to_vec()
    }

    fn read(&self) -> Result<BTreeMap<String, u64>, CounterError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CounterError::Tampered(format!(
                    "'{}' is missing",
                    self.path.display()
                )))
            }
            Err(e) => {
                return Err(CounterError::Io(format!(
                    "cannot read '{}': {e}",
                    self.path.display()
                )))
            }
        };
        let file: CounterFile = ciborium::from_reader(bytes.as_slice()).map_err(|e| {
            CounterError::Tampered(format!("'{}' does not parse: {e}", self.path.display()))
        })?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        let mut body = Vec::new();
        ciborium::into_writer(&(&self.vm, &file.counters), &mut body)
            .expect("writing CBOR to memory cannot fail");
        mac.update(&body);
        mac.verify_slice(&file.mac).map_err(|_| {
            CounterError::Tampered(format!(
                "'{}' fails its integrity check",
                self.path.display()
            ))
        })?;
        Ok(file.counters)
    }

    fn write(&self, counters: &BTreeMap<String, u64>) -> Result<(), CounterError> {
        let file = CounterFile {
            counters: counters.clone(),
            mac: self.mac(counters),
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&file, &mut bytes).expect("writing CBOR to memory cannot fail");
        let tmp = self.path.with_extension("new");
        let io =
            |e: std::io::Error| CounterError::Io(format!("cannot write '{}': {e}", tmp.display()));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    fn check_name(name: &str) -> Result<(), CounterError> {
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(CounterError::BadName(format!(
                "a counter name is 1 to {MAX_NAME} bytes"
            )));
        }
        Ok(())
    }

    /// Counter `name`'s value (0 if never incremented).
    pub fn read_counter(&self, name: &str) -> Result<u64, CounterError> {
        Self::check_name(name)?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.read()?.get(name).copied().unwrap_or(0))
    }

    /// Adds one to counter `name` and returns the new value, once it is
    /// durably stored.
    pub fn increment(&self, name: &str) -> Result<u64, CounterError> {
        Self::check_name(name)?;
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut counters = self.read()?;
        if !counters.contains_key(name) && counters.len() >= MAX_COUNTERS {
            return Err(CounterError::BadName(format!(
                "a VM has at most {MAX_COUNTERS} counters"
            )));
        }
        let value = counters.entry(name.to_string()).or_insert(0);
        *value = value.checked_add(1).ok_or(CounterError::Exhausted)?;
        let new = *value;
        self.write(&counters)?;
        Ok(new)
    }

    /// Checks the file without changing it.
    pub fn check(&self) -> Result<(), CounterError> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.read().map(|_| ())
    }
}
