//! The CPU's only window on the outside world: the [`Bus`] trait.
//!
//! The CPU knows nothing about devices. Every memory access goes through a
//! software TLB inside the CPU; on a miss the CPU asks the bus for a host
//! pointer to the 4 KiB page that holds the address. Ordinary memory (RAM)
//! answers with a pointer and is then accessed directly; anything else (MMIO)
//! answers [`PageLookup::Io`] and each access goes through [`Bus::io_read`] /
//! [`Bus::io_write`].

use core::ptr::NonNull;

/// Size of the pages the bus hands out and the TLB caches.
pub const PAGE_SIZE: u64 = 4096;
/// Mask of the offset bits within a [`PAGE_SIZE`] page.
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;

/// The kind of access a lookup is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data load.
    Read,
    /// A data store.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// The answer of [`Bus::page`].
#[derive(Clone, Copy, Debug)]
pub enum PageLookup {
    /// Ordinary memory: a host pointer to the first byte of the 4 KiB page.
    Ram(NonNull<u8>),
    /// Device memory: every access must go through `io_read`/`io_write`.
    Io,
    /// Nothing is mapped there, or the access is not permitted.
    Fault,
}

/// A physical (or, for user-mode emulation, flat virtual) address space.
///
/// # Safety
/// A pointer returned in [`PageLookup::Ram`] must stay valid for reads (and
/// for writes, when looked up for [`Access::Write`]) of the whole page until
/// the embedder calls [`crate::Cpu::flush_tlb`] (or drops the CPU). Pages that
/// alias the same host memory must return the same pointer, because the CPU
/// tracks self-modifying code by host page.
pub unsafe trait Bus {
    /// Looks up the page containing `addr` for an access of kind `access`.
    fn page(&mut self, addr: u64, access: Access) -> PageLookup;

    /// Reads `size` (1, 2, 4 or 8) bytes of device memory. `None` is a bus error.
    fn io_read(&mut self, addr: u64, size: u8) -> Option<u64> {
        let _ = (addr, size);
        None
    }

    /// Writes `size` (1, 2, 4 or 8) bytes of device memory. `None` is a bus error.
    fn io_write(&mut self, addr: u64, size: u8, value: u64) -> Option<()> {
        let _ = (addr, size, value);
        None
    }

    /// Reads a system register the CPU does not implement itself (the GIC
    /// CPU interface, the timers' control and compare registers), keyed by
    /// `op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2`. `None`: no such
    /// register (the guest gets an Undefined Instruction exception).
    fn sysreg_read(&mut self, key: u32) -> Option<u64> {
        let _ = key;
        None
    }

    /// Writes a system register the CPU does not implement itself; see
    /// [`Bus::sysreg_read`].
    fn sysreg_write(&mut self, key: u32, value: u64) -> Option<()> {
        let _ = (key, value);
        None
    }
}
