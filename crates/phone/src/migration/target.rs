//! The target phone's end of a migration (`phone receive`): listens for
//! one source, checks it is the phone expected, receives the VM's RAM
//! into a memfd and its state, then adds the VM to the running phone and
//! starts its worker on that RAM. Until the guest runs, nothing of it is
//! kept: a refused, broken or cancelled migration leaves the phone as it
//! was.

use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use image::migration::frame::{self, Control, DiskInfo, Event, Receiver};
use image::migration::{Link, Side};

use super::{MigrationStatus, Track};
use crate::adopt::Staged;
use crate::manifest::Manifest;
use crate::status::VmState;
use crate::supervisor::{lock, PhoneError, Shared, Supervisor};

/// How long the source may stay silent.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long the worker may take to start the guest.
const START_LIMIT: Duration = Duration::from_secs(30);

impl Supervisor {
    /// Listens on `listen` for one migration from the phone holding
    /// `source_key`. Returns once listening; [`Supervisor::receiving`]
    /// follows it.
    pub fn receive_vm(
        &self,
        listen: &str,
        source_key: VerifyingKey,
    ) -> Result<MigrationStatus, PhoneError> {
        let shared = &self.shared;
        let track = Arc::new(Track::default());
        {
            let mut incoming = lock(&shared.migrations.incoming);
            if incoming.as_ref().is_some_and(|t| !t.get().finished()) {
                return Err(PhoneError::Conflict(
                    "the phone is already receiving a VM".into(),
                ));
            }
            let listener = TcpListener::bind(listen).map_err(|e| {
                PhoneError::BadRequest(format!("cannot listen on \"{listen}\": {e}"))
            })?;
            listener
                .set_nonblocking(true)
                .map_err(|e| PhoneError::Failed(e.to_string()))?;
            let peer = listener
                .local_addr()
                .map_or(listen.to_string(), |a| a.to_string());
            track.update(|s| {
                s.phase = "listening";
                s.peer = peer;
            });
            *incoming = Some(track.clone());
            let (shared, track) = (shared.clone(), track.clone());
            std::thread::Builder::new()
                .name("receive".into())
                .spawn(move || receive(&shared, listener, source_key, &track))
                .map_err(|e| PhoneError::Failed(e.to_string()))?;
        }
        Ok(track.get())
    }

    /// The latest incoming migration.
    pub fn receiving(&self) -> Result<MigrationStatus, PhoneError> {
        lock(&self.shared.migrations.incoming)
            .as_ref()
            .map(|t| t.get())
            .ok_or_else(|| PhoneError::NotFound("the phone has not received a VM".into()))
    }

    /// Stops receiving (before the guest runs here; nothing is kept).
    pub fn cancel_receive(&self) -> Result<MigrationStatus, PhoneError> {
        match lock(&self.shared.migrations.incoming).as_ref() {
            Some(t) if !t.get().finished() => {
                t.cancel.store(true, Ordering::Release);
                Ok(t.get())
            }
            _ => Err(PhoneError::Conflict(
                "the phone is not receiving a VM".into(),
            )),
        }
    }
}

fn receive(shared: &Arc<Shared>, listener: TcpListener, key: VerifyingKey, track: &Track) {
    let started = Instant::now();
    let result = accept(&listener, track).and_then(|stream| {
        drop(listener);
        run(shared, stream, key, track)
    });
    let cancelled = track.cancel.load(Ordering::Acquire);
    match result {
        Ok((name, downtime_from_end)) => {
            shared.log(&format!("VM {name}: migrated in"));
            track.update(|s| {
                s.phase = "done";
                s.total_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                s.downtime_ms = Some(downtime_from_end.as_secs_f64() * 1e3);
            });
        }
        Err(why) => {
            let why = if cancelled {
                "cancelled".to_string()
            } else {
                why
            };
            shared.log(&format!("receiving a VM failed: {why}"));
            track.update(|s| {
                s.phase = if cancelled { "cancelled" } else { "failed" };
                s.error = Some(why);
            });
        }
    }
}

