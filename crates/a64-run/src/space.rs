//! The guest's virtual address space: one large host reservation in which
//! guest address A lives at host address `base + A`, plus a map of guest
//! mappings with their permissions. Implements [`a64::Bus`].
//!
//! Every thread of the guest process holds a [`Space`] handle to the same
//! space. The map sits behind a lock a CPU takes only on a TLB miss; a
//! system call that changes mappings also holds [`Space::edit`] for its
//! whole course, so two threads' `mmap`s never pick the same free range
//! and a thread may wait for the others' CPUs to drop their translations
//! (which they do at block boundaries, never needing that lock).

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use a64::{Access, Bus, PageLookup, PAGE_MASK, PAGE_SIZE};

/// Size of the guest address space (guest addresses are below this).
pub const SPACE_SIZE: u64 = 1 << 40;
/// Top of the initial stack.
pub const STACK_TOP: u64 = 0xff_0000_0000;
/// Size reserved for the initial stack.
pub const STACK_SIZE: u64 = 8 << 20;
/// Highest address handed out by `mmap` without a fixed address.
pub const MMAP_TOP: u64 = 0xfe_0000_0000;
/// Load address of position-independent executables.
pub const PIE_BASE: u64 = 0x55_0000_0000;

/// Guest protection bits (same values as Linux's PROT_*).
pub const PROT_READ: u32 = 1;
/// Writable.
pub const PROT_WRITE: u32 = 2;
/// Executable.
pub const PROT_EXEC: u32 = 4;

/// One guest mapping.
#[derive(Clone, Copy, Debug)]
struct Vma {
    end: u64,
    prot: u32,
    /// Protections the host mapping allows (read-only shared file mappings cannot gain write).
    max_prot: u32,
}

/// A handle to the guest address space (cloning it gives another handle
/// to the same space, for another thread).
#[derive(Clone)]
pub struct Space {
    shared: Arc<Shared>,
}

/// The space all handles share.
struct Shared {
    base: *mut u8,
    map: Mutex<Map>,
    edit: Mutex<()>,
}

// SAFETY: `base` is the address of a reservation that lives as long as the
// process and is never moved; everything else is behind locks.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// The guest mappings and the program break.
#[derive(Default)]
struct Map {
    vmas: BTreeMap<u64, Vma>,
    /// Start of the program break area.
    brk_start: u64,
    /// Current program break.
    brk: u64,
}

/// Rounds up to a page boundary.
pub fn page_up(v: u64) -> u64 {
    v.wrapping_add(PAGE_MASK) & !PAGE_MASK
}

fn host_prot(prot: u32) -> i32 {
    if prot == 0 {
        libc::PROT_NONE
    } else if prot & PROT_WRITE != 0 {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    }
}

impl Space {
    /// Reserves the host address range for a new, empty guest address space.
    pub fn new() -> Result<Space, String> {
        // SAFETY: a fresh anonymous reservation; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SPACE_SIZE as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve guest address space: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Space {
            shared: Arc::new(Shared {
                base: base as *mut u8,
                map: Mutex::default(),
                edit: Mutex::default(),
            }),
        })
    }

    /// Hold while changing mappings: one thread's change at a time.
    pub fn edit(&self) -> MutexGuard<'_, ()> {
        self.shared.edit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds the map itself (no CPU can look a page up meanwhile): for a
    /// fork, so the child finds the map unlocked. Take after [`Space::edit`].
    pub fn hold_map(&self) -> impl Drop + '_ {
        self.map_lock()
    }

    fn map_lock(&self) -> MutexGuard<'_, Map> {
        self.shared.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Host address of guest address `addr` (no checks).
    pub fn host(&self, addr: u64) -> *mut u8 {
        self.shared.base.wrapping_add(addr as usize)
    }

    /// The start of the program break area and the current break.
    pub fn brk(&self) -> (u64, u64) {
        let m = self.map_lock();
        (m.brk_start, m.brk)
    }

    /// Sets the start of the program break area and the current break.
    pub fn set_brk(&self, start: u64, brk: u64) {
        let mut m = self.map_lock();
        m.brk_start = start;
        m.brk = brk;
    }

    /// Removes every mapping (for execve).
    pub fn clear(&self) {
        let ranges: Vec<(u64, u64)> = self
            .map_lock()
            .vmas
            .iter()
            .map(|(s, v)| (*s, v.end))
            .collect();
        for (s, e) in ranges {
            self.unmap(s, e - s);
        }
        self.set_brk(0, 0);
    }
}

