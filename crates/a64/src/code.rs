//! [`SharedCode`]: the code pages of one machine, shared by all its CPUs
//! (through their [`crate::Domain`]), so that code changed by one CPU is
//! dropped by every CPU holding blocks decoded from it.
//!
//! Each CPU keeps its own blocks and, for its own store tracking, the set
//! of pages it decoded from (a store by that CPU to such a page drops its
//! blocks at once). What the machine shares is the union of those pages
//! and a log of invalidations: a CPU that changes a code page — a store it
//! noticed, `IC IVAU` (which the architecture broadcasts to every CPU of
//! the inner shareable domain), `IC IALLUIS`, or the embedder writing
//! memory behind its back — logs it and the domain brings the other CPUs
//! to a block boundary; each CPU reads the log at its next block boundary
//! and drops its blocks from the pages named. A store by one CPU to code
//! another CPU runs is seen once the writer does the cache maintenance the
//! architecture requires of it (CTR_EL0.DIC is 0 here), as on hardware.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::addr_hash::AddrSet;

/// Invalidations kept for CPUs that have not read them yet; a CPU further
/// behind drops all its blocks instead.
const LOG_LEN: usize = 256;

/// What was invalidated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalidation {
    /// Every block from this host page (address >> 12).
    Page(usize),
    /// Every block.
    All,
}

/// The code pages of one machine and the invalidations of them.
#[derive(Default)]
pub(crate) struct SharedCode {
    inner: Mutex<Inner>,
    /// Number of invalidations logged so far.
    generation: AtomicU64,
}

#[derive(Default)]
struct Inner {
    /// Host pages any CPU holds decoded blocks from.
    pages: AddrSet<usize>,
    /// The latest invalidations, oldest first; the last has number `generation`.
    log: VecDeque<Invalidation>,
}

impl std::fmt::Debug for SharedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCode")
            .field("pages", &self.lock().pages.len())
            .field("generation", &self.generation())
            .finish()
    }
}

impl SharedCode {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding it; keep the data if something did.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many host pages hold decoded code of some CPU.
    pub fn pages(&self) -> usize {
        self.lock().pages.len()
    }

    /// Number of invalidations logged so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Notes that a CPU decoded code from host page `page`.
    pub(crate) fn add_page(&self, page: usize) {
        self.lock().pages.insert(page);
    }

    /// Code in host page `page` changed (or may have): logs it for every CPU
    /// if any CPU holds blocks from it. Returns whether it logged anything
    /// (the other CPUs must then look at the log).
    pub(crate) fn invalidate(&self, what: Invalidation) -> bool {
        let mut inner = self.lock();
        match what {
            Invalidation::Page(page) if !inner.pages.remove(&page) => return false,
            Invalidation::Page(_) => {}
            Invalidation::All => {
                if inner.pages.is_empty() {
                    return false;
                }
                inner.pages.clear();
            }
        }
        if inner.log.len() == LOG_LEN {
            inner.log.pop_front();
        }
        inner.log.push_back(what);
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// The invalidations after number `seen`, and the current number.
    /// `None`: more happened than the log keeps (drop every block).
    pub(crate) fn since(&self, seen: u64) -> (Option<Vec<Invalidation>>, u64) {
        let inner = self.lock();
        let now = self.generation();
        let missed = now.saturating_sub(seen) as usize;
        if missed > inner.log.len() {
            return (None, now);
        }
        let recent = inner.log.iter().skip(inner.log.len() - missed).copied();
        (Some(recent.collect()), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cpu, Exit, FlatMemory};

    const MOV_X0_1: u32 = 0xd280_0020;
    const MOV_X0_2: u32 = 0xd280_0040;
    const BRK: u32 = 0xd420_0000;
    const STR_W2_X1: u32 = 0xb900_0022;
    const IC_IVAU_X1: u32 = 0xd50b_7521;

    fn load(mem: &mut FlatMemory, at: u64, words: &[u32]) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.load(at, &bytes);
    }

    /// CPU `b` runs the code at 0x2000 (`mov x0, #1`); CPU `a` overwrites
    /// it with `mov x0, #2` and cleans it with IC IVAU, as the architecture
    /// asks; `b` runs it again and returns what x0 holds.
    fn cross_modify(a: &mut Cpu, b: &mut Cpu) -> u64 {
        let mut mem = FlatMemory::new(0x1000, 0x2000);
        load(&mut mem, 0x2000, &[MOV_X0_1, BRK]);
        load(&mut mem, 0x1000, &[STR_W2_X1, IC_IVAU_X1, BRK]);
        b.pc = 0x2000;
        assert_eq!(b.run(&mut mem, 100), Exit::Brk(0));
        assert_eq!(b.xreg(0), 1);
        a.pc = 0x1000;
        a.set_xreg(1, 0x2000);
        a.set_xreg(2, MOV_X0_2 as u64);
        assert_eq!(a.run(&mut mem, 100), Exit::Brk(0));
        b.pc = 0x2000;
        // The kick from `a` may end `b`'s first run before any instruction.
        let mut exit = b.run(&mut mem, 100);
        if exit == Exit::Stopped {
            exit = b.run(&mut mem, 100);
        }
        assert_eq!(exit, Exit::Brk(0));
        b.xreg(0)
    }

    #[test]
    fn code_changed_by_one_cpu_is_dropped_by_another() {
        let domain = crate::Domain::new();
        let (mut a, mut b) = (Cpu::new(), Cpu::new());
        a.join_domain(domain.clone());
        b.join_domain(domain.clone());
        assert_eq!(cross_modify(&mut a, &mut b), 2, "b ran the new code");
        assert!(domain.code_pages() >= 1);
    }

    #[test]
    fn without_sharing_the_other_cpu_keeps_its_stale_block() {
        // The control for the test above: each CPU on its own set.
        let (mut a, mut b) = (Cpu::new(), Cpu::new());
        assert_eq!(cross_modify(&mut a, &mut b), 1);
    }

    #[test]
    fn a_cpu_far_behind_drops_everything() {
        let shared = SharedCode::default();
        for page in 0..LOG_LEN + 10 {
            shared.add_page(page);
            assert!(shared.invalidate(Invalidation::Page(page)));
        }
        assert_eq!(shared.since(0).0, None);
        let (recent, now) = shared.since(LOG_LEN as u64);
        assert_eq!(recent.unwrap().len(), 10);
        assert_eq!(now, (LOG_LEN + 10) as u64);
        // Pages no CPU decoded from log nothing.
        assert!(!shared.invalidate(Invalidation::Page(1 << 40)));
        assert_eq!(shared.since(now).0, Some(vec![]));
    }
}
