//! The interface of devices mapped in guest physical memory.

/// A device mapped in guest physical memory. Offsets are relative to the
/// device's base. A guest can write anything: implementations never panic
/// and never allocate without bound, whatever the offset, size or value.
pub trait MmioDevice: Send {
    /// Reads `size` (1, 2, 4 or 8) bytes; unknown registers read as zero.
    fn read(&mut self, offset: u64, size: u8) -> u64;
    /// Writes `size` (1, 2, 4 or 8) bytes; unknown registers ignore writes.
    fn write(&mut self, offset: u64, size: u8, value: u64);
    /// Whether the device's interrupt output is asserted.
    fn irq_level(&self) -> bool {
        false
    }
    /// Lets the device act on events from outside the guest (a new balloon
    /// target, host input); called by [`crate::Board::poll_devices`].
    fn poll(&mut self) {}
    /// Whether the device has guest I/O in flight on a thread of its own
    /// (a pause waits until it has none).
    fn busy(&self) -> bool {
        false
    }
}

/// A device shared with its owner (who saves its state, say): each access
/// takes the device's own lock.
impl<T: MmioDevice> MmioDevice for std::sync::Arc<std::sync::Mutex<T>> {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        lock(self).read(offset, size)
    }
    fn write(&mut self, offset: u64, size: u8, value: u64) {
        lock(self).write(offset, size, value)
    }
    fn irq_level(&self) -> bool {
        lock(self).irq_level()
    }
    fn poll(&mut self) {
        lock(self).poll()
    }
    fn busy(&self) -> bool {
        lock(self).busy()
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it would be a VMM bug; keep going with the data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
