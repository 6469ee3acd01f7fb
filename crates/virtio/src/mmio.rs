//! The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2).
//!
//! Locks: the device and its queues (`Core`) are locked only to configure
//! queues, to touch configuration space and to serve queues. The registers
//! an interrupt handler uses — InterruptStatus, InterruptACK, Status,
//! QueueNotify — are atomics or a message to the I/O thread, so a vCPU
//! never waits for a device's I/O (a slow disk's fdatasync, say). A device
//! with an I/O thread raises its interrupt line from that thread
//! ([`board::IrqLine`]); host events reach it as a message too.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use board::mmio::MmioDevice;
use board::{GuestRam, IrqLine};

use crate::device::VirtioDevice;
use crate::queue::{Queue, QueueError, MAX_QUEUE_SIZE};
use crate::spec::{reg, status, F_VERSION_1, INT_CONFIG, INT_USED};
use crate::state::TransportState;

/// The device and its queues: shared with the I/O worker, if there is one.
struct Core {
    device: Box<dyn VirtioDevice>,
    queues: Vec<Queue>,
}

/// State both the transport (vCPU thread) and the worker update.
#[derive(Default)]
struct Shared {
    /// InterruptStatus bits.
    interrupt: AtomicU32,
    /// Set when a guest error put the device in NEEDS_RESET.
    needs_reset: AtomicBool,
    /// Whether queues may be served (features agreed, no reset pending).
    live: AtomicBool,
    /// Why the device needs a reset.
    last_error: Mutex<Option<QueueError>>,
    /// Work sent to the I/O thread and not yet done.
    in_flight: std::sync::atomic::AtomicUsize,
    /// ConfigGeneration.
    config_generation: AtomicU32,
    /// Whether the driver set DRIVER_OK (configuration changes interrupt it).
    driver_ok: AtomicBool,
    /// Queue kicks that bypass the MMIO path (see [`QueueKicks`]): an
    /// event per queue, set once.
    kick_events: std::sync::OnceLock<Vec<(usize, OwnedFd)>>,
}

impl Shared {
    /// Whether a kick event is signalled and not yet taken.
    fn kick_pending(&self) -> bool {
        let Some(events) = self.kick_events.get() else {
            return false;
        };
        let mut fds: Vec<libc::pollfd> = events
            .iter()
            .map(|(_, fd)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: poll with a zero timeout over descriptors we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        n > 0
    }
}

/// Queue kicks that reach a transport without an MMIO exit: KVM signals an
/// event (an ioeventfd) when the guest writes a queue's index to
/// QueueNotify, and a thread of the VMM passes it on from here to the
/// device's I/O thread. Cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct QueueKicks {
    shared: Arc<Shared>,
    worker: Sender<Work>,
}

impl QueueKicks {
    /// The events to wait for, each with the queue it kicks.
    pub fn events(&self) -> Vec<(usize, RawFd)> {
        self.shared
            .kick_events
            .get()
            .map(|e| e.iter().map(|(q, fd)| (*q, fd.as_raw_fd())).collect())
            .unwrap_or_default()
    }

