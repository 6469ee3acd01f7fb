//! [`Signals`]: the wires from the outside world into a running CPU.

use std::sync::atomic::{AtomicU32, Ordering};

/// Interrupt lines and a stop request for one CPU, settable from any thread.
///
/// The CPU samples them between blocks of guest code: an asserted,
/// unmasked IRQ or FIQ is taken as an exception; a stop request makes
/// [`crate::Cpu::run`] return [`crate::Exit::Stopped`].
#[derive(Debug, Default)]
pub struct Signals {
    bits: AtomicU32,
}

impl Signals {
    /// The word holding the lines, for compiled code that polls it.
    pub(crate) fn word(&self) -> *const u32 {
        self.bits.as_ptr()
    }

    /// The IRQ line.
    pub const IRQ: u32 = 1;
    /// The FIQ line.
    pub const FIQ: u32 = 2;
    /// A request to return to the embedder.
    pub const STOP: u32 = 4;

    /// Drives the IRQ line to `level`.
    pub fn set_irq(&self, level: bool) {
        self.set(Self::IRQ, level);
    }

    /// Drives the FIQ line to `level`.
    pub fn set_fiq(&self, level: bool) {
        self.set(Self::FIQ, level);
    }

    /// Asks the CPU to return from `run` at the next block boundary.
    pub fn request_stop(&self) {
        self.set(Self::STOP, true);
    }

    /// Whether the IRQ line is asserted.
    pub fn irq(&self) -> bool {
        self.load() & Self::IRQ != 0
    }

    /// All bits (relaxed: a late observation only delays by one block).
    #[inline(always)]
    pub(crate) fn load(&self) -> u32 {
        self.bits.load(Ordering::Relaxed)
    }

    /// Clears a stop request; returns whether one was pending.
    pub(crate) fn take_stop(&self) -> bool {
        self.bits.fetch_and(!Self::STOP, Ordering::AcqRel) & Self::STOP != 0
    }

    fn set(&self, bit: u32, level: bool) {
        if level {
            self.bits.fetch_or(bit, Ordering::AcqRel);
        } else {
            self.bits.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}
