//! A VM's worker: the process that runs one VM of a phone. It builds the
//! VM from the manifest — its serial console appended to
//! `STATE_DIR/vms/NAME/console.log`, its vsock socket in the same
//! directory, a trusted VM's hvc0 (its secure output) appended to
//! `secure-output.log` there, a trusted VM measured first — enters the sandbox ([`crate::sandbox`]; trusted VMs are also
//! made non-dumpable), runs the VM, and ends with an exit code that tells
//! the supervisor how the VM ended ([`exit`]). A guest reset ends the
//! worker too (the sandbox forbids opening the kernel again): the
//! supervisor starts a fresh one.
//!
//! Started by a supervisor (`supervised`), the worker holds nothing but
//! what it was given — its three protocol sockets ([`crate::protocol`]) —
//! plus what it opens for its own VM: it takes commands on the control
//! socket, copies its console there, and asks the supervisor for every
//! vsock stream beyond its guest.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vmm::board_types::{Board, Power};
use vmm::{BootImages, DirtyLog, PeerStream, Routed, SavedRam, Vm, VmControl, VmEnd, VsockRouter};

use crate::migration::outgoing::Outgoing;

use crate::manifest::{Manifest, Role};
use crate::protocol::{
    self, BalloonInfo, ConnectReply, ConnectRequest, FromWorker, Incoming, Received, Report,
    ToWorker, CONTROL_FD, INBOX_FD, ROUTER_FD,
};
use crate::sandbox;

/// A worker's exit codes.
pub mod exit {
    /// The guest powered off.
    pub const POWERED_OFF: u8 = 0;
    /// The VM could not be built or sandboxed (the reason is on stderr).
    pub const FAILED: u8 = 1;
    /// The guest crashed.
    pub const CRASHED: u8 = 2;
    /// The worker was stopped (SIGTERM, SIGINT, SIGHUP); disks flushed.
    pub const STOPPED: u8 = 3;
    /// The guest asked for a reset.
    pub const RESET: u8 = 4;
}

/// The directory of VM `name`'s files: `STATE_DIR/vms/NAME`.
pub fn vm_dir(manifest: &Manifest, name: &str) -> PathBuf {
    manifest.state_dir.join("vms").join(name)
}

/// How a worker's VM ended, as its exit code.
pub fn exit_code(end: &VmEnd) -> u8 {
    match end {
        VmEnd::PoweredOff => exit::POWERED_OFF,
        VmEnd::Crashed(_) => exit::CRASHED,
        VmEnd::Stopped => exit::STOPPED,
        VmEnd::Reset => exit::RESET,
    }
}

/// The protocol sockets a supervisor gave the worker.
struct Sockets {
    control: Arc<OwnedFd>,
    router: OwnedFd,
    inbox: OwnedFd,
}

impl Sockets {
    /// Takes descriptors 3, 4 and 5 (checked to be sockets; see
    /// [`close_unexpected_fds`]).
    fn inherit() -> Result<Sockets, String> {
        for fd in [CONTROL_FD, ROUTER_FD, INBOX_FD] {
            // SAFETY: fstat on a descriptor number writes one stat we own.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::fstat(fd, &mut st) } == 0
                && st.st_mode & libc::S_IFMT == libc::S_IFSOCK;
            if !ok {
                return Err(format!(
                    "descriptor {fd} is not a socket (a supervised worker is given its sockets by the supervisor)"
                ));
            }
        }
        // SAFETY: checked above to be open sockets, owned by nobody else.
        let own = |fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) };
        let router = own(ROUTER_FD);
        // A supervisor that stops answering must not hang the vsock device.
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a valid timeval on our socket.
        unsafe {
            libc::setsockopt(
                ROUTER_FD,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        Ok(Sockets {
            control: Arc::new(own(CONTROL_FD)),
            router,
            inbox: own(INBOX_FD),
        })
    }
}

/// Closes every descriptor above the protocol sockets: a supervised
/// worker keeps only stdin/stdout/stderr and what its supervisor gave it.
/// Call first thing, before anything else opens a descriptor.
pub fn close_unexpected_fds() {
    // SAFETY: closes descriptors nothing in this process uses yet.
    unsafe { libc::syscall(libc::SYS_close_range, INBOX_FD as u32 + 1, u32::MAX, 0) };
}

