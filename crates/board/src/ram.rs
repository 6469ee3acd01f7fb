//! Guest RAM: one shared mapping of a memfd, committed page by page as the
//! guest touches it (the host's demand paging does the work). Backing RAM
//! with a file descriptor lets another process, a snapshot writer or an
//! image writer map the same memory. A dirty log (one bit per 4 KiB page)
//! records every page written since it was last taken: devices' writes
//! through [`GuestRam::write`] and [`GuestRam::discard`] mark pages here,
//! and vCPUs mark a page when their TLB takes it for writing (see
//! `vmm`'s dirty log for how taking the log keeps that exact).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Size of the pages the dirty log tracks.
pub const DIRTY_PAGE: u64 = 4096;

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
    /// The memfd behind the mapping (none for private, mergeable RAM).
    fd: Option<OwnedFd>,
    /// A private copy-on-write mapping of a snapshot's memory file: freed
    /// pages must be replaced by anonymous zeros, not the file's bytes.
    copy_on_write: bool,
    /// For copy-on-write RAM: the file, and one bit per page ever written
    /// (which pages may hold data is the file's data plus these).
    image: Option<(std::fs::File, Box<[AtomicU64]>)>,
    /// One bit per page written since the log was last taken.
    dirty: Box<[AtomicU64]>,
}

// SAFETY: the mapping is plain memory owned by this value; concurrent guest
// access from several vCPUs is the guest's own business, as on hardware.
unsafe impl Send for GuestRam {}
// SAFETY: see above; the struct itself is immutable after creation.
unsafe impl Sync for GuestRam {}

impl GuestRam {
    /// Reserves `size` bytes (a multiple of 4 KiB) of zeroed RAM at `base`,
    /// backed by a new memfd. Nothing is committed until touched.
    pub fn new(base: u64, size: u64) -> Result<Self, RamError> {
        let err = || RamError(std::io::Error::last_os_error());
        // SAFETY: memfd_create with a static C string; the fd is owned right away.
        let raw = unsafe { libc::memfd_create(c"pocketvisor-ram".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(err());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sizing our own memfd; no pages are allocated by it.
        if unsafe { libc::ftruncate(raw, size as libc::off_t) } != 0 {
            return Err(err());
        }
        // Huge pages where the host allows them for shared memory (a hint).
        Self::map(base, size, Some(fd), libc::MADV_HUGEPAGE)
    }

    /// RAM at `base` backed by `fd`, a memfd of exactly `size` bytes that
    /// already holds the guest's memory (filled by another process or
    /// thread, e.g. a migration's receiver): mapped, not copied.
    pub fn from_memfd(base: u64, size: u64, fd: OwnedFd) -> Result<Self, RamError> {
        // SAFETY: fstat on a descriptor we own writes one stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(RamError(std::io::Error::last_os_error()));
        }
        if st.st_size as u64 != size {
            return Err(RamError(std::io::Error::other(format!(
                "the memory file is {} bytes, the VM has {size}",
                st.st_size
            ))));
        }
        Self::map(base, size, Some(fd), libc::MADV_HUGEPAGE)
    }

    /// RAM at `base` that starts as the raw image in `file` (exactly `size`
    /// bytes; a snapshot's `memory.bin`), mapped privately: nothing is
    /// read until the guest touches it, and pages it writes become its
    /// own copies. The file must not change while the RAM lives (snapshot
    /// files are written once). Has no memfd.
    pub fn copy_on_write(base: u64, size: u64, file: &std::fs::File) -> Result<Self, RamError> {
        let len = file.metadata().map_err(RamError)?.len();
        if len != size {
            return Err(RamError(std::io::Error::other(format!(
                "the memory image is {len} bytes, the VM has {size} bytes of RAM"
            ))));
        }
        assert!(
            size > 0 && size.is_multiple_of(4096),
            "RAM size must be whole pages"
        );
        // SAFETY: a new private mapping of an open file, no address hint.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_NORESERVE,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RamError(std::io::Error::last_os_error()));
        }
        let ptr = NonNull::new(p as *mut u8).expect("mmap never returns null on success");
        let pages = size / DIRTY_PAGE;
        let bitmap = || (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        let file = file.try_clone().map_err(RamError)?;
        Ok(GuestRam {
            base,
            ptr,
            size,
            fd: None,
            copy_on_write: true,
            image: Some((file, bitmap())),
            dirty: bitmap(),
        })
    }

    /// Reserves `size` bytes of zeroed RAM at `base` as private anonymous
    /// memory offered to the host's same-page merging (KSM,
    /// `MADV_MERGEABLE`): pages identical across VMs — the same kernel
    /// loaded in each, zeroed pages — can be shared copy-on-write by the
    /// host. It has no memfd ([`GuestRam::memfd`] is `None`).
    pub fn new_mergeable(base: u64, size: u64) -> Result<Self, RamError> {
        // Where KSM is off or absent the advice is refused; the RAM works the same.
        Self::map(base, size, None, libc::MADV_MERGEABLE)
    }

    /// Maps `size` bytes: `fd` shared, or private anonymous memory without
    /// one; then gives the kernel `advice` (a hint: its failure is ignored).
    fn map(base: u64, size: u64, fd: Option<OwnedFd>, advice: i32) -> Result<Self, RamError> {
        assert!(
            size > 0 && size.is_multiple_of(4096),
            "RAM size must be whole pages"
        );
        let (flags, raw) = match &fd {
            Some(f) => (libc::MAP_SHARED, f.as_raw_fd()),
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        };
        // SAFETY: a new mapping of our own memfd or of anonymous memory, no
        // address hint.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                flags | libc::MAP_NORESERVE,
                raw,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RamError(std::io::Error::last_os_error()));
        }
        // SAFETY: advice on our own mapping.
        unsafe { libc::madvise(p, size as usize, advice) };
        let ptr = NonNull::new(p as *mut u8).expect("mmap never returns null on success");
        let pages = size / DIRTY_PAGE;
        let dirty = (0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        Ok(GuestRam {
            base,
            ptr,
            size,
            fd,
            copy_on_write: false,
            image: None,
            dirty,
        })
    }

