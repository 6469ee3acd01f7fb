//! The board: guest RAM plus the devices, shared by the vCPU threads, and
//! [`VcpuBus`], one vCPU's view of it (the CPU's [`a64::Bus`]).

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use a64::{Access, Bus, PageLookup, Signals};

use crate::gic::{mpidr_of, Gic};
use crate::layout::{self, ppi, spi};
use crate::mmio::MmioDevice;
use crate::pause::PauseGate;
use crate::pl011::Pl011;
use crate::pl031::{self, Pl031};
use crate::ram::{GuestRam, RamError};
use crate::timer::Timers;

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

/// An extra MMIO device (virtio transports) with its window and SPI.
struct Slot {
    base: u64,
    size: u64,
    spi: u32,
    device: Box<dyn MmioDevice>,
}

/// Everything behind the board's lock.
pub struct Devices {
    /// The interrupt controller.
    pub gic: Gic,
    pub(crate) uart: Pl011,
    pub(crate) rtc: Pl031,
    pub(crate) timers: Vec<Timers>,
    slots: Vec<Slot>,
}

/// How a vCPU reaches the outside: its interrupt lines and its sleep.
struct CpuLink {
    signals: Mutex<Option<Arc<Signals>>>,
    wake: Mutex<bool>,
    wake_cv: Condvar,
}

/// The virtual board.
pub struct Board {
    /// Guest RAM (shared with devices that do DMA).
    pub ram: Arc<GuestRam>,
    devices: Mutex<Devices>,
    cpus: Vec<CpuLink>,
    power: AtomicU8,
    /// Why the guest crashed, when it did.
    crash_report: Mutex<Option<String>>,
    /// The pause flag vCPU loops park on.
    pub pause: PauseGate,
    /// A `poll_devices` that came while paused, to run on resume.
    poll_deferred: std::sync::atomic::AtomicBool,
    /// Where console input goes instead of the UART, if set.
    console_redirect: std::sync::OnceLock<ConsoleSink>,
    /// Host counter minus guest counter: the VM's clock offset.
    counter_offset: std::sync::atomic::AtomicU64,
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
}

