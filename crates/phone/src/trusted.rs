//! The phone's side of its trusted VMs: the phone's identity
//! (`STATE_DIR/identity`, [`trust::identity`]) and each trusted VM's trust
//! device ([`trust::device`]).
//!
//! A trusted VM's worker measures the kernel and initrd it is about to
//! load and reports the measurement before the guest's first instruction
//! ([`crate::protocol::FromWorker::Measured`]); the supervisor derives that
//! VM's CDIs, attestation key and certificate from it and serves the
//! guest's connections to host port [`trust::TRUST_PORT`]. Only trusted
//! VMs reach it: another VM's connection is refused and logged, as is any
//! connection beyond [`MAX_SESSIONS`] at once. Counter tampering is
//! reported to the guest and written to the phone's log.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trust::{CounterError, DeviceSecret, Measurement, TrustDevice};

use crate::manifest::{Manifest, Role};
use crate::protocol;
use crate::supervisor::{lock, PhoneError, Shared};

/// Most trust-device connections one VM may hold open at once.
pub const MAX_SESSIONS: usize = 8;
/// A session idle this long is closed.
const IDLE: Duration = Duration::from_secs(60);

/// A worker generation and the trust device derived from its measurement.
type Measured = (u64, Arc<TrustDevice>);

/// The phone's identity and its trusted VMs' trust devices.
pub(crate) struct TrustHub {
    secret: DeviceSecret,
    /// Per VM: the device of the worker generation that measured it.
    devices: Mutex<Vec<Option<Measured>>>,
    sessions: Vec<Arc<AtomicUsize>>,
}

impl TrustHub {
    /// Opens the phone's identity, creating it on first start.
    pub(crate) fn open(manifest: &Manifest) -> Result<TrustHub, String> {
        let dir = trust::identity::identity_dir(&manifest.state_dir);
        let secret =
            DeviceSecret::open_or_create(&dir).map_err(|e| format!("the phone's identity: {e}"))?;
        Ok(TrustHub {
            secret,
            devices: Mutex::new(manifest.vms.iter().map(|_| None).collect()),
            sessions: manifest
                .vms
                .iter()
                .map(|_| Arc::new(AtomicUsize::new(0)))
                .collect(),
        })
    }

    /// The phone's root key: it signs this phone's side of a migration.
    pub(crate) fn root_signing_key(&self) -> ed25519_dalek::SigningKey {
        self.secret.root().signing_key().clone()
    }

    /// The phone's root public key, as hex.
    pub(crate) fn root_key(&self) -> String {
        trust::hex::encode(&self.secret.root().public().to_bytes())
    }

    /// Takes VM `i`'s measurement from its worker `generation` (trusted
    /// VMs only, once per worker): derives its trust device.
    pub(crate) fn install(&self, shared: &Shared, i: usize, generation: u64, m: Measurement) {
        let vm = &shared.manifest().vms[i];
        if vm.role != Role::Trusted {
            shared.log(&format!(
                "VM {}: ignored a measurement (not a trusted VM)",
                vm.name
            ));
            return;
        }
        let mut devices = lock(&self.devices);
        if devices[i].as_ref().is_some_and(|(g, _)| *g == generation) {
            shared.log(&format!("VM {}: ignored a second measurement", vm.name));
            return;
        }
        match TrustDevice::for_vm(&self.secret, &vm.name, m, vm.debug) {
            Ok(device) => {
                shared.log(&format!("VM {}: measured {m}", vm.name));
                if let Err(e) = device.check_counters() {
                    shared.log(&format!("VM {}: {e}", vm.name));
                }
                devices[i] = Some((generation, Arc::new(device)));
            }
            Err(e) => {
                shared.log(&format!("VM {}: no trust device: {e}", vm.name));
                devices[i] = None;
            }
        }
    }

    fn device(&self, i: usize, generation: Option<u64>) -> Option<Arc<TrustDevice>> {
        lock(&self.devices)[i]
            .as_ref()
            .filter(|(g, _)| generation.is_none_or(|want| want == *g))
            .map(|(_, d)| d.clone())
    }

    /// A guest of VM `i` (worker `generation`) connects to the trust
    /// device: its end of a new session, or `None` (refused, logged).
    pub(crate) fn connect(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        i: usize,
        generation: u64,
    ) -> Option<OwnedFd> {
        let name = shared.manifest().vms[i].name.clone();
        let refuse = |why: &str| {
            shared.log(&format!("trust device refused: {name}: {why}"));
            None
        };
        if shared.manifest().vms[i].role != Role::Trusted {
            return refuse("not a trusted VM");
        }
        let Some(device) = self.device(i, Some(generation)) else {
            return refuse("the VM was not measured");
        };
        let count = self.sessions[i].clone();
        if count.fetch_add(1, Ordering::SeqCst) >= MAX_SESSIONS {
            count.fetch_sub(1, Ordering::SeqCst);
            return refuse(&format!("{MAX_SESSIONS} sessions already open"));
        }
        let (ours, theirs) = match protocol::stream_pair() {
            Ok(p) => p,
            Err(e) => {
                count.fetch_sub(1, Ordering::SeqCst);
                return refuse(&e.to_string());
            }
        };
        let shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("trust-{name}"))
            .spawn(move || {
                let mut stream = UnixStream::from(ours);
                let _ = stream.set_read_timeout(Some(IDLE));
                let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                let mut log_tampering = |e: &CounterError| {
                    if matches!(e, CounterError::Tampered(_)) {
                        shared.log(&format!("VM {name}: {e}"));
                    }
                };
                if let Err(e) = device.serve(&mut stream, &mut log_tampering) {
                    shared.log(&format!("trust device: {name}: session ended: {e}"));
                }
                count.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(_) => Some(theirs),
            Err(_) => None,
        }
    }

    /// Evidence for running trusted VM `i` answering `nonce`, for the
    /// phone's owner.
    pub(crate) fn evidence(
        &self,
        shared: &Shared,
        i: usize,
        nonce: &[u8],
    ) -> Result<Vec<u8>, PhoneError> {
        let vm = &shared.manifest().vms[i];
        if vm.role != Role::Trusted {
            return Err(PhoneError::Conflict(format!(
                "VM {} is not a trusted VM",
                vm.name
            )));
        }
        if nonce.is_empty() || nonce.len() > trust::device::MAX_SHORT {
            return Err(PhoneError::BadRequest(format!(
                "a nonce is 1 to {} bytes",
                trust::device::MAX_SHORT
            )));
        }
        let live = lock(&shared.table).slots[i].state.is_live();
        match self.device(i, None) {
            Some(d) if live => Ok(d.evidence(nonce)),
            _ => Err(PhoneError::Conflict(format!(
                "VM {} is not running",
                vm.name
            ))),
        }
    }
}
