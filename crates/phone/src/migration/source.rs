//! The source phone's end of a migration (`phone migrate`): connects to
//! the target, proves who it is and checks who answers, then relays its
//! worker's stream ([`super::outgoing`]) onto the encrypted link and
//! hands the VM over — or gives it back to its worker.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use image::migration::frame::{self, Control, DiskInfo};
use image::migration::{Link, Side};

use super::outgoing::{read_message, PAUSED, QUIT, RESUME, SYNC, SYNCED};
use super::{MigrationStatus, Track};
use crate::manifest::{Role, VmEntry};
use crate::protocol::{self, ToWorker};
use crate::supervisor::{lock, PhoneError, Shared, Supervisor};
use std::os::unix::fs::FileExt;

/// How long connecting and each answer of the target may take.
const PATIENCE: Duration = Duration::from_secs(30);
/// Largest message a worker writes.
const MAX_WORKER_MESSAGE: usize = 1 << 17;

fn control_of(message: &[u8]) -> Option<Control> {
    match message.split_first() {
        Some((&frame::CONTROL, body)) => postcard::from_bytes(body).ok(),
        _ => None,
    }
}

impl Supervisor {
    /// Starts migrating VM `name` to the phone at `to` (which must prove it
    /// holds `target_key`), aiming at `max_downtime_ms`. Returns once it is
    /// under way; [`Supervisor::migration`] follows it.
    pub fn migrate_vm(
        &self,
        name: &str,
        to: &str,
        target_key: VerifyingKey,
        max_downtime_ms: u32,
        copy_disks: bool,
    ) -> Result<MigrationStatus, PhoneError> {
        let shared = &self.shared;
        let i = shared.index(name)?;
        let vm = shared.manifest().vms[i].clone();
        if vm.role == Role::Trusted {
            return Err(PhoneError::Forbidden(format!(
                "trusted VM \"{name}\" cannot be migrated (its secrets are bound to this phone)"
            )));
        }
        if !(1..=60_000).contains(&max_downtime_ms) {
            return Err(PhoneError::BadRequest(
                "max_downtime_ms is 1 to 60000".into(),
            ));
        }
        let addr: SocketAddr = to
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| PhoneError::BadRequest(format!("\"{to}\" is not ADDRESS:PORT")))?;
        if !lock(&shared.table).slots[i].state.is_live() {
            return Err(PhoneError::Conflict(format!("VM {name} is not running")));
        }
        let track = Arc::new(Track::default());
        {
            let mut all = lock(&shared.migrations.outgoing);
            if all.get(name).is_some_and(|t| !t.get().finished()) {
                return Err(PhoneError::Conflict(format!(
                    "VM {name} is already migrating"
                )));
            }
            track.update(|s| {
                s.vm = name.to_string();
                s.peer = to.to_string();
                s.phase = "connecting";
            });
            all.insert(name.to_string(), track.clone());
        }
        let shared = shared.clone();
        let job = Job {
            shared: shared.clone(),
            i,
            name: name.to_string(),
            addr,
            target_key,
            max_downtime_ms,
            copy_disks,
            track: track.clone(),
        };
        std::thread::Builder::new()
            .name(format!("migrate-{name}"))
            .spawn(move || job.run())
            .map_err(|e| PhoneError::Failed(e.to_string()))?;
        Ok(track.get())
    }

    /// The latest migration of VM `name`.
    pub fn migration(&self, name: &str) -> Result<MigrationStatus, PhoneError> {
        self.shared.index(name)?;
        lock(&self.shared.migrations.outgoing)
            .get(name)
            .map(|t| t.get())
            .ok_or_else(|| PhoneError::NotFound(format!("VM {name} has not migrated")))
    }

    /// Gives up VM `name`'s migration: the guest runs on here. Too late
    /// once the other phone runs it.
    pub fn cancel_migration(&self, name: &str) -> Result<MigrationStatus, PhoneError> {
        self.shared.index(name)?;
        let track = lock(&self.shared.migrations.outgoing).get(name).cloned();
        match track {
            Some(t) if !t.get().finished() => {
                t.cancel.store(true, Ordering::Release);
                Ok(t.get())
            }
            _ => Err(PhoneError::Conflict(format!("VM {name} is not migrating"))),
        }
    }
}

/// One migration away.
struct Job {
    shared: Arc<Shared>,
    i: usize,
    name: String,
    addr: SocketAddr,
    target_key: VerifyingKey,
    max_downtime_ms: u32,
    copy_disks: bool,
    track: Arc<Track>,
}

/// How far it got when it failed.
enum Failure {
    /// Before the worker was asked: nothing to undo.
    Early(String),
    /// The worker may be sending: cancel it and drain its stream.
    Sending(String),
    /// The worker sent everything and waits for the verdict.
    Verdict(String),
}

