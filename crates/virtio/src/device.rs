//! The one small trait every virtio device implements.

use board::GuestRam;

use crate::queue::{Queue, QueueError};
use crate::state::DeviceState;

/// A virtio device behind a transport. The transport owns feature
/// negotiation, queue configuration and interrupts; the device owns its
/// configuration space and what its queues mean.
pub trait VirtioDevice: Send {
    /// Virtio device ID (2 = block, 4 = entropy, ...).
    fn device_id(&self) -> u32;
    /// Device-specific feature bits offered (the transport adds VERSION_1).
    fn features(&self) -> u64;
    /// Number of virtqueues.
    fn num_queues(&self) -> usize;
    /// Reads `data.len()` bytes of configuration space at `offset` (out of range reads zero).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Writes configuration space (most devices ignore it).
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// The driver accepted these features.
    fn set_features(&mut self, _features: u64) {}
    /// Handles the available buffers of queue `index`; returns whether any
    /// buffer was returned to the driver.
    fn process(
        &mut self,
        index: usize,
        queue: &mut Queue,
        ram: &GuestRam,
    ) -> Result<bool, QueueError>;
    /// The driver reset the device.
    fn reset(&mut self) {}
    /// Called when the host pokes the device: returns whether its
    /// configuration changed (the transport then notifies the driver).
    fn poll(&mut self) -> bool {
        false
    }
    /// Queues (bit n = queue n) the device wants served now, e.g. receive
    /// queues it has input or replies for.
    fn pending_queues(&mut self) -> u64 {
        0
    }
    /// Gives up (`held = false`: data flushed first) or takes back the host
    /// locks on the device's backing files, for a VM migrating away while
    /// paused. Devices without any keep the default.
    fn set_host_locks(&mut self, _held: bool) -> Result<(), String> {
        Ok(())
    }
    /// The device's own guest-visible state (call while no queue is being
    /// served). Devices with none keep the default.
    fn save_state(&self) -> DeviceState {
        DeviceState::None
    }
    /// Loads a state saved by [`VirtioDevice::save_state`] from the same
    /// kind of device; refuses one that does not fit, changing nothing.
    fn restore_state(&mut self, state: &DeviceState) -> Result<(), String> {
        state.expect_none("this")
    }
}

/// Reads from a byte image of a configuration space.
pub fn read_config_bytes(config: &[u8], offset: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| config.get(o))
            .copied()
            .unwrap_or(0);
    }
}
