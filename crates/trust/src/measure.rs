//! Measured boot: before a VM's first instruction its kernel, initrd,
//! command line and configuration are recorded as typed events, each
//! hashed (SHA-256) over a canonical CBOR encoding, and folded in order
//! into one measurement the way a TPM extends a PCR:
//! `m₀ = 0³²`, `mᵢ₊₁ = SHA-256(mᵢ ‖ SHA-256(eventᵢ))`.
//!
//! Reproducible by construction: the events hold contents and settings,
//! never paths, times or random values, so the same inputs give the same
//! measurement on every run and every machine. Changing one byte of any
//! input, a device, the role or the debug flag changes it.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A 32-byte measurement or digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Measurement(pub [u8; 32]);

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl std::str::FromStr for Measurement {
    type Err = String;

    /// Parses 64 hex digits.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        crate::hex::decode(s)
            .and_then(|b| b.try_into().ok())
            .map(Measurement)
            .ok_or_else(|| format!("'{s}' is not a measurement (64 hex digits)"))
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The parts of a VM's configuration that decide what its software sees
/// (never host paths: those differ between machines).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MeasuredConfig {
    /// Guest RAM in bytes.
    pub mem: u64,
    /// Number of vCPUs.
    pub cpus: usize,
    /// The VM's role (open, corporate, trusted).
    pub role: String,
    /// Whether the VM may be debugged (a debuggable VM gets other secrets).
    pub debug: bool,
    /// Its disks, in order: whether each is read-only.
    pub disks_read_only: Vec<bool>,
    /// How many network interfaces it has.
    pub nets: usize,
    /// Whether it has a balloon.
    pub balloon: bool,
    /// Whether it has an entropy device.
    pub rng: bool,
    /// Its vsock context ID, if it has vsock.
    pub vsock_cid: Option<u64>,
}

/// One measured event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Event {
    /// The kernel image's SHA-256.
    Kernel {
        /// Digest of the image's bytes.
        sha256: [u8; 32],
    },
    /// The initrd's SHA-256, or none.
    Initrd {
        /// Digest of the initrd's bytes, if the VM has one.
        sha256: Option<[u8; 32]>,
    },
    /// The kernel command line, as given.
    Cmdline {
        /// The text.
        text: String,
    },
    /// The VM's configuration.
    Config(MeasuredConfig),
}

impl Event {
    /// The event's canonical bytes (CBOR of its fields, in order).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing CBOR to memory cannot fail");
        out
    }

    /// SHA-256 of [`Event::encode`].
    pub fn digest(&self) -> Measurement {
        Measurement(sha256(&self.encode()))
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Event::Kernel { sha256 } => format!("kernel sha256={}", Measurement(*sha256)),
            Event::Initrd { sha256: Some(d) } => format!("initrd sha256={}", Measurement(*d)),
            Event::Initrd { sha256: None } => "initrd none".into(),
            Event::Cmdline { text } => format!("cmdline {text:?}"),
            Event::Config(c) => format!(
                "config mem={} cpus={} role={} debug={} disks={:?} nets={} balloon={} rng={} vsock_cid={:?}",
                c.mem, c.cpus, c.role, c.debug, c.disks_read_only, c.nets, c.balloon, c.rng, c.vsock_cid
            ),
        }
    }
}

/// A VM's measurement log and the measurement it folds into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasurementLog {
    /// The events, in the order they were measured.
    pub events: Vec<Event>,
    /// The folded measurement.
    pub measurement: Measurement,
}

impl MeasurementLog {
    /// Measures a VM: `kernel` and `initrd` are the files' bytes.
    pub fn of(
        kernel: &[u8],
        initrd: Option<&[u8]>,
        cmdline: &str,
        config: &MeasuredConfig,
    ) -> MeasurementLog {
        let events = vec![
            Event::Kernel {
                sha256: sha256(kernel),
            },
            Event::Initrd {
                sha256: initrd.map(sha256),
            },
            Event::Cmdline {
                text: cmdline.to_string(),
            },
            Event::Config(config.clone()),
        ];
        Self::from_events(events)
    }

    /// Folds `events` into a measurement (a verifier replays a log this way).
    pub fn from_events(events: Vec<Event>) -> MeasurementLog {
        let mut m = [0u8; 32];
        for e in &events {
            let mut h = Sha256::new();
            h.update(m);
            h.update(e.digest().0);
            m = h.finalize().into();
        }
        MeasurementLog {
            events,
            measurement: Measurement(m),
        }
    }

    /// The log for people: one numbered line per event with its digest,
    /// then the measurement.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, e) in self.events.iter().enumerate() {
            out.push_str(&format!("{i} {} digest={}\n", e.describe(), e.digest()));
        }
        out.push_str(&format!("measurement {}\n", self.measurement));
        out
    }
}