impl Map {
    /// Removes [start, end) from the map, splitting mappings that straddle it.
    fn carve(&mut self, start: u64, end: u64) {
        let overlapping: Vec<(u64, Vma)> = self
            .vmas
            .range(..end)
            .filter(|(s, v)| v.end > start && **s < end)
            .map(|(s, v)| (*s, *v))
            .collect();
        for (s, v) in overlapping {
            self.vmas.remove(&s);
            if s < start {
                self.vmas.insert(s, Vma { end: start, ..v });
            }
            if v.end > end {
                self.vmas.insert(end, v);
            }
        }
    }

    /// Whether any page of [start, start+len) is mapped.
    fn overlaps(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        self.vmas
            .range(..end)
            .any(|(s, v)| v.end > start && *s < end)
    }

    /// Whether every page of [addr, addr+len) is mapped with all of `prot`.
    fn check(&self, addr: u64, len: u64, prot: u32) -> bool {
        if len == 0 {
            return true;
        }
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        let mut cursor = addr;
        while cursor < end {
            match self.vmas.range(..=cursor).next_back() {
                Some((_, v)) if v.end > cursor && v.prot & prot == prot => cursor = v.end,
                _ => return false,
            }
        }
        true
    }
}

impl Space {
    /// Whether any page of [start, start+len) is mapped.
    pub fn overlaps(&self, start: u64, len: u64) -> bool {
        self.map_lock().overlaps(start, len)
    }

    /// Whether any page of [start, start+len) is mapped executable.
    pub fn has_exec(&self, start: u64, len: u64) -> bool {
        let end = start.saturating_add(len);
        self.map_lock()
            .vmas
            .range(..end)
            .any(|(s, v)| v.end > start && *s < end && v.prot & PROT_EXEC != 0)
    }

