//! [`FlatMemory`]: one contiguous block of RAM at a fixed guest address,
//! readable, writable and executable. Used by tests and simple embedders.

use core::ptr::NonNull;

use crate::bus::{Access, Bus, PageLookup, PAGE_MASK, PAGE_SIZE};

/// Page-aligned RAM of a fixed size at a fixed guest address.
pub struct FlatMemory {
    base: u64,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: FlatMemory owns its allocation exclusively; it is plain bytes.
unsafe impl Send for FlatMemory {}

impl Drop for FlatMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}

impl FlatMemory {
    /// `size` bytes (rounded up to whole pages) of zeroed RAM at `base` (page aligned).
    pub fn new(base: u64, size: usize) -> Self {
        assert_eq!(base & PAGE_MASK, 0, "base must be page aligned");
        let len = ((size as u64).div_ceil(PAGE_SIZE) * PAGE_SIZE).max(PAGE_SIZE) as usize;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(Self::layout(len)) };
        let ptr =
            NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(Self::layout(len)));
        FlatMemory { base, ptr, len }
    }

    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len, PAGE_SIZE as usize).expect("valid layout")
    }

    /// Guest address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// The whole memory.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` owns `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The whole memory, writable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Copies `data` to guest address `addr`. Panics if it does not fit.
    pub fn load(&mut self, addr: u64, data: &[u8]) {
        let off = (addr - self.base) as usize;
        self.bytes_mut()[off..off + data.len()].copy_from_slice(data);
    }

    /// Writes little-endian instruction words starting at guest address `addr`.
    pub fn load_code(&mut self, addr: u64, words: &[u32]) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.load(addr, &bytes);
    }
}

// SAFETY: the allocation is never moved or resized, so page pointers stay valid
// for the memory's lifetime; each guest page maps to exactly one host page.
unsafe impl Bus for FlatMemory {
    fn page(&mut self, addr: u64, _access: Access) -> PageLookup {
        let Some(off) = addr.checked_sub(self.base) else {
            return PageLookup::Fault;
        };
        if off >= self.len as u64 {
            return PageLookup::Fault;
        }
        // SAFETY: `off` is within the allocation.
        PageLookup::Ram(unsafe { self.ptr.add((off & !PAGE_MASK) as usize) })
    }
}
