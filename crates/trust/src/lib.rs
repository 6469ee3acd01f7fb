//! `trust`: what makes a trusted-service VM trustworthy to others.
//!
//! * [`measure`]: measured boot — a reproducible log of what a VM boots
//!   and with which configuration, folded into one measurement;
//! * [`identity`]: the phone's Unique Device Secret and, DICE-style, each
//!   VM's CDIs, attestation key and sealing secrets derived from it;
//! * [`evidence`]: certificates (COSE_Sign1/CWT), evidence and statements
//!   signed by a VM, and their verification;
//! * [`counters`]: integrity-protected rollback counters;
//! * [`device`]: the guest's trust device — its protocol and the phone's
//!   side of it.
//!
//! The crate has no platform code beyond files, so the guest-side
//! programs in `guests/trusted` use the same protocol types.

pub mod counters;
pub mod device;
pub mod evidence;
pub mod hex;
pub mod identity;
pub mod measure;

pub use counters::{CounterError, CounterStore};
pub use device::{Request, Response, TrustDevice, TRUST_PORT};
pub use evidence::{
    verify_evidence, verify_vm_signed, CertifiedVm, VerifiedClaims, VerifyError, VmSigned,
};
pub use identity::{DeviceSecret, IdentityError, RootKey, VmIdentity, VmInputs};
pub use measure::{Event, MeasuredConfig, Measurement, MeasurementLog};
