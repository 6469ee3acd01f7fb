//! Building and running one VM.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock};

use board::fdt::{self, FdtConfig};
use board::linux::{self, BootError};
use board::{layout, Board, BoardConfig, GuestRam, Power};
use hypervisor::{Backend, Vcpu};

use virtio::balloon::{Balloon, BalloonControl};
use virtio::blk::Block;
use virtio::console::{Console as VirtioConsole, Port, PortInput};
use virtio::net::switch::SwitchPort;
use virtio::net::tap::Tap;
use virtio::net::{Inbox, Net, NetBackend};
use virtio::rng::Rng;
use virtio::vsock::{Vsock, VsockRouter};
use virtio::{MmioTransport, Notifier, VirtioDevice};

use crate::config::{NetBackendConfig, NetConfig, VmConfig};
use crate::control::{SharedVcpu, VcpuCounters, VmControl};
use crate::dirty::DirtyLog;
use crate::kicks::KickThread;
use crate::panic_watch::{BoardSlot, PanicWatch};
use crate::ports::{self, SocketOutput};
use crate::quota::CpuQuota;
use crate::state::VmState;
use crate::vcpu::{self, VcpuEnd, VcpuThread};

/// Why a VM could not be created. Each is one clear message for the user.
#[derive(Debug)]
pub enum VmError {
    /// The kernel or initrd could not be read.
    Input(hostio::input::InputError),
    /// The boot protocol rejected the kernel, memory size or initrd.
    Boot(BootError),
    /// A bad configuration value.
    Config(String),
    /// The host could not provide a resource.
    Host(String),
}

impl std::fmt::Display for VmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VmError::Input(e) => write!(f, "{e}"),
            VmError::Boot(e) => write!(f, "{e}"),
            VmError::Config(m) | VmError::Host(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for VmError {}

/// How a VM ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VmEnd {
    /// The guest powered off.
    PoweredOff,
    /// The guest asked for a reset.
    Reset,
    /// The guest failed beyond recovery; the report says how.
    Crashed(String),
    /// The host stopped it (a signal, the user, a closed console).
    Stopped,
}

/// A VM ready to run.
pub struct Vm {
    /// Passes queue kicks KVM turned into events to the devices; dropped
    /// first (it holds the devices' work queues open).
    _kicks: Option<KickThread>,
    board: Arc<Board>,
    /// The backend running the vCPUs, and why it was chosen.
    backend: Backend,
    /// The vCPUs, behind the hypervisor seam (each locked by the thread
    /// running it between exits, and by a state save while paused).
    vcpus: Vec<SharedVcpu>,
    /// The guest's own RAM writes where the backend tracks them (KVM).
    guest_writes: Option<Arc<dyn hypervisor::GuestWriteLog>>,
    /// Each vCPU's counters as its loop last published them.
    counters: Vec<Arc<VcpuCounters>>,
    /// The virtio transports, in device order (their state is saved here).
    transports: Vec<Arc<Mutex<MmioTransport>>>,
    /// The vCPUs' CPU quota.
    quota: CpuQuota,
    /// How many vCPU loops are running now.
    running: Arc<AtomicUsize>,
    balloon: Option<BalloonControl>,
    /// The host ends of named console ports (closed after the devices).
    _ports: Vec<ports::PortServer>,
}

fn read(what: &'static str, path: &Path, cap: u64) -> Result<Vec<u8>, VmError> {
    hostio::input::read_capped(what, path, cap).map_err(VmError::Input)
}

fn entropy() -> [u8; 64] {
    let mut seed = [0u8; 64];
    // SAFETY: getrandom writes at most `seed.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(seed.as_mut_ptr() as *mut libc::c_void, seed.len(), 0) };
    if n != seed.len() as isize {
        // Fall back to time: the seed is a convenience, not a security boundary here.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        seed[..16].copy_from_slice(&t.to_le_bytes());
    }
    seed
}

