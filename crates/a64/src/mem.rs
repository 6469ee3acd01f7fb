//! Guest memory accesses: TLB fast paths and the slow paths behind them.

use crate::bus::{Access, Bus, PageLookup, PAGE_MASK, PAGE_SIZE};
use crate::cpu::{Cpu, Exit, Stop};
use crate::tlb::tlb_index;

/// A value that can be loaded from or stored to guest memory (little endian).
pub(crate) trait Prim: Copy {
    /// Size in bytes.
    const SIZE: usize;
    /// Loads from a host pointer (no alignment needed).
    ///
    /// # Safety
    /// `p` must be valid for `SIZE` bytes of reads.
    unsafe fn load(p: *const u8) -> Self;
    /// Stores to a host pointer (no alignment needed).
    ///
    /// # Safety
    /// `p` must be valid for `SIZE` bytes of writes.
    unsafe fn store(self, p: *mut u8);
    /// From the low `SIZE` bytes of a little-endian buffer.
    fn from_le(buf: [u8; 16]) -> Self;
    /// To a little-endian buffer (low `SIZE` bytes meaningful).
    fn to_le(self) -> [u8; 16];
}

macro_rules! prim {
    ($($t:ty),*) => {$(
        impl Prim for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[inline(always)]
            unsafe fn load(p: *const u8) -> Self {
                <$t>::from_le(core::ptr::read_unaligned(p as *const $t))
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut u8) {
                core::ptr::write_unaligned(p as *mut $t, self.to_le())
            }
            fn from_le(buf: [u8; 16]) -> Self {
                let mut b = [0u8; core::mem::size_of::<$t>()];
                b.copy_from_slice(&buf[..Self::SIZE]);
                <$t>::from_le_bytes(b)
            }
            fn to_le(self) -> [u8; 16] {
                let mut buf = [0u8; 16];
                buf[..Self::SIZE].copy_from_slice(&self.to_le_bytes());
                buf
            }
        }
    )*};
}
prim!(u8, u16, u32, u64, u128);

impl Cpu {
    /// Loads a `T` from guest address `va`.
    #[inline(always)]
    pub(crate) fn read<T: Prim>(&mut self, bus: &mut dyn Bus, va: u64) -> Result<T, Stop> {
        let e = &self.tlb.entries[self.tlb_base + tlb_index(va)];
        let last = va.wrapping_add(T::SIZE as u64 - 1);
        if e.read == last & !PAGE_MASK {
            // SAFETY: the bus guarantees the page pointer stays valid until a TLB flush,
            // and the access lies within that page.
            Ok(unsafe { T::load((va as usize).wrapping_add(e.addend) as *const u8) })
        } else {
            self.read_slow(bus, va)
        }
    }

    /// Stores a `T` to guest address `va`.
    #[inline(always)]
    pub(crate) fn write<T: Prim>(
        &mut self,
        bus: &mut dyn Bus,
        va: u64,
        value: T,
    ) -> Result<(), Stop> {
        let e = &self.tlb.entries[self.tlb_base + tlb_index(va)];
        let last = va.wrapping_add(T::SIZE as u64 - 1);
        if e.write == last & !PAGE_MASK {
            // SAFETY: as in `read`; write tags are only filled for writable pages.
            unsafe { value.store((va as usize).wrapping_add(e.addend) as *mut u8) };
            Ok(())
        } else {
            self.write_slow(bus, va, value)
        }
    }

