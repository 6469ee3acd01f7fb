//! Snapshots of a phone's VMs: `phone snapshot VM --out SNAPDIR` and
//! `phone restore SNAPDIR`.
//!
//! A snapshot directory (mode 0700) holds:
//! * `snapshot.toml` — [`SnapshotMeta`]: the format, the VM, its RAM size
//!   and vCPUs, and each disk's path, size and SHA-256 at the moment of the
//!   snapshot;
//! * `state.bin` — the VM's state but its RAM (`vmm::VmState`, versioned
//!   and checksummed);
//! * `memory.bin` — its RAM as a sparse raw image: only pages holding data
//!   are written, the rest are holes.
//!
//! Taking one pauses the VM (if it runs), has its worker write the RAM
//! into a file the supervisor made and answer the state, hashes the disks
//! while the guest cannot change them, and resumes it. Restoring checks
//! everything first — the VM exists in the manifest with the same RAM,
//! vCPUs and disks, is stopped, and every disk is as it was — then starts
//! its worker from the snapshot: the guest continues where it was. A
//! trusted VM is never snapshotted (its secrets are bound to this phone).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{Role, VmEntry};
use crate::protocol::ToWorker;
use crate::supervisor::{lock, PhoneError, SnapshotReply, Supervisor, VmState};

/// The snapshot directory format this build writes and reads.
pub const FORMAT: u32 = 1;
/// How long a worker may take to write its RAM.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

/// `snapshot.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotMeta {
    /// [`FORMAT`].
    pub format: u32,
    /// The VM's name.
    pub vm: String,
    /// Its role (open or corporate).
    pub role: String,
    /// Guest RAM in bytes (`memory.bin`'s size).
    pub mem: u64,
    /// vCPUs.
    pub cpus: usize,
    /// RAM bytes holding data (written to `memory.bin`).
    pub memory_bytes: u64,
    /// When it was taken (Unix seconds).
    pub taken_at: u64,
    /// The VM's disks, in order, as they were.
    pub disks: Vec<DiskRecord>,
    /// What else it was booted with (for a phone it moves to).
    pub entry: EntryRecord,
}

/// The rest of a VM's manifest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRecord {
    /// Its kernel.
    pub kernel: PathBuf,
    /// Its initrd, if any.
    pub initrd: Option<PathBuf>,
    /// Its command line.
    pub cmdline: String,
    /// Whether it has a balloon.
    pub balloon: bool,
    /// Whether it has an entropy device.
    pub rng: bool,
    /// How many network interfaces it has.
    pub nets: usize,
}

/// A disk at the moment of the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskRecord {
    /// Its path (as the manifest gives it, resolved).
    pub path: PathBuf,
    /// Whether the VM has it read-only.
    pub read_only: bool,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its contents, as hex.
    pub sha256: String,
    /// The file's identity and times when it was hashed (device, inode,
    /// size, modification and change times): while they are the same the
    /// contents are, and a restore need not hash it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<String>,
}

/// What a snapshot took.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotSummary {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// Bytes of `state.bin`.
    pub state_bytes: u64,
    /// RAM bytes written to `memory.bin`.
    pub memory_bytes: u64,
    /// How long the guest was paused for it, in milliseconds.
    pub paused_ms: u64,
}

fn failed(e: impl std::fmt::Display) -> PhoneError {
    PhoneError::Failed(e.to_string())
}

/// Size and SHA-256 of the file at `path`.
/// A file's identity and times (see [`DiskRecord::stamp`]); the change
/// time cannot be set by anyone but the kernel.
fn stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{:09}:{}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// Hashes a disk for its record: (size, SHA-256, stamp — none if the file
/// changed while it was read).
fn record_disk(path: &Path) -> std::io::Result<(u64, String, Option<String>)> {
    let before = stamp(path);
    let (size, sha256) = hash_file(path)?;
    let after = stamp(path);
    Ok((size, sha256, before.filter(|b| Some(b) == after.as_ref())))
}

fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, trust::hex::encode(&h.finalize())))
}

/// Reads and checks a snapshot directory's `snapshot.toml` and files.
pub fn load_meta(dir: &Path) -> Result<SnapshotMeta, String> {
    let meta = load_record(dir)?;
    let memory = std::fs::metadata(dir.join("memory.bin"))
        .map_err(|e| format!("'{}': no memory.bin: {e}", dir.display()))?;
    if memory.len() != meta.mem {
        return Err(format!(
            "'{}': memory.bin is {} bytes, the VM had {} (truncated?)",
            dir.display(),
            memory.len(),
            meta.mem
        ));
    }
    let state = std::fs::read(dir.join("state.bin"))
        .map_err(|e| format!("'{}': no state.bin: {e}", dir.display()))?;
    vmm::VmState::from_bytes(&state).map_err(|e| format!("'{}': {e}", dir.display()))?;
    Ok(meta)
}

