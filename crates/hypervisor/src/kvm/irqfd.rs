//! [`SpiLines`]: the board's device lines as irqfds with resampling.
//!
//! Raising a line is an eventfd write, which KVM turns into an asserted
//! SPI. KVM lowers it itself when the guest ends the interrupt (EOI) and
//! signals the line's resample event then; a thread here raises it again
//! if the device still holds it high (its status not yet acknowledged, or
//! new work since). Lowering a line is therefore only noted: the guest's
//! EOI lowers it in KVM.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// The SPIs' events and the devices' levels.
struct Lines {
    triggers: Vec<EventFd>,
    resamples: Vec<EventFd>,
    /// Each line's level as its device last drove it.
    levels: Vec<AtomicBool>,
}

impl Lines {
    fn trigger(&self, spi: usize) {
        let _ = self.triggers[spi].write(1);
    }
}

/// Every SPI of a VM through irqfd; the resampling thread ends on drop.
pub(crate) struct SpiLines {
    lines: Arc<Lines>,
    stop: EventFd,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SpiLines {
    /// An irqfd with a resample event for each of the `spis` SPIs of `vm`.
    pub(crate) fn new(vm: &VmFd, spis: u32) -> Result<Self, String> {
        let event =
            || EventFd::new(EFD_NONBLOCK).map_err(|e| format!("cannot make an eventfd: {e}"));
        let (mut triggers, mut resamples) = (Vec::new(), Vec::new());
        for spi in 0..spis {
            let (trigger, resample) = (event()?, event()?);
            // KVM's default routing: GSI n is SPI n (INTID 32 + n).
            vm.register_irqfd_with_resample(&trigger, &resample, spi)
                .map_err(|e| format!("KVM refused an irqfd for SPI {spi}: {e}"))?;
            triggers.push(trigger);
            resamples.push(resample);
        }
        let lines = Arc::new(Lines {
            levels: (0..spis).map(|_| AtomicBool::new(false)).collect(),
            triggers,
            resamples,
        });
        let stop = event()?;
        let (watched, stop_fd) = (lines.clone(), stop.as_raw_fd());
        let thread = std::thread::Builder::new()
            .name("irq-resample".into())
            .spawn(move || resample(&watched, stop_fd))
            .map_err(|e| format!("cannot start the interrupt resampling thread: {e}"))?;
        Ok(SpiLines {
            lines,
            stop,
            thread: Some(thread),
        })
    }

    /// Drives SPI `spi` to `level` (raised at once; lowered by the guest's EOI).
    pub(crate) fn set(&self, spi: usize, level: bool) {
        let Some(l) = self.lines.levels.get(spi) else {
            return;
        };
        l.store(level, Ordering::SeqCst);
        if level {
            self.lines.trigger(spi);
        }
    }

    /// The level SPI `spi`'s device last drove.
    pub(crate) fn level(&self, spi: usize) -> bool {
        self.lines
            .levels
            .get(spi)
            .is_some_and(|l| l.load(Ordering::SeqCst))
    }

    /// Records a restored line level (KVM's own is loaded separately).
    pub(crate) fn restore_level(&self, spi: usize, level: bool) {
        if let Some(l) = self.lines.levels.get(spi) {
            l.store(level, Ordering::SeqCst);
        }
    }
}

/// Raises again each line the guest ended while its device holds it high,
/// until `stop` is signalled.
fn resample(lines: &Lines, stop: i32) {
    let mut fds: Vec<libc::pollfd> = std::iter::once(stop)
        .chain(lines.resamples.iter().map(|e| e.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: poll over descriptors owned by `lines` and the stop
        // event, which outlive this thread (joined before they drop).
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            return;
        }
        for (spi, p) in fds.iter_mut().skip(1).enumerate() {
            if p.revents & libc::POLLIN != 0 {
                let _ = lines.resamples[spi].read();
                if lines.levels[spi].load(Ordering::SeqCst) {
                    lines.trigger(spi);
                }
            }
            p.revents = 0;
        }
    }
}

impl Drop for SpiLines {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
