//! [`Signals`]: what other threads may ask of one running CPU — its
//! interrupt lines, a stop request, TLB maintenance and events — and the
//! handshake that tells them when it was done.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// TLB maintenance one CPU asks of another (a broadcast `TLBI ...IS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlbOp {
    /// Drop every cached translation.
    All,
    /// Drop the translations of `len` bytes of virtual addresses from `va`.
    Range {
        /// First virtual address.
        va: u64,
        /// Length in bytes.
        len: u64,
    },
}

/// Requests queued before the CPU drops everything instead.
const MAX_QUEUED: usize = 64;

/// Interrupt lines, requests and the event register of one CPU, settable
/// from any thread.
///
/// The CPU samples the lines between blocks of guest code: an asserted,
/// unmasked IRQ or FIQ is taken as an exception; a stop request makes
/// [`crate::Cpu::run`] return [`crate::Exit::Stopped`]; a sync request makes
/// it act on the TLB maintenance and code changes other CPUs asked for and
/// carry on.
///
/// The translation handshake: the CPU sets `in_guest` and then serves the
/// pending requests before it runs guest code, and serves them again before
/// it clears `in_guest`; a requester counts its request in `requested` and
/// then waits only while the CPU is in guest code and has not served it.
/// Both sides are sequentially consistent, so one of them sees the other:
/// either the CPU serves the request before it uses a translation again, or
/// the requester waits for it.
#[derive(Debug, Default)]
pub struct Signals {
    bits: AtomicU32,
    in_guest: AtomicBool,
    requested: AtomicU64,
    served: AtomicU64,
    queue: Mutex<TlbQueue>,
    /// The event register (WFE, SEV).
    event: AtomicBool,
}

/// Pending TLB maintenance, in order; `overflow` means drop everything.
#[derive(Debug, Default)]
struct TlbQueue {
    ops: Vec<TlbOp>,
    overflow: bool,
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
    /// A request to serve other CPUs' TLB maintenance and code changes at
    /// the next block boundary, and go on.
    pub const SYNC: u32 = 8;

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

    /// Brings the CPU to a block boundary to serve requests.
    pub(crate) fn request_sync(&self) {
        self.set(Self::SYNC, true);
    }

    fn set(&self, bit: u32, level: bool) {
        if level {
            self.bits.fetch_or(bit, Ordering::AcqRel);
        } else {
            self.bits.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Asks the CPU to drop every cached translation (or write permission)
    /// and waits until it has, or holds none because it is outside guest
    /// code (it then drops them before it runs guest code again). `Err` if
    /// it did not answer within `limit`.
    pub fn drop_translations(&self, limit: Duration) -> Result<(), String> {
        let ticket = self.post_tlb(TlbOp::All);
        if self.wait_served(ticket, limit, || {}) {
            Ok(())
        } else {
            Err("a vCPU did not drop its translations in time".into())
        }
    }

    /// Queues TLB maintenance for the CPU and brings it to a block
    /// boundary; returns the ticket [`Signals::wait_served`] waits for.
    pub(crate) fn post_tlb(&self, op: TlbOp) -> u64 {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.ops.len() < MAX_QUEUED {
                q.ops.push(op);
            } else {
                q.overflow = true;
            }
        }
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.request_sync();
        ticket
    }

    /// Whether request `ticket` needs no more waiting: served, or the CPU
    /// is outside guest code.
    pub(crate) fn served(&self, ticket: u64) -> bool {
        !self.in_guest.load(Ordering::SeqCst) || self.served.load(Ordering::Acquire) >= ticket
    }

    /// Waits until [`Signals::served`] holds for `ticket`, calling `meanwhile`
    /// between looks (a waiting CPU serves its own requests there, so two
    /// CPUs waiting for each other both go on). False after `limit`.
    pub(crate) fn wait_served(
        &self,
        ticket: u64,
        limit: Duration,
        mut meanwhile: impl FnMut(),
    ) -> bool {
        let start = Instant::now();
        let mut spins = 0u32;
        while !self.served(ticket) {
            meanwhile();
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if start.elapsed() > limit {
                return false;
            } else {
                std::thread::yield_now();
            }
        }
        true
    }

    /// Marks the CPU as in guest code (true) or out of it; the CPU serves
    /// its requests right after entering and right before leaving.
    pub(crate) fn set_in_guest(&self, on: bool) {
        self.in_guest.store(on, Ordering::SeqCst);
    }

    /// The requests to serve now, if any, with the count they bring the
    /// CPU up to; `None` in place of the list means drop everything (the
    /// queue overflowed).
    pub(crate) fn take_tlb(&self) -> Option<(Option<Vec<TlbOp>>, u64)> {
        // Cleared before the count is read: a request counted after this
        // sets the bit again. Only when set: `run` comes by on every entry.
        if self.load() & Self::SYNC != 0 {
            self.bits.fetch_and(!Self::SYNC, Ordering::AcqRel);
        }
        let requested = self.requested.load(Ordering::SeqCst);
        if self.served.load(Ordering::Relaxed) >= requested {
            return None;
        }
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let ops = if std::mem::take(&mut q.overflow) {
            q.ops.clear();
            None
        } else {
            Some(std::mem::take(&mut q.ops))
        };
        Some((ops, requested))
    }

    /// Records that the requests up to `count` were served.
    pub(crate) fn mark_served(&self, count: u64) {
        self.served.store(count, Ordering::Release);
    }

    /// Sets the event register (SEV from any CPU, SEVL, an exception return).
    pub(crate) fn send_event(&self) {
        self.event.store(true, Ordering::Release);
    }

    /// Clears the event register; returns whether it was set (WFE).
    pub(crate) fn take_event(&self) -> bool {
        self.event.swap(false, Ordering::AcqRel)
    }
}
