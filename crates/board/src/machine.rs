//! The board: guest RAM plus the devices, shared by the vCPU threads, and
//! [`VcpuBus`], one vCPU's view of it (the CPU's [`a64::Bus`]).
//!
//! Locks are per device: the interrupt controller ([`IrqChip`]: GIC and
//! timers), the UART, the RTC and each added device have their own, and
//! the list of added devices is only written while the VM is built. A
//! device access takes its device's lock and, to move the device's
//! interrupt line, the controller's — never another device's.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use a64::{Access, Bus, PageLookup};

use crate::cpu_power::CpuPowers;
use crate::gic::mpidr_of;
use crate::irqchip::{CpuWires, IntcState, IrqChip, IrqLine, KernelIrqchip};
use crate::layout::{self, ppi, spi};
use crate::mmio::MmioDevice;
use crate::pause::PauseGate;
use crate::pl011::Pl011;
use crate::pl031::{self, Pl031};
use crate::ram::{GuestRam, RamError};

/// The machine's power state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    /// Running.
    On,
    /// The guest asked to power off (PSCI SYSTEM_OFF).
    Off,
    /// The guest asked for a reset (PSCI SYSTEM_RESET).
    Reset,
    /// The guest failed beyond recovery (the VMM's report says how).
    Crashed,
    /// The host stopped the VM (a signal, the user quitting, a closed console).
    Stopped,
}

/// An extra MMIO device (virtio transports) with its window and line.
struct Slot {
    base: u64,
    size: u64,
    line: IrqLine,
    device: Mutex<Box<dyn MmioDevice>>,
}

/// A board device with its lock and interrupt line.
pub(crate) struct Platform<T> {
    pub(crate) device: Mutex<T>,
    line: IrqLine,
}

impl<T: MmioDevice> Platform<T> {
    /// Runs `f` on the device, then drives its line from its new level.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut d = lock(&self.device);
        let r = f(&mut d);
        self.line.update(|| d.irq_level());
        r
    }
}

/// The virtual board.
pub struct Board {
    /// Guest RAM (shared with devices that do DMA).
    pub ram: Arc<GuestRam>,
    /// The interrupt controller and timers.
    pub(crate) irq: Arc<IrqChip>,
    pub(crate) uart: Platform<Pl011>,
    pub(crate) rtc: Platform<Pl031>,
    slots: RwLock<Vec<Slot>>,
    power: AtomicU8,
    /// Why the guest crashed, when it did.
    crash_report: Mutex<Option<String>>,
    /// The pause flag vCPU loops park on.
    pub pause: PauseGate,
    /// Each CPU's power state (PSCI CPU_ON and CPU_OFF).
    pub cpu_power: CpuPowers,
    /// A `poll_devices` that came while paused, to run on resume.
    poll_deferred: AtomicBool,
    /// Where console input goes instead of the UART, if set.
    console_redirect: OnceLock<ConsoleSink>,
    /// Host counter minus guest counter: the VM's clock offset.
    counter_offset: AtomicU64,
}

/// Takes console input for another device (e.g. virtio-console's hvc0);
/// returns how many bytes it took.
pub type ConsoleSink = Box<dyn Fn(&[u8]) -> usize + Send + Sync>;

/// Board construction parameters.
pub struct BoardConfig {
    /// Number of CPUs (1..=[`layout::MAX_CPUS`]).
    pub cpus: usize,
    /// RAM size in bytes (whole pages).
    pub ram_size: u64,
    /// Where the UART's output goes.
    pub console: Box<dyn Write + Send>,
    /// RAM the host may merge with identical pages of other VMs
    /// ([`GuestRam::new_mergeable`]) instead of a memfd.
    pub mergeable_ram: bool,
    /// RAM that already holds the guest's memory (see [`RamSource`]).
    pub ram_fd: Option<RamSource>,
}

