//! [`KvmIoEvents`]: guest MMIO writes that KVM turns into eventfd signals
//! (`KVM_IOEVENTFD`), so the vCPU goes on without an exit to the VMM.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;

use kvm_ioctls::IoEventAddress;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use super::KvmShared;
use crate::IoEvents;

/// Registers ioeventfds with the VM.
pub(crate) struct KvmIoEvents {
    pub(crate) vm: Arc<KvmShared>,
}

impl IoEvents for KvmIoEvents {
    fn watch_write(&self, addr: u64, value: u32) -> Result<OwnedFd, String> {
        let event =
            EventFd::new(EFD_NONBLOCK).map_err(|e| format!("cannot make an eventfd: {e}"))?;
        self.vm
            .vm
            .register_ioevent(&event, &IoEventAddress::Mmio(addr), value)
            .map_err(|e| format!("KVM refused an ioeventfd at {addr:#x}: {e}"))?;
        // Our own descriptor for the event (KVM holds its reference).
        // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one.
        let fd = unsafe { libc::fcntl(event.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            return Err(format!(
                "cannot duplicate an eventfd: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}
