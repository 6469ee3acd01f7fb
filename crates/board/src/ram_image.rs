//! Guest RAM to and from a raw image file (offset 0 = the RAM's base), for
//! snapshots. Both directions are sparse: only the memfd's data extents
//! are read, pages of zeros are never written to the image, and pages of
//! zeros in the image are never committed in RAM — so a 256 MiB guest that
//! uses 60 MiB costs about 60 MiB of I/O and of disk.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;

use crate::ram::GuestRam;

/// Pages copied per read or write.
const CHUNK: u64 = 1 << 20;
const PAGE: usize = 4096;

/// The data extents of `fd` in `[0, size)`, as (start, end) pairs.
fn data_extents(fd: RawFd, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        // SAFETY: lseek on a descriptor we borrow; no memory is involved.
        let start = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if start < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break;
            }
            return Err(e);
        }
        // SAFETY: as above.
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        if end < 0 {
            return Err(io::Error::last_os_error());
        }
        let (start, end) = (start as u64, (end as u64).min(size));
        if start >= size {
            break;
        }
        out.push((start, end));
        pos = end;
    }
    Ok(out)
}

fn is_zero(page: &[u8]) -> bool {
    page.iter().all(|&b| b == 0)
}

/// Calls `f(offset, run)` for each run of non-zero pages in `data`.
fn nonzero_runs(data: &[u8], mut f: impl FnMut(usize, &[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut run_start = None;
    for (i, page) in data.chunks(PAGE).enumerate() {
        match (is_zero(page), run_start) {
            (false, None) => run_start = Some(i * PAGE),
            (true, Some(s)) => {
                f(s, &data[s..i * PAGE])?;
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = run_start {
        f(s, &data[s..])?;
    }
    Ok(())
}

impl GuestRam {
    /// Writes the RAM to `file` as a sparse raw image of exactly
    /// [`GuestRam::size`] bytes (the file is emptied first). Returns the
    /// bytes of data written. Call while nothing writes guest memory (a
    /// paused VM).
    pub fn save_to(&self, file: &File) -> io::Result<u64> {
        file.set_len(0)?;
        file.set_len(self.size())?;
        self.write_image_into(file)
    }

    /// The byte ranges (from the RAM's base) that may hold data: a memfd's
    /// data extents, or the whole RAM when it has no memfd. Pages outside
    /// them read as zeros.
    pub fn data_ranges(&self) -> io::Result<Vec<(u64, u64)>> {
        if let Some(fd) = self.memfd() {
            return data_extents(fd.as_raw_fd(), self.size());
        }
        let Some((file, written)) = self.image() else {
            return Ok(vec![(0, self.size())]);
        };
        // Copy-on-write: the image's data, and every page written since.
        let page = crate::ram::DIRTY_PAGE;
        let mut ranges = data_extents(file.as_raw_fd(), self.size())?;
        for (w, word) in written.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let p = w as u64 * 64 + bits.trailing_zeros() as u64;
                ranges.push((p * page, (p + 1) * page));
                bits &= bits - 1;
            }
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e.min(self.size()))),
            }
        }
        Ok(merged)
    }

    /// Like [`GuestRam::save_to`] into a file that is already
    /// [`GuestRam::size`] bytes of zeros (a sandboxed worker may not
    /// resize files): writes only the RAM's nonzero runs.
    pub fn write_image_into(&self, file: &File) -> io::Result<u64> {
        let mut written = 0;
        // A memfd (or a copy-on-write image) says where its data may be;
        // private RAM is read whole (its untouched pages read as zeros and
        // are skipped all the same).
        let extents = self.data_ranges()?;
        for (start, end) in extents {
            let mut at = start;
            while at < end {
                let n = (end - at).min(CHUNK);
                let ptr = self.host_ptr(self.base() + at).expect("extent inside RAM");
                // SAFETY: `[at, at + n)` lies inside the mapping, which lives
                // as long as `self`; the VM is paused, so nothing writes it.
                let data = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), n as usize) };
                nonzero_runs(data, |off, run| {
                    written += run.len() as u64;
                    file.write_all_at(run, at + off as u64)
                })?;
                at += n;
            }
        }
        Ok(written)
    }

    /// Replaces the RAM's contents with the raw image in `file`, which must
    /// be exactly [`GuestRam::size`] bytes. Pages of zeros stay uncommitted.
    /// Call before the guest runs (or while it is paused).
    pub fn load_from(&self, file: &File) -> io::Result<()> {
        let len = file.metadata()?.len();
        if len != self.size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the memory image is {len} bytes, the VM has {} bytes of RAM",
                    self.size()
                ),
            ));
        }
        // Start from all zeros: free every page the RAM holds now.
        if !self.free_range(0, self.size()) {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; CHUNK as usize];
        for (start, end) in data_extents(file.as_raw_fd(), len)? {
            let mut at = start;
            while at < end {
                let n = (end - at).min(CHUNK) as usize;
                file.read_exact_at(&mut buf[..n], at)?;
                nonzero_runs(&buf[..n], |off, run| {
                    self.write(self.base() + at + off as u64, run);
                    Ok(())
                })?;
                at += n as u64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_and_sparse() {
        round_trip(GuestRam::new);
    }

    #[test]
    fn mergeable_ram_round_trips_too() {
        round_trip(GuestRam::new_mergeable);
    }

    fn round_trip(make: fn(u64, u64) -> Result<GuestRam, crate::ram::RamError>) {
        let ram = make(0x4000_0000, 8 << 20).unwrap();
        ram.write(0x4000_0000 + 5, b"hello");
        ram.write(0x4000_0000 + (3 << 20) + 4096 * 7, &[0xaa; 9000]);
        ram.write(0x4000_0000 + (8 << 20) - 1, &[1]);
        // Committed zeros are not data worth writing.
        ram.write(0x4000_0000 + (6 << 20), &[0; 4096]);
        let file = tempfile::tempfile().unwrap();
        let written = ram.save_to(&file).unwrap();
        assert_eq!(written, 4096 * (1 + 3 + 1), "only the pages holding data");
        let copy = make(0x4000_0000, 8 << 20).unwrap();
        copy.write(0x4000_0000 + (1 << 20), b"stale");
        copy.load_from(&file).unwrap();
        let (mut a, mut b) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
        assert!(ram.read(0x4000_0000, &mut a) && copy.read(0x4000_0000, &mut b));
        assert!(a == b, "contents differ");
        // Discarded pages read as zeros.
        assert!(copy.discard(0x4000_0000, 4096));
        let mut page = [1u8; 8];
        assert!(copy.read(0x4000_0000, &mut page));
        assert_eq!(page, [0; 8]);
        let small = GuestRam::new(0x4000_0000, 4 << 20).unwrap();
        let err = small.load_from(&file).unwrap_err();
        assert!(err.to_string().contains("memory image"), "{err}");
    }
}