/// Guest memory a board starts with instead of zeros.
pub enum RamSource {
    /// A memfd of the RAM's size (a migration's received pages), mapped
    /// shared as it is.
    Memfd(std::os::fd::OwnedFd),
    /// A snapshot's raw memory image, mapped copy-on-write.
    Image(std::fs::File),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it would be a VMM bug; keep going with the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Board {
    /// Builds the board: RAM reserved, devices reset.
    pub fn new(cfg: BoardConfig) -> Result<Self, RamError> {
        let cpus = cfg.cpus.clamp(1, layout::MAX_CPUS);
        let irq = Arc::new(IrqChip::new(cpus, layout::NUM_SPIS));
        Ok(Board {
            ram: Arc::new(match cfg.ram_fd {
                Some(RamSource::Memfd(fd)) => {
                    GuestRam::from_memfd(layout::RAM_BASE, cfg.ram_size, fd)?
                }
                Some(RamSource::Image(file)) => {
                    GuestRam::copy_on_write(layout::RAM_BASE, cfg.ram_size, &file)?
                }
                None if cfg.mergeable_ram => {
                    GuestRam::new_mergeable(layout::RAM_BASE, cfg.ram_size)?
                }
                None => GuestRam::new(layout::RAM_BASE, cfg.ram_size)?,
            }),
            uart: Platform {
                device: Mutex::new(Pl011::new(cfg.console)),
                line: irq.line(32 + spi::UART),
            },
            rtc: Platform {
                device: Mutex::new(Pl031::new(pl031::host_clock())),
                line: irq.line(32 + spi::RTC),
            },
            irq,
            slots: RwLock::new(Vec::new()),
            power: AtomicU8::new(Power::On as u8),
            crash_report: Mutex::new(None),
            pause: PauseGate::default(),
            cpu_power: CpuPowers::new(cpus),
            poll_deferred: AtomicBool::new(false),
            console_redirect: OnceLock::new(),
            counter_offset: AtomicU64::new(0),
        })
    }

    /// The guest counter (what CNTVCT_EL0 reads): host monotonic time at
    /// [`a64::COUNTER_HZ`] less the VM's clock offset.
    pub fn counter(&self) -> u64 {
        a64::counter().wrapping_sub(self.counter_offset())
    }

    /// The VM's clock offset: what the host counter is ahead of the guest's.
    /// vCPU backends subtract it from the counter they give the guest.
    pub fn counter_offset(&self) -> u64 {
        self.counter_offset.load(Ordering::Acquire)
    }

    /// Sets the clock offset so the guest counter reads `value` now.
    pub(crate) fn set_counter(&self, value: u64) {
        self.counter_offset
            .store(a64::counter().wrapping_sub(value), Ordering::Release);
    }

    /// Number of CPUs.
    pub fn num_cpus(&self) -> usize {
        self.irq.num_cpus()
    }

    /// Connects CPU `index`'s interrupt lines to the board.
    pub fn connect_cpu(&self, index: usize, wires: Arc<dyn CpuWires>) {
        self.irq.connect_cpu(index, wires);
    }

    /// Hands the interrupt controller to the kernel (KVM's vGIC): device
    /// lines go to `chip`, the model's GIC and timers are not used.
    pub fn use_kernel_irqchip(&self, chip: Box<dyn KernelIrqchip>) -> Result<(), String> {
        self.irq.use_kernel_irqchip(chip)
    }

    /// Whether the kernel has the interrupt controller (KVM).
    pub fn kernel_irqchip(&self) -> bool {
        self.irq.kernel().is_some()
    }

    /// The MPIDR affinity of CPU `index`.
    pub fn mpidr(&self, index: usize) -> u64 {
        mpidr_of(index)
    }

    /// The CPU index with affinity `mpidr`, if any.
    pub fn cpu_of_mpidr(&self, mpidr: u64) -> Option<usize> {
        (0..self.num_cpus()).find(|&i| mpidr_of(i) == mpidr & 0xff_00ff_ffff)
    }

    /// The interrupt line of SPI `spi`, for a device that raises its
    /// interrupt from a thread of its own.
    pub fn irq_line(&self, spi: u32) -> IrqLine {
        self.irq.line(32 + spi)
    }

    /// Adds an MMIO device at `base` (a virtio transport, say) whose
    /// [`MmioDevice::irq_level`] drives SPI `spi` after each access and
    /// poll. The window must lie in the device area and overlap neither
    /// the board's own devices nor another added one.
    pub fn add_device(
        &self,
        base: u64,
        size: u64,
        spi: u32,
        device: Box<dyn MmioDevice>,
    ) -> Result<(), String> {
        let end = base
            .checked_add(size)
            .filter(|&e| size > 0 && e <= layout::RAM_BASE)
            .ok_or_else(|| format!("MMIO window {base:#x}+{size:#x} is outside the device area"))?;
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let taken = self
            .fixed_windows()
            .into_iter()
            .chain(slots.iter().map(|s| (s.base, s.base + s.size)));
        for (b, e) in taken {
            if base < e && b < end {
                return Err(format!(
                    "MMIO window {base:#x}..{end:#x} overlaps {b:#x}..{e:#x}"
                ));
            }
        }
        slots.push(Slot {
            base,
            size,
            line: self.irq_line(spi),
            device: Mutex::new(device),
        });
        Ok(())
    }

    fn slots(&self) -> std::sync::RwLockReadGuard<'_, Vec<Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The address ranges of the board's own devices: the GIC distributor,
    /// its redistributors, the UART and the RTC, in that order.
    fn fixed_windows(&self) -> [(u64, u64); 4] {
        let redist_end = layout::GIC_REDIST + layout::GIC_REDIST_STRIDE * self.num_cpus() as u64;
        [
            (layout::GIC_DIST, layout::GIC_DIST + layout::GIC_DIST_SIZE),
            (layout::GIC_REDIST, redist_end),
            (layout::UART, layout::UART + layout::PRIMECELL_SIZE),
            (layout::RTC, layout::RTC + layout::PRIMECELL_SIZE),
        ]
    }

    /// Reads `size` bytes of device memory at guest physical `addr`, as any
    /// vCPU backend delivers a guest's MMIO load. `None`: nothing there (a
    /// bus error for the guest).
    pub fn mmio_read(&self, addr: u64, size: u8) -> Option<u64> {
        self.mmio(addr, |dev, off| dev.read(off, size))
    }

    /// Writes `size` bytes of device memory at guest physical `addr`, as any
    /// vCPU backend delivers a guest's MMIO store. `None`: nothing there.
    pub fn mmio_write(&self, addr: u64, size: u8, value: u64) -> Option<()> {
        self.mmio(addr, |dev, off| {
            dev.write(off, size, value);
            0
        })
        .map(|_| ())
    }

    fn mmio(&self, addr: u64, f: impl FnOnce(&mut dyn MmioDevice, u64) -> u64) -> Option<u64> {
        let windows = self.fixed_windows();
        if let Some(i) = windows.iter().position(|&(b, e)| (b..e).contains(&addr)) {
            let offset = addr - windows[i].0;
            return Some(match i {
                0 | 1 => {
                    let mut s = self.irq.lock();
                    let r = if i == 0 {
                        f(&mut GicDist(&mut s), offset)
                    } else {
                        f(&mut GicRedist(&mut s), offset)
                    };
                    self.irq.update(&mut s);
                    r
                }
                2 => self.uart.with(|d| f(d, offset)),
                _ => self.rtc.with(|d| f(d, offset)),
            });
        }
        let slots = self.slots();
        let slot = slots
            .iter()
            .find(|s| (s.base..s.base + s.size).contains(&addr))?;
        let mut dev = lock(&slot.device);
        let r = f(dev.as_mut(), addr - slot.base);
        slot.line.update(|| dev.irq_level());
        Some(r)
    }

    /// Removes every device added with [`Board::add_device`] and drops it
    /// (closing its files, sockets and threads); the board's own devices stay.
    /// Call when the VM has ended.
    pub fn remove_devices(&self) {
        let slots = std::mem::take(&mut *self.slots.write().unwrap_or_else(|e| e.into_inner()));
        // Dropped outside the lock: a device's threads may be polling the board.
        drop(slots);
    }

    /// The current power state.
    pub fn power(&self) -> Power {
        match self.power.load(Ordering::Acquire) {
            0 => Power::On,
            1 => Power::Off,
            2 => Power::Reset,
            3 => Power::Crashed,
            _ => Power::Stopped,
        }
    }

    /// Changes the power state and stops every vCPU.
    pub fn set_power(&self, p: Power) {
        // The first reason to leave `On` wins: a guest powering off while
        // the host stops it ends one way, not both.
        let _ = self.power.compare_exchange(
            Power::On as u8,
            p as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.stop_all_cpus();
    }

    /// Kicks every CPU out of guest code, out of a WFI sleep and out of
    /// its wait for CPU_ON.
    fn stop_all_cpus(&self) {
        for i in 0..self.num_cpus() {
            self.irq.kick(i);
            self.irq.wake(i);
        }
        self.cpu_power.wake_all();
    }

    /// Ends the machine as crashed, saying why (unless it already stopped).
    pub fn crash(&self, report: String) {
        if self.power() == Power::On {
            lock(&self.crash_report).get_or_insert(report);
        }
        self.set_power(Power::Crashed);
    }

    /// Why the machine crashed, if [`Board::crash`] said.
    pub fn crash_report(&self) -> Option<String> {
        lock(&self.crash_report).clone()
    }

    /// Sends all further console input to `sink` instead of the UART
    /// (only the first call has an effect).
    pub fn redirect_console_input(&self, sink: ConsoleSink) {
        let _ = self.console_redirect.set(sink);
    }

    /// Feeds input to the UART (the serial console), never the redirect;
    /// returns how many bytes it took.
    pub fn serial_input(&self, bytes: &[u8]) -> usize {
        self.uart.with(|u| u.push_input(bytes))
    }

    /// Feeds console input to the UART (or the redirect); returns how many bytes it took.
    pub fn console_input(&self, bytes: &[u8]) -> usize {
        if let Some(sink) = self.console_redirect.get() {
            return sink(bytes);
        }
        self.uart.with(|u| u.push_input(bytes))
    }

    /// Lets every extra device act on outside events (each under its own
    /// lock; a device with an I/O thread hands the work to it). Call from
    /// any thread after changing state a device watches.
    pub fn poll_devices(&self) {
        for i in 0..self.slots().len() {
            self.poll_device(i);
        }
    }

    /// Lets added device number `index` (in [`Board::add_device`] order)
    /// act on outside events, like [`Board::poll_devices`] for one device.
    pub fn poll_device(&self, index: usize) {
        let slots = self.slots();
        let Some(slot) = slots.get(index) else {
            return;
        };
        let mut dev = lock(&slot.device);
        // Checked under the device's lock, which `pause` takes after setting
        // the flag to see whether the device is busy: a poll either handed
        // its work to the device before that look (and the pause waits for
        // it) or sees the flag and waits for `resume`.
        if self.pause.paused() {
            drop(dev);
            drop(slots);
            self.defer_poll();
            return;
        }
        dev.poll();
        slot.line.update(|| dev.irq_level());
    }

    /// Keeps a host event for `resume` to deliver. If the resume came in
    /// between the caller's look and now, delivers it at once.
    fn defer_poll(&self) {
        // Host events wait in their devices' host-side queues.
        self.poll_deferred.store(true, Ordering::SeqCst);
        if !self.pause.paused() && self.poll_deferred.swap(false, Ordering::SeqCst) {
            self.poll_devices();
        }
    }

    /// Updates the timer interrupt lines of CPU `cpu` from the guest
    /// counter; returns the counter value at which its next timer
    /// interrupt is due, if one is armed and has not fired yet (the vCPU
    /// sizes its time slices by it, so a busy guest takes the interrupt on
    /// time).
    pub fn sync_timers(&self, cpu: usize) -> Option<u64> {
        let next = {
            let mut s = self.irq.lock();
            let now = self.counter();
            sync_timers_at(&mut s, cpu, now);
            self.irq.update(&mut s);
            s.timers[cpu].next_deadline(now)
        };
        self.rtc.with(|r| r.poll());
        next
    }

    /// Blocks CPU `cpu` (after a WFI) until an interrupt is pending for it,
    /// its timer fires, or the machine stops. At most `limit` long.
    pub fn wait_for_interrupt(&self, cpu: usize, limit: Duration) {
        let deadline = {
            let mut s = self.irq.lock();
            let now = self.counter();
            sync_timers_at(&mut s, cpu, now);
            self.irq.update(&mut s);
            if s.gic.irq_pending(cpu) || self.power() != Power::On || self.pause.paused() {
                return;
            }
            s.timers[cpu].next_deadline(now).map(|t| {
                let ticks = t.saturating_sub(now);
                Duration::from_nanos(
                    (ticks as u128 * 1_000_000_000 / a64::COUNTER_HZ as u128) as u64,
                )
            })
        };
        self.irq
            .sleep(cpu, deadline.map_or(limit, |d| d.min(limit)));
        self.sync_timers(cpu);
    }

    /// Pauses the machine: every running vCPU parks at its next exit (the
    /// vCPU loop calls [`PauseGate::park_while_paused`]), host events stop
    /// reaching guest memory, and devices finish the I/O they have in
    /// flight. Returns once all of that holds, or once the machine stopped.
    /// `running` says how many vCPU loops are running.
    pub fn pause(&self, running: impl Fn() -> usize) {
        self.pause.set(true);
        let stopped = || self.power() != Power::On;
        self.stop_all_cpus();
        self.pause.wait_parked(running, stopped);
        let busy = || self.slots().iter().any(|s| lock(&s.device).busy());
        while !stopped() && busy() {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Resumes a paused machine, delivering the host events that waited.
    pub fn resume(&self) {
        self.pause.set(false);
        if self.poll_deferred.swap(false, Ordering::SeqCst) {
            self.poll_devices();
        }
    }

    /// One vCPU's view of the board.
    pub fn bus(&self, cpu: usize) -> VcpuBus<'_> {
        VcpuBus { board: self, cpu }
    }
}

/// Drives CPU `cpu`'s timer lines as they are at counter value `now`.
pub(crate) fn sync_timers_at(s: &mut IntcState, cpu: usize, now: u64) {
    let (phys, virt) = s.timers[cpu].outputs(now);
    s.gic.set_level(ppi::PHYS_TIMER, cpu, phys);
    s.gic.set_level(ppi::VIRT_TIMER, cpu, virt);
}

/// The [`Bus`] of one vCPU: RAM directly, devices through the board's
/// MMIO dispatch, and the per-CPU system registers (GIC CPU interface,
/// timers) under the interrupt controller's lock only.
pub struct VcpuBus<'a> {
    board: &'a Board,
    cpu: usize,
}

/// Whether `addr` lies in the device window (the first GiB).
fn is_mmio(addr: u64) -> bool {
    addr < layout::RAM_BASE
}

// SAFETY: RAM pointers come from the board's mapping, which lives as long as
// the board (and so as long as any CPU using this bus), and is never remapped.
unsafe impl Bus for VcpuBus<'_> {
    #[inline]
    fn page(&mut self, addr: u64, access: Access) -> PageLookup {
        match self.board.ram.host_ptr(addr) {
            Some(p) => {
                // The TLB keeps the write permission: the page counts as
                // written from now until the dirty log is next taken (which
                // makes every vCPU drop such entries).
                if access == Access::Write {
                    self.board.ram.mark_dirty(addr);
                }
                PageLookup::Ram(p)
            }
            None if is_mmio(addr) => PageLookup::Io,
            None => PageLookup::Fault,
        }
    }

    fn io_read(&mut self, addr: u64, size: u8) -> Option<u64> {
        self.board.mmio_read(addr, size)
    }

    fn io_write(&mut self, addr: u64, size: u8, value: u64) -> Option<()> {
        self.board.mmio_write(addr, size, value)
    }

    fn sysreg_read(&mut self, key: u32) -> Option<u64> {
        let irq = &self.board.irq;
        let mut s = irq.lock();
        let now = self.board.counter();
        let v = match s.timers[self.cpu].read(key, now) {
            Some(v) => {
                // What the guest reads (ISTATUS) and its interrupt line agree:
                // a timer seen to have fired is pending at the GIC already.
                sync_timers_at(&mut s, self.cpu, now);
                Some(v)
            }
            None => s.gic.icc_read(self.cpu, key),
        };
        irq.update(&mut s);
        v
    }

    fn sysreg_write(&mut self, key: u32, value: u64) -> Option<()> {
        let (irq, cpu) = (&self.board.irq, self.cpu);
        let mut s = irq.lock();
        let now = self.board.counter();
        let r = match s.timers[cpu].write(key, value, now) {
            Some(()) => {
                sync_timers_at(&mut s, cpu, now);
                // The vCPU sized its time slice by the old deadline: have
                // it look again at the next block boundary.
                irq.kick(cpu);
                Some(())
            }
            None => s.gic.icc_write(cpu, key, value),
        };
        irq.update(&mut s);
        r
    }
}

/// The GIC distributor as an MMIO device.
struct GicDist<'a>(&'a mut IntcState);
/// The GIC redistributors as an MMIO device.
struct GicRedist<'a>(&'a mut IntcState);