/// Reads `snapshot.toml` in `dir` alone (a cold image's record has no
/// RAM or state beside it).
pub fn load_record(dir: &Path) -> Result<SnapshotMeta, String> {
    let path = dir.join("snapshot.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "'{}' is not a snapshot: cannot read {}: {e}",
            dir.display(),
            path.display()
        )
    })?;
    let meta: SnapshotMeta =
        toml::from_str(&text).map_err(|e| format!("'{}': {}", path.display(), e.message()))?;
    if meta.format != FORMAT {
        return Err(format!(
            "snapshot format {} is not supported (this build reads format {FORMAT})",
            meta.format
        ));
    }
    Ok(meta)
}

/// Creates `path` (0600) holding `bytes`, durably.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl Supervisor {
    /// Snapshots VM `name` into the new directory `out` (its parent must
    /// exist). The VM keeps running (or stays paused) afterwards.
    pub fn snapshot_vm(&self, name: &str, out: &Path) -> Result<SnapshotSummary, PhoneError> {
        self.refuse_if_trusted(name, "snapshotted")?;
        let shared = &self.shared;
        let i = shared.index(name)?;
        let was_paused = match &lock(&shared.table).slots[i].state {
            VmState::Running => false,
            VmState::Paused => true,
            VmState::Starting => {
                return Err(PhoneError::Conflict(format!("VM {name} is still starting")))
            }
            _ => return Err(PhoneError::Conflict(format!("VM {name} is not running"))),
        };
        DirBuilder::new().mode(0o700).create(out).map_err(|e| {
            PhoneError::BadRequest(format!("cannot create '{}': {e}", out.display()))
        })?;
        let started = Instant::now();
        let result = self.write_snapshot(i, out, was_paused);
        let paused_ms = started.elapsed().as_millis() as u64;
        if !was_paused {
            let resumed = self.resume_vm(name);
            if result.is_ok() {
                resumed?;
            }
        }
        match result {
            Ok((state_bytes, memory_bytes)) => {
                shared.log(&format!(
                    "VM {name}: snapshot to {} ({memory_bytes} bytes of RAM, paused {paused_ms} ms)",
                    out.display()
                ));
                Ok(SnapshotSummary {
                    dir: out.to_path_buf(),
                    state_bytes,
                    memory_bytes,
                    paused_ms,
                })
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(out);
                Err(e)
            }
        }
    }

    /// The snapshot's steps between pause and resume.
    fn write_snapshot(
        &self,
        i: usize,
        out: &Path,
        was_paused: bool,
    ) -> Result<(u64, u64), PhoneError> {
        let shared = &self.shared;
        let vm = &shared.manifest().vms[i];
        if !was_paused {
            self.pause_vm(&vm.name)?;
        }
        let memory = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(out.join("memory.bin"))
            .map_err(failed)?;
        memory.set_len(vm.config.mem).map_err(failed)?;
        lock(&shared.table).slots[i].snapshot = SnapshotReply::Pending;
        shared.tell_with(i, &ToWorker::Snapshot, Some(memory.as_fd()))?;
        let answered = shared.wait_until(WRITE_TIMEOUT, |t| {
            !matches!(t.slots[i].snapshot, SnapshotReply::Pending) || !t.slots[i].state.is_live()
        });
        let reply = std::mem::take(&mut lock(&shared.table).slots[i].snapshot);
        let (state, memory_bytes) = match reply {
            SnapshotReply::Done(r) => r.map_err(PhoneError::Failed)?,
            _ if answered => {
                return Err(failed(format!("VM {} ended during the snapshot", vm.name)))
            }
            _ => {
                return Err(failed(format!(
                    "VM {} did not write its snapshot in time",
                    vm.name
                )))
            }
        };
        memory.sync_all().map_err(failed)?;
        write_new(&out.join("state.bin"), &state).map_err(failed)?;
        // The disks as the paused guest left them.
        let disks = disk_records(vm).map_err(failed)?;
        let meta = SnapshotMeta::of(vm, memory_bytes, disks);
        let text = toml::to_string(&meta).map_err(failed)?;
        write_new(&out.join("snapshot.toml"), text.as_bytes()).map_err(failed)?;
        Ok((state.len() as u64, memory_bytes))
    }

    /// Starts the VM a snapshot in `dir` was taken of from that snapshot;
    /// returns its name. Nothing changes unless every check passes.
    pub fn restore_vm(&self, dir: &Path) -> Result<String, PhoneError> {
        let meta = load_meta(dir).map_err(PhoneError::BadRequest)?;
        let shared = &self.shared;
        let i = shared.index(&meta.vm)?;
        let vm = shared.manifest().vms[i].clone();
        check_fits(&meta, &vm)?;
        let dir = dir
            .canonicalize()
            .map_err(|e| PhoneError::BadRequest(format!("'{}': {e}", dir.display())))?;
        {
            let mut t = lock(&shared.table);
            if t.slots[i].state.is_live() {
                return Err(PhoneError::Conflict(format!(
                    "VM {} is running: stop it first",
                    vm.name
                )));
            }
            t.slots[i].restore_from = Some(dir.clone());
        }
        let started = self.start_vm(&vm.name);
        if started.is_err() {
            lock(&shared.table).slots[i].restore_from = None;
        }
        started?;
        shared.log(&format!("VM {}: restoring from {}", vm.name, dir.display()));
        Ok(vm.name.clone())
    }
}