impl Job {
    fn run(self) {
        let started = Instant::now();
        let mut worker = None;
        let result = self.migrate(&mut worker, started);
        let cancelled = self.track.cancel.load(Ordering::Acquire);
        match result {
            Ok(downtime) => {
                self.track.update(|s| {
                    s.phase = "done";
                    s.downtime_ms = Some(downtime.as_secs_f64() * 1e3);
                    s.total_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                    s.remaining_bytes = 0;
                });
                self.shared.log(&format!(
                    "VM {}: migrated to {} (downtime {:.1} ms)",
                    self.name,
                    self.addr,
                    downtime.as_secs_f64() * 1e3
                ));
            }
            Err(failure) => {
                let why = match failure {
                    Failure::Early(e) => e,
                    Failure::Sending(e) => {
                        let _ = self.shared.tell(self.i, &ToWorker::CancelMigration);
                        if let Some(w) = worker.as_mut() {
                            drain(w);
                        }
                        e
                    }
                    Failure::Verdict(e) => {
                        if let Some(w) = worker.as_mut() {
                            let _ = w.write_all(&[RESUME]);
                        }
                        e
                    }
                };
                let why = if cancelled {
                    "cancelled".to_string()
                } else {
                    why
                };
                self.shared.log(&format!(
                    "VM {}: migration to {} failed: {why}; it runs on here",
                    self.name, self.addr
                ));
                self.track.update(|s| {
                    s.phase = if cancelled { "cancelled" } else { "failed" };
                    s.error = Some(why);
                    s.total_ms = Some(started.elapsed().as_secs_f64() * 1e3);
                });
            }
        }
    }

    fn check_cancel(&self) -> Result<(), String> {
        if self.track.cancel.load(Ordering::Acquire) {
            Err("cancelled".into())
        } else {
            Ok(())
        }
    }

    /// Runs the migration; the downtime when it worked.
    fn migrate(
        &self,
        worker: &mut Option<UnixStream>,
        started: Instant,
    ) -> Result<Duration, Failure> {
        use Failure::*;
        let stream = TcpStream::connect_timeout(&self.addr, PATIENCE)
            .map_err(|e| Early(format!("cannot connect to {}: {e}", self.addr)))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let _ = stream.set_write_timeout(Some(PATIENCE));
        let ours = self.shared.trust.root_signing_key();
        let mut link = Link::establish(stream, Side::Source, &ours, &self.target_key)
            .map_err(|e| Early(e.to_string()))?;
        let result = self.transfer(&mut link, worker, started);
        if let Err(Early(why) | Sending(why) | Verdict(why)) = &result {
            // The target forgets what it received.
            let why = if self.track.cancel.load(Ordering::Acquire) {
                "cancelled"
            } else {
                why
            };
            let _ = link.send(&frame::control(&Control::Failed(why.to_string())));
        }
        result
    }

