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
