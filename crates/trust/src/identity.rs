//! The phone's identity and each trusted VM's, DICE-style.
//!
//! The phone's root of trust is its **Unique Device Secret** (UDS): 32
//! random bytes created once in `STATE_DIR/identity/uds` (mode 0600, in a
//! 0700 directory). On a handset this secret would be fused into the SoC
//! and readable only by the boot ROM; here the file stands in for it, so
//! whoever can read the phone's state directory can impersonate the phone.
//!
//! Everything else is derived from it with HKDF-SHA-256, never stored:
//! * the phone's **root key**, an Ed25519 key pair that certifies VMs;
//! * per VM, from the UDS and the VM's *inputs* — its measurement, its
//!   instance id (random per VM, kept beside the UDS) and its debug flag —
//!   the two Compound Device Identifiers of Open Profile for DICE:
//!   **CDI_Attest** (which yields the VM's Ed25519 attestation key) and
//!   **CDI_Seal** (which yields the secrets the VM seals its data with).
//!   Other software, another instance, or the same software made
//!   debuggable gets other CDIs, so it can neither sign as the VM nor open
//!   its sealed data;
//! * the key that authenticates the rollback counters ([`crate::counters`]).

use std::fs::{DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use crate::measure::Measurement;

/// Length of the UDS, CDIs, instance ids and instance secrets.
pub const SECRET_LEN: usize = 32;

/// What went wrong with the phone's identity files.
#[derive(Debug)]
pub struct IdentityError(pub String);

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdentityError {}

fn hkdf(ikm: &[u8], salt: Option<&[u8]>, info: &[u8]) -> [u8; SECRET_LEN] {
    let mut out = [0u8; SECRET_LEN];
    Hkdf::<Sha256>::new(salt, ikm)
        .expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA-256 length");
    out
}

/// 32 random bytes from the operating system.
pub fn random_secret() -> Result<[u8; SECRET_LEN], IdentityError> {
    let mut out = [0u8; SECRET_LEN];
    getrandom::fill(&mut out)
        .map_err(|e| IdentityError(format!("no randomness from the operating system: {e}")))?;
    Ok(out)
}

/// Reads a 32-byte secret file, or creates it (mode 0600) with random
/// bytes when `create` and it does not exist. A file of another size, or
/// one others may read, is refused rather than replaced.
fn secret_file(path: &Path, create: bool) -> Result<[u8; SECRET_LEN], IdentityError> {
    let err = |what: &str, e: std::io::Error| {
        IdentityError(format!("cannot {what} '{}': {e}", path.display()))
    };
    match OpenOptions::new().read(true).open(path) {
        Ok(mut f) => {
            let mode = f
                .metadata()
                .map_err(|e| err("inspect", e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(IdentityError(format!(
                    "'{}' is readable by others (mode {:o}); it must be 0600",
                    path.display(),
                    mode & 0o777
                )));
            }
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|e| err("read", e))?;
            bytes.try_into().map_err(|b: Vec<u8>| {
                IdentityError(format!(
                    "'{}' holds {} bytes, not a {SECRET_LEN}-byte secret (damaged?)",
                    path.display(),
                    b.len()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let secret = random_secret()?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| err("create", e))?;
            f.write_all(&secret).map_err(|e| err("write", e))?;
            f.sync_all().map_err(|e| err("sync", e))?;
            Ok(secret)
        }
        Err(e) => Err(err("open", e)),
    }
}

/// The phone's identity directory, `STATE_DIR/identity`.
pub fn identity_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("identity")
}

/// The phone's Unique Device Secret and what derives from it.
pub struct DeviceSecret {
    uds: [u8; SECRET_LEN],
    dir: PathBuf,
}

impl DeviceSecret {
    /// Opens the phone's identity in `dir` (`STATE_DIR/identity`),
    /// creating the directory (0700) and the UDS on first use.
    pub fn open_or_create(dir: &Path) -> Result<DeviceSecret, IdentityError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("instances"))
            .map_err(|e| IdentityError(format!("cannot create '{}': {e}", dir.display())))?;
        let uds = secret_file(&dir.join("uds"), true)?;
        Ok(DeviceSecret {
            uds,
            dir: dir.to_path_buf(),
        })
    }

    /// Opens an existing identity (never creates one).
    pub fn open(dir: &Path) -> Result<DeviceSecret, IdentityError> {
        let uds = secret_file(&dir.join("uds"), false)?;
        Ok(DeviceSecret {
            uds,
            dir: dir.to_path_buf(),
        })
    }

    /// The identity directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The phone's root key, which certifies its VMs' attestation keys.
    pub fn root(&self) -> RootKey {
        RootKey {
            key: SigningKey::from_bytes(&hkdf(&self.uds, None, b"pocketvisor root key v1")),
        }
    }

    /// The phone's X25519 secret for images encrypted to it (`image
    /// export --recipient`, `phone identity --recipient`).
    pub fn recipient_secret(&self) -> [u8; SECRET_LEN] {
        hkdf(&self.uds, None, b"pocketvisor image recipient key v1")
    }

    /// The key that authenticates the rollback counters of VM `vm`.
    pub fn counter_key(&self, vm: &str) -> [u8; SECRET_LEN] {
        let mut info = b"pocketvisor counter integrity v1\0".to_vec();
        info.extend_from_slice(vm.as_bytes());
        hkdf(&self.uds, None, &info)
    }

    /// VM `vm`'s instance id (created on its first start), and whether it
    /// was just created.
    pub fn instance_id(&self, vm: &str) -> Result<([u8; SECRET_LEN], bool), IdentityError> {
        let path = self.dir.join("instances").join(vm);
        let existed = path.exists();
        Ok((secret_file(&path, true)?, !existed))
    }

    /// The CDIs of a VM with these inputs.
    pub fn vm_identity(&self, inputs: &VmInputs) -> VmIdentity {
        let mut h = Sha256::new();
        h.update(inputs.measurement.0);
        h.update(inputs.instance_id);
        h.update([inputs.debug as u8]);
        let salt: [u8; 32] = h.finalize().into();
        VmIdentity {
            cdi_attest: hkdf(&self.uds, Some(&salt), b"pocketvisor CDI_Attest v1"),
            cdi_seal: hkdf(&self.uds, Some(&salt), b"pocketvisor CDI_Seal v1"),
        }
    }
}

/// What a VM's CDIs are derived from.
#[derive(Clone, Debug)]
pub struct VmInputs {
    /// Its boot measurement.
    pub measurement: Measurement,
    /// Its instance id.
    pub instance_id: [u8; SECRET_LEN],
    /// Whether it is debuggable.
    pub debug: bool,
}

/// The phone's root key pair.
pub struct RootKey {
    key: SigningKey,
}

impl RootKey {
    /// The public half, which relying parties trust.
    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.key.sign(data).to_bytes().to_vec()
    }

    /// The key pair itself (what signs the phone's exported images).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// A public key's id: SHA-256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> [u8; 32] {
    Sha256::digest(key.to_bytes()).into()
}

/// A VM's Compound Device Identifiers.
pub struct VmIdentity {
    cdi_attest: [u8; SECRET_LEN],
    cdi_seal: [u8; SECRET_LEN],
}

impl VmIdentity {
    /// The VM's attestation key pair, from CDI_Attest.
    pub fn attestation_key(&self) -> SigningKey {
        SigningKey::from_bytes(&hkdf(
            &self.cdi_attest,
            None,
            b"pocketvisor attestation key v1",
        ))
    }

    /// A 32-byte secret for `label`, from CDI_Seal: the same for the same
    /// VM software, instance and label, on this phone only.
    pub fn instance_secret(&self, label: &[u8]) -> [u8; SECRET_LEN] {
        let mut info = b"pocketvisor instance secret v1\0".to_vec();
        info.extend_from_slice(label);
        hkdf(&self.cdi_seal, None, &info)
    }
}

/// Parses a root public key as `phone identity` prints it (64 hex
/// digits, surrounding whitespace ignored).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let text = text.trim();
    let bytes = crate::hex::decode(text)
        .filter(|b| b.len() == 32)
        .ok_or_else(|| "not a public key (64 hex digits expected)".to_string())?;
    let bytes: [u8; 32] = bytes.try_into().expect("length checked");
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_string())
}