    /// Maps [addr, addr+len) (page aligned) with `prot`: anonymous zeroed memory,
    /// or a file mapping when `file` is `Some((fd, offset, shared))`.
    pub fn map(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        file: Option<(i32, i64, bool)>,
    ) -> Result<(), i32> {
        if addr & PAGE_MASK != 0 || len == 0 || addr.checked_add(len).is_none_or(|e| e > SPACE_SIZE)
        {
            return Err(libc::EINVAL);
        }
        let (flags, fd, off) = match file {
            Some((fd, off, true)) => (libc::MAP_SHARED | libc::MAP_FIXED, fd, off),
            Some((fd, off, false)) => (libc::MAP_PRIVATE | libc::MAP_FIXED, fd, off),
            None => (
                libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANONYMOUS,
                -1,
                0,
            ),
        };
        // The host mapping is always readable and writable, so the loader can fill it and
        // later mprotect calls need not touch it; guest permissions are checked in `page`.
        // A shared mapping of a read-only file can only be mapped read-only.
        let host = self.host(addr) as *mut libc::c_void;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: the range lies inside our reservation.
        let mut p = unsafe { libc::mmap(host, len as usize, rw, flags, fd, off) };
        let mut max_prot = PROT_READ | PROT_WRITE | PROT_EXEC;
        let err = || {
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::ENOMEM)
        };
        if p == libc::MAP_FAILED
            && file.is_some_and(|f| f.2)
            && err() == libc::EACCES
            && prot & PROT_WRITE == 0
        {
            // SAFETY: as above.
            p = unsafe { libc::mmap(host, len as usize, host_prot(prot), flags, fd, off) };
            max_prot = PROT_READ | PROT_EXEC;
        }
        if p == libc::MAP_FAILED {
            return Err(err());
        }
        let mut m = self.map_lock();
        m.carve(addr, addr + len);
        m.vmas.insert(
            addr,
            Vma {
                end: addr + len,
                prot,
                max_prot,
            },
        );
        Ok(())
    }

    /// Takes [addr, addr+len) out of the guest's map; its host memory stays
    /// until [`Space::release`], so a CPU still holding a translation of it
    /// cannot fault the host.
    pub fn forget(&self, addr: u64, len: u64) {
        let len = page_up(len);
        if len == 0 || addr.saturating_add(len) > SPACE_SIZE {
            return;
        }
        self.map_lock().carve(addr, addr + len);
    }

    /// Gives the host memory of [addr, addr+len) back: the range becomes
    /// fresh, unbacked memory. Only for a range no CPU holds a translation
    /// of any more. It stays accessible on the host (the guest's map, not
    /// the host's protection, keeps the guest out), so the runner's own
    /// copy into guest memory racing another thread's `munmap` reads zeros
    /// or writes into nothing, as it would have a moment earlier, instead
    /// of faulting the runner.
    pub fn release(&self, addr: u64, len: u64) {
        let len = page_up(len);
        if len == 0 || addr.saturating_add(len) > SPACE_SIZE {
            return;
        }
        // SAFETY: the range lies inside our reservation.
        unsafe {
            libc::mmap(
                self.host(addr) as *mut _,
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            );
        }
    }

    /// Unmaps [addr, addr+len) at once: for a space no other CPU uses.
    pub fn unmap(&self, addr: u64, len: u64) {
        self.forget(addr, len);
        self.release(addr, len);
    }

    /// Changes the protection of [addr, addr+len); ENOMEM if part of it is unmapped.
    pub fn protect(&self, addr: u64, len: u64, prot: u32) -> Result<(), i32> {
        let end = addr.checked_add(page_up(len)).ok_or(libc::ENOMEM)?;
        let mut cursor = addr;
        let mut m = self.map_lock();
        for (s, v) in m.vmas.range(..end) {
            if v.end <= cursor {
                continue;
            }
            if *s > cursor {
                return Err(libc::ENOMEM);
            }
            if prot & !v.max_prot != 0 {
                return Err(libc::EACCES);
            }
            cursor = v.end;
        }
        if cursor < end {
            return Err(libc::ENOMEM);
        }
        let old: Vec<(u64, Vma)> = m
            .vmas
            .range(..end)
            .filter(|(_, v)| v.end > addr)
            .map(|(s, v)| (*s, *v))
            .collect();
        m.carve(addr, end);
        for (s, v) in old {
            let (a, b) = (s.max(addr), v.end.min(end));
            m.vmas.insert(a, Vma { end: b, prot, ..v });
        }
        Ok(())
    }

    /// Finds a free range of `len` bytes below [`MMAP_TOP`], searching downwards.
    pub fn find_free(&self, len: u64) -> Option<u64> {
        let mut top = MMAP_TOP;
        for (s, v) in self.map_lock().vmas.range(..MMAP_TOP).rev() {
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(*s);
        }
        top.checked_sub(len).filter(|a| *a >= PAGE_SIZE * 16)
    }

    /// Whether every page of [addr, addr+len) is mapped with all of `prot`.
    pub fn check(&self, addr: u64, len: u64, prot: u32) -> bool {
        self.map_lock().check(addr, len, prot)
    }

    /// Host pointer to the guest bytes [addr, addr+len) if mapped with `prot`.
    pub fn ptr(&self, addr: u64, len: usize, prot: u32) -> Option<*mut u8> {
        self.check(addr, len as u64, prot).then(|| self.host(addr))
    }

    /// The guest bytes [addr, addr+len) if mapped with `prot`, for the
    /// loader (no thread of the process runs yet).
    pub fn bytes(&mut self, addr: u64, len: usize, prot: u32) -> Option<&mut [u8]> {
        let p = self.ptr(addr, len, prot)?;
        // SAFETY: checked to be mapped; only the loader calls this, before
        // any guest code runs, so nothing else touches the bytes.
        Some(unsafe { std::slice::from_raw_parts_mut(p, len) })
    }

    /// Reads a NUL-terminated string (at most 64 KiB) from guest memory.
    pub fn cstring(&self, addr: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let m = self.map_lock();
        for i in 0..65536u64 {
            let at = addr.checked_add(i)?;
            if !m.check(at, 1, PROT_READ) {
                return None;
            }
            // SAFETY: checked that the byte is mapped readable.
            let b = unsafe { *self.host(at) };
            if b == 0 {
                return Some(out);
            }
            out.push(b);
        }
        None
    }
}

// SAFETY: page pointers point into the reservation, which lives as long as the
// process; the embedder has every CPU drop its translations whenever mappings
// change, before their host memory goes (see `Space::forget`).
unsafe impl Bus for Space {
    fn page(&mut self, addr: u64, access: Access) -> PageLookup {
        let need = match access {
            Access::Read => PROT_READ,
            Access::Write => PROT_WRITE,
            Access::Fetch => PROT_EXEC,
        };
        match self.map_lock().vmas.range(..=addr).next_back() {
            Some((_, v)) if v.end > addr && v.prot & need != 0 => PageLookup::Ram(
                NonNull::new(self.host(addr & !PAGE_MASK)).expect("reservation is not null"),
            ),
            _ => PageLookup::Fault,
        }
    }
}