/// A notifier that lets added device number `index` act on new outside
/// events (only that device: another's slow I/O never delays them).
fn device_poller(board: &Arc<Board>, index: usize) -> Notifier {
    let weak = Arc::downgrade(board);
    Arc::new(move || {
        if let Some(b) = weak.upgrade() {
            b.poll_device(index);
        }
    })
}

/// Opens a virtio-net interface's backend.
fn open_net(cfg: &NetConfig, notify: Notifier) -> Result<Net, VmError> {
    let mac = cfg.mac.unwrap_or_else(virtio::net::random_mac);
    let inbox = Inbox::default();
    let backend: Box<dyn NetBackend> = match &cfg.backend {
        NetBackendConfig::Tap(name) => {
            Box::new(Tap::open(name, inbox.clone(), notify).map_err(VmError::Config)?)
        }
        NetBackendConfig::Socket(dir) => {
            Box::new(SwitchPort::join(dir, mac, inbox.clone(), notify).map_err(VmError::Config)?)
        }
    };
    Ok(Net::new(mac, backend, inbox))
}

/// Where a restored VM's RAM comes from.
pub enum SavedRam<'a> {
    /// A raw image file ([`GuestRam::save_to`]), mapped copy-on-write: it
    /// must not change while the VM lives.
    Image(&'a std::fs::File),
    /// A memfd of the RAM's size already holding it (a migration's
    /// received pages), mapped as the guest's RAM.
    Memfd(std::os::fd::OwnedFd),
}

/// A guest's kernel and initrd, as read from their files.
pub struct BootImages {
    /// The kernel image's bytes.
    pub kernel: Vec<u8>,
    /// The initrd's bytes, if the VM has one.
    pub initrd: Option<Vec<u8>>,
}

impl BootImages {
    /// Reads `cfg`'s kernel and initrd (nothing larger than guest RAM).
    pub fn read(cfg: &VmConfig) -> Result<BootImages, VmError> {
        Ok(BootImages {
            kernel: read("kernel", &cfg.kernel, cfg.mem)?,
            initrd: match &cfg.initrd {
                Some(p) => Some(read("initrd", p, cfg.mem)?),
                None => None,
            },
        })
    }
}

impl Vm {
    /// Checks the configuration, builds the board and loads the guest.
    /// The UART's output goes to `console`.
    pub fn new(cfg: &VmConfig, console: Box<dyn Write + Send>) -> Result<Self, VmError> {
        Self::with_hvc(cfg, console, None)
    }

    /// Like [`Vm::new`], with a writer for the virtio console's port 0 (hvc0).
    pub fn with_hvc(
        cfg: &VmConfig,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
    ) -> Result<Self, VmError> {
        Self::with_router(cfg, console, hvc_out, None)
    }

    /// Like [`Vm::with_hvc`]; with a router, the vsock device's streams to
    /// other VMs and host ports go through it (a phone's worker).
    pub fn with_router(
        cfg: &VmConfig,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
        router: Option<Arc<dyn VsockRouter>>,
    ) -> Result<Self, VmError> {
        cfg.check().map_err(VmError::Config)?;
        let images = BootImages::read(cfg)?;
        Self::from_images(cfg, &images, console, hvc_out, router)
    }

