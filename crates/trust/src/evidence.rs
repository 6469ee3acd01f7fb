//! Certificates, evidence and their verification.
//!
//! A VM's **certificate** is a COSE_Sign1 (EdDSA) made by the phone's root
//! key whose payload is a CWT claims set: issuer
//! `pocketvisor-phone:<root key id>`, subject the VM's name, and private
//! claims for the VM's measurement, debug flag and attestation public key.
//! Its protected header carries the root key's id.
//!
//! Anything the VM signs — **evidence** (`{measurement, nonce, vm,
//! debug}`, signed by the trust device for the VM) or the VM's own
//! statements such as a billing receipt — travels as a [`VmSigned`]: the
//! certificate plus a COSE_Sign1 by the attestation key. The two kinds use
//! different external AAD, so a VM's signature on its own data can never
//! pass as evidence. [`verify_evidence`] is what `pocketvisor attest
//! verify` runs; relying parties in tests call it directly.

use coset::cwt::{ClaimsSet, ClaimsSetBuilder};
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::identity::{key_id, RootKey};
use crate::measure::Measurement;

/// External AAD of certificates.
const CERTIFICATE_AAD: &[u8] = b"pocketvisor certificate v1";
/// External AAD of evidence.
const EVIDENCE_AAD: &[u8] = b"pocketvisor evidence v1";
/// External AAD of what a VM signs for itself.
const GUEST_AAD: &[u8] = b"pocketvisor guest-signed v1";

/// Private CWT claim: the VM's measurement (32-byte string).
const CLAIM_MEASUREMENT: i64 = -4_670_001;
/// Private CWT claim: the VM's debug flag.
const CLAIM_DEBUG: i64 = -4_670_002;
/// Private CWT claim: the VM's Ed25519 attestation public key (32 bytes).
const CLAIM_ATTESTATION_KEY: i64 = -4_670_003;

/// Why evidence or a signed statement was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Not the expected CBOR/COSE structure.
    Malformed(String),
    /// The certificate was issued by another root than the one trusted.
    UnknownRoot,
    /// A signature does not verify.
    BadSignature(&'static str),
    /// The evidence answers another nonce.
    WrongNonce,
    /// The VM runs other software than expected.
    MeasurementMismatch {
        /// The measurement the verifier expected.
        expected: Measurement,
        /// The measurement the evidence shows.
        actual: Measurement,
    },
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Malformed(why) => write!(f, "malformed evidence: {why}"),
            VerifyError::UnknownRoot => {
                f.write_str("unknown root: the certificate was issued by another phone's root key")
            }
            VerifyError::BadSignature(what) => write!(f, "bad signature on the {what}"),
            VerifyError::WrongNonce => {
                f.write_str("wrong nonce: the evidence answers another challenge")
            }
            VerifyError::MeasurementMismatch { expected, actual } => write!(
                f,
                "measurement mismatch: the VM runs {actual}, expected {expected}"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

fn malformed(e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Malformed(e.to_string())
}

/// What a certificate says about a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedVm {
    /// The VM's name.
    pub vm: String,
    /// Its boot measurement.
    pub measurement: Measurement,
    /// Whether it is debuggable.
    pub debug: bool,
    /// Its attestation public key.
    pub attestation_key: VerifyingKey,
    /// The id of the root key that certified it.
    pub root_key_id: [u8; 32],
}

/// The issuer name of certificates made by `root`.
fn issuer(root: &VerifyingKey) -> String {
    format!("pocketvisor-phone:{}", crate::hex::encode(&key_id(root)))
}

/// Makes the certificate of a VM: `root` certifies `vm`'s attestation key
/// and measurement. Returns the COSE_Sign1's bytes.
pub fn certify(root: &RootKey, vm: &CertifiedVmInput<'_>) -> Vec<u8> {
    let root_public = root.public();
    let claims = ClaimsSetBuilder::new()
        .issuer(issuer(&root_public))
        .subject(vm.vm.to_string())
        .private_claim(CLAIM_MEASUREMENT, vm.measurement.0.to_vec().into())
        .private_claim(CLAIM_DEBUG, vm.debug.into())
        .private_claim(
            CLAIM_ATTESTATION_KEY,
            vm.attestation_key.to_bytes().to_vec().into(),
        )
        .build();
    let payload = claims.to_vec().expect("a claims set encodes");
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key_id(&root_public).to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(CERTIFICATE_AAD, |data| root.sign(data))
        .build()
        .to_vec()
        .expect("a COSE_Sign1 encodes")
}

/// The subject of a certificate to make.
pub struct CertifiedVmInput<'a> {
    /// The VM's name.
    pub vm: &'a str,
    /// Its boot measurement.
    pub measurement: Measurement,
    /// Whether it is debuggable.
    pub debug: bool,
    /// Its attestation public key.
    pub attestation_key: VerifyingKey,
}

