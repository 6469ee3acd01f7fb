//! VMs that join a running phone: an imported image (`image import` into
//! a phone that is up), a clone of a snapshot (`phone restore SNAPDIR --as
//! NAME`) and a VM migrated in (`phone receive`).
//!
//! Each becomes an imported VM of the phone — its entry in
//! `STATE_DIR/imported/NAME/vm.toml` with an explicit CID, so it is part
//! of the phone at its next start too — and a new slot of the running
//! supervisor (VMs are only ever appended: indices stay valid).

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::manifest::{imported_dir, valid_name, Manifest, VmEntry};
use crate::snapshot::{check_fits, load_meta, pending_import};
use crate::supervisor::{lock, PhoneError, Supervisor};

fn failed(e: impl std::fmt::Display) -> PhoneError {
    PhoneError::Failed(e.to_string())
}

/// A locally administered unicast MAC address, random.
fn random_mac() -> Result<[u8; 6], PhoneError> {
    let bytes = trust::identity::random_secret().map_err(failed)?;
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&bytes[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Ok(mac)
}

/// A new VM's directory under `STATE_DIR/imported`, built under a
/// temporary name and renamed into place by [`Staged::install`]; removed
/// if dropped before.
pub(crate) struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    installed: bool,
}

impl Staged {
    /// Starts VM `name`'s directory; refuses a name the phone has.
    pub(crate) fn new(manifest: &Manifest, name: &str) -> Result<Staged, PhoneError> {
        if !valid_name(name) {
            return Err(PhoneError::BadRequest(format!(
                "\"{name}\" is not a VM name (1 to 32 of a-z, 0-9 and -)"
            )));
        }
        let root = imported_dir(&manifest.state_dir);
        let target = root.join(name);
        if manifest.vm(name).is_some() || target.exists() {
            return Err(PhoneError::Conflict(format!(
                "the phone already has a VM named \"{name}\""
            )));
        }
        let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)
            .map_err(failed)?;
        Ok(Staged {
            tmp,
            target,
            installed: false,
        })
    }

    /// The final directory (paths in the entry point there).
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// The temporary directory being filled.
    pub(crate) fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Writes `entry` as `vm.toml` and moves the directory into place.
    pub(crate) fn install(self, entry: &VmEntry) -> Result<PathBuf, PhoneError> {
        let text = entry.to_toml().map_err(failed)?;
        std::fs::write(self.tmp.join("vm.toml"), text).map_err(failed)?;
        self.install_written()
    }

    /// Moves the directory, its `vm.toml` written, into place.
    pub(crate) fn install_written(mut self) -> Result<PathBuf, PhoneError> {
        std::fs::rename(&self.tmp, &self.target).map_err(failed)?;
        self.installed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

impl Supervisor {
    /// Adds `entry` (installed in `dir`) to the running phone and starts
    /// it, from `restore` when given. If it cannot join, `dir` is removed.
    pub(crate) fn join(
        &self,
        entry: VmEntry,
        dir: &Path,
        restore: Option<PathBuf>,
    ) -> Result<(), PhoneError> {
        let name = entry.name.clone();
        // Its workers load the manifest with the imported VMs: it must
        // still pass every check (the memory budget above all).
        if let Some(source) = self.shared.manifest().source.clone() {
            if let Err(e) = Manifest::load(&source) {
                let _ = std::fs::remove_dir_all(dir);
                return Err(PhoneError::Conflict(format!(
                    "the phone cannot take VM {name}: {e}"
                )));
            }
        }
        let i = match self.shared.add_vm(entry) {
            Ok(i) => i,
            Err(e) => {
                let _ = std::fs::remove_dir_all(dir);
                return Err(e);
            }
        };
        lock(&self.shared.table).slots[i].restore_from = restore;
        self.shared.log(&format!("VM {name}: joined the phone"));
        self.start_vm(&name)
    }

    /// Adds VM `name`, imported into the state directory while the phone
    /// runs (`image import`), and starts it: a live image resumes.
    pub fn adopt_imported(&self, name: &str) -> Result<(), PhoneError> {
        let current = self.shared.manifest();
        if current.vm(name).is_some() {
            return Err(PhoneError::Conflict(format!(
                "VM {name} is already part of the phone"
            )));
        }
        let source = current.source.clone().ok_or_else(|| {
            PhoneError::Conflict("this phone was not started from a manifest file".into())
        })?;
        let reloaded = Manifest::load(&source).map_err(|e| PhoneError::Conflict(e.to_string()))?;
        let entry = reloaded.vm(name).cloned().ok_or_else(|| {
            PhoneError::NotFound(format!("no VM \"{name}\" was imported into this phone"))
        })?;
        let i = self.shared.add_vm(entry)?;
        let pending = pending_import(&current.state_dir, name);
        lock(&self.shared.table).slots[i].restore_from = pending;
        self.shared
            .log(&format!("VM {name}: imported while running"));
        self.start_vm(name)
    }

    /// Starts a clone named `name` of the VM the snapshot in `dir` was
    /// taken of: its own CID (and MAC addresses), its disks copied into
    /// its directory with `copy_disks` (else it uses the same files).
    pub fn restore_clone(
        &self,
        dir: &Path,
        name: &str,
        copy_disks: bool,
        accel: Option<vmm::Accel>,
    ) -> Result<(), PhoneError> {
        let meta = load_meta(dir).map_err(PhoneError::BadRequest)?;
        let manifest = self.shared.manifest();
        let original = manifest.vm(&meta.vm).cloned().ok_or_else(|| {
            PhoneError::NotFound(format!("the phone has no VM named \"{}\"", meta.vm))
        })?;
        check_fits(&meta, &original)?;
        let dir = dir
            .canonicalize()
            .map_err(|e| PhoneError::BadRequest(format!("'{}': {e}", dir.display())))?;
        let staged = Staged::new(&manifest, name)?;
        let mut entry = original;
        entry.name = name.to_string();
        entry.cid = manifest.free_cid();
        entry.foreground = false;
        entry.autostart = true;
        if let Some(accel) = accel {
            entry.config.accel = accel;
        }
        for n in &mut entry.config.nets {
            n.mac = Some(random_mac()?);
        }
        if copy_disks {
            for (k, d) in entry.config.disks.iter_mut().enumerate() {
                let file = format!("disk{k}");
                std::fs::copy(&d.path, staged.tmp().join(&file)).map_err(|e| {
                    PhoneError::Failed(format!("cannot copy disk '{}': {e}", d.path.display()))
                })?;
                d.path = staged.target().join(file);
            }
        }
        let installed = staged.install(&entry)?;
        self.join(entry, &installed, Some(dir.clone()))?;
        self.shared.log(&format!(
            "VM {name}: cloned from {} ({})",
            meta.vm,
            dir.display()
        ));
        Ok(())
    }
}
