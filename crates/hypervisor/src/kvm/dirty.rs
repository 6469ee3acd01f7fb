//! [`KvmWriteLog`]: the guest's stores to its RAM, from KVM's dirty log.
//!
//! Tracking is off until a migration asks for it: logging makes KVM
//! write-protect guest pages (and map RAM with small pages), which costs
//! the guest a fault on its first store to each page after every take.
//! The first take turns `KVM_MEM_LOG_DIRTY_PAGES` on for the RAM's memory
//! slot; each later one is `KVM_GET_DIRTY_LOG`, which returns the pages
//! written since the previous one and write-protects them again.

use std::sync::{Arc, Mutex};

use board::ram::DIRTY_PAGE;
use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES};

use super::KvmShared;
use crate::GuestWriteLog;

/// KVM's dirty log of the VM's one RAM slot.
pub(crate) struct KvmWriteLog {
    pub(crate) vm: Arc<KvmShared>,
    /// The RAM's memory slot as registered (without logging).
    pub(crate) region: kvm_userspace_memory_region,
    /// Whether logging is on.
    pub(crate) on: Mutex<bool>,
}

impl KvmWriteLog {
    fn set_logging(&self, on: bool) -> Result<(), String> {
        let mut region = self.region;
        if on {
            region.flags |= KVM_MEM_LOG_DIRTY_PAGES;
        }
        // SAFETY: the same slot over the same mapping (the board's RAM,
        // which outlives the VM); only the logging flag changes.
        unsafe { self.vm.vm.set_user_memory_region(region) }
            .map_err(|e| format!("KVM cannot switch the dirty log of guest RAM: {e}"))
    }
}

impl GuestWriteLog for KvmWriteLog {
    fn take(&self, log: &mut [u64]) -> Result<(), String> {
        let mut on = self.on.lock().unwrap_or_else(|e| e.into_inner());
        if !*on {
            self.set_logging(true)?;
            *on = true;
            return Ok(());
        }
        let kernel = self
            .vm
            .vm
            .get_dirty_log(self.region.slot, self.region.memory_size as usize)
            .map_err(|e| format!("KVM_GET_DIRTY_LOG failed: {e}"))?;
        crate::page_bits::widen_into(&kernel, host_page_size(), log);
        Ok(())
    }

    fn stop(&self) {
        let mut on = self.on.lock().unwrap_or_else(|e| e.into_inner());
        if *on && self.set_logging(false).is_ok() {
            *on = false;
        }
    }
}

fn host_page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(DIRTY_PAGE).max(DIRTY_PAGE)
}
