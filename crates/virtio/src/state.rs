//! The guest-visible state of a virtio transport and its device, as plain
//! data kept apart from host resources (files, sockets, threads): what a
//! snapshot saves and a restore loads into a transport built around the
//! same kind of device.

use serde::{Deserialize, Serialize};

use crate::queue::Queue;

/// A virtio-mmio transport's state: the driver's view of the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportState {
    /// The virtio device ID (a restore into another kind of device is refused).
    pub device_id: u32,
    /// The device status register (without NEEDS_RESET).
    pub status: u32,
    /// DeviceFeaturesSel.
    pub features_sel: u32,
    /// DriverFeaturesSel.
    pub driver_features_sel: u32,
    /// The features the driver wrote.
    pub driver_features: u64,
    /// QueueSel.
    pub queue_sel: u32,
    /// ConfigGeneration.
    pub config_generation: u32,
    /// InterruptStatus.
    pub interrupt: u32,
    /// Whether a guest error put the device in NEEDS_RESET.
    pub needs_reset: bool,
    /// Each virtqueue's configuration and the device's progress in it.
    pub queues: Vec<Queue>,
    /// What the device itself keeps.
    pub device: DeviceState,
}

/// A device's own guest-visible state, beyond its transport and queues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceState {
    /// Nothing beyond the transport (entropy).
    None,
    /// virtio-blk: the disk's shape, checked against the image on restore.
    Block {
        /// Capacity in 512-byte sectors.
        sectors: u64,
        /// Whether the guest sees a read-only disk.
        read_only: bool,
    },
    /// virtio-net: the MAC address the guest knows.
    Net {
        /// The MAC address.
        mac: [u8; 6],
    },
    /// virtio-console: control messages queued for the driver.
    Console {
        /// Number of ports (a restore into another number is refused).
        ports: usize,
        /// Control messages not yet delivered, oldest first.
        control_out: Vec<Vec<u8>>,
    },
    /// virtio-balloon.
    Balloon {
        /// Features the driver accepted.
        features: u64,
        /// Requested balloon size in pages.
        target_pages: u32,
        /// Pages the guest says are in the balloon.
        actual_pages: u32,
        /// The statistics buffer the device holds, if any.
        stats_head: Option<u16>,
    },
    /// virtio-vsock. Host connections do not survive a snapshot: the
    /// restored device tells the driver its transport was reset
    /// (VIRTIO_VSOCK_EVENT_TRANSPORT_RESET), and the guest drops its streams.
    Vsock {
        /// The guest's context ID.
        cid: u64,
    },
}

impl DeviceState {
    /// A device that keeps nothing of its own accepts only [`DeviceState::None`].
    pub fn expect_none(&self, device: &str) -> Result<(), String> {
        match self {
            DeviceState::None => Ok(()),
            other => Err(mismatch(device, other)),
        }
    }
}

/// The error for a state of another kind of device.
pub fn mismatch(device: &str, state: &DeviceState) -> String {
    format!("saved device state {state:?} does not fit a {device} device")
}
