//! The VM's dirty log, exact while the guest runs.
//!
//! Guest RAM marks a page when a device writes it and when a vCPU's TLB
//! takes it for writing; stores that hit a cached TLB entry are not seen
//! one by one. Taking the log is therefore two steps: swap the bitmap for
//! an empty one, then make every vCPU drop its cached translations before
//! returning. A page written after the swap through a translation cached
//! before it was already marked in the swapped-out log (the entry was
//! filled after the previous take), and every such store happens before
//! the take returns — so a caller that copies the reported pages after
//! the take sees them. After the take, the first store to any page goes
//! through a fresh TLB fill and is marked again.
//!
//! The handshake with a vCPU thread: it sets `in_guest`, then serves
//! pending flush requests, before running guest code; a taker bumps
//! `requested`, then waits only for vCPUs that are `in_guest` (both
//! sequentially consistent, so one of the two sees the other), kicking
//! them out of guest code with a stop request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use a64::{Cpu, Signals};
use board::GuestRam;

/// One vCPU's side of the TLB-flush handshake.
#[derive(Default)]
pub struct FlushSync {
    in_guest: AtomicBool,
    requested: AtomicU64,
    done: AtomicU64,
}

impl FlushSync {
    /// Call before running guest code: from here on, takers wait for us.
    pub fn enter_guest(&self, cpu: &mut Cpu) {
        self.in_guest.store(true, Ordering::SeqCst);
        self.serve(cpu);
    }

    /// Call after guest code returned (before sleeping or handling exits).
    pub fn leave_guest(&self, cpu: &mut Cpu) {
        self.serve(cpu);
        self.in_guest.store(false, Ordering::SeqCst);
    }

    /// Drops the CPU's cached translations if a taker asked for it.
    fn serve(&self, cpu: &mut Cpu) {
        let requested = self.requested.load(Ordering::SeqCst);
        if self.done.load(Ordering::Acquire) < requested {
            cpu.flush_tlb();
            self.done.store(requested, Ordering::Release);
        }
    }
}

/// A vCPU as the dirty log sees it.
#[derive(Clone)]
pub(crate) struct VcpuHandle {
    pub sync: Arc<FlushSync>,
    pub signals: Arc<Signals>,
}

/// Takes the VM's dirty log; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct DirtyLog {
    ram: Arc<GuestRam>,
    vcpus: Vec<VcpuHandle>,
}

/// How long a take waits for a vCPU before giving up on it (a vCPU always
/// reaches a block boundary far sooner; this only bounds a VMM bug).
const FLUSH_WAIT: Duration = Duration::from_secs(5);

impl DirtyLog {
    pub(crate) fn new(ram: Arc<GuestRam>, vcpus: Vec<VcpuHandle>) -> Self {
        DirtyLog { ram, vcpus }
    }

    /// The pages written since the last take, as a bitmap (bit `i` of word
    /// `w` is the page at RAM base + (64 w + i) × 4 KiB); the log is empty
    /// afterwards. `Err` if a vCPU did not acknowledge in time (the log is
    /// then not exact and the caller must not rely on it).
    pub fn take(&self) -> Result<Vec<u64>, String> {
        let log = self.ram.take_dirty();
        let targets: Vec<u64> = self
            .vcpus
            .iter()
            .map(|v| v.sync.requested.fetch_add(1, Ordering::SeqCst) + 1)
            .collect();
        let start = Instant::now();
        for (v, &target) in self.vcpus.iter().zip(&targets) {
            while v.sync.in_guest.load(Ordering::SeqCst)
                && v.sync.done.load(Ordering::Acquire) < target
            {
                v.signals.request_stop();
                if start.elapsed() > FLUSH_WAIT {
                    return Err("a vCPU did not drop its translations in time".into());
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        Ok(log)
    }

    /// The page numbers (from RAM base) set in a bitmap from [`DirtyLog::take`].
    pub fn pages(bitmap: &[u64]) -> Vec<u64> {
        let mut pages = Vec::new();
        for (w, &word) in bitmap.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                pages.push(w as u64 * 64 + bits.trailing_zeros() as u64);
                bits &= bits - 1;
            }
        }
        pages
    }
}
