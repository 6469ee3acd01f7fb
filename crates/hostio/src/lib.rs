//! `hostio`: the VMM's contact with the host's file system, made safe for
//! the user's data.
//!
//! * [`socket`] — unix socket paths that never replace a user's file or
//!   another VM's live socket, are created mode 0600 and are removed on
//!   every exit path (including a forced one, [`socket::remove_all_now`]);
//! * [`lock`] — advisory locks on disk images, as QEMU and crosvm take them;
//! * [`input`] — reading guest inputs (kernel, initrd) with a size cap from
//!   regular files only;
//! * [`host_memory`] — the host's physical RAM, for sanity checks.

pub mod input;
pub mod lock;
pub mod socket;

/// The host's physical RAM in bytes (0 if the host does not say).
pub fn host_memory() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    if pages <= 0 || size <= 0 {
        return 0;
    }
    (pages as u64).saturating_mul(size as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_memory_is_plausible() {
        let m = super::host_memory();
        assert!(m >= 64 << 20, "{m}");
    }
}