    /// Like [`Vm::with_router`], booting `images` (already read, e.g. to be
    /// measured first) instead of reading `cfg`'s kernel and initrd.
    pub fn from_images(
        cfg: &VmConfig,
        images: &BootImages,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
        router: Option<Arc<dyn VsockRouter>>,
    ) -> Result<Self, VmError> {
        cfg.check().map_err(VmError::Config)?;
        let (kernel, initrd) = (&images.kernel, &images.initrd);
        let header = linux::identify(kernel).map_err(VmError::Boot)?;
        let plan = linux::plan(
            &header,
            layout::RAM_BASE,
            cfg.mem,
            initrd.as_ref().map(|i| i.len() as u64),
        )
        .map_err(VmError::Boot)?;
        let (vm, virtio) = Self::build(cfg, console, hvc_out, router)?;
        let board = &vm.board;
        linux::load(&board.ram, &plan, kernel, initrd.as_deref());
        let dtb = fdt::build(&FdtConfig {
            cpus: cfg.cpus,
            ram_size: cfg.mem,
            cmdline: cfg.cmdline.clone(),
            initrd: plan.initrd,
            virtio,
            seed: entropy(),
        })
        .map_err(|e| VmError::Host(format!("cannot build the device tree: {e}")))?;
        if dtb.len() as u64 > linux::DTB_MAX {
            return Err(VmError::Boot(BootError::DtbTooLarge(dtb.len() as u64)));
        }
        board.ram.write(plan.dtb, &dtb);
        {
            let mut vcpu = lock_vcpu(&vm.vcpus[0]);
            let mut regs = vcpu.regs();
            regs.pc = plan.entry;
            regs.x[0] = plan.dtb;
            vcpu.set_regs(&regs);
        }
        Ok(vm)
    }

    /// Rebuilds a saved VM: the devices and host resources `cfg` describes
    /// (the same devices, in the same order, as the saved VM had), its RAM
    /// from the raw image `ram` ([`GuestRam::save_to`]) and everything else
    /// from `state`. The kernel and initrd are not read: the guest is in
    /// RAM. Run it with [`Vm::run`]; it continues where it was saved.
    pub fn restore(
        cfg: &VmConfig,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
        state: &VmState,
        ram: &std::fs::File,
    ) -> Result<Self, VmError> {
        Self::restore_routed(cfg, console, hvc_out, None, state, SavedRam::Image(ram))
    }

    /// Like [`Vm::restore`], with a vsock router (a phone's worker) and
    /// the RAM from an image file or a memfd holding it.
    pub fn restore_routed(
        cfg: &VmConfig,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
        router: Option<Arc<dyn VsockRouter>>,
        state: &VmState,
        ram: SavedRam<'_>,
    ) -> Result<Self, VmError> {
        cfg.check().map_err(VmError::Config)?;
        let source = match ram {
            // Mapped copy-on-write: nothing is read until the guest touches it.
            SavedRam::Image(f) => board::RamSource::Image(
                f.try_clone()
                    .map_err(|e| VmError::Host(format!("cannot map guest memory: {e}")))?,
            ),
            SavedRam::Memfd(fd) => board::RamSource::Memfd(fd),
        };
        let (vm, _) = Self::build_with(cfg, console, hvc_out, router, Some(source))?;
        vm.control().restore_state(state).map_err(VmError::Config)?;
        Ok(vm)
    }

    /// Builds the board, the devices and the vCPUs (at reset) that `cfg`
    /// describes; returns the VM and its virtio windows (base, SPI).
    fn build(
        cfg: &VmConfig,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
        router: Option<Arc<dyn VsockRouter>>,
    ) -> Result<(Self, Vec<(u64, u32)>), VmError> {
        Self::build_with(cfg, console, hvc_out, router, None)
    }