/// Waits for the one connection (or a cancel).
fn accept(listener: &TcpListener, track: &Track) -> Result<TcpStream, String> {
    loop {
        if track.cancel.load(Ordering::Acquire) {
            return Err("cancelled".into());
        }
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A memfd of `size` bytes (zeros) for the guest's RAM.
fn memfd(size: u64) -> Result<File, String> {
    // SAFETY: memfd_create with a static C string; the fd is owned at once.
    let raw = unsafe { libc::memfd_create(c"pocketvisor-incoming".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    file.set_len(size).map_err(|e| e.to_string())?;
    Ok(file)
}

/// The copies of the disks, created empty at their sizes in the VM's
/// staged directory, when they come along.
fn disk_files(staged: &Staged, disks: &[DiskInfo], copy: bool) -> Result<Vec<File>, String> {
    if !copy {
        return Ok(Vec::new());
    }
    disks
        .iter()
        .enumerate()
        .map(|(k, d)| {
            let path = staged.tmp().join(format!("disk{k}"));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| format!("cannot create '{}': {e}", path.display()))?;
            file.set_len(d.size).map_err(|e| e.to_string())?;
            Ok(file)
        })
        .collect()
}

/// Checks what the source says it sends, against this phone.
fn check_hello(
    shared: &Shared,
    vm: &str,
    entry: &str,
    mem: u64,
    disks: &[DiskInfo],
    copied_to: Option<&std::path::Path>,
) -> Result<toml::Table, String> {
    let manifest = shared.manifest();
    if manifest.vm(vm).is_some() {
        return Err(format!("this phone already has a VM named \"{vm}\""));
    }
    let used: u64 = {
        let t = lock(&shared.table);
        t.slots
            .iter()
            .zip(&manifest.vms)
            .filter(|(s, _)| s.state.is_live())
            .map(|(_, v)| v.config.mem)
            .sum()
    };
    if used + mem > manifest.memory {
        return Err(format!(
            "it needs {} MiB but only {} MiB of this phone's {} MiB budget are free",
            mem >> 20,
            manifest.memory.saturating_sub(used) >> 20,
            manifest.memory >> 20
        ));
    }
    let mut file: toml::Table = entry
        .parse()
        .map_err(|e| format!("its manifest entry: {e}"))?;
    let table = file
        .get_mut("vm")
        .and_then(|v| v.as_array_mut())
        .filter(|a| a.len() == 1)
        .and_then(|a| a[0].as_table_mut())
        .ok_or("its manifest entry is not one [[vm]]")?;
    if table.get("name").and_then(|n| n.as_str()) != Some(vm) {
        return Err("its manifest entry names another VM".into());
    }
    if table.get("role").and_then(|r| r.as_str()) == Some("trusted") {
        return Err("trusted VMs do not migrate".into());
    }
    if let Some(dir) = copied_to {
        // The disks come along: the VM uses its copies here.
        let paths: Vec<toml::Value> = disks
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let ro = if d.read_only { ",ro" } else { "" };
                format!("{}{ro}", dir.join(format!("disk{k}")).display()).into()
            })
            .collect();
        table.insert("disks".into(), paths.into());
    }
    for d in disks.iter().filter(|_| copied_to.is_none()) {
        let size = std::fs::metadata(&d.path)
            .map_err(|e| format!("disk '{}' is not here (shared storage): {e}", d.path))?
            .len();
        if size != d.size {
            return Err(format!(
                "disk '{}' is {size} bytes here, {} there",
                d.path, d.size
            ));
        }
    }
    table.insert("cid".into(), (manifest.free_cid() as i64).into());
    table.insert("autostart".into(), true.into());
    Ok(file)
}

/// Receives one VM over `stream`; its name and the time from `End` to
/// the guest running.
fn run(
    shared: &Arc<Shared>,
    stream: TcpStream,
    key: VerifyingKey,
    track: &Track,
) -> Result<(String, Duration), String> {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let _ = stream.set_write_timeout(Some(PATIENCE));
    let ours = shared.trust.root_signing_key();
    let mut link = Link::establish(stream, Side::Target, &ours, &key).map_err(|e| e.to_string())?;
    let mut receiver = Receiver::new();
    let first = link.receive().map_err(|e| e.to_string())?;
    let (vm, entry, ram, staged, disk_files) =
        match receiver.accept(&first).map_err(|e| e.to_string())? {
            Event::Hello {
                vm,
                entry,
                mem,
                disks,
                copy_disks,
            } => {
                let checked = Staged::new(&shared.manifest(), &vm)
                    .map_err(|e| e.to_string())
                    .and_then(|staged| {
                        let copied_to = copy_disks.then(|| staged.target().to_path_buf());
                        let entry =
                            check_hello(shared, &vm, &entry, mem, &disks, copied_to.as_deref())?;
                        let files = disk_files(&staged, &disks, copy_disks)?;
                        Ok((entry, memfd(mem)?, staged, files))
                    });
                match checked {
                    Ok((entry, ram, staged, files)) => (vm, entry, ram, staged, files),
                    Err(why) => {
                        let _ = link.send(&frame::control(&Control::Refuse(why.clone())));
                        return Err(why);
                    }
                }
            }
            Event::Failed(why) => return Err(format!("the source gave up: {why}")),
            _ => return Err("the source did not say hello".into()),
        };
    link.send(&frame::control(&Control::Accept))
        .map_err(|e| e.to_string())?;
    track.update(|s| {
        s.vm = vm.clone();
        s.phase = "copying";
    });
    let fail = |link: &mut Link<TcpStream>, why: String| {
        let _ = link.send(&frame::control(&Control::Failed(why.clone())));
        why
    };
    let state = loop {
        if track.cancel.load(Ordering::Acquire) {
            return Err(fail(&mut link, "cancelled by the target".into()));
        }
        let message = link.receive().map_err(|e| e.to_string())?;
        match receiver.accept(&message) {
            Ok(Event::Pages(pages)) => {
                for (n, bytes) in &pages {
                    ram.write_all_at(bytes, u64::from(*n) * frame::PAGE as u64)
                        .map_err(|e| fail(&mut link, e.to_string()))?;
                }
                track.update(|s| s.sent_bytes += (pages.len() * frame::PAGE) as u64);
            }
            Ok(Event::Progress { round, .. }) => track.update(|s| s.round = round),
            Ok(Event::StatePiece) => {}
            Ok(Event::Sync) => link
                .send(&frame::control(&Control::Synced))
                .map_err(|e| e.to_string())?,
            Ok(Event::Disk {
                index,
                offset,
                data,
            }) => {
                let Some(file) = disk_files.get(index as usize) else {
                    return Err(fail(&mut link, "disk bytes that were not announced".into()));
                };
                file.write_all_at(&data, offset)
                    .map_err(|e| fail(&mut link, format!("cannot write disk {index}: {e}")))?;
            }
            Ok(Event::End(state)) => break state,
            Ok(Event::Failed(why)) => return Err(format!("the source gave up: {why}")),
            Ok(Event::Hello { .. }) => return Err(fail(&mut link, "a second hello".into())),
            Err(e) => return Err(fail(&mut link, e.to_string())),
        }
    };
    let end = Instant::now();
    track.update(|s| s.phase = "starting");
    let name = vm.clone();
    for f in &disk_files {
        f.sync_all().map_err(|e| fail(&mut link, e.to_string()))?;
    }
    drop(disk_files);
    start(shared, staged, &vm, &entry, state, ram).map_err(|why| fail(&mut link, why))?;
    link.send(&frame::control(&Control::Running))
        .map_err(|e| e.to_string())?;
    Ok((name, end.elapsed()))
}

/// Adds the VM to the phone and starts its worker on the received RAM;
/// returns once the guest runs.
fn start(
    shared: &Arc<Shared>,
    staged: Staged,
    vm: &str,
    entry: &toml::Table,
    state: Vec<u8>,
    ram: File,
) -> Result<(), String> {
    let manifest = shared.manifest();
    let text = toml::to_string(entry).map_err(|e| e.to_string())?;
    std::fs::write(staged.tmp().join("vm.toml"), &text).map_err(|e| e.to_string())?;
    // Checked as the phone will load it at its next start.
    let source = manifest
        .source
        .clone()
        .ok_or("this phone was not started from a manifest file")?;
    let dir = staged.install_written().map_err(|e| e.to_string())?;
    let checked = Manifest::load(&source)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            m.vm(vm)
                .cloned()
                .ok_or_else(|| "its entry did not load".into())
        });
    let entry = match checked {
        Ok(e) => e,
        Err(why) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(why);
        }
    };
    let i = shared.add_vm(entry).map_err(|e| {
        let _ = std::fs::remove_dir_all(&dir);
        e.to_string()
    })?;
    lock(&shared.table).slots[i].incoming = Some((state, OwnedFd::from(ram)));
    {
        let mut t = lock(&shared.table);
        t.slots[i].recent.clear();
        shared.spawn(&mut t, i)?;
    }
    let deadline = Instant::now() + START_LIMIT;
    loop {
        let state = lock(&shared.table).slots[i].state.clone();
        match state {
            VmState::Running | VmState::Paused => return Ok(()),
            VmState::Starting if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            other => {
                return Err(format!(
                    "the guest did not start here: {}",
                    match other {
                        VmState::Stopped(r) | VmState::Crashed(r) => r,
                        _ => "it took too long".into(),
                    }
                ))
            }
        }
    }
}