/// The console: appended to the log, copied to the supervisor (dropped
/// there, never waited for, if the supervisor falls behind).
struct Tee {
    log: File,
    control: Option<Arc<OwnedFd>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.log.write(buf)?;
        if let Some(c) = &self.control {
            let _ = protocol::send(
                c.as_fd(),
                &FromWorker::Console(buf[..n].to_vec()),
                None,
                true,
            );
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.log.flush()
    }
}

/// The vsock router of a supervised worker: every stream beyond the guest
/// is asked of the supervisor, which decides by the phone's policy.
struct SupervisorRouter {
    router: Mutex<OwnedFd>,
    inbox: OwnedFd,
}

impl VsockRouter for SupervisorRouter {
    fn connect(&self, dst_cid: u64, dst_port: u32, src_port: u32) -> Option<Routed> {
        let socket = self.router.lock().unwrap_or_else(|e| e.into_inner());
        let request = ConnectRequest {
            dst_cid,
            dst_port,
            src_port,
        };
        protocol::send(socket.as_fd(), &request, None, false).ok()?;
        match protocol::receive::<ConnectReply>(socket.as_fd(), false).ok()? {
            Received::Message(reply, Some(fd)) => {
                let stream = UnixStream::from(fd);
                match reply {
                    ConnectReply::Established => Some(Routed::Established(stream)),
                    ConnectReply::AwaitingPeer => Some(Routed::AwaitingPeer(stream)),
                    ConnectReply::Refused => None,
                }
            }
            _ => None,
        }
    }

    fn inbox(&self) -> RawFd {
        use std::os::fd::AsRawFd;
        self.inbox.as_raw_fd()
    }

    fn receive(&self) -> Option<PeerStream> {
        match protocol::receive::<Incoming>(self.inbox.as_fd(), true).ok()? {
            Received::Message(i, Some(fd)) => Some(PeerStream {
                stream: UnixStream::from(fd),
                src_cid: i.src_cid,
                src_port: i.src_port,
                dst_port: i.dst_port,
            }),
            _ => None,
        }
    }
}

/// The guest's latest statistic `tag` (virtio balloon statistics).
fn stat(stats: &[(u16, u64)], tag: u16) -> Option<u64> {
    stats.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v)
}

/// The VM's state for the supervisor.
fn report(control: &VmControl) -> Report {
    let stats = control.stats();
    let balloon = control.balloon().ok().map(|b| BalloonInfo {
        target: b.target,
        actual: b.actual,
        // VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_MEMTOT.
        free: stat(&b.stats, 4),
        available: stat(&b.stats, 6),
        total: stat(&b.stats, 5),
    });
    Report {
        paused: stats.paused,
        mem_bytes: stats.mem_bytes,
        balloon,
        cpu_quota: control.cpu_quota(),
        instructions: stats.instructions,
    }
}

