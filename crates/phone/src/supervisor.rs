//! The supervisor: one worker process per VM of the phone, their states,
//! the restart policy, and what the management API asks of them. A worker
//! that ends is recorded with why (its exit code or the signal that killed
//! it); a crashed one — guest crash, VMM panic, a forbidden system call,
//! SIGKILL — is started again when its VM's policy says `on-crash`, and a
//! guest reset always starts a fresh worker. Nothing another worker does
//! reaches this one.
//!
//! Each worker gets three socket pairs ([`crate::protocol`]); a thread per
//! worker reads its control socket (console output, reports) and another
//! answers its vsock requests ([`crate::routing`]). A watch thread reaps
//! and restarts workers, samples their CPU and memory, and runs the memory
//! manager ([`crate::memory`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::manifest::{Manifest, Restart, Role, VmEntry};
use crate::protocol::{self, FromWorker, Received, Report, ToWorker};
pub(crate) use crate::slot::{Slot, SnapshotReply};
pub use crate::status::{ConsoleHub, PhoneError, PhoneStatus, VmState, VmStatus};
use crate::trusted::TrustHub;
use crate::worker::exit;
use crate::{memory, routing};

/// Most restarts of one VM within [`RESTART_WINDOW`] before the supervisor
/// gives up on it (a VM that crashes at once would otherwise spin).
pub const MAX_RESTARTS: usize = 5;
/// See [`MAX_RESTARTS`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// How often the supervisor looks for workers that ended (an idle phone
/// should wake its host rarely).
const REAP_INTERVAL: Duration = Duration::from_millis(250);
/// The scheduling niceness of a trusted VM's worker, and of the others':
/// when the host's cores are short, a trusted service (small, mostly idle,
/// latency-bound) runs before an open or corporate VM — one flooding it
/// included.
pub const TRUSTED_NICE: i32 = 0;
/// See [`TRUSTED_NICE`].
pub const OTHER_NICE: i32 = 5;
/// How long a stopped worker gets to flush its disks before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(20);

/// A live worker's process and sockets.
pub(crate) struct Worker {
    pub(crate) child: Child,
    pub(crate) control: Arc<OwnedFd>,
    pub(crate) inbox: Arc<OwnedFd>,
    /// Which start of the VM this is (its threads check it).
    generation: u64,
}

/// The VMs' table, under one lock.
pub(crate) struct Table {
    pub(crate) slots: Vec<Slot>,
    pub(crate) foreground: usize,
    generation: u64,
}

/// Starts a VM's worker: given the VM's name, the command to run (the
/// supervisor adds the protocol sockets as descriptors 3 to 5).
pub type WorkerCommand = Box<dyn Fn(&str) -> Command + Send + Sync>;

/// What the supervisor's threads share.
pub(crate) struct Shared {
    /// The phone's manifest; VMs are only ever appended (imported or
    /// migrated in while the phone runs), so an index stays valid.
    manifest: RwLock<Arc<Manifest>>,
    command: WorkerCommand,
    pub(crate) table: Mutex<Table>,
    /// Signalled when a report arrives or a worker ends.
    changed: Condvar,
    consoles: RwLock<Vec<Arc<ConsoleHub>>>,
    /// The foreground VM's index, for consoles that follow it.
    pub(crate) foreground: watch::Sender<usize>,
    log: Mutex<Option<File>>,
    stop: AtomicBool,
    /// The phone's identity and its trusted VMs' trust devices.
    pub(crate) trust: Arc<TrustHub>,
    /// Rate limits of new VM-to-VM streams.
    pub(crate) connect_limits: routing::ConnectLimits,
    /// Migrations under way or done, by VM, and the one being received.
    pub(crate) migrations: crate::migration::Migrations,
}

