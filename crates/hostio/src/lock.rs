//! Disk image locks, as QEMU takes them: an open-file-description (OFD)
//! `fcntl` lock over the whole file — exclusive for a writable image,
//! shared for a read-only one. Any number of VMs may share a read-only
//! image; a writer excludes everyone else. OFD locks belong to the open
//! file, so they hold across threads, vanish when the file is closed (also
//! when the process dies), and conflict with QEMU's own byte-range locks on
//! the same image.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Why an image could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process (or another disk of this VM) holds a conflicting lock.
    InUse(String),
    /// The host failed in another way.
    Io(String, std::io::Error),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::InUse(p) => write!(f, "disk '{p}' is in use by another process"),
            LockError::Io(p, e) => write!(f, "cannot lock disk '{p}': {e}"),
        }
    }
}

impl std::error::Error for LockError {}

/// Drops the lock [`lock_image`] took on `file` (it stays open), so that
/// another process may take the image — a VM migrating hands its disks
/// over this way, and takes them back with [`lock_image`] if the move fails.
pub fn unlock_image(file: &File) -> std::io::Result<()> {
    // SAFETY: flock is plain data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_UNLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: F_OFD_SETLK with a valid flock on our own descriptor.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Locks the open image `file` (named `path` in messages): exclusively when
/// `writable`, shared otherwise. The lock lasts as long as the file is open.
/// File systems without lock support are used unlocked, as QEMU does.
pub fn lock_image(file: &File, path: &Path, writable: bool) -> Result<(), LockError> {
    // SAFETY: flock is plain data.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = if writable {
        libc::F_WRLCK
    } else {
        libc::F_RDLCK
    } as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0; // to the end of the file, however it grows
                  // SAFETY: F_OFD_SETLK with a valid flock on our own descriptor.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    let name = path.display().to_string();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Err(LockError::InUse(name)),
        Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => Ok(()),
        _ => Err(LockError::Io(name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn open(p: &Path, write: bool) -> File {
        OpenOptions::new().read(true).write(write).open(p).unwrap()
    }

    #[test]
    fn writers_exclude_everyone_readers_share() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.img");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();

        let w = open(&p, true);
        lock_image(&w, &p, true).unwrap();
        let e = lock_image(&open(&p, true), &p, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("disk '{}' is in use by another process", p.display())
        );
        assert!(lock_image(&open(&p, false), &p, false).is_err());
        drop(w);

        let r1 = open(&p, false);
        let r2 = open(&p, false);
        lock_image(&r1, &p, false).unwrap();
        lock_image(&r2, &p, false).unwrap();
        assert!(matches!(
            lock_image(&open(&p, true), &p, true),
            Err(LockError::InUse(_))
        ));
        drop((r1, r2));
        lock_image(&open(&p, true), &p, true).unwrap();
    }
}
