//! `trust`: what makes a trusted-service VM trustworthy to others. Today:
//! measured boot ([`measure`]) — a reproducible log of what a VM boots
//! and with which configuration, folded into one measurement. The phone's
//! identity, attestation evidence, sealing and rollback counters build on
//! it.

pub mod measure;

pub use measure::{Event, MeasuredConfig, Measurement, MeasurementLog};
