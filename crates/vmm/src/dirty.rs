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
//! ([`hypervisor::VcpuHandle::drop_cached_translations`]).

use std::sync::Arc;

use board::GuestRam;
use hypervisor::VcpuHandle;

/// Takes the VM's dirty log; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct DirtyLog {
    ram: Arc<GuestRam>,
    vcpus: Vec<Arc<dyn VcpuHandle>>,
    /// Why the log cannot be exact on this VM's backend, if it cannot.
    unsupported: Option<&'static str>,
}

impl DirtyLog {
    pub(crate) fn new(
        ram: Arc<GuestRam>,
        vcpus: Vec<Arc<dyn VcpuHandle>>,
        unsupported: Option<&'static str>,
    ) -> Self {
        DirtyLog {
            ram,
            vcpus,
            unsupported,
        }
    }

    /// The pages written since the last take, as a bitmap (bit `i` of word
    /// `w` is the page at RAM base + (64 w + i) × 4 KiB); the log is empty
    /// afterwards. `Err` if a vCPU did not acknowledge in time (the log is
    /// then not exact and the caller must not rely on it).
    pub fn take(&self) -> Result<Vec<u64>, String> {
        if let Some(why) = self.unsupported {
            return Err(why.into());
        }
        let log = self.ram.take_dirty();
        for v in &self.vcpus {
            v.drop_cached_translations()?;
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