impl Board {
    /// Builds the board: RAM reserved, devices reset.
    pub fn new(cfg: BoardConfig) -> Result<Self, RamError> {
        let cpus = cfg.cpus.clamp(1, layout::MAX_CPUS);
        Ok(Board {
            ram: Arc::new(GuestRam::new(layout::RAM_BASE, cfg.ram_size)?),
            devices: Mutex::new(Devices {
                gic: Gic::new(cpus, layout::NUM_SPIS),
                uart: Pl011::new(cfg.console),
                rtc: Pl031::new(pl031::host_clock()),
                timers: vec![Timers::default(); cpus],
                slots: Vec::new(),
            }),
            cpus: (0..cpus)
                .map(|_| CpuLink {
                    signals: Mutex::new(None),
                    wake: Mutex::new(false),
                    wake_cv: Condvar::new(),
                })
                .collect(),
            power: AtomicU8::new(Power::On as u8),
            crash_report: Mutex::new(None),
            pause: PauseGate::default(),
            poll_deferred: std::sync::atomic::AtomicBool::new(false),
            console_redirect: std::sync::OnceLock::new(),
            counter_offset: std::sync::atomic::AtomicU64::new(0),
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
        self.cpus.len()
    }

    /// Connects CPU `index`'s interrupt lines to the board.
    pub fn connect_cpu(&self, index: usize, signals: Arc<Signals>) {
        *self.cpus[index].signals.lock().expect("signals lock") = Some(signals);
    }

    /// The MPIDR affinity of CPU `index`.
    pub fn mpidr(&self, index: usize) -> u64 {
        mpidr_of(index)
    }

    /// The CPU index with affinity `mpidr`, if any.
    pub fn cpu_of_mpidr(&self, mpidr: u64) -> Option<usize> {
        (0..self.cpus.len()).find(|&i| mpidr_of(i) == mpidr & 0xff_00ff_ffff)
    }

    /// Adds an MMIO device at `base` (a virtio transport, say) whose
    /// [`MmioDevice::irq_level`] drives SPI `spi`. The window must lie in
    /// the device area and overlap neither the board's own devices nor
    /// another added one.
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
        let mut d = self.lock();
        let taken = self
            .fixed_windows()
            .into_iter()
            .chain(d.slots.iter().map(|s| (s.base, s.base + s.size)));
        for (b, e) in taken {
            if base < e && b < end {
                return Err(format!(
                    "MMIO window {base:#x}..{end:#x} overlaps {b:#x}..{e:#x}"
                ));
            }
        }
        d.slots.push(Slot {
            base,
            size,
            spi,
            device,
        });
        Ok(())
    }

    /// The address ranges of the board's own devices: the GIC distributor,
    /// its redistributors, the UART and the RTC, in that order.
    fn fixed_windows(&self) -> [(u64, u64); 4] {
        let redist_end = layout::GIC_REDIST + layout::GIC_REDIST_STRIDE * self.cpus.len() as u64;
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
        let mut d = self.lock();
        let fixed = windows.iter().position(|&(b, e)| (b..e).contains(&addr));
        let result = match fixed {
            Some(i) => {
                let offset = addr - windows[i].0;
                Some(match i {
                    0 => f(&mut GicDist(&mut d.gic), offset),
                    1 => f(&mut GicRedist(&mut d.gic), offset),
                    2 => f(&mut d.uart, offset),
                    _ => f(&mut d.rtc, offset),
                })
            }
            None => d
                .slots
                .iter_mut()
                .find(|s| (s.base..s.base + s.size).contains(&addr))
                .map(|s| f(s.device.as_mut(), addr - s.base)),
        };
        self.refresh(&mut d);
        result
    }

    /// Removes every device added with [`Board::add_device`] and drops it
    /// (closing its files, sockets and threads); the board's own devices stay.
    /// Call when the VM has ended.
    pub fn remove_devices(&self) {
        let slots = std::mem::take(&mut self.lock().slots);
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

    /// Asks CPU `cpu` to leave guest code at its next block boundary.
    fn kick_cpu(&self, cpu: usize) {
        if let Some(s) = self.cpus[cpu]
            .signals
            .lock()
            .expect("signals lock")
            .as_ref()
        {
            s.request_stop();
        }
    }

    /// Kicks every CPU out of guest code and out of a WFI sleep.
    fn stop_all_cpus(&self) {
        for (i, c) in self.cpus.iter().enumerate() {
            self.kick_cpu(i);
            *c.wake.lock().expect("wake lock") = true;
            c.wake_cv.notify_all();
        }
    }

    /// Ends the machine as crashed, saying why (unless it already stopped).
    pub fn crash(&self, report: String) {
        if self.power() == Power::On {
            let mut r = self.crash_report.lock().unwrap_or_else(|e| e.into_inner());
            r.get_or_insert(report);
        }
        self.set_power(Power::Crashed);
    }

    /// Why the machine crashed, if [`Board::crash`] said.
    pub fn crash_report(&self) -> Option<String> {
        self.crash_report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Devices> {
        // A panic while holding the lock would be a VMM bug; keep going with the data.
        self.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends all further console input to `sink` instead of the UART
    /// (only the first call has an effect).
    pub fn redirect_console_input(&self, sink: ConsoleSink) {
        let _ = self.console_redirect.set(sink);
    }

    /// Feeds console input to the UART (or the redirect); returns how many bytes it took.
    pub fn console_input(&self, bytes: &[u8]) -> usize {
        if let Some(sink) = self.console_redirect.get() {
            return sink(bytes);
        }
        let mut d = self.lock();
        let n = d.uart.push_input(bytes);
        self.refresh(&mut d);
        n
    }

    /// Lets every extra device act on outside events, then updates interrupts.
    /// Call from any thread after changing state a device watches.
    pub fn poll_devices(&self) {
        if self.pause.paused() {
            // Host events wait in their devices' host-side queues.
            self.poll_deferred.store(true, Ordering::Release);
            return;
        }
        let mut d = self.lock();
        for slot in &mut d.slots {
            slot.device.poll();
        }
        self.refresh(&mut d);
    }

    /// Updates the timer interrupt lines of CPU `cpu` from host time;
    /// returns the counter value at which its next timer interrupt is due,
    /// if one is armed and has not fired yet (the vCPU sizes its time
    /// slices by it, so a busy guest takes the interrupt on time).
    pub fn sync_timers(&self, cpu: usize) -> Option<u64> {
        let mut d = self.lock();
        let now = self.counter();
        self.sync_timers_at(&mut d, cpu, now);
        d.rtc.poll();
        self.refresh(&mut d);
        d.timers[cpu].next_deadline(now)
    }

    pub(crate) fn sync_timers_locked(&self, d: &mut Devices, cpu: usize) {
        self.sync_timers_at(d, cpu, self.counter());
    }

    /// Drives CPU `cpu`'s timer lines as they are at counter value `now`.
    fn sync_timers_at(&self, d: &mut Devices, cpu: usize, now: u64) {
        let (phys, virt) = d.timers[cpu].outputs(now);
        d.gic.set_level(ppi::PHYS_TIMER, cpu, phys);
        d.gic.set_level(ppi::VIRT_TIMER, cpu, virt);
    }

    /// Recomputes device interrupt lines and every CPU's IRQ line, waking
    /// sleeping CPUs that now have an interrupt.
    pub(crate) fn refresh(&self, d: &mut Devices) {
        let uart = d.uart.irq_level();
        let rtc = d.rtc.irq_level();
        d.gic.set_level(32 + spi::UART, 0, uart);
        d.gic.set_level(32 + spi::RTC, 0, rtc);
        for i in 0..d.slots.len() {
            let level = d.slots[i].device.irq_level();
            let n = d.slots[i].spi;
            d.gic.set_level(32 + n, 0, level);
        }
        d.gic.take_kicks();
        for (i, c) in self.cpus.iter().enumerate() {
            let pending = d.gic.irq_pending(i);
            if let Some(s) = c.signals.lock().expect("signals lock").as_ref() {
                s.set_irq(pending);
            }
            if pending {
                *c.wake.lock().expect("wake lock") = true;
                c.wake_cv.notify_all();
            }
        }
    }

    /// Blocks CPU `cpu` (after a WFI) until an interrupt is pending for it,
    /// its timer fires, or the machine stops. At most `limit` long.
    pub fn wait_for_interrupt(&self, cpu: usize, limit: Duration) {
        let deadline = {
            let mut d = self.lock();
            self.sync_timers_locked(&mut d, cpu);
            self.refresh(&mut d);
            if d.gic.irq_pending(cpu) || self.power() != Power::On || self.pause.paused() {
                return;
            }
            let now = self.counter();
            d.timers[cpu].next_deadline(now).map(|t| {
                let ticks = t.saturating_sub(now);
                Duration::from_nanos(
                    (ticks as u128 * 1_000_000_000 / a64::COUNTER_HZ as u128) as u64,
                )
            })
        };
        let wait = deadline.map_or(limit, |d| d.min(limit));
        let link = &self.cpus[cpu];
        let mut woken = link.wake.lock().expect("wake lock");
        if !*woken {
            woken = link.wake_cv.wait_timeout(woken, wait).expect("wake lock").0;
        }
        *woken = false;
        drop(woken);
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
        while !stopped() && self.lock().slots.iter().any(|s| s.device.busy()) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Resumes a paused machine, delivering the host events that waited.
    pub fn resume(&self) {
        self.pause.set(false);
        if self.poll_deferred.swap(false, Ordering::AcqRel) {
            self.poll_devices();
        }
    }

    /// One vCPU's view of the board.
    pub fn bus(&self, cpu: usize) -> VcpuBus<'_> {
        VcpuBus { board: self, cpu }
    }
}

/// The [`Bus`] of one vCPU: RAM directly, devices under the board's lock,
/// and the per-CPU system registers (GIC CPU interface, timers).
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
        let mut d = self.board.lock();
        let now = self.board.counter();
        let v = match d.timers[self.cpu].read(key, now) {
            Some(v) => {
                // What the guest reads (ISTATUS) and its interrupt line agree:
                // a timer seen to have fired is pending at the GIC already.
                self.board.sync_timers_at(&mut d, self.cpu, now);
                Some(v)
            }
            None => d.gic.icc_read(self.cpu, key),
        };
        self.board.refresh(&mut d);
        v
    }

    fn sysreg_write(&mut self, key: u32, value: u64) -> Option<()> {
        let mut d = self.board.lock();
        let cpu = self.cpu;
        let r = match d.timers[cpu].write(key, value, self.board.counter()) {
            Some(()) => {
                self.board.sync_timers_locked(&mut d, cpu);
                // The vCPU sized its time slice by the old deadline: have
                // it look again at the next block boundary.
                self.board.kick_cpu(cpu);
                Some(())
            }
            None => d.gic.icc_write(cpu, key, value),
        };
        self.board.refresh(&mut d);
        r
    }
}

/// The GIC distributor as an MMIO device.
struct GicDist<'a>(&'a mut Gic);
/// The GIC redistributors as an MMIO device.
struct GicRedist<'a>(&'a mut Gic);

impl MmioDevice for GicDist<'_> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.0.distributor_read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.0.distributor_write(offset, size, value)
    }
}

impl MmioDevice for GicRedist<'_> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        self.0.redistributor_read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        self.0.redistributor_write(offset, size, value)
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