    /// For RAM mapped copy-on-write: its image file and the pages written
    /// since (bitmap as the dirty log's).
    pub(crate) fn image(&self) -> Option<(&std::fs::File, Vec<u64>)> {
        self.image
            .as_ref()
            .map(|(f, w)| (f, w.iter().map(|b| b.load(Ordering::Relaxed)).collect()))
    }

    /// The memfd holding the guest's memory (offset 0 = [`GuestRam::base`]),
    /// unless the RAM is private mergeable memory.
    pub fn memfd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|f| f.as_fd())
    }

    /// Frees `[off, off + len)` of the RAM (it reads as zeros afterwards).
    pub(crate) fn free_range(&self, off: u64, len: u64) -> bool {
        match &self.fd {
            // SAFETY: punching a hole in our own memfd, inside its size.
            Some(fd) => unsafe {
                libc::fallocate(
                    fd.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    off as libc::off_t,
                    len as libc::off_t,
                ) == 0
            },
            // SAFETY: replacing pages of our own mapping, inside it, with
            // fresh anonymous zeros (dropping them would bring back the
            // snapshot file's bytes).
            None if self.copy_on_write => unsafe {
                libc::mmap(
                    self.ptr.as_ptr().add(off as usize).cast(),
                    len as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                    -1,
                    0,
                ) != libc::MAP_FAILED
            },
            // SAFETY: dropping pages of our own private mapping, inside it;
            // they read as zeros afterwards.
            None => unsafe {
                libc::madvise(
                    self.ptr.as_ptr().add(off as usize).cast(),
                    len as usize,
                    libc::MADV_DONTNEED,
                ) == 0
            },
        }
    }

    /// Marks the page holding guest physical address `gpa` as written.
    #[inline]
    pub fn mark_dirty(&self, gpa: u64) {
        let Some(off) = gpa.checked_sub(self.base).filter(|&o| o < self.size) else {
            return;
        };
        let page = off / DIRTY_PAGE;
        let (word, bit) = ((page / 64) as usize, 1u64 << (page % 64));
        // Test first: pages already marked cost no atomic write.
        if self.dirty[word].load(Ordering::Relaxed) & bit == 0 {
            self.dirty[word].fetch_or(bit, Ordering::Relaxed);
            if let Some((_, written)) = &self.image {
                written[word].fetch_or(bit, Ordering::Relaxed);
            }
        }
    }

    /// Marks every page of `[gpa, gpa + len)` as written.
    fn mark_range(&self, gpa: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = gpa & !(DIRTY_PAGE - 1);
        let mut page = first;
        while page < gpa + len {
            self.mark_dirty(page);
            page += DIRTY_PAGE;
        }
    }

    /// Takes the dirty log: the pages written since the last take (bit `i`
    /// of word `w` is page `64 w + i` from [`GuestRam::base`]), leaving it
    /// empty. On its own this is exact only for writes made through this
    /// value; vCPUs must also drop the write permissions their TLBs cached
    /// (the VMM's dirty log does both).
    pub fn take_dirty(&self) -> Vec<u64> {
        self.dirty
            .iter()
            .map(|w| w.swap(0, Ordering::AcqRel))
            .collect()
    }

    /// Leaves guest RAM out of the process's core dumps (a trusted VM's
    /// secrets must not end up in a file).
    pub fn dont_dump(&self) {
        // SAFETY: advice on our own mapping, exactly its extent.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().cast(),
                self.size as usize,
                libc::MADV_DONTDUMP,
            )
        };
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
        self.mark_range(gpa, data.len() as u64);
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

    /// Gives a range back to the host (balloon, free page reporting): its
    /// memory is freed and it reads as zeros afterwards (so it counts as
    /// written). Whole pages only; `false` if out of range or misaligned.
    pub fn discard(&self, gpa: u64, len: u64) -> bool {
        if self.range(gpa, len).is_none()
            || !gpa.is_multiple_of(DIRTY_PAGE)
            || !len.is_multiple_of(DIRTY_PAGE)
        {
            return false;
        }
        let r = self.free_range(gpa - self.base, len);
        self.mark_range(gpa, len);
        r
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

    fn dirty_pages(log: &[u64]) -> Vec<u64> {
        (0..log.len() as u64 * 64)
            .filter(|&p| log[(p / 64) as usize] & (1 << (p % 64)) != 0)
            .collect()
    }

    #[test]
    fn writes_and_discards_are_logged_and_taking_clears() {
        let ram = GuestRam::new(0x4000_0000, 1 << 20).unwrap();
        assert_eq!(dirty_pages(&ram.take_dirty()), Vec::<u64>::new());
        assert!(ram.write(0x4000_1ffe, &[1, 2, 3, 4])); // pages 1 and 2
        ram.mark_dirty(0x4008_0010); // page 128 (a vCPU's write)
        ram.mark_dirty(0x5000_0000); // outside: ignored
        let mut b = [0u8; 4];
        assert!(ram.read(0x4000_3000, &mut b)); // reads are not writes
        assert_eq!(dirty_pages(&ram.take_dirty()), vec![1, 2, 128]);
        assert_eq!(dirty_pages(&ram.take_dirty()), Vec::<u64>::new());
        assert!(ram.discard(0x4000_4000, 0x2000));
        assert!(!ram.discard(0x4000_4001, 0x1000));
        assert_eq!(dirty_pages(&ram.take_dirty()), vec![4, 5]);
    }

    #[test]
    fn copy_on_write_reads_the_image_keeps_it_and_discards_to_zeros() {
        // A sparse image: data at 0x3000..0x5000 only.
        let file = tempfile::tempfile().unwrap();
        let mut image = vec![0u8; 1 << 20];
        image[0x3000..0x5000].fill(0x5a);
        file.set_len(1 << 20).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &image[0x3000..0x5000], 0x3000).unwrap();
        let ram = GuestRam::copy_on_write(0x4000_0000, 1 << 20, &file).unwrap();
        assert!(ram.memfd().is_none());
        let mut b = [0u8; 4];
        assert!(ram.read(0x4000_3000, &mut b));
        assert_eq!(b, [0x5a; 4]);
        assert!(ram.write(0x4000_3000, &[1, 2, 3, 4]));
        assert!(ram.discard(0x4000_4000, 0x1000));
        assert!(ram.read(0x4000_4000, &mut b));
        assert_eq!(
            b, [0; 4],
            "a discarded page reads as zeros, not the image's bytes"
        );
        assert!(ram.read(0x4000_3000, &mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        // Where data may be: the image's data and the pages written since.
        assert!(ram.write(0x4008_0000, &[9]));
        let ranges = ram.data_ranges().unwrap();
        let covered = |off: u64| ranges.iter().any(|&(s, e)| s <= off && off < e);
        assert!(covered(0x3000) && covered(0x4000) && covered(0x80000));
        assert!(!covered(0x90000), "{ranges:?}");
        let copy = tempfile::tempfile().unwrap();
        copy.set_len(1 << 20).unwrap();
        ram.write_image_into(&copy).unwrap();
        let mut saved = vec![0u8; 1 << 20];
        std::os::unix::fs::FileExt::read_exact_at(&copy, &mut saved, 0).unwrap();
        let mut live = vec![0u8; 1 << 20];
        assert!(ram.read(0x4000_0000, &mut live));
        assert!(saved == live, "a snapshot of copy-on-write RAM is the RAM");
        // The image itself is untouched.
        let mut back = vec![0u8; 1 << 20];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut back, 0).unwrap();
        assert!(back == image);
        let small = tempfile::tempfile().unwrap();
        small.set_len(4096).unwrap();
        assert!(GuestRam::copy_on_write(0x4000_0000, 1 << 20, &small).is_err());
    }

    #[test]
    fn discard_frees_and_zeroes_through_the_memfd() {
        let ram = GuestRam::new(0x4000_0000, 1 << 20).unwrap();
        assert!(ram.write(0x4000_2000, &[0xaa; 4096]));
        // Another mapping of the same memfd sees the guest's bytes.
        // SAFETY: a read-only shared mapping of the RAM's memfd.
        let other = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                1 << 20,
                libc::PROT_READ,
                libc::MAP_SHARED,
                ram.memfd().unwrap().as_raw_fd(),
                0,
            )
        };
        assert_ne!(other, libc::MAP_FAILED);
        // SAFETY: inside the mapping just made.
        assert_eq!(unsafe { *(other as *const u8).add(0x2000) }, 0xaa);
        assert!(ram.discard(0x4000_2000, 0x1000));
        let mut b = [0xffu8; 8];
        assert!(ram.read(0x4000_2000, &mut b));
        assert_eq!(b, [0; 8]);
        // SAFETY: unmapping the mapping made above.
        unsafe { libc::munmap(other, 1 << 20) };
    }
}
