//! The software TLB: a direct-mapped cache from guest page to host pointer.
//!
//! Each entry caches one 4 KiB guest page with one tag per access kind, so a
//! page can be readable and fetchable without being writable through the fast
//! path (pages holding cached code are never writable through it, which is
//! how writes to code are noticed).

use crate::bus::{PAGE_MASK, PAGE_SIZE};

/// Number of entries per TLB (a power of two).
pub(crate) const TLB_ENTRIES: usize = 1024;
/// Number of TLBs: one per privilege (EL0, EL1, EL1 with PAN). User-mode
/// emulation uses only the first. The current one starts at `Cpu::tlb_base`.
pub(crate) const TLB_COUNT: usize = 3;

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

/// The TLBs proper, one after the other.
pub(crate) struct Tlb {
    pub entries: Box<[TlbEntry; TLB_ENTRIES * TLB_COUNT]>,
    /// The smallest range of virtual addresses covering every cached
    /// translation that came from a block (a mapping larger than its granule),
    /// as (first, last). Invalidating by address inside it flushes everything.
    large: Option<(u64, u64)>,
    /// Compiled blocks only chain to each other while this is unchanged. It
    /// goes up by [`GENERATION_STEP`] whenever cached translations or decoded
    /// code may have become stale; its low bits name the translation regime
    /// in use (EL0, EL1, EL1 with PAN), so a link learned under one regime,
    /// whose fetch permission was checked there, is never taken under another.
    pub(crate) generation: u64,
}

/// How much [`Tlb::bump`] adds to the generation (the bits below hold the regime).
pub(crate) const GENERATION_STEP: u64 = 4;

/// Index of the entry that caches `addr`.
#[inline(always)]
pub(crate) fn tlb_index(addr: u64) -> usize {
    (addr / PAGE_SIZE) as usize & (TLB_ENTRIES - 1)
}

impl Tlb {
    pub fn new() -> Self {
        Tlb {
            entries: Box::new([EMPTY; TLB_ENTRIES * TLB_COUNT]),
            large: None,
            generation: 0,
        }
    }

    /// Retires every chain between compiled blocks.
    #[inline]
    pub(crate) fn bump(&mut self) {
        self.generation += GENERATION_STEP;
    }

    /// Notes the translation regime (0..=2) now in use.
    #[inline]
    pub(crate) fn set_regime(&mut self, regime: u64) {
        self.generation = (self.generation & !(GENERATION_STEP - 1)) | regime;
    }

    /// Does one TLB maintenance operation.
    pub(crate) fn apply(&mut self, op: crate::system::signals::TlbOp) {
        use crate::system::signals::TlbOp;
        match op {
            TlbOp::All => self.flush(),
            TlbOp::Range { va, len } => self.flush_range(va, len),
        }
    }

    /// Invalidates every entry.
    pub fn flush(&mut self) {
        self.entries.fill(EMPTY);
        self.large = None;
        self.bump();
    }

    /// Records that the translation of `va` came from a mapping of 2^`size_log2` bytes
    /// larger than its granule.
    pub fn note_large(&mut self, va: u64, size_log2: u32) {
        let first = va & !((1u64 << size_log2) - 1);
        let last = first | ((1u64 << size_log2) - 1);
        self.large = Some(match self.large {
            Some((lo, hi)) => (lo.min(first), hi.max(last)),
            None => (first, last),
        });
    }

    /// Invalidates the translations of the `len` bytes (a multiple of the
    /// page size) at `va`, ignoring the top byte (tagged addresses alias), in
    /// every TLB. Flushes everything when the range meets a cached block.
    pub fn flush_range(&mut self, va: u64, len: u64) {
        self.bump();
        let untagged = va & 0x00ff_ffff_ffff_ffff;
        if let Some((lo, hi)) = self.large {
            let (lo, hi) = (lo & 0x00ff_ffff_ffff_ffff, hi & 0x00ff_ffff_ffff_ffff);
            if untagged <= hi && untagged.wrapping_add(len - 1) >= lo {
                self.flush();
                return;
            }
        }
        let pages = (len / PAGE_SIZE).max(1);
        if pages > TLB_ENTRIES as u64 {
            self.flush();
            return;
        }
        for k in 0..pages {
            let page = untagged.wrapping_add(k * PAGE_SIZE) & !PAGE_MASK;
            for t in 0..TLB_COUNT {
                let e = &mut self.entries[t * TLB_ENTRIES + tlb_index(page)];
                let same = |tag: u64| tag & 0x00ff_ffff_ffff_f000 == page;
                if same(e.read) || same(e.write) || same(e.fetch) {
                    *e = EMPTY;
                }
            }
        }
    }

    /// Caches `page` (page aligned) backed by `host` (page aligned) for `kind`
    /// in the TLB starting at entry `base`. `kind` is 0 = read, 1 = write, 2 = fetch.
    pub fn fill(&mut self, base: usize, page: u64, host: usize, kind: u8) {
        let e = &mut self.entries[base + tlb_index(page)];
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
