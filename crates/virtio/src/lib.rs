//! `virtio`: the virtio-mmio transport (version 2) and Pocketvisor's
//! virtio devices. Each device implements [`VirtioDevice`]; the
//! [`MmioTransport`] turns it into a board MMIO device.

pub mod balloon;
pub mod blk;
pub mod console;
mod device;
mod mmio;
pub mod net;
pub mod queue;
pub mod rng;
mod spec;
pub mod state;
pub mod vsock;

pub use device::{read_config_bytes, VirtioDevice};
pub use mmio::{MmioTransport, Notifier, QueueKicks};
pub use state::{DeviceState, TransportState};