    /// Takes the signalled event `fd` of queue `index` and hands the kick
    /// to the I/O thread. The work is counted before the event is taken,
    /// so a pause never sees neither (and lets a device run on).
    pub fn forward(&self, index: usize, fd: RawFd) {
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut count = [0u8; 8];
        // SAFETY: an 8-byte read of an eventfd into our buffer; it does
        // not block (the event is non-blocking) and may find nothing.
        let _ = unsafe { libc::read(fd, count.as_mut_ptr().cast(), 8) };
        // The count taken over by the work item (the I/O thread ends it).
        if self.worker.send(Work::Queue(index)).is_err() {
            self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What the I/O thread is asked to do.
enum Work {
    /// Serve queue n (the driver notified it).
    Queue(usize),
    /// Let the device act on host events (`MmioDevice::poll`).
    Poll,
}

/// Called by a device's host-side backend (a network socket's reader, the
/// vsock listener) when it has events for the device; the VMM passes one
/// that polls that device on the board.
pub type Notifier = Arc<dyn Fn() + Send + Sync>;

/// A virtio-mmio transport around one device.
pub struct MmioTransport {
    core: Arc<Mutex<Core>>,
    shared: Arc<Shared>,
    ram: Arc<GuestRam>,
    /// The device's ID and offered features (fixed for its lifetime).
    device_id: u32,
    offered: u64,
    status: u32,
    features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    /// Queue kicks and polls go to this I/O thread instead of being served inline.
    worker: Option<Sender<Work>>,
    /// The I/O thread, joined when the transport goes (its in-flight
    /// request completes and the device's files are closed by then).
    worker_thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for MmioTransport {
    fn drop(&mut self) {
        // Closing the channel ends the worker's loop.
        self.worker = None;
        if let Some(t) = self.worker_thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether `PV_TRACE_VIRTIO` asks for queue events on stderr (read once:
/// a kick must not scan the environment).
fn tracing() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PV_TRACE_VIRTIO").is_some())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves queue `index`, then any queues the device asks for (it may have
/// answers or input for its receive queues); records the outcome. Returns
/// whether the driver must be interrupted.
fn serve(core: &Mutex<Core>, shared: &Shared, ram: &GuestRam, index: usize) -> bool {
    if !shared.live.load(Ordering::Acquire) {
        return false;
    }
    let mut core = lock(core);
    let Core { device, queues } = &mut *core;
    let mut interrupt = false;
    let mut todo: u64 = 1 << (index.min(63));
    // Bounded: a device cannot keep the transport busy forever.
    for _ in 0..8 {
        while todo != 0 {
            let i = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            let Some(q) = queues.get_mut(i) else { continue };
            if !q.ready {
                continue;
            }
            let result = q.validate(ram).and_then(|()| device.process(i, q, ram));
            match result {
                Ok(true) if q.wants_interrupt(ram) => {
                    shared.interrupt.fetch_or(INT_USED, Ordering::AcqRel);
                    interrupt = true;
                }
                Ok(_) => {}
                Err(e) => {
                    if tracing() {
                        eprintln!(
                            "virtio {}: queue {i}: {e}; device needs reset",
                            device.device_id()
                        );
                    }
                    *lock(&shared.last_error) = Some(e);
                    shared.live.store(false, Ordering::Release);
                    shared.needs_reset.store(true, Ordering::Release);
                    shared.interrupt.fetch_or(INT_CONFIG, Ordering::AcqRel);
                    return true;
                }
            }
        }
        todo = device.pending_queues();
        if todo == 0 {
            break;
        }
    }
    interrupt
}

/// Lets the device act on host events: a configuration change is
/// announced to the driver, queues the device has work for are served.
/// Returns whether the driver must be interrupted.
fn poll_core(core: &Mutex<Core>, shared: &Shared, ram: &GuestRam) -> bool {
    let (changed, pending) = {
        let mut core = lock(core);
        let changed = core.device.poll();
        (changed, core.device.pending_queues())
    };
    let mut interrupt = false;
    if changed {
        shared.config_generation.fetch_add(1, Ordering::AcqRel);
        if shared.driver_ok.load(Ordering::Acquire) {
            shared.interrupt.fetch_or(INT_CONFIG, Ordering::AcqRel);
            interrupt = true;
        }
    }
    if pending != 0 {
        let i = pending.trailing_zeros() as usize;
        interrupt |= serve(core, shared, ram, i);
    }
    interrupt
}

impl MmioTransport {
    /// The offset of QueueNotify, where the driver writes a queue's index
    /// to kick it.
    pub const QUEUE_NOTIFY: u64 = reg::QUEUE_NOTIFY;

    /// Wraps `device`, whose queues live in `ram`; queues are served on the
    /// thread that kicks them (the vCPU).
    pub fn new(device: Box<dyn VirtioDevice>, ram: Arc<GuestRam>) -> Self {
        let n = device.num_queues();
        let (device_id, offered) = (device.device_id(), device.features() | F_VERSION_1);
        MmioTransport {
            core: Arc::new(Mutex::new(Core {
                device,
                queues: vec![Queue::default(); n],
            })),
            shared: Arc::new(Shared::default()),
            ram,
            device_id,
            offered,
            status: 0,
            features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            worker: None,
            worker_thread: None,
        }
    }

    /// Like [`MmioTransport::new`], but queues are served — and host events
    /// handled — on an I/O thread of its own, so slow I/O never stalls a
    /// vCPU; the thread raises the device's interrupt through `line`.
    pub fn with_worker(device: Box<dyn VirtioDevice>, ram: Arc<GuestRam>, line: IrqLine) -> Self {
        let mut t = Self::new(device, ram);
        let (tx, rx) = std::sync::mpsc::channel::<Work>();
        let (core, shared, ram) = (t.core.clone(), t.shared.clone(), t.ram.clone());
        let name = format!("virtio-{}-io", t.device_id);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            while let Ok(work) = rx.recv() {
                // A bug in a device must not leave the work counted (a
                // pause would wait for it forever): the device is put in
                // NEEDS_RESET instead, and the driver told.
                let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match work {
                    Work::Queue(index) => serve(&core, &shared, &ram, index),
                    Work::Poll => poll_core(&core, &shared, &ram),
                }));
                let interrupt = done.unwrap_or_else(|_| {
                    shared.live.store(false, Ordering::Release);
                    shared.needs_reset.store(true, Ordering::Release);
                    shared.interrupt.fetch_or(INT_CONFIG, Ordering::AcqRel);
                    true
                });
                if interrupt {
                    line.update(|| shared.interrupt.load(Ordering::Acquire) != 0);
                }
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
        });
        // Without a thread, serve inline rather than fail.
        if let Ok(handle) = spawned {
            t.worker = Some(tx);
            t.worker_thread = Some(handle);
        }
        t
    }

    /// Takes queue kicks from `events` (a non-blocking eventfd per queue
    /// index, signalled outside the MMIO path) and returns the handle that
    /// passes them on. `None` without an I/O thread (kicks then stay MMIO
    /// writes) or if events were given before.
    pub fn watch_kicks(&self, events: Vec<(usize, OwnedFd)>) -> Option<QueueKicks> {
        let worker = self.worker.clone()?;
        self.shared.kick_events.set(events).ok()?;
        Some(QueueKicks {
            shared: self.shared.clone(),
            worker,
        })
    }

    /// Whether queue kicks go to an I/O thread of the transport's own (only
    /// then can they come from [`MmioTransport::watch_kicks`]).
    pub fn has_io_thread(&self) -> bool {
        self.worker.is_some()
    }

    /// The number of queues the device has.
    pub fn num_queues(&self) -> usize {
        lock(&self.core).queues.len()
    }

    /// The transport's and its device's state. Call while the VM is paused
    /// (no vCPU touching the registers, no I/O in flight); `Err` if the
    /// device still has I/O in flight.
    pub fn save_state(&self) -> Result<TransportState, String> {
        if self.busy() {
            return Err("a virtio device still has I/O in flight".into());
        }
        let core = lock(&self.core);
        Ok(TransportState {
            device_id: self.device_id,
            status: self.status,
            features_sel: self.features_sel,
            driver_features_sel: self.driver_features_sel,
            driver_features: self.driver_features,
            queue_sel: self.queue_sel,
            config_generation: self.shared.config_generation.load(Ordering::Acquire),
            interrupt: self.shared.interrupt.load(Ordering::Acquire),
            needs_reset: self.shared.needs_reset.load(Ordering::Acquire),
            queues: core.queues.clone(),
            device: core.device.save_state(),
        })
    }

    /// Loads a saved state into a transport around the same kind of device
    /// (same device ID and number of queues), before the guest runs. A state
    /// that does not fit is refused, changing nothing. Queue addresses are
    /// not trusted: they are checked before each use, as the driver's are.
    pub fn restore_state(&mut self, s: &TransportState) -> Result<(), String> {
        let mut core = lock(&self.core);
        let id = self.device_id;
        if s.device_id != id || s.queues.len() != core.queues.len() {
            return Err(format!(
                "saved virtio device {} with {} queues does not fit device {id} with {}",
                s.device_id,
                s.queues.len(),
                core.queues.len()
            ));
        }
        core.device.restore_state(&s.device)?;
        core.queues = s.queues.clone();
        drop(core);
        self.status = s.status & 0xff;
        self.features_sel = s.features_sel;
        self.driver_features_sel = s.driver_features_sel;
        self.driver_features = s.driver_features;
        self.queue_sel = s.queue_sel;
        self.shared
            .config_generation
            .store(s.config_generation, Ordering::Release);
        self.shared
            .driver_ok
            .store(self.status & status::DRIVER_OK != 0, Ordering::Release);
        self.shared
            .interrupt
            .store(s.interrupt & (INT_USED | INT_CONFIG), Ordering::Release);
        self.shared
            .needs_reset
            .store(s.needs_reset, Ordering::Release);
        let live = self.status & status::FEATURES_OK != 0 && !s.needs_reset;
        self.shared.live.store(live, Ordering::Release);
        Ok(())
    }

    /// [`VirtioDevice::set_host_locks`] of the device (the VM paused).
    pub fn set_host_locks(&self, held: bool) -> Result<(), String> {
        lock(&self.core).device.set_host_locks(held)
    }

    /// The last guest error that put the device in NEEDS_RESET.
    pub fn last_error(&self) -> Option<QueueError> {
        lock(&self.shared.last_error).clone()
    }

    fn reset(&mut self) {
        self.shared.live.store(false, Ordering::Release);
        let mut core = lock(&self.core);
        for q in &mut core.queues {
            q.reset();
        }
        core.device.reset();
        drop(core);
        self.status = 0;
        self.driver_features = 0;
        self.shared.driver_ok.store(false, Ordering::Release);
        self.shared.interrupt.store(0, Ordering::Release);
        self.shared.needs_reset.store(false, Ordering::Release);
        *lock(&self.shared.last_error) = None;
    }

    fn notify(&mut self, index: usize) {
        // Some drivers (virtio-balloon's statistics) kick before DRIVER_OK;
        // a configured queue is served once features are agreed.
        if tracing() {
            eprintln!("virtio: notify queue {index}");
        }
        if !self.send(Work::Queue(index)) {
            serve(&self.core, &self.shared, &self.ram, index);
        }
    }

    /// Hands `work` to the I/O thread; false if there is none.
    fn send(&self, work: Work) -> bool {
        let Some(tx) = &self.worker else {
            return false;
        };
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if tx.send(work).is_err() {
            // The thread is gone: the caller serves inline instead.
            self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let mut v = value & 0xff;
        if v & status::FEATURES_OK != 0 && self.status & status::FEATURES_OK == 0 {
            let offered = self.offered;
            let ok =
                self.driver_features & !offered == 0 && self.driver_features & F_VERSION_1 != 0;
            if ok {
                lock(&self.core).device.set_features(self.driver_features);
            } else {
                v &= !status::FEATURES_OK;
            }
        }
        self.status = v;
        self.shared
            .driver_ok
            .store(v & status::DRIVER_OK != 0, Ordering::Release);
        let live = v & status::FEATURES_OK != 0 && !self.shared.needs_reset.load(Ordering::Acquire);
        self.shared.live.store(live, Ordering::Release);
        let _ = (
            status::ACKNOWLEDGE,
            status::DRIVER,
            status::FAILED,
            status::DRIVER_OK,
        );
    }

    fn status(&self) -> u32 {
        if self.shared.needs_reset.load(Ordering::Acquire) {
            self.status | status::NEEDS_RESET
        } else {
            self.status
        }
    }
}

fn set_half(reg: &mut u64, high: bool, value: u64) {
    let v = value & 0xffff_ffff;
    *reg = if high {
        (*reg & 0xffff_ffff) | v << 32
    } else {
        (*reg & !0xffff_ffff) | v
    };
}

impl MmioDevice for MmioTransport {
    fn busy(&self) -> bool {
        // The event before the count: `QueueKicks::forward` counts before
        // it takes the event, so an event found gone was counted already.
        self.shared.kick_pending() || self.shared.in_flight.load(Ordering::SeqCst) != 0
    }

    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= reg::CONFIG {
            let mut buf = [0u8; 8];
            let n = (size as usize).clamp(1, 8);
            lock(&self.core)
                .device
                .read_config(offset - reg::CONFIG, &mut buf[..n]);
            return u64::from_le_bytes(buf);
        }
        // Registers that need no lock first: an interrupt handler never
        // waits for the device.
        let value = match offset {
            reg::MAGIC_VALUE => Some(0x7472_6976), // "virt"
            reg::VERSION => Some(2),
            reg::DEVICE_ID => Some(self.device_id),
            reg::VENDOR_ID => Some(0x5256_5650), // "PVVR"
            reg::DEVICE_FEATURES => Some(match self.features_sel {
                0 => self.offered as u32,
                1 => (self.offered >> 32) as u32,
                _ => 0,
            }),
            reg::INTERRUPT_STATUS => Some(self.shared.interrupt.load(Ordering::Acquire)),
            reg::STATUS => Some(self.status()),
            reg::CONFIG_GENERATION => Some(self.shared.config_generation.load(Ordering::Acquire)),
            _ => None,
        };
        if let Some(v) = value {
            return v as u64;
        }
        let core = lock(&self.core);
        let q = core.queues.get(self.queue_sel as usize);
        (match offset {
            reg::QUEUE_NUM_MAX if q.is_some() => MAX_QUEUE_SIZE as u32,
            reg::QUEUE_NUM => q.map_or(0, |q| q.size as u32),
            reg::QUEUE_READY => q.is_some_and(|q| q.ready) as u32,
            reg::QUEUE_DESC_LOW => q.map_or(0, |q| q.desc as u32),
            reg::QUEUE_DESC_HIGH => q.map_or(0, |q| (q.desc >> 32) as u32),
            reg::QUEUE_AVAIL_LOW => q.map_or(0, |q| q.avail as u32),
            reg::QUEUE_AVAIL_HIGH => q.map_or(0, |q| (q.avail >> 32) as u32),
            reg::QUEUE_USED_LOW => q.map_or(0, |q| q.used as u32),
            reg::QUEUE_USED_HIGH => q.map_or(0, |q| (q.used >> 32) as u32),
            _ => 0,
        }) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= reg::CONFIG {
            let n = (size as usize).clamp(1, 8);
            lock(&self.core)
                .device
                .write_config(offset - reg::CONFIG, &value.to_le_bytes()[..n]);
            return;
        }
        let sel = self.queue_sel as usize;
        let v = value & 0xffff_ffff;
        // Queue registers may only change while the queue is not ready.
        let configurable = |q: &Queue| !q.ready;
        match offset {
            reg::DEVICE_FEATURES_SEL => self.features_sel = v as u32,
            reg::DRIVER_FEATURES => {
                let shift = match self.driver_features_sel {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                self.driver_features =
                    (self.driver_features & !(0xffff_ffff << shift)) | v << shift;
            }
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = v as u32,
            reg::QUEUE_SEL => self.queue_sel = v as u32,
            reg::QUEUE_NUM => {
                if let Some(q) = lock(&self.core)
                    .queues
                    .get_mut(sel)
                    .filter(|q| configurable(q))
                {
                    q.size = v.min(u16::MAX as u64) as u16;
                }
            }
            reg::QUEUE_READY => {
                if let Some(q) = lock(&self.core).queues.get_mut(sel) {
                    q.ready = v & 1 != 0;
                }
            }
            reg::QUEUE_NOTIFY => self.notify(v as usize),
            reg::INTERRUPT_ACK => {
                self.shared
                    .interrupt
                    .fetch_and(!(v as u32), Ordering::AcqRel);
            }
            reg::STATUS => self.set_status(v as u32),
            reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_AVAIL_LOW
            | reg::QUEUE_AVAIL_HIGH
            | reg::QUEUE_USED_LOW
            | reg::QUEUE_USED_HIGH => {
                if let Some(q) = lock(&self.core)
                    .queues
                    .get_mut(sel)
                    .filter(|q| configurable(q))
                {
                    let high = offset & 4 != 0;
                    let field = match offset & !4 {
                        reg::QUEUE_DESC_LOW => &mut q.desc,
                        reg::QUEUE_AVAIL_LOW => &mut q.avail,
                        _ => &mut q.used,
                    };
                    set_half(field, high, v);
                }
            }
            _ => {}
        }
    }

    fn irq_level(&self) -> bool {
        self.shared.interrupt.load(Ordering::Acquire) != 0
    }

    fn poll(&mut self) {
        if !self.send(Work::Poll) {
            poll_core(&self.core, &self.shared, &self.ram);
        }
    }
}