    /// [`Vm::build`] on RAM that is `ram_fd` when given.
    fn build_with(
        cfg: &VmConfig,
        console: Box<dyn Write + Send>,
        hvc_out: Option<Box<dyn Write + Send>>,
        router: Option<Arc<dyn VsockRouter>>,
        ram_fd: Option<board::RamSource>,
    ) -> Result<(Self, Vec<(u64, u32)>), VmError> {
        // Both consoles end the VM when the guest kernel's panic says it will hang.
        let slot: BoardSlot = Arc::new(OnceLock::new());
        let console: Box<dyn Write + Send> = Box::new(PanicWatch::new(console, slot.clone()));
        let mut console_out =
            hvc_out.map(|w| Box::new(PanicWatch::new(w, slot.clone())) as Box<dyn Write + Send>);
        let board = Arc::new(
            Board::new(BoardConfig {
                cpus: cfg.cpus,
                ram_size: cfg.mem,
                console,
                mergeable_ram: cfg.share_memory,
                ram_fd,
            })
            .map_err(|e| VmError::Host(e.to_string()))?,
        );
        let _ = slot.set(Arc::downgrade(&board));
        // The vCPUs first: under KVM the interrupt controller moves into
        // the kernel here, before any device can raise a line.
        let backend = hypervisor::choose(cfg.accel).map_err(VmError::Config)?;
        let created = hypervisor::create_vcpus(&board, &backend).map_err(VmError::Host)?;
        let (guest_writes, io_events) = (created.guest_writes, created.io_events);
        let vcpus: Vec<SharedVcpu> = created
            .list
            .into_iter()
            .map(|v| Arc::new(Mutex::new(v)))
            .collect();
        let mut devices: Vec<Box<dyn VirtioDevice>> = Vec::new();
        for disk in &cfg.disks {
            let blk = Block::open(&disk.path, disk.read_only).map_err(|e| VmError::Config(e.0))?;
            devices.push(Box::new(blk));
        }
        if cfg.rng {
            devices.push(Box::new(Rng));
        }
        let balloon = cfg.balloon.then(BalloonControl::default);
        let mut port_servers = Vec::new();
        if let Some(control) = &balloon {
            devices.push(Box::new(Balloon::new(control.clone())));
        }
        if cfg.vconsole || !cfg.ports.is_empty() {
            let hvc_input = PortInput::default();
            // The console's place among the added devices.
            let index = devices.len();
            if cfg.vconsole {
                // Typed input goes to hvc0, the alternative console.
                let (input, weak) = (hvc_input.clone(), Arc::downgrade(&board));
                board.redirect_console_input(Box::new(move |bytes| {
                    input.send(bytes);
                    if let Some(b) = weak.upgrade() {
                        b.poll_device(index);
                    }
                    bytes.len()
                }));
            }
            let mut ports = vec![Port {
                name: None,
                output: console_out
                    .take()
                    .unwrap_or_else(|| Box::new(std::io::sink())),
                input: hvc_input,
            }];
            for pc in &cfg.ports {
                let output = SocketOutput::default();
                let input = PortInput::default();
                port_servers.push(
                    ports::serve(
                        &pc.socket,
                        output.clone(),
                        input.clone(),
                        Arc::downgrade(&board),
                        index,
                    )
                    .map_err(VmError::Config)?,
                );
                ports.push(Port {
                    name: Some(pc.name.clone()),
                    output: Box::new(output),
                    input,
                });
            }
            devices.push(Box::new(VirtioConsole::new(ports)));
        }
        for net in &cfg.nets {
            let notify = device_poller(&board, devices.len());
            devices.push(Box::new(open_net(net, notify)?));
        }
        if let Some(v) = &cfg.vsock {
            let notify = device_poller(&board, devices.len());
            let vsock =
                Vsock::with_router(v.cid, &v.uds, router, notify).map_err(VmError::Config)?;
            devices.push(Box::new(vsock));
        }
        if devices.len() > layout::VIRTIO_MAX {
            return Err(VmError::Config(format!(
                "too many virtio devices: {} (at most {})",
                devices.len(),
                layout::VIRTIO_MAX
            )));
        }
        let (mut virtio, mut transports) = (Vec::new(), Vec::new());
        // Every device is served on an I/O thread of its own: a queue
        // notification or a host event is a message to it, and it raises
        // the device's interrupt line itself.
        for (i, device) in devices.into_iter().enumerate() {
            let base = layout::VIRTIO_BASE + i as u64 * layout::VIRTIO_STRIDE;
            let spi = layout::spi::VIRTIO_BASE + i as u32;
            let transport =
                MmioTransport::with_worker(device, board.ram.clone(), board.irq_line(spi));
            let transport = Arc::new(Mutex::new(transport));
            board
                .add_device(
                    base,
                    layout::VIRTIO_STRIDE,
                    spi,
                    Box::new(transport.clone()),
                )
                .map_err(VmError::Host)?;
            transports.push(transport);
            virtio.push((base, spi));
        }
        // Under KVM queue kicks become events: no vCPU exit for them.
        let kicks = match &io_events {
            Some(io) => {
                let at: Vec<_> = virtio
                    .iter()
                    .map(|&(base, _)| base)
                    .zip(transports.iter().cloned())
                    .collect();
                KickThread::start(io.as_ref(), &at).map_err(VmError::Host)?
            }
            None => None,
        };
        let vm = Vm {
            _kicks: kicks,
            board,
            backend,
            counters: vcpus.iter().map(|_| Arc::default()).collect(),
            quota: CpuQuota::default(),
            vcpus,
            guest_writes,
            transports,
            running: Arc::default(),
            balloon,
            _ports: port_servers,
        };
        Ok((vm, virtio))
    }

