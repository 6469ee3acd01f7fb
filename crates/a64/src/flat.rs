//! [`FlatMemory`]: one contiguous block of RAM at a fixed guest address,
//! readable, writable and executable. Used by tests and simple embedders.

use core::ptr::NonNull;

use crate::bus::{Access, Bus, PageLookup, PAGE_MASK, PAGE_SIZE};

/// Page-aligned RAM of a fixed size at a fixed guest address.
pub struct FlatMemory {
    base: u64,
    bytes: Box<[u8]>,
}

impl FlatMemory {
    /// `size` bytes (rounded up to whole pages) of zeroed RAM at `base` (page aligned).
    pub fn new(base: u64, size: usize) -> Self {
        assert_eq!(base & PAGE_MASK, 0, "base must be page aligned");
        let size = (size as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let bytes = vec![0u8; size as usize].into_boxed_slice();
        FlatMemory { base, bytes }
    }

    /// Guest address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The whole memory.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole memory, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Copies `data` to guest address `addr`. Panics if it does not fit.
    pub fn load(&mut self, addr: u64, data: &[u8]) {
        let off = (addr - self.base) as usize;
        self.bytes[off..off + data.len()].copy_from_slice(data);
    }

    /// Writes little-endian instruction words starting at guest address `addr`.
    pub fn load_code(&mut self, addr: u64, words: &[u32]) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.load(addr, &bytes);
    }
}

// SAFETY: the boxed slice is never reallocated, so page pointers stay valid
// for the memory's lifetime; each guest page maps to exactly one host page.
unsafe impl Bus for FlatMemory {
    fn page(&mut self, addr: u64, _access: Access) -> PageLookup {
        let Some(off) = addr.checked_sub(self.base) else {
            return PageLookup::Fault;
        };
        if off >= self.bytes.len() as u64 {
            return PageLookup::Fault;
        }
        let page = (off & !PAGE_MASK) as usize;
        PageLookup::Ram(NonNull::new(self.bytes[page..].as_mut_ptr()).expect("non-null"))
    }
}