/// Types `bytes` into the guest's serial port (never a virtio console: a
/// trusted VM's is its secure output), waiting while its FIFO is full (at
/// most a second).
fn type_input(board: &Board, mut bytes: &[u8]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while !bytes.is_empty() && board.power() == Power::On {
        let taken = board.serial_input(bytes);
        bytes = &bytes[taken..];
        if std::time::Instant::now() > deadline {
            return;
        }
        if !bytes.is_empty() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Writes the paused VM's RAM into `memory` (a file of its size, zeros)
/// and answers its state.
fn snapshot(vm: &VmControl, memory: Option<File>) -> FromWorker {
    let Some(memory) = memory else {
        return FromWorker::Error("a snapshot needs the memory file".into());
    };
    let state = match vm.save_state() {
        Ok(s) => s.to_bytes(),
        Err(e) => return FromWorker::Error(format!("cannot snapshot: {e}")),
    };
    if state.len() > protocol::MAX_MESSAGE - 1024 {
        return FromWorker::Error(format!(
            "the VM's state is {} bytes, too large to send",
            state.len()
        ));
    }
    match vm
        .ram()
        .write_image_into(&memory)
        .and_then(|n| memory.sync_all().map(|()| n))
    {
        Ok(memory_bytes) => FromWorker::Snapshot {
            state,
            memory_bytes,
        },
        Err(e) => FromWorker::Error(format!("cannot write the snapshot's memory: {e}")),
    }
}

/// Serves the supervisor's commands until it goes away — then the VM is
/// stopped (a worker never outlives its supervisor).
fn serve_control(control_fd: Arc<OwnedFd>, vm: VmControl, board: Arc<Board>, dirty: DirtyLog) {
    let fd: BorrowedFd<'_> = control_fd.as_fd();
    let cancel = Arc::new(AtomicBool::new(false));
    let migrating = Arc::new(AtomicBool::new(false));
    loop {
        let (command, file) = match protocol::receive::<ToWorker>(fd, false) {
            Ok(Received::Message(c, file)) => (c, file),
            Ok(Received::Empty) => continue,
            Ok(Received::Closed) | Err(_) => {
                board.set_power(Power::Stopped);
                return;
            }
        };
        let answer = match command {
            ToWorker::Pause => {
                vm.pause();
                Some(FromWorker::Report(report(&vm)))
            }
            ToWorker::Resume => {
                vm.resume();
                Some(FromWorker::Report(report(&vm)))
            }
            ToWorker::SetBalloon(bytes) => Some(match vm.set_balloon_target(bytes) {
                Ok(()) => FromWorker::Report(report(&vm)),
                Err(e) => FromWorker::Error(e),
            }),
            ToWorker::SetCpuQuota(q) => {
                vm.set_cpu_quota(q);
                None
            }
            ToWorker::Input(bytes) => {
                type_input(&board, &bytes);
                None
            }
            ToWorker::Report => Some(FromWorker::Report(report(&vm))),
            ToWorker::Snapshot => Some(snapshot(&vm, file.map(File::from))),
            ToWorker::Migrate(ms) => {
                let Some(out) = file else {
                    continue;
                };
                if migrating.swap(true, Ordering::AcqRel) {
                    // One at a time: the second stream is closed unanswered.
                    continue;
                }
                cancel.store(false, Ordering::Release);
                let outgoing = Outgoing {
                    vm: vm.clone(),
                    board: board.clone(),
                    dirty: dirty.clone(),
                    out: UnixStream::from(out),
                    max_downtime: Duration::from_millis(ms.into()),
                    cancel: cancel.clone(),
                };
                let done = migrating.clone();
                let _ = std::thread::Builder::new()
                    .name("migrate".into())
                    .spawn(move || {
                        outgoing.run();
                        done.store(false, Ordering::Release);
                    });
                None
            }
            ToWorker::CancelMigration => {
                cancel.store(true, Ordering::Release);
                None
            }
            ToWorker::Incoming(_) => Some(FromWorker::Error("the VM is already running".into())),
        };
        if let Some(a) = answer {
            let _ = protocol::send(fd, &a, None, false);
        }
    }
}

/// Test hook (debug builds only): with `PV_TEST_FORBIDDEN_CALL=NAME`, VM
/// NAME's worker tries to open a file (refused) and then an internet
/// socket two seconds into its sandbox, as a compromised VMM would — and
/// dies of SIGSYS.
fn forbidden_call_for_tests(name: &str) {
    if cfg!(debug_assertions) && std::env::var("PV_TEST_FORBIDDEN_CALL").is_ok_and(|v| v == name) {
        let _ = std::thread::Builder::new()
            .name("forbidden".into())
            .spawn(|| {
                std::thread::sleep(Duration::from_secs(2));
                let _ = File::open("/etc/hostname");
                let _ = std::net::UdpSocket::bind("127.0.0.1:0");
            });
    }
}

/// Opens a log of the VM's for appending (mode 0600).
fn open_log(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open '{}': {e}", path.display()))
}

/// How a worker's VM begins.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// Booted from its kernel.
    Boot,
    /// Continued from a snapshot directory ([`crate::snapshot`]).
    Restore(&'a Path),
    /// Continued from a migration: the supervisor sends its state and a
    /// memfd holding its RAM ([`ToWorker::Incoming`]).
    Incoming,
}

/// Runs VM `name` of `manifest` in this process: builds it (or continues
/// it, as `start` says), calls `started` with it (the caller hooks its stop
/// signals to the board), enters the sandbox and runs the VM until it
/// ends. A `supervised` worker takes its protocol sockets from descriptors
/// 3 to 5 and closes every other.
pub fn run(
    manifest: &Manifest,
    name: &str,
    supervised: bool,
    start: Start<'_>,
    started: impl FnOnce(&Vm),
) -> Result<VmEnd, String> {
    let sockets = if supervised {
        Some(Sockets::inherit()?)
    } else {
        None
    };
    let entry = manifest
        .vm(name)
        .ok_or_else(|| format!("the phone has no VM named \"{name}\""))?;
    let dir = vm_dir(manifest, name);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create '{}': {e}", dir.display()))?;
    let console = Tee {
        log: open_log(&dir.join("console.log"))?,
        control: sockets.as_ref().map(|s| s.control.clone()),
    };
    let config = manifest.vm_config(entry);
    let (router, control_fd) = match sockets {
        Some(s) => (
            Some(Arc::new(SupervisorRouter {
                router: Mutex::new(s.router),
                inbox: s.inbox,
            }) as Arc<dyn VsockRouter>),
            Some(s.control),
        ),
        None => (None, None),
    };
    // A VM that continues: its state, and its RAM as a snapshot's image
    // file or a migration's memfd.
    let mut image = None;
    let continued = match start {
        Start::Boot => None,
        Start::Incoming => {
            let Some(fd) = &control_fd else {
                return Err("an incoming VM is given by a supervisor".into());
            };
            match protocol::receive::<ToWorker>(fd.as_fd(), false) {
                Ok(Received::Message(ToWorker::Incoming(state), Some(memfd))) => {
                    Some((state, Some(memfd)))
                }
                _ => return Err("the supervisor sent no incoming VM".into()),
            }
        }
        Start::Restore(dir) => {
            let state = std::fs::read(dir.join("state.bin"))
                .map_err(|e| format!("cannot read '{}': {e}", dir.join("state.bin").display()))?;
            let memory = File::open(dir.join("memory.bin"))
                .map_err(|e| format!("cannot open '{}': {e}", dir.join("memory.bin").display()))?;
            image = Some(memory);
            Some((state, None))
        }
    };
    if let Some((state, memfd)) = continued {
        if entry.role == Role::Trusted {
            return Err(format!(
                "trusted VM \"{name}\" cannot continue from a snapshot or a migration"
            ));
        }
        let state = vmm::VmState::from_bytes(&state).map_err(|e| e.to_string())?;
        let ram = match (memfd, &image) {
            (Some(fd), _) => SavedRam::Memfd(fd),
            (None, Some(file)) => SavedRam::Image(file),
            (None, None) => return Err("no memory to continue from".into()),
        };
        let vm = Vm::restore_routed(&config, Box::new(console), None, router, &state, ram)
            .map_err(|e| e.to_string())?;
        return serve(vm, name, control_fd, started);
    }
    // The bytes measured are the bytes loaded.
    let images = BootImages::read(&config).map_err(|e| e.to_string())?;
    if entry.role == Role::Trusted {
        let log = crate::measure::measure(manifest, entry, &images);
        if let Some(fd) = &control_fd {
            protocol::send(
                fd.as_fd(),
                &FromWorker::Measured(log.measurement.0),
                None,
                false,
            )
            .map_err(|e| format!("cannot report the measurement: {e}"))?;
        }
    }
    let secure_output = if entry.role == Role::Trusted {
        let file = open_log(&dir.join("secure-output.log"))?;
        Some(Box::new(file) as Box<dyn Write + Send>)
    } else {
        None
    };
    let vm = Vm::from_images(&config, &images, Box::new(console), secure_output, router)
        .map_err(|e| e.to_string())?;
    if entry.role == Role::Trusted {
        sandbox::make_non_dumpable()?;
        vm.ram().dont_dump();
    }
    serve(vm, name, control_fd, started)
}

/// Runs a built VM: hands it to `started`, serves the supervisor's
/// commands, enters the sandbox, and runs the guest until it ends.
fn serve(
    mut vm: Vm,
    name: &str,
    control_fd: Option<Arc<OwnedFd>>,
    started: impl FnOnce(&Vm),
) -> Result<VmEnd, String> {
    started(&vm);
    eprintln!("pocketvisor: VM {name}: vCPUs on {}", vm.backend());
    if let Some(fd) = &control_fd {
        let (fd, control, board) = (fd.clone(), vm.control(), vm.board());
        let dirty = vm.dirty_log();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || serve_control(fd, control, board, dirty))
            .map_err(|e| format!("cannot start the control thread: {e}"))?;
    }
    if control_fd.is_some() {
        sandbox::enter_supervised()?;
    } else {
        sandbox::enter(&sandbox::worker_filter()?)?;
    }
    forbidden_call_for_tests(name);
    if let Some(fd) = &control_fd {
        let _ = protocol::send(fd.as_fd(), &FromWorker::Started, None, false);
    }
    Ok(vm.run())
}
