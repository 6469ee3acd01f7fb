//! The software TLB: a direct-mapped cache from guest page to host pointer.
//!
//! Each entry caches one 4 KiB guest page with one tag per access kind, so a
//! page can be readable and fetchable without being writable through the fast
//! path (pages holding cached code are never writable through it, which is
//! how writes to code are noticed).

use crate::bus::{PAGE_MASK, PAGE_SIZE};

/// Number of entries (a power of two).
pub(crate) const TLB_ENTRIES: usize = 1024;

/// A tag that never matches a page-aligned address.
pub(crate) const INVALID_TAG: u64 = 1;

/// One cached page: the guest page address per permitted access kind, and
/// the value to add to a guest address to get the host address.
#[derive(Clone, Copy)]
pub(crate) struct TlbEntry {
    pub read: u64,
    pub write: u64,
    pub fetch: u64,
    pub addend: usize,
}

const EMPTY: TlbEntry = TlbEntry {
    read: INVALID_TAG,
    write: INVALID_TAG,
    fetch: INVALID_TAG,
    addend: 0,
};

/// The TLB proper.
pub(crate) struct Tlb {
    pub entries: Box<[TlbEntry; TLB_ENTRIES]>,
}

/// Index of the entry that caches `addr`.
#[inline(always)]
pub(crate) fn tlb_index(addr: u64) -> usize {
    (addr / PAGE_SIZE) as usize & (TLB_ENTRIES - 1)
}

impl Tlb {
    pub fn new() -> Self {
        Tlb {
            entries: Box::new([EMPTY; TLB_ENTRIES]),
        }
    }

    /// Invalidates every entry.
    pub fn flush(&mut self) {
        self.entries.fill(EMPTY);
    }

    /// Caches `page` (page aligned) backed by `host` (page aligned) for `kind`.
    /// `kind` is 0 = read, 1 = write, 2 = fetch.
    pub fn fill(&mut self, page: u64, host: usize, kind: u8) {
        let e = &mut self.entries[tlb_index(page)];
        let addend = host.wrapping_sub(page as usize);
        let holds_page = e.read == page || e.write == page || e.fetch == page;
        if !holds_page || e.addend != addend {
            *e = EMPTY;
            e.addend = addend;
        }
        match kind {
            0 => e.read = page,
            1 => e.write = page,
            _ => e.fetch = page,
        }
    }

    /// Removes write permission from every entry backed by host page `host_page`
    /// (a host address >> 12), so that writes to it take the slow path.
    pub fn drop_writes_to_host_page(&mut self, host_page: usize) {
        for e in self.entries.iter_mut() {
            if e.write != INVALID_TAG
                && (e.write as usize).wrapping_add(e.addend) >> 12 == host_page
            {
                e.write = INVALID_TAG;
            }
        }
    }
}

const _: () = assert!(PAGE_MASK == 0xfff);