/// A certificate plus a COSE_Sign1 by the certified VM's attestation key:
/// evidence, or anything else the VM signs. Encoded as a CBOR map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmSigned {
    /// The VM's certificate (COSE_Sign1 bytes).
    #[serde(with = "serde_bytes")]
    pub certificate: Vec<u8>,
    /// The statement (COSE_Sign1 bytes).
    #[serde(with = "serde_bytes")]
    pub signed: Vec<u8>,
}

impl VmSigned {
    /// The canonical bytes (CBOR).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out).expect("writing CBOR to memory cannot fail");
        out
    }

    /// Parses [`VmSigned::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Result<VmSigned, VerifyError> {
        ciborium::from_reader(bytes).map_err(malformed)
    }
}

/// The payload of evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct EvidenceClaims {
    #[serde(with = "serde_bytes")]
    measurement: Vec<u8>,
    #[serde(with = "serde_bytes")]
    nonce: Vec<u8>,
    vm: String,
    debug: bool,
}

fn sign1(key: &SigningKey, aad: &[u8], payload: Vec<u8>) -> Vec<u8> {
    CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::EdDSA)
                .build(),
        )
        .payload(payload)
        .create_signature(aad, |data| key.sign(data).to_bytes().to_vec())
        .build()
        .to_vec()
        .expect("a COSE_Sign1 encodes")
}

/// Makes evidence answering `nonce` for the VM `certificate` describes,
/// signed with its attestation `key`.
pub fn make_evidence(
    certificate: &[u8],
    key: &SigningKey,
    vm: &CertifiedVmInput<'_>,
    nonce: &[u8],
) -> VmSigned {
    let claims = EvidenceClaims {
        measurement: vm.measurement.0.to_vec(),
        nonce: nonce.to_vec(),
        vm: vm.vm.to_string(),
        debug: vm.debug,
    };
    let mut payload = Vec::new();
    ciborium::into_writer(&claims, &mut payload).expect("writing CBOR to memory cannot fail");
    VmSigned {
        certificate: certificate.to_vec(),
        signed: sign1(key, EVIDENCE_AAD, payload),
    }
}

/// Signs `data` as the VM: the guest's own statements (receipts).
pub fn sign_as_vm(certificate: &[u8], key: &SigningKey, data: &[u8]) -> VmSigned {
    VmSigned {
        certificate: certificate.to_vec(),
        signed: sign1(key, GUEST_AAD, data.to_vec()),
    }
}

fn verify_ed25519(key: &VerifyingKey, sig: &[u8], data: &[u8]) -> Result<(), ()> {
    let sig = Signature::from_slice(sig).map_err(|_| ())?;
    key.verify_strict(data, &sig).map_err(|_| ())
}