    #[inline(never)]
    fn read_slow<T: Prim>(&mut self, bus: &mut dyn Bus, va: u64) -> Result<T, Stop> {
        if (va & PAGE_MASK) as usize + T::SIZE > PAGE_SIZE as usize {
            let mut buf = [0u8; 16];
            for (i, b) in buf.iter_mut().enumerate().take(T::SIZE) {
                *b = self.read::<u8>(bus, va.wrapping_add(i as u64))?;
            }
            return Ok(T::from_le(buf));
        }
        let page = va & !PAGE_MASK;
        match self.lookup_page(bus, page, Access::Read)? {
            PageLookup::Ram(host) => {
                self.tlb
                    .fill(self.tlb_base, page, host.as_ptr() as usize, 0);
                let p = (host.as_ptr() as usize + (va & PAGE_MASK) as usize) as *const u8;
                // SAFETY: the bus handed out this page for reads.
                Ok(unsafe { T::load(p) })
            }
            PageLookup::Io => {
                let mut buf = [0u8; 16];
                let mut off = 0;
                while off < T::SIZE {
                    let size = (T::SIZE - off).min(8);
                    let pa = self.translate(bus, va, Access::Read)?;
                    match bus.io_read(pa + off as u64, size as u8) {
                        Some(v) => buf[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]),
                        None => return Err(self.data_abort(va, false)),
                    }
                    off += size;
                }
                Ok(T::from_le(buf))
            }
            PageLookup::Fault => Err(self.data_abort(va, false)),
        }
    }

    #[inline(never)]
    fn write_slow<T: Prim>(&mut self, bus: &mut dyn Bus, va: u64, value: T) -> Result<(), Stop> {
        if (va & PAGE_MASK) as usize + T::SIZE > PAGE_SIZE as usize {
            // Check both pages before writing anything, so a fault leaves memory untouched.
            let last = va.wrapping_add(T::SIZE as u64 - 1);
            self.host_page_for_write(bus, va)?;
            if let Err(stop) = self.host_page_for_write(bus, last) {
                // Report the first byte that faulted: the start of the second page.
                self.exit = Exit::DataAbort {
                    addr: self.untag(last & !PAGE_MASK),
                    write: true,
                };
                return Err(stop);
            }
            let buf = value.to_le();
            for (i, b) in buf.iter().enumerate().take(T::SIZE) {
                self.write::<u8>(bus, va.wrapping_add(i as u64), *b)?;
            }
            return Ok(());
        }
        match self.host_page_for_write(bus, va)? {
            Some(host) => {
                let p = (host + (va & PAGE_MASK) as usize) as *mut u8;
                // SAFETY: the bus handed out this page for writes.
                unsafe { value.store(p) };
                Ok(())
            }
            None => {
                let pa = self.translate(bus, va, Access::Write)?;
                let buf = value.to_le();
                let mut off = 0;
                while off < T::SIZE {
                    let size = (T::SIZE - off).min(8);
                    let mut b = [0u8; 8];
                    b[..size].copy_from_slice(&buf[off..off + size]);
                    if bus
                        .io_write(pa + off as u64, size as u8, u64::from_le_bytes(b))
                        .is_none()
                    {
                        return Err(self.data_abort(va, true));
                    }
                    off += size;
                }
                Ok(())
            }
        }
    }

    /// Looks up the page of `va` for writing: `Some(host page address)` for RAM
    /// (noting writes to cached code), `None` for device memory.
    fn host_page_for_write(&mut self, bus: &mut dyn Bus, va: u64) -> Result<Option<usize>, Stop> {
        let page = va & !PAGE_MASK;
        match self.lookup_page(bus, page, Access::Write)? {
            PageLookup::Ram(host) => {
                let host = host.as_ptr() as usize;
                if self.code_pages.contains(&(host >> 12)) {
                    self.code_changed(host >> 12);
                }
                self.tlb.fill(self.tlb_base, page, host, 1);
                Ok(Some(host))
            }
            PageLookup::Io => Ok(None),
            PageLookup::Fault => Err(self.data_abort(va, true)),
        }
    }

    /// A host pointer for an aligned read-modify-write (atomics, exclusives)
    /// of `size` bytes at `va`. Misalignment raises an alignment fault; device
    /// memory raises a data abort.
    pub(crate) fn rmw_ptr(
        &mut self,
        bus: &mut dyn Bus,
        va: u64,
        size: u64,
    ) -> Result<*mut u8, Stop> {
        if va & (size - 1) != 0 {
            self.exit = Exit::Alignment {
                addr: self.untag(va),
            };
            return Err(Stop);
        }
        // User-mode emulation checks readability first (as a host would);
        // the system level checks write permission, which implies read.
        if !self.system
            && !matches!(
                bus.page(self.untag(va & !PAGE_MASK), Access::Read),
                PageLookup::Ram(_)
            )
        {
            return Err(self.data_abort(va, false));
        }
        match self.host_page_for_write(bus, va)? {
            Some(host) => Ok((host + (va & PAGE_MASK) as usize) as *mut u8),
            None => Err(self.data_abort(va, true)),
        }
    }

    /// The host address data address `va` reads from, at the system level
    /// when its page is in the TLB (where another thread may watch it: guest
    /// RAM stays mapped while the CPU lives); 0 otherwise.
    pub(crate) fn watchable_host_addr(&self, va: u64) -> usize {
        let e = &self.tlb.entries[self.tlb_base + tlb_index(va)];
        if self.system && e.read == va & !PAGE_MASK {
            (va as usize).wrapping_add(e.addend)
        } else {
            0
        }
    }

    /// Host address of the page holding instruction address `va`.
    pub(crate) fn fetch_page(&mut self, bus: &mut dyn Bus, va: u64) -> Result<usize, Stop> {
        let e = &self.tlb.entries[self.tlb_base + tlb_index(va)];
        let page = va & !PAGE_MASK;
        if e.fetch == page {
            return Ok((page as usize).wrapping_add(e.addend));
        }
        let pa = self.translate(bus, page, Access::Fetch)?;
        match bus.page(pa, Access::Fetch) {
            PageLookup::Ram(host) => {
                let host = host.as_ptr() as usize;
                self.tlb.fill(self.tlb_base, page, host, 2);
                Ok(host)
            }
            _ => {
                self.fault_status = crate::system::fsc::EXTERNAL;
                self.exit = Exit::InsnAbort { addr: va };
                Err(Stop)
            }
        }
    }

    /// The host page (address >> 12) backing guest address `va`, if it is RAM.
    /// Faults are not reported to the guest.
    pub(crate) fn host_page_of(&mut self, bus: &mut dyn Bus, va: u64) -> Result<usize, Stop> {
        match self.lookup_page(bus, va, Access::Read)? {
            PageLookup::Ram(host) => Ok(host.as_ptr() as usize >> 12),
            _ => Err(Stop),
        }
    }

    fn data_abort(&mut self, addr: u64, write: bool) -> Stop {
        self.fault_status = crate::system::fsc::EXTERNAL;
        self.exit = Exit::DataAbort {
            addr: self.untag(addr),
            write,
        };
        Stop
    }

    /// The address the bus sees for data address `va`: with TBI0, the top byte
    /// of a lower-half address is ignored (the TLB keeps tagged pages apart).
    #[inline]
    pub(crate) fn untag(&self, va: u64) -> u64 {
        if va >> 55 & 1 == 0 {
            if self.tbi0 {
                return va & 0x00ff_ffff_ffff_ffff;
            }
        } else if self.tbi1 {
            return va | 0xff00_0000_0000_0000;
        }
        va
    }

    /// Reads guest memory for the embedder (for example a syscall buffer).
    /// Returns the faulting address on failure.
    pub fn read_bytes(&mut self, bus: &mut dyn Bus, va: u64, out: &mut [u8]) -> Result<(), u64> {
        for (i, b) in out.iter_mut().enumerate() {
            let a = va.wrapping_add(i as u64);
            *b = self.read::<u8>(bus, a).map_err(|_| a)?;
        }
        Ok(())
    }

    /// Writes guest memory for the embedder. Returns the faulting address on failure.
    pub fn write_bytes(&mut self, bus: &mut dyn Bus, va: u64, data: &[u8]) -> Result<(), u64> {
        for (i, b) in data.iter().enumerate() {
            let a = va.wrapping_add(i as u64);
            self.write::<u8>(bus, a, *b).map_err(|_| a)?;
        }
        Ok(())
    }
}