    /// The backend running the vCPUs, and why it was chosen.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The board (for console input and device access from other threads).
    pub fn board(&self) -> Arc<Board> {
        self.board.clone()
    }

    /// The balloon's control handle, if the VM has a balloon (most callers
    /// want [`VmControl::set_balloon_target`] and [`VmControl::balloon`]).
    pub fn balloon(&self) -> Option<BalloonControl> {
        self.balloon.clone()
    }

    /// Guest RAM in bytes.
    pub fn mem(&self) -> u64 {
        self.board.ram.size()
    }

    /// The guest's RAM (its memfd, reads and writes as a device would).
    pub fn ram(&self) -> Arc<GuestRam> {
        self.board.ram.clone()
    }

    /// A handle that pauses, resumes, saves and restores the VM from any thread.
    pub fn control(&self) -> VmControl {
        VmControl::new(
            self.board.clone(),
            self.running.clone(),
            self.vcpus.clone(),
            self.transports.clone(),
            self.balloon.clone(),
            self.counters.clone(),
            self.quota.clone(),
        )
    }

    /// A handle that takes the dirty log from any thread, also while the
    /// VM runs.
    pub fn dirty_log(&self) -> DirtyLog {
        let vcpus = self.vcpus.iter().map(|v| lock_vcpu(v).handle()).collect();
        DirtyLog::new(self.board.ram.clone(), vcpus, self.guest_writes.clone())
    }

    /// Runs the VM until the guest stops: the boot CPU on the calling
    /// thread, every other vCPU on a thread of its own ("vcpu N"), all at
    /// once.
    pub fn run(&mut self) -> VmEnd {
        let thread = |index: usize| VcpuThread {
            board: &self.board,
            vcpu: &self.vcpus[index],
            counters: &self.counters[index],
            quota: &self.quota,
            running: &self.running,
            index,
        };
        let end = std::thread::scope(|scope| {
            for index in 1..self.vcpus.len() {
                let t = thread(index);
                let spawned = std::thread::Builder::new()
                    .name(format!("vcpu {index}"))
                    .spawn_scoped(scope, move || vcpu::run(&t));
                if let Err(e) = spawned {
                    let report = format!("cannot start a thread for vCPU {index}: {e}");
                    self.board.crash(report.clone());
                    return VcpuEnd::Crashed(report);
                }
            }
            vcpu::run(&thread(0))
        });
        match end {
            VcpuEnd::Crashed(report) => VmEnd::Crashed(report),
            VcpuEnd::Power(Power::Reset) => VmEnd::Reset,
            VcpuEnd::Power(Power::Crashed) => VmEnd::Crashed(
                self.board
                    .crash_report()
                    .unwrap_or_else(|| "the guest crashed".into()),
            ),
            VcpuEnd::Power(Power::Stopped) => VmEnd::Stopped,
            VcpuEnd::Power(_) => VmEnd::PoweredOff,
        }
    }
}

/// Locks a vCPU (a panic while holding it would be a VMM bug; keep its data).
pub(crate) fn lock_vcpu(v: &SharedVcpu) -> std::sync::MutexGuard<'_, Box<dyn Vcpu>> {
    v.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Vm {
    /// Closes the VM's devices (disk files, network ports, sockets) even
    /// while other threads still hold the board.
    fn drop(&mut self) {
        self.board.remove_devices();
    }
}
