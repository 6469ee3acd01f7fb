//! The services' protocol: the trust device's framing (4-byte big-endian
//! length, CBOR) with [`ServiceRequest`] and [`ServiceResponse`], frames
//! up to [`MAX_FRAME`]. Each port takes its own service's requests and
//! [`ServiceRequest::Evidence`].

use serde::{Deserialize, Serialize};

/// The trusted VM's port for evidence only.
pub const ATTEST_PORT: u32 = 5000;
/// The authentication service's port.
pub const AUTH_PORT: u32 = 5001;
/// The DRM service's port.
pub const DRM_PORT: u32 = 5002;
/// The billing service's port.
pub const BILLING_PORT: u32 = 5003;
/// Largest frame (licenses and content blobs travel in them).
pub const MAX_FRAME: usize = 1 << 20;

/// A request to a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceRequest {
    /// The trusted VM's evidence answering `nonce`.
    Evidence {
        /// The challenge (1 to 64 bytes).
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
    },
    /// auth: make the signing key, protected by `pin`.
    AuthEnroll {
        /// 4 to 12 digits.
        pin: String,
    },
    /// auth: sign `challenge` if `pin` is right.
    AuthSign {
        /// What to sign (up to 1 KiB).
        #[serde(with = "serde_bytes")]
        challenge: Vec<u8>,
        /// The PIN.
        pin: String,
    },
    /// drm: the DRM VM's device key, as a statement it signed.
    DrmDeviceKey,
    /// drm: play `content` under `license`.
    DrmPlay {
        /// A license from the content provider.
        #[serde(with = "serde_bytes")]
        license: Vec<u8>,
        /// The encrypted content.
        #[serde(with = "serde_bytes")]
        content: Vec<u8>,
    },
    /// billing: charge `amount` (in cents) to `merchant`.
    BillingCharge {
        /// Cents, 1 to 100,000,000.
        amount: u64,
        /// Who is paid (1 to 64 bytes).
        merchant: String,
    },
    /// billing: the ledger's totals.
    BillingLedger,
}

/// A service's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceResponse {
    /// A [`trust::VmSigned`]: evidence, or a statement the VM signed
    /// (enrolment, device key, receipt).
    Signed {
        /// Its CBOR.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// auth: a signature and the key that made it.
    Signature {
        /// Ed25519 signature.
        #[serde(with = "serde_bytes")]
        signature: Vec<u8>,
        /// Ed25519 public key.
        #[serde(with = "serde_bytes")]
        public_key: Vec<u8>,
    },
    /// drm: the content went to the secure output.
    Played {
        /// SHA-256 of the decrypted content.
        #[serde(with = "serde_bytes")]
        sha256: Vec<u8>,
        /// Its length.
        bytes: u64,
    },
    /// billing: the ledger's totals.
    Ledger {
        /// Charges made.
        charges: u64,
        /// Their sum, in cents.
        total: u64,
    },
    /// Refused, with the reason.
    Error {
        /// Why.
        message: String,
    },
}

/// A statement the VM signs, as CBOR inside a [`trust::VmSigned`]: what
/// it is for and its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// "auth-key", "drm-device-key" or "receipt".
    pub purpose: String,
    /// The content (a public key, or a CBOR receipt).
    #[serde(with = "serde_bytes")]
    pub content: Vec<u8>,
}

impl Statement {
    /// The statement's CBOR.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("CBOR to memory");
        out
    }

    /// Parses [`Statement::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<Statement, String> {
        ciborium::from_reader(bytes).map_err(|e| format!("not a statement: {e}"))
    }
}

/// Verifies a statement the trusted VM signed: its certificate chains to
/// `root`, its purpose is `purpose`; returns the certified VM and content.
pub fn verify_statement(
    signed: &[u8],
    root: &ed25519_dalek::VerifyingKey,
    purpose: &str,
) -> Result<(trust::CertifiedVm, Vec<u8>), String> {
    let signed = trust::VmSigned::decode(signed).map_err(|e| e.to_string())?;
    let (vm, data) = trust::verify_vm_signed(&signed, root).map_err(|e| e.to_string())?;
    let statement = Statement::decode(&data)?;
    if statement.purpose != purpose {
        return Err(format!("a {} statement, not {purpose}", statement.purpose));
    }
    Ok((vm, statement.content))
}