/// Checks that a snapshot fits VM `vm` of the phone: not trusted, the same
/// RAM, vCPUs and disks, every disk as it was when it was taken.
pub(crate) fn check_fits(meta: &SnapshotMeta, vm: &VmEntry) -> Result<(), PhoneError> {
    if vm.role == Role::Trusted {
        return Err(PhoneError::Forbidden(format!(
            "trusted VM \"{}\" cannot be restored from a snapshot",
            vm.name
        )));
    }
    let differs = |what: &str| {
        PhoneError::Conflict(format!(
            "the snapshot does not fit VM {}: its {what} differs from the manifest",
            vm.name
        ))
    };
    if meta.mem != vm.config.mem {
        return Err(differs("RAM size"));
    }
    if meta.cpus != vm.config.cpus {
        return Err(differs("vCPU count"));
    }
    if meta.disks.len() != vm.config.disks.len()
        || meta
            .disks
            .iter()
            .zip(&vm.config.disks)
            .any(|(s, d)| s.path != d.path || s.read_only != d.read_only)
    {
        return Err(differs("disk list"));
    }
    for d in &meta.disks {
        if d.stamp.is_some() && d.stamp == stamp(&d.path) {
            // Untouched since it was hashed.
            continue;
        }
        let (size, sha256) = hash_file(&d.path).map_err(|e| {
            PhoneError::Conflict(format!("cannot read disk '{}': {e}", d.path.display()))
        })?;
        if size != d.size || sha256 != d.sha256 {
            return Err(PhoneError::Conflict(format!(
                "disk '{}' changed since the snapshot ({size} bytes, sha256 {sha256}; the snapshot has {} bytes, sha256 {})",
                d.path.display(),
                d.size,
                d.sha256
            )));
        }
    }
    Ok(())
}

/// What a cold image of VM `vm` records (no RAM, no state): its entry,
/// and its disks at rest, hashed. The VM should be stopped.
pub fn cold_meta(vm: &VmEntry) -> Result<SnapshotMeta, String> {
    Ok(SnapshotMeta::of(vm, 0, disk_records(vm)?))
}

/// VM `vm`'s disks as they are now, hashed.
fn disk_records(vm: &VmEntry) -> Result<Vec<DiskRecord>, String> {
    vm.config
        .disks
        .iter()
        .map(|d| {
            let (size, sha256, stamp) = record_disk(&d.path)
                .map_err(|e| format!("cannot read disk '{}': {e}", d.path.display()))?;
            Ok(DiskRecord {
                path: d.path.clone(),
                read_only: d.read_only,
                size,
                sha256,
                stamp,
            })
        })
        .collect()
}

impl SnapshotMeta {
    /// The record of VM `vm` taken now, with `memory_bytes` of RAM data
    /// and its `disks` as they were.
    fn of(vm: &VmEntry, memory_bytes: u64, disks: Vec<DiskRecord>) -> SnapshotMeta {
        SnapshotMeta {
            format: FORMAT,
            vm: vm.name.clone(),
            role: vm.role.name().to_string(),
            mem: vm.config.mem,
            cpus: vm.config.cpus,
            memory_bytes,
            taken_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            disks,
            entry: EntryRecord {
                kernel: vm.config.kernel.clone(),
                initrd: vm.config.initrd.clone(),
                cmdline: vm.config.cmdline.clone(),
                balloon: vm.config.balloon,
                rng: vm.config.rng,
                nets: vm.config.nets.len(),
            },
        }
    }
}

/// The snapshot an imported VM resumes from at its next start, if it has
/// not yet: `STATE_DIR/imported/NAME/snapshot` while it holds `PENDING`.
pub fn pending_import(state_dir: &Path, vm: &str) -> Option<PathBuf> {
    let dir = crate::manifest::imported_dir(state_dir)
        .join(vm)
        .join("snapshot");
    dir.join("PENDING").is_file().then_some(dir)
}