    /// Everything after the link is up.
    fn transfer(
        &self,
        link: &mut Link<TcpStream>,
        worker: &mut Option<UnixStream>,
        started: Instant,
    ) -> Result<Duration, Failure> {
        use Failure::*;
        self.check_cancel().map_err(Early)?;
        let entry = self.shared.manifest().vms[self.i].clone();
        let disks = entry
            .config
            .disks
            .iter()
            .map(|d| DiskInfo {
                path: d.path.display().to_string(),
                size: std::fs::metadata(&d.path).map_or(0, |m| m.len()),
                read_only: d.read_only,
            })
            .collect();
        let hello = Control::Hello {
            format: frame::FORMAT,
            vm: entry.name.clone(),
            entry: entry.to_toml().map_err(Early)?,
            mem: entry.config.mem,
            disks,
            copy_disks: self.copy_disks,
        };
        link.send(&frame::control(&hello))
            .map_err(|e| Early(e.to_string()))?;
        answer(link, &Control::Accept).map_err(Early)?;
        self.track.update(|s| s.phase = "copying");
        let (ours_end, theirs) = protocol::stream_pair().map_err(|e| Early(e.to_string()))?;
        self.shared
            .tell_with(
                self.i,
                &ToWorker::Migrate(self.max_downtime_ms),
                Some(std::os::fd::AsFd::as_fd(&theirs)),
            )
            .map_err(|e| Early(e.to_string()))?;
        drop(theirs);
        let w = worker.insert(UnixStream::from(ours_end));
        let _ = w.set_read_timeout(Some(PATIENCE));
        let mut paused_at = None;
        loop {
            if self.track.cancel.load(Ordering::Acquire) {
                return Err(Sending("cancelled".into()));
            }
            let m = read_message(w, MAX_WORKER_MESSAGE)
                .map_err(|e| Sending(format!("the worker's stream: {e}")))?;
            if m.first() == Some(&SYNC) {
                // The target takes everything in flight before the pause.
                link.send(&frame::control(&Control::Sync))
                    .map_err(|e| Sending(e.to_string()))?;
                answer(link, &Control::Synced).map_err(Sending)?;
                w.write_all(&[SYNCED])
                    .map_err(|e| Sending(format!("the worker's stream: {e}")))?;
                continue;
            }
            if m.first() == Some(&PAUSED) {
                paused_at = Some(Instant::now());
                self.track.update(|s| s.phase = "stopped");
                continue;
            }
            let c = control_of(&m);
            if let Some(Control::Failed(why)) = &c {
                // The worker gave up (and resumed its guest).
                let _ = link.send(&m);
                return Err(Early(why.clone()));
            }
            if let Some(Control::Progress {
                round,
                sent,
                dirtied,
                micros,
            }) = &c
            {
                let secs = (*micros as f64 / 1e6).max(1e-6);
                self.track.update(|s| {
                    let before = s.sent_bytes;
                    s.round = *round;
                    s.sent_bytes = *sent;
                    s.remaining_bytes = *dirtied;
                    s.rate_mbps = (*sent - before.min(*sent)) as f64 / secs / 1e6;
                    s.dirty_mbps = *dirtied as f64 / secs / 1e6;
                });
            } else if m.first() == Some(&frame::PAGES) {
                let n = ((m.len() - 1) / (4 + frame::PAGE)) as u64 * frame::PAGE as u64;
                self.track.update(|s| s.sent_bytes += n);
            }
            let end = matches!(c, Some(Control::End));
            if end && self.copy_disks {
                // The worker flushed the disks and let them go; the guest is paused.
                self.send_disks(link, &entry).map_err(Verdict)?;
            }
            link.send(&m).map_err(|e| {
                if end {
                    Verdict(e.to_string())
                } else {
                    Sending(e.to_string())
                }
            })?;
            if end {
                let copied = paused_at.map(|t| t.elapsed().as_secs_f64() * 1e3);
                self.track.update(|s| s.stop_copy_ms = copied);
                break;
            }
        }
        self.track.update(|s| s.phase = "starting");
        // The target builds and starts the guest; it must say so.
        answer(link, &Control::Running).map_err(Verdict)?;
        let downtime = paused_at.map_or(started.elapsed(), |t| t.elapsed());
        {
            let mut t = lock(&self.shared.table);
            let slot = &mut t.slots[self.i];
            slot.migrated_to = Some(self.addr.to_string());
            slot.stopping = true;
        }
        // The guest runs there: this worker ends, never to run it again.
        let _ = w.write_all(&[QUIT]);
        Ok(downtime)
    }
}

impl Job {
    /// Sends the paused VM's disks (their data; runs of zeros are left out:
    /// the target's copies start as zeros).
    fn send_disks(&self, link: &mut Link<TcpStream>, entry: &VmEntry) -> Result<(), String> {
        const PIECE: usize = 60 << 10;
        let mut buf = vec![0u8; PIECE];
        for (k, d) in entry.config.disks.iter().enumerate() {
            let file = std::fs::File::open(&d.path)
                .map_err(|e| format!("cannot read disk '{}': {e}", d.path.display()))?;
            let mut offset = 0u64;
            loop {
                let n = file
                    .read_at(&mut buf, offset)
                    .map_err(|e| format!("cannot read disk '{}': {e}", d.path.display()))?;
                if n == 0 {
                    break;
                }
                if buf[..n].iter().any(|&b| b != 0) {
                    let piece = Control::Disk {
                        index: k as u32,
                        offset,
                        data: buf[..n].to_vec(),
                    };
                    link.send(&frame::control(&piece))
                        .map_err(|e| e.to_string())?;
                }
                offset += n as u64;
            }
        }
        Ok(())
    }
}

/// Waits for the target's `want`; its refusal or failure, or anything
/// else, is the error.
fn answer(link: &mut Link<TcpStream>, want: &Control) -> Result<(), String> {
    let message = link.receive().map_err(|e| e.to_string())?;
    match control_of(&message) {
        Some(c) if c == *want => Ok(()),
        Some(Control::Refuse(why)) => Err(format!("the target refused: {why}")),
        Some(Control::Failed(why)) => Err(format!("the target gave up: {why}")),
        _ => Err("the target answered nonsense".into()),
    }
}

/// Reads a cancelled worker's stream until it says it gave up (or ends),
/// so that it never blocks writing; answers RESUME if it had finished.
fn drain(w: &mut UnixStream) {
    let _ = w.set_read_timeout(Some(Duration::from_secs(10)));
    while let Ok(m) = read_message(w, MAX_WORKER_MESSAGE) {
        match control_of(&m) {
            Some(Control::Failed(_)) => return,
            Some(Control::End) => {
                let _ = w.write_all(&[RESUME]);
                return;
            }
            _ => {}
        }
    }
}
