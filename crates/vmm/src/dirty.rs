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
//! How a vCPU drops its cached translations is the backend's business
//! ([`hypervisor::VcpuHandle::drop_cached_translations`]). A backend whose
//! guest stores bypass the RAM (KVM) keeps their log itself
//! ([`hypervisor::GuestWriteLog`]): a take adds it to the RAM's, which
//! still holds the devices' writes.

use std::sync::Arc;

use board::GuestRam;
use hypervisor::{GuestWriteLog, VcpuHandle};

/// Takes the VM's dirty log; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct DirtyLog {
    ram: Arc<GuestRam>,
    vcpus: Vec<Arc<dyn VcpuHandle>>,
    /// The guest's own stores, where the backend logs them.
    guest_writes: Option<Arc<dyn GuestWriteLog>>,
}

impl DirtyLog {
    pub(crate) fn new(
        ram: Arc<GuestRam>,
        vcpus: Vec<Arc<dyn VcpuHandle>>,
        guest_writes: Option<Arc<dyn GuestWriteLog>>,
    ) -> Self {
        DirtyLog {
            ram,
            vcpus,
            guest_writes,
        }
    }

    /// The pages written since the last take, as a bitmap (bit `i` of word
    /// `w` is the page at RAM base + (64 w + i) × 4 KiB); the log is empty
    /// afterwards. `Err` if a vCPU did not acknowledge in time (the log is
    /// then not exact and the caller must not rely on it).
    ///
    /// Under a backend that logs the guest's stores itself (KVM) the first
    /// take starts that log, so it reports only the devices' writes: a
    /// caller copies all of RAM after it (a migration's first round).
    pub fn take(&self) -> Result<Vec<u64>, String> {
        let mut log = self.ram.take_dirty();
        if let Some(kernel) = &self.guest_writes {
            kernel.take(&mut log)?;
        }
        for v in &self.vcpus {
            v.drop_cached_translations()?;
        }
        Ok(log)
    }

    /// Ends the backend's own log of guest stores (the guest pays for it
    /// in write faults) until the next take; the RAM's log goes on.
    pub fn stop(&self) {
        if let Some(kernel) = &self.guest_writes {
            kernel.stop();
        }
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