impl MmioDevice for GicDist<'_> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.0.gic.distributor_read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.0.gic.distributor_write(offset, size, value)
    }
}

impl MmioDevice for GicRedist<'_> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.0.gic.redistributor_read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.0.gic.redistributor_write(offset, size, value)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A device that remembers the last write and reads it back plus its offset.
    struct Echo(u64);

    impl MmioDevice for Echo {
        fn read(&mut self, offset: u64, _size: u8) -> u64 {
            self.0 + offset
        }
        fn write(&mut self, _offset: u64, _size: u8, value: u64) {
            self.0 = value;
        }
    }

    fn board() -> Board {
        Board::new(BoardConfig {
            cpus: 1,
            ram_size: 1 << 20,
            console: Box::new(std::io::sink()),
            mergeable_ram: false,
            ram_fd: None,
        })
        .unwrap()
    }

    #[test]
    fn devices_are_reached_through_mmio_and_windows_never_overlap() {
        let b = board();
        let base = layout::VIRTIO_BASE;
        b.add_device(base, 0x200, 16, Box::new(Echo(0))).unwrap();
        assert_eq!(b.mmio_write(base + 8, 4, 0x100), Some(()));
        assert_eq!(b.mmio_read(base + 4, 4), Some(0x104));
        assert_eq!(b.mmio_read(base + 0x200, 4), None, "nothing there");
        for (at, size) in [
            (base + 0x100, 0x200),        // another device
            (layout::UART, 0x1000),       // the UART
            (layout::GIC_DIST + 0x10, 4), // the GIC
            (layout::RAM_BASE - 0x100, 0x200),
            (u64::MAX - 4, 0x10),
        ] {
            assert!(
                b.add_device(at, size, 17, Box::new(Echo(0))).is_err(),
                "{at:#x}+{size:#x}"
            );
        }
        b.add_device(base + 0x200, 0x200, 17, Box::new(Echo(7)))
            .unwrap();
        assert_eq!(b.mmio_read(base + 0x200, 4), Some(7));
    }
}