/// The workers of one phone.
pub struct Supervisor {
    pub(crate) shared: Arc<Shared>,
    watcher: Option<JoinHandle<()>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a worker ended, and whether that is a crash.
fn judge(status: ExitStatus) -> (bool, String) {
    if let Some(sig) = status.signal() {
        let why = match sig {
            libc::SIGSYS => "killed by SIGSYS (a forbidden system call)".to_string(),
            libc::SIGKILL => "killed by SIGKILL".to_string(),
            libc::SIGSEGV => "killed by SIGSEGV".to_string(),
            libc::SIGABRT => "killed by SIGABRT (the VMM aborted)".to_string(),
            other => format!("killed by signal {other}"),
        };
        return (true, why);
    }
    match status.code().map(|c| c as u8) {
        Some(exit::POWERED_OFF) => (false, "powered off".into()),
        Some(exit::STOPPED) => (false, "stopped".into()),
        Some(exit::CRASHED) => (true, "the guest crashed".into()),
        Some(exit::RESET) => (true, "the guest reset".into()),
        Some(exit::FAILED) => (false, "could not start (see the phone's log)".into()),
        other => (true, format!("exited with status {other:?}")),
    }
}

impl Shared {
    /// The manifest as it is now.
    pub(crate) fn manifest(&self) -> Arc<Manifest> {
        self.manifest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// VM `i`'s console hub.
    pub(crate) fn console(&self, i: usize) -> Option<Arc<ConsoleHub>> {
        self.consoles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
            .cloned()
    }

    /// Adds VM `entry` to the running phone (stopped; the caller starts
    /// it). Its name and CID must be new; trusted VMs join only at start.
    pub(crate) fn add_vm(&self, entry: VmEntry) -> Result<usize, PhoneError> {
        let mut table = lock(&self.table);
        let mut manifest = self.manifest.write().unwrap_or_else(|e| e.into_inner());
        if entry.role == Role::Trusted {
            return Err(PhoneError::Forbidden(format!(
                "trusted VM \"{}\" can only join the phone at its start",
                entry.name
            )));
        }
        if let Some(v) = manifest
            .vms
            .iter()
            .find(|v| v.name == entry.name || v.cid == entry.cid)
        {
            return Err(PhoneError::Conflict(format!(
                "the phone already has VM \"{}\" (cid {})",
                v.name, v.cid
            )));
        }
        let mut m = (**manifest).clone();
        m.vms.push(entry);
        *manifest = Arc::new(m);
        table.slots.push(Slot::new());
        self.consoles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(ConsoleHub::new()));
        Ok(table.slots.len() - 1)
    }

    /// Appends a line to `STATE_DIR/phone.log` (and nowhere if there is none).
    pub(crate) fn log(&self, line: &str) {
        if let Some(f) = lock(&self.log).as_mut() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(f, "[{}.{:03}] {line}", t.as_secs(), t.subsec_millis());
        }
    }

    pub(crate) fn index(&self, name: &str) -> Result<usize, PhoneError> {
        self.manifest()
            .vms
            .iter()
            .position(|v| v.name == name)
            .ok_or_else(|| PhoneError::NotFound(format!("the phone has no VM named \"{name}\"")))
    }

