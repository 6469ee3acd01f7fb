//! Guest RAM: one anonymous host mapping, committed page by page as the
//! guest touches it (the host's demand paging does the work).

use std::ptr::NonNull;

/// Error creating guest RAM.
#[derive(Debug)]
pub struct RamError(pub std::io::Error);

impl std::fmt::Display for RamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reserve guest memory: {}", self.0)
    }
}

impl std::error::Error for RamError {}

/// A contiguous block of guest RAM at a fixed guest physical address.
pub struct GuestRam {
    base: u64,
    ptr: NonNull<u8>,
    size: u64,
}

// SAFETY: the mapping is plain memory owned by this value; concurrent guest
// access from several vCPUs is the guest's own business, as on hardware.
unsafe impl Send for GuestRam {}
// SAFETY: see above; the struct itself is immutable after creation.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// Reserves `size` bytes (a multiple of 4 KiB) of zeroed RAM at `base`.
    /// Nothing is committed until touched.
    pub fn new(base: u64, size: u64) -> Result<Self, RamError> {
        assert!(
            size > 0 && size.is_multiple_of(4096),
            "RAM size must be whole pages"
        );
        // SAFETY: an anonymous private mapping with no address hint.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RamError(std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(p as *mut u8).expect("mmap never returns null on success");
        Ok(GuestRam { base, ptr, size })
    }

    /// Guest physical address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host pointer for guest physical address `gpa`, if it is RAM.
    #[inline]
    pub fn host_ptr(&self, gpa: u64) -> Option<NonNull<u8>> {
        let off = gpa.checked_sub(self.base)?;
        if off >= self.size {
            return None;
        }
        // SAFETY: `off` is within the mapping.
        Some(unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(off as usize)) })
    }

    /// Copies `data` into guest RAM at `gpa`; `false` if it does not fit.
    pub fn write(&self, gpa: u64, data: &[u8]) -> bool {
        let Some(slice) = self.range(gpa, data.len() as u64) else {
            return false;
        };
        // SAFETY: the range lies inside the mapping (checked by `range`).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), slice, data.len()) };
        true
    }

    /// Copies guest RAM at `gpa` into `out`; `false` if out of range.
    pub fn read(&self, gpa: u64, out: &mut [u8]) -> bool {
        let Some(slice) = self.range(gpa, out.len() as u64) else {
            return false;
        };
        // SAFETY: the range lies inside the mapping (checked by `range`).
        unsafe { std::ptr::copy_nonoverlapping(slice, out.as_mut_ptr(), out.len()) };
        true
    }

    fn range(&self, gpa: u64, len: u64) -> Option<*mut u8> {
        let off = gpa.checked_sub(self.base)?;
        if off.checked_add(len)? > self.size {
            return None;
        }
        // SAFETY: within the mapping.
        Some(unsafe { self.ptr.as_ptr().add(off as usize) })
    }

    /// Host RSS-friendly release of a range back to the host (balloon, reset).
    pub fn discard(&self, gpa: u64, len: u64) -> bool {
        let Some(p) = self.range(gpa, len) else {
            return false;
        };
        // SAFETY: the range lies inside our private anonymous mapping.
        unsafe { libc::madvise(p as *mut libc::c_void, len as usize, libc::MADV_DONTNEED) == 0 }
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `new`.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let ram = GuestRam::new(0x4000_0000, 1 << 20).unwrap();
        assert!(ram.host_ptr(0x3fff_ffff).is_none());
        assert!(ram.host_ptr(0x4000_0000).is_some());
        assert!(ram.host_ptr(0x4010_0000).is_none());
        assert!(ram.write(0x400f_fffc, &[1, 2, 3, 4]));
        assert!(!ram.write(0x400f_fffd, &[1, 2, 3, 4]));
        let mut b = [0u8; 4];
        assert!(ram.read(0x400f_fffc, &mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(!ram.read(u64::MAX - 1, &mut b));
    }
}