/// Checks a certificate against the trusted `root` and returns what it
/// certifies.
pub fn verify_certificate(
    certificate: &[u8],
    root: &VerifyingKey,
) -> Result<CertifiedVm, VerifyError> {
    let cert = CoseSign1::from_slice(certificate).map_err(malformed)?;
    let root_id = key_id(root);
    if cert.protected.header.key_id != root_id {
        return Err(VerifyError::UnknownRoot);
    }
    cert.verify_signature(CERTIFICATE_AAD, |sig, data| verify_ed25519(root, sig, data))
        .map_err(|()| VerifyError::BadSignature("certificate"))?;
    let payload = cert
        .payload
        .ok_or_else(|| malformed("the certificate has no payload"))?;
    let claims = ClaimsSet::from_slice(&payload).map_err(malformed)?;
    if claims.issuer.as_deref() != Some(issuer(root).as_str()) {
        return Err(VerifyError::UnknownRoot);
    }
    let claim = |id: i64| {
        claims
            .rest
            .iter()
            .find(|(name, _)| *name == coset::cwt::ClaimName::PrivateUse(id))
            .map(|(_, v)| v.clone())
    };
    let bytes32 = |id: i64, what: &str| -> Result<[u8; 32], VerifyError> {
        claim(id)
            .and_then(|v| v.into_bytes().ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| malformed(format!("the certificate has no {what}")))
    };
    let measurement = Measurement(bytes32(CLAIM_MEASUREMENT, "measurement")?);
    let key = bytes32(CLAIM_ATTESTATION_KEY, "attestation key")?;
    let attestation_key = VerifyingKey::from_bytes(&key)
        .map_err(|_| malformed("the certified attestation key is not a valid Ed25519 key"))?;
    let debug = claim(CLAIM_DEBUG)
        .and_then(|v| v.as_bool())
        .ok_or_else(|| malformed("the certificate has no debug flag"))?;
    let vm = claims
        .subject
        .ok_or_else(|| malformed("the certificate names no VM"))?;
    Ok(CertifiedVm {
        vm,
        measurement,
        debug,
        attestation_key,
        root_key_id: root_id,
    })
}

/// Checks a [`VmSigned`] made with `aad`; returns the certified VM and the
/// signed payload.
fn verify_signed(
    signed: &VmSigned,
    root: &VerifyingKey,
    aad: &[u8],
) -> Result<(CertifiedVm, Vec<u8>), VerifyError> {
    let vm = verify_certificate(&signed.certificate, root)?;
    let statement = CoseSign1::from_slice(&signed.signed).map_err(malformed)?;
    statement
        .verify_signature(aad, |sig, data| {
            verify_ed25519(&vm.attestation_key, sig, data)
        })
        .map_err(|()| VerifyError::BadSignature("evidence"))?;
    let payload = statement
        .payload
        .ok_or_else(|| malformed("the statement has no payload"))?;
    Ok((vm, payload))
}

/// Verifies what a VM signed for itself ([`sign_as_vm`]): returns the VM's
/// certified identity and the data.
pub fn verify_vm_signed(
    signed: &VmSigned,
    root: &VerifyingKey,
) -> Result<(CertifiedVm, Vec<u8>), VerifyError> {
    verify_signed(signed, root, GUEST_AAD)
}

/// The claims of verified evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// The certified VM.
    pub vm: CertifiedVm,
    /// The nonce the evidence answers.
    pub nonce: Vec<u8>,
}

/// Verifies `evidence` (the bytes of a [`VmSigned`]): the chain up to
/// `root`, both signatures, that it answers `nonce`, that the signed
/// claims agree with the certificate and, with `expect`, that the VM runs
/// exactly that measurement.
pub fn verify_evidence(
    evidence: &[u8],
    nonce: &[u8],
    root: &VerifyingKey,
    expect: Option<Measurement>,
) -> Result<VerifiedClaims, VerifyError> {
    let signed = VmSigned::decode(evidence)?;
    let (vm, payload) = verify_signed(&signed, root, EVIDENCE_AAD)?;
    let claims: EvidenceClaims = ciborium::from_reader(payload.as_slice()).map_err(malformed)?;
    if claims.measurement != vm.measurement.0 || claims.vm != vm.vm || claims.debug != vm.debug {
        return Err(malformed(
            "the evidence's claims differ from its certificate",
        ));
    }
    if claims.nonce != nonce {
        return Err(VerifyError::WrongNonce);
    }
    if let Some(expected) = expect {
        if expected != vm.measurement {
            return Err(VerifyError::MeasurementMismatch {
                expected,
                actual: vm.measurement,
            });
        }
    }
    Ok(VerifiedClaims {
        vm,
        nonce: claims.nonce,
    })
}