    /// Sends `command` (and `fd`) to VM `i`'s worker.
    pub(crate) fn tell_with(
        &self,
        i: usize,
        command: &ToWorker,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<(), PhoneError> {
        let table = lock(&self.table);
        let Some(w) = &table.slots[i].worker else {
            return Err(PhoneError::Conflict(format!(
                "VM {} is not running",
                self.manifest().vms[i].name
            )));
        };
        let control = w.control.clone();
        drop(table);
        protocol::send(control.as_fd(), command, fd, false)
            .map(|_| ())
            .map_err(|e| PhoneError::Failed(format!("cannot reach the worker: {e}")))
    }

    /// Sends `command` to VM `i`'s worker.
    pub(crate) fn tell(&self, i: usize, command: &ToWorker) -> Result<(), PhoneError> {
        self.tell_with(i, command, None)
    }

    /// Starts VM `i`'s worker (the table locked by the caller).
    pub(crate) fn spawn(self: &Arc<Self>, table: &mut Table, i: usize) -> Result<(), String> {
        let name = &self.manifest().vms[i].name;
        let io = |e: std::io::Error| format!("cannot start the worker of {name}: {e}");
        let (control, control_w) = protocol::seqpacket_pair().map_err(io)?;
        let (router, router_w) = protocol::seqpacket_pair().map_err(io)?;
        let (inbox, inbox_w) = protocol::seqpacket_pair().map_err(io)?;
        let mut command = (self.command)(name);
        // A restore is for this start only: a crash later boots afresh.
        if let Some(dir) = table.slots[i].restore_from.take() {
            // An imported VM's snapshot is used once.
            let _ = std::fs::remove_file(dir.join("PENDING"));
            command.arg("--restore").arg(dir);
        }
        let incoming = table.slots[i].incoming.take();
        if incoming.is_some() {
            command.arg("--incoming");
        }
        let nice = if self.manifest().vms[i].role == Role::Trusted {
            TRUSTED_NICE
        } else {
            OTHER_NICE
        };
        let given = [
            control_w.as_raw_fd(),
            router_w.as_raw_fd(),
            inbox_w.as_raw_fd(),
        ];
        // SAFETY: between fork and exec only async-signal-safe calls
        // (fcntl, dup2) on descriptors we own.
        unsafe {
            command.pre_exec(move || {
                // Every thread the worker makes inherits this.
                libc::setpriority(libc::PRIO_PROCESS, 0, nice);
                // Lift them out of the way first: a source may sit on a target.
                let mut high = [0; 3];
                for (h, fd) in high.iter_mut().zip(given) {
                    *h = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 64);
                    if *h < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for (target, h) in [
                    protocol::CONTROL_FD,
                    protocol::ROUTER_FD,
                    protocol::INBOX_FD,
                ]
                .into_iter()
                .zip(high)
                {
                    if libc::dup2(h, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(io)?;
        drop((control_w, router_w, inbox_w));
        table.generation += 1;
        let generation = table.generation;
        if let Some((state, memfd)) = incoming {
            // The worker's first read: its state and RAM.
            protocol::send(
                control.as_fd(),
                &ToWorker::Incoming(state),
                Some(memfd.as_fd()),
                false,
            )
            .map_err(io)?;
        }
        let control = Arc::new(control);
        let inbox = Arc::new(inbox);
        let slot = &mut table.slots[i];
        slot.worker = Some(Worker {
            child,
            control: control.clone(),
            inbox,
            generation,
        });
        slot.state = VmState::Starting;
        slot.report = None;
        slot.cpu_sample = None;
        slot.stopping = false;
        let pid = slot.worker.as_ref().map_or(0, |w| w.child.id());
        self.log(&format!("VM {name}: worker {pid} started"));
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("control-{name}"))
            .spawn(move || me.read_control(i, generation, control))
            .map_err(&io)?;
        let me = self.clone();
        std::thread::Builder::new()
            .name(format!("router-{name}"))
            .spawn(move || routing::serve(&me, i, generation, router))
            .map_err(io)?;
        Ok(())
    }

    /// Whether generation `g` of VM `i` is still the live worker.
    pub(crate) fn is_current(&self, i: usize, g: u64) -> bool {
        lock(&self.table).slots[i]
            .worker
            .as_ref()
            .is_some_and(|w| w.generation == g)
    }

    /// Reads a worker's control socket until it closes.
    fn read_control(self: Arc<Self>, i: usize, generation: u64, control: Arc<OwnedFd>) {
        loop {
            let message = match protocol::receive::<FromWorker>(control.as_fd(), false) {
                Ok(Received::Message(m, _)) => m,
                Ok(Received::Empty) => continue,
                Ok(Received::Closed) | Err(_) => return,
            };
            match message {
                FromWorker::Console(bytes) => {
                    if let Some(c) = self.console(i) {
                        c.publish(&bytes)
                    }
                }
                FromWorker::Measured(m) => {
                    // Only before the guest runs: a worker whose guest has
                    // started cannot change what it measured.
                    let starting = {
                        let t = lock(&self.table);
                        let slot = &t.slots[i];
                        slot.state == VmState::Starting
                            && slot
                                .worker
                                .as_ref()
                                .is_some_and(|w| w.generation == generation)
                    };
                    if starting {
                        self.trust
                            .install(&self, i, generation, trust::Measurement(m));
                    }
                }
                FromWorker::Started => {
                    let mut t = lock(&self.table);
                    let fg = t.foreground == i;
                    if let Some(slot) = t.slots.get_mut(i) {
                        if slot
                            .worker
                            .as_ref()
                            .is_some_and(|w| w.generation == generation)
                        {
                            slot.state = VmState::Running;
                        }
                    }
                    let ballooned = t.slots[i].balloon_base + t.slots[i].reclaimed > 0;
                    drop(t);
                    self.changed.notify_all();
                    let _ = self.tell(i, &ToWorker::SetCpuQuota(self.quota_for(fg)));
                    // A restarted worker gets the balloon target its VM had.
                    if ballooned {
                        let _ = memory::apply(&self, i);
                    }
                }
                FromWorker::Report(r) => {
                    let mut t = lock(&self.table);
                    let slot = &mut t.slots[i];
                    if slot
                        .worker
                        .as_ref()
                        .is_some_and(|w| w.generation == generation)
                    {
                        if slot.state.is_live() && slot.state != VmState::Starting {
                            slot.state = if r.paused {
                                VmState::Paused
                            } else {
                                VmState::Running
                            };
                        }
                        slot.report = Some(r);
                    }
                    drop(t);
                    self.changed.notify_all();
                }
                FromWorker::Error(e) => {
                    self.log(&format!("VM {}: {e}", self.manifest().vms[i].name));
                    let mut t = lock(&self.table);
                    t.slots[i].report = None;
                    if t.slots[i].snapshot == SnapshotReply::Pending {
                        t.slots[i].snapshot = SnapshotReply::Done(Err(e));
                    }
                    drop(t);
                    self.changed.notify_all();
                }
                FromWorker::Snapshot {
                    state,
                    memory_bytes,
                } => {
                    let mut t = lock(&self.table);
                    if t.slots[i].snapshot == SnapshotReply::Pending {
                        t.slots[i].snapshot = SnapshotReply::Done(Ok((state, memory_bytes)));
                    }
                    drop(t);
                    self.changed.notify_all();
                }
            }
        }
    }

    /// The CPU quota of a VM in the foreground (`true`) or background.
    pub(crate) fn quota_for(&self, foreground: bool) -> Option<u32> {
        if foreground {
            None
        } else {
            Some(self.manifest().background_cpu)
        }
    }

    /// Records workers that ended and starts again those the policy says to.
    fn reap(self: &Arc<Self>) {
        let mut table = lock(&self.table);
        let mut ended = false;
        for i in 0..table.slots.len() {
            let slot = &mut table.slots[i];
            let Some(w) = slot.worker.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = w.child.try_wait() else {
                continue;
            };
            ended = true;
            slot.worker = None;
            slot.report = None;
            slot.rss_bytes = 0;
            slot.cpu_percent = 0.0;
            let name = &self.manifest().vms[i].name;
            let (crash, why) = judge(status);
            self.log(&format!("VM {name}: worker ended: {why}"));
            // A sandboxed worker cannot remove its own socket.
            let socket = self.manifest().vsock_path(name);
            if std::fs::symlink_metadata(&socket).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(&socket);
            }
            let reset = status.code() == Some(exit::RESET as i32);
            if let Some(to) = &slot.migrated_to {
                slot.state = VmState::Stopped(format!("migrated to {to}"));
                continue;
            }
            if !crash || slot.stopping {
                slot.state = if crash {
                    VmState::Crashed(why)
                } else {
                    VmState::Stopped(why)
                };
                continue;
            }
            let now = Instant::now();
            slot.recent
                .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
            let wanted = reset || self.manifest().vms[i].restart == Restart::OnCrash;
            if wanted && slot.recent.len() < MAX_RESTARTS {
                slot.recent.push(now);
                slot.restarts += 1;
                if let Err(e) = self.spawn(&mut table, i) {
                    table.slots[i].state = VmState::Crashed(format!("{why}; {e}"));
                }
            } else if wanted {
                slot.state = VmState::Crashed(format!(
                    "{why}; restarted {MAX_RESTARTS} times within {} s, given up",
                    RESTART_WINDOW.as_secs()
                ));
            } else {
                slot.state = VmState::Crashed(why);
            }
        }
        drop(table);
        if ended {
            self.changed.notify_all();
        }
    }

    /// Samples every worker's CPU and resident memory, asks for reports.
    fn sample(&self) {
        let mut table = lock(&self.table);
        let now = Instant::now();
        let mut ask = Vec::new();
        for slot in table.slots.iter_mut() {
            let Some(w) = &slot.worker else { continue };
            let pid = w.child.id();
            if let Some(ticks) = memory::cpu_ticks(pid) {
                if let Some((t0, at)) = slot.cpu_sample {
                    let secs = now.duration_since(at).as_secs_f64();
                    if secs > 0.0 {
                        let used = ticks.saturating_sub(t0) as f64 / memory::ticks_per_second();
                        slot.cpu_percent = (used / secs * 1000.0).round() / 10.0;
                    }
                }
                slot.cpu_sample = Some((ticks, now));
            }
            slot.rss_bytes = memory::rss_bytes(pid).unwrap_or(0);
            if slot.state != VmState::Starting {
                ask.push(w.control.clone());
            }
        }
        drop(table);
        for c in ask {
            let _ = protocol::send(c.as_fd(), &ToWorker::Report, None, true);
        }
    }

    fn watch(self: Arc<Self>) {
        let mut last_sample = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(REAP_INTERVAL);
            self.reap();
            if last_sample.elapsed() >= Duration::from_secs(1) {
                last_sample = Instant::now();
                self.sample();
                memory::manage(&self);
            }
        }
    }

    /// Waits (up to `timeout`) until `done` holds for the table.
    pub(crate) fn wait_until(&self, timeout: Duration, done: impl Fn(&Table) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut t = lock(&self.table);
        loop {
            if done(&t) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            t = self
                .changed
                .wait_timeout(t, left.min(Duration::from_millis(100)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Supervisor {
    /// Starts the phone: a worker for every VM of `manifest` that starts
    /// with it. With `log`, events go to that file (`STATE_DIR/phone.log`).
    pub fn start(
        manifest: &Manifest,
        command: WorkerCommand,
        log: Option<&std::path::Path>,
    ) -> Result<Supervisor, String> {
        let log = match log {
            Some(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(p)
                    .map_err(|e| format!("cannot open '{}': {e}", p.display()))?,
            ),
            None => None,
        };
        let foreground = manifest.vms.iter().position(|v| v.foreground).unwrap_or(0);
        let trust = Arc::new(TrustHub::open(manifest)?);
        let shared = Arc::new(Shared {
            manifest: RwLock::new(Arc::new(manifest.clone())),
            command,
            table: Mutex::new(Table {
                slots: manifest.vms.iter().map(|_| Slot::new()).collect(),
                foreground,
                generation: 0,
            }),
            changed: Condvar::new(),
            consoles: RwLock::new(
                manifest
                    .vms
                    .iter()
                    .map(|_| Arc::new(ConsoleHub::new()))
                    .collect(),
            ),
            foreground: watch::channel(foreground).0,
            log: Mutex::new(log),
            stop: AtomicBool::new(false),
            trust,
            connect_limits: Default::default(),
            migrations: Default::default(),
        });
        shared.log(&format!("phone {} starting", manifest.name));
        // An imported snapshot resumes at its VM's first start.
        {
            let mut table = lock(&shared.table);
            for (i, v) in manifest.vms.iter().enumerate() {
                let pending = crate::snapshot::pending_import(&manifest.state_dir, &v.name);
                table.slots[i].restore_from = pending;
            }
        }
        {
            let mut table = lock(&shared.table);
            for (i, v) in manifest.vms.iter().enumerate() {
                if v.autostart {
                    shared.spawn(&mut table, i)?;
                }
            }
        }
        let s = shared.clone();
        let watcher = std::thread::Builder::new()
            .name("watch".into())
            .spawn(move || s.watch())
            .map_err(|e| format!("cannot start the watch thread: {e}"))?;
        Ok(Supervisor {
            shared,
            watcher: Some(watcher),
        })
    }

    /// The phone's manifest as it is now (VMs added while it runs
    /// included).
    pub fn manifest(&self) -> Arc<Manifest> {
        self.shared.manifest()
    }

    /// Appends a line to the phone's log.
    pub fn log(&self, line: &str) {
        self.shared.log(line);
    }

    /// Every VM's status, in manifest order.
    pub fn status(&self) -> PhoneStatus {
        let m = self.shared.manifest();
        let t = lock(&self.shared.table);
        let vms = t
            .slots
            .iter()
            .zip(&m.vms)
            .enumerate()
            .map(|(i, (s, v))| VmStatus {
                name: v.name.clone(),
                role: v.role.name(),
                state: s.state.name(),
                reason: match &s.state {
                    VmState::Stopped(w) | VmState::Crashed(w) => Some(w.clone()),
                    _ => None,
                },
                pid: s.worker.as_ref().map(|w| w.child.id()),
                cid: v.cid,
                cpu_percent: s.cpu_percent,
                rss_bytes: s.rss_bytes,
                mem_bytes: v.config.mem,
                balloon_bytes: s
                    .report
                    .as_ref()
                    .and_then(|r| r.balloon.as_ref())
                    .map_or(0, |b| b.actual),
                restarts: s.restarts,
                foreground: t.foreground == i,
                cpu_quota: s.report.as_ref().and_then(|r| r.cpu_quota),
            })
            .collect();
        PhoneStatus {
            phone: m.name.clone(),
            supervisor_pid: std::process::id(),
            vms,
        }
    }

    /// VM `name`'s state (for tests and the API).
    pub fn state(&self, name: &str) -> Result<VmState, PhoneError> {
        let i = self.shared.index(name)?;
        Ok(lock(&self.shared.table).slots[i].state.clone())
    }

    /// VM `name`'s latest report from its worker.
    pub fn report(&self, name: &str) -> Result<Option<Report>, PhoneError> {
        let i = self.shared.index(name)?;
        Ok(lock(&self.shared.table).slots[i].report.clone())
    }

    /// The foreground VM's index and a watch of it.
    pub fn foreground(&self) -> watch::Receiver<usize> {
        self.shared.foreground.subscribe()
    }

    /// The console hub of VM number `i` (manifest order).
    pub fn console_at(&self, i: usize) -> Option<Arc<ConsoleHub>> {
        self.shared.console(i)
    }

    /// Types `bytes` into VM number `i`'s serial console.
    pub fn input_at(&self, i: usize, bytes: &[u8]) -> Result<(), PhoneError> {
        let vm = &self.shared.manifest().vms[i];
        if vm.role == Role::Trusted && !vm.debug {
            return Err(PhoneError::Forbidden(format!(
                "trusted VM \"{}\" takes no console input (only with debug = true in its manifest entry)",
                vm.name
            )));
        }
        for chunk in bytes.chunks(4096) {
            self.shared.tell(i, &ToWorker::Input(chunk.to_vec()))?;
        }
        Ok(())
    }

    /// The phone's root public key (hex), which relying parties trust.
    pub fn root_key(&self) -> String {
        self.shared.trust.root_key()
    }

    /// Evidence for trusted VM `name` answering `nonce` (CBOR of a
    /// [`trust::VmSigned`]), for the phone's owner.
    pub fn evidence(&self, name: &str, nonce: &[u8]) -> Result<Vec<u8>, PhoneError> {
        let i = self.shared.index(name)?;
        self.shared.trust.evidence(&self.shared, i, nonce)
    }

    /// Refuses `what` (snapshot, export, memory dump, debugger) for a
    /// trusted VM: its secrets are bound to this phone and its software.
    pub fn refuse_if_trusted(&self, name: &str, what: &str) -> Result<(), PhoneError> {
        let i = self.shared.index(name)?;
        if self.shared.manifest().vms[i].role == Role::Trusted {
            return Err(PhoneError::Forbidden(format!(
                "trusted VM \"{name}\" cannot be {what}"
            )));
        }
        Ok(())
    }

    /// Stops every worker in order (SIGTERM: guests stopped, disks flushed),
    /// killing those still running after `grace`. Returns once every worker
    /// process is gone.
    pub fn stop_all(&self, grace: Duration) {
        for s in lock(&self.shared.table).slots.iter_mut() {
            s.stopping = true;
            if let Some(w) = &s.worker {
                // SAFETY: signalling our own child, not yet reaped (the
                // slot holds it, and reaping takes this lock).
                unsafe { libc::kill(w.child.id() as i32, libc::SIGTERM) };
            }
        }
        let none = |t: &Table| t.slots.iter().all(|s| s.worker.is_none());
        if !self.shared.wait_until(grace, none) {
            for s in lock(&self.shared.table).slots.iter_mut() {
                if let Some(w) = s.worker.as_mut() {
                    let _ = w.child.kill();
                }
            }
            self.shared.wait_until(Duration::from_secs(10), none);
        }
        self.shared.log("every VM stopped");
    }
}

impl Drop for Supervisor {
    /// No worker outlives its supervisor.
    fn drop(&mut self) {
        self.stop_all(Duration::from_secs(10));
        self.shared.stop.store(true, Ordering::Release);
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}
