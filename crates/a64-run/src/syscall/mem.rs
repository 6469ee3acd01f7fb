//! Memory system calls: brk, mmap, munmap, mremap, mprotect, madvise.

use std::time::Duration;

use super::SysResult;
use crate::process::Task;
use crate::space::{page_up, PROT_EXEC, SPACE_SIZE};

const MAP_SHARED: u64 = 0x01;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const EINVAL: i64 = -(libc::EINVAL as i64);
const ENOMEM: i64 = -(libc::ENOMEM as i64);

/// How long a thread waits for the others' CPUs to drop their translations.
const DROP_LIMIT: Duration = Duration::from_secs(10);

impl Task {
    /// Mappings in [addr, addr+len) changed: blocks decoded from pages that
    /// were or are executable go, and every CPU of the process drops its
    /// cached translations (this call waits for those running guest code).
    /// False if one did not answer in time.
    fn mappings_changed(&mut self, addr: u64, len: u64, had_exec: bool) -> bool {
        if had_exec || self.space.has_exec(addr, len) {
            let host = self.space.host(addr) as usize;
            self.cpu.host_memory_written(host, len as usize);
        }
        self.cpu.flush_tlb();
        match self.process.domain.drop_translations(DROP_LIMIT) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("a64-run: {e}");
                false
            }
        }
    }

    /// Unmaps [addr, addr+len): out of the map, out of every CPU's
    /// translations, and only then out of host memory.
    fn unmap(&mut self, addr: u64, len: u64) {
        let had_exec = self.space.has_exec(addr, len);
        self.space.forget(addr, len);
        // A CPU that may still hold a translation keeps the memory behind it.
        if self.mappings_changed(addr, len, had_exec) {
            self.space.release(addr, len);
        }
    }

    /// Memory system calls; `None` if `nr` is not one of them.
    pub(super) fn mem_syscall(&mut self, nr: u64) -> Option<SysResult> {
        let (a0, a1, a2, a3, a4, a5) = (
            self.arg(0),
            self.arg(1),
            self.arg(2),
            self.arg(3),
            self.arg(4),
            self.arg(5),
        );
        if !matches!(nr, 214 | 222 | 215 | 226 | 216 | 233) {
            return None;
        }
        // One thread's change of mappings at a time, start to end.
        let space = self.space.clone();
        let _edit = space.edit();
        Some(match nr {
            214 => Ok(self.brk(a0) as i64),
            222 => self.mmap(a0, a1, a2 as u32, a3, a4 as i32, a5 as i64),
            215 => {
                if a0 & a64::PAGE_MASK != 0 || a1 == 0 {
                    Err(EINVAL)
                } else {
                    self.unmap(a0, a1);
                    Ok(0)
                }
            }
            226 => {
                if a0 & a64::PAGE_MASK != 0 {
                    Err(EINVAL)
                } else {
                    let had_exec = self.space.has_exec(a0, a1);
                    let r = self
                        .space
                        .protect(a0, a1, a2 as u32 & 7)
                        .map(|_| 0)
                        .map_err(|e| -(e as i64));
                    let _ = self.mappings_changed(a0, a1, had_exec);
                    r
                }
            }
            216 => self.mremap(a0, a1, a2, a3),
            _ => {
                // MADV_DONTNEED on private anonymous memory reads back as zeros: let the host do it.
                if a2 == libc::MADV_DONTNEED as u64
                    && self.space.check(a0, a1, 0)
                    && a0.saturating_add(a1) <= SPACE_SIZE
                {
                    // SAFETY: the range lies inside the guest reservation.
                    unsafe {
                        libc::madvise(
                            self.space.host(a0) as *mut _,
                            a1 as usize,
                            libc::MADV_DONTNEED,
                        )
                    };
                }
                Ok(0)
            }
        })
    }

    fn brk(&mut self, want: u64) -> u64 {
        let (start, brk) = self.space.brk();
        if want < start || want > start + (1 << 32) {
            return brk;
        }
        let (old_end, new_end) = (page_up(brk), page_up(want));
        if new_end > old_end {
            let s = &self.space;
            if s.overlaps(old_end, new_end - old_end)
                || s.map(old_end, new_end - old_end, 3, None).is_err()
            {
                return brk;
            }
            self.cpu.flush_tlb();
        } else if new_end < old_end {
            self.unmap(new_end, old_end - new_end);
        }
        self.space.set_brk(start, want);
        want
    }

    fn mmap(&mut self, addr: u64, len: u64, prot: u32, flags: u64, fd: i32, off: i64) -> SysResult {
        let len = page_up(len);
        if len == 0
            || addr & a64::PAGE_MASK != 0
            || off as u64 & a64::PAGE_MASK != 0
            || len > SPACE_SIZE
        {
            return Err(EINVAL);
        }
        let fixed = flags & MAP_FIXED != 0;
        let hint_free =
            addr != 0 && addr.saturating_add(len) <= SPACE_SIZE && !self.space.overlaps(addr, len);
        let at = if fixed || hint_free {
            addr
        } else if flags & MAP_FIXED_NOREPLACE != 0 {
            return Err(-(libc::EEXIST as i64));
        } else {
            self.space.find_free(len).ok_or(ENOMEM)?
        };
        let file = if flags & MAP_ANONYMOUS != 0 {
            None
        } else {
            Some((fd, off, flags & MAP_SHARED != 0))
        };
        let replaces = self.space.overlaps(at, len);
        let had_exec = self.space.has_exec(at, len);
        let r = self.space.map(at, len, prot & 7, file);
        if replaces {
            let _ = self.mappings_changed(at, len, had_exec || prot & PROT_EXEC != 0);
        } else {
            // Nothing was there: no CPU holds a translation or code of it.
            self.cpu.flush_tlb();
        }
        r.map(|_| at as i64).map_err(|e| -(e as i64))
    }

    fn mremap(&mut self, old: u64, old_len: u64, new_len: u64, flags: u64) -> SysResult {
        let (old_len, new_len) = (page_up(old_len), page_up(new_len));
        if old & a64::PAGE_MASK != 0 || new_len == 0 || !self.space.check(old, old_len, 0) {
            return Err(EINVAL);
        }
        if new_len <= old_len {
            self.unmap(old + new_len, old_len - new_len);
            return Ok(old as i64);
        }
        if !self.space.overlaps(old + old_len, new_len - old_len) && old + new_len <= SPACE_SIZE {
            // Grow in place (anonymous private memory only: the common realloc case).
            self.space
                .map(old + old_len, new_len - old_len, 3, None)
                .map_err(|e| -(e as i64))?;
            self.cpu.flush_tlb();
            return Ok(old as i64);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(ENOMEM);
        }
        let to = self.space.find_free(new_len).ok_or(ENOMEM)?;
        self.space
            .map(to, new_len, 3, None)
            .map_err(|e| -(e as i64))?;
        // SAFETY: both ranges are mapped in the reservation and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.space.host(old),
                self.space.host(to),
                old_len as usize,
            )
        };
        self.unmap(old, old_len);
        Ok(to as i64)
    }
}
