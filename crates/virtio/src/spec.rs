//! Numbers from the virtio specification, typed for this crate. They come
//! from rust-vmm's virtio-bindings (generated from Linux's uapi headers),
//! which covers the transport, the ring and the block and network devices;
//! the console, balloon and vsock devices keep their few numbers next to
//! their code.

use virtio_bindings::{
    virtio_blk as blk, virtio_config as config, virtio_ids as ids, virtio_mmio as mmio,
    virtio_net as net, virtio_ring as ring,
};

/// A feature bit as a mask.
const fn feature(bit: u32) -> u64 {
    1 << bit
}

/// VIRTIO_F_VERSION_1: a modern (non-legacy) device.
pub const F_VERSION_1: u64 = feature(config::VIRTIO_F_VERSION_1);

/// Device IDs.
pub mod id {
    use super::ids;
    /// Network card.
    pub const NET: u32 = ids::VIRTIO_ID_NET;
    /// Block device.
    pub const BLOCK: u32 = ids::VIRTIO_ID_BLOCK;
    /// Console.
    pub const CONSOLE: u32 = ids::VIRTIO_ID_CONSOLE;
    /// Entropy source.
    pub const RNG: u32 = ids::VIRTIO_ID_RNG;
    /// Traditional memory balloon.
    pub const BALLOON: u32 = ids::VIRTIO_ID_BALLOON;
    /// Socket device.
    pub const VSOCK: u32 = ids::VIRTIO_ID_VSOCK;
}

/// virtio-mmio register offsets (version 2).
pub mod reg {
    use super::mmio;
    /// "virt".
    pub const MAGIC_VALUE: u64 = mmio::VIRTIO_MMIO_MAGIC_VALUE as u64;
    /// Transport version (2).
    pub const VERSION: u64 = mmio::VIRTIO_MMIO_VERSION as u64;
    /// Device ID.
    pub const DEVICE_ID: u64 = mmio::VIRTIO_MMIO_DEVICE_ID as u64;
    /// Vendor ID.
    pub const VENDOR_ID: u64 = mmio::VIRTIO_MMIO_VENDOR_ID as u64;
    /// Offered features, 32 bits selected by DEVICE_FEATURES_SEL.
    pub const DEVICE_FEATURES: u64 = mmio::VIRTIO_MMIO_DEVICE_FEATURES as u64;
    /// Which half of the offered features to show.
    pub const DEVICE_FEATURES_SEL: u64 = mmio::VIRTIO_MMIO_DEVICE_FEATURES_SEL as u64;
    /// Accepted features, 32 bits selected by DRIVER_FEATURES_SEL.
    pub const DRIVER_FEATURES: u64 = mmio::VIRTIO_MMIO_DRIVER_FEATURES as u64;
    /// Which half of the accepted features is written.
    pub const DRIVER_FEATURES_SEL: u64 = mmio::VIRTIO_MMIO_DRIVER_FEATURES_SEL as u64;
    /// Queue the queue registers refer to.
    pub const QUEUE_SEL: u64 = mmio::VIRTIO_MMIO_QUEUE_SEL as u64;
    /// Largest queue size.
    pub const QUEUE_NUM_MAX: u64 = mmio::VIRTIO_MMIO_QUEUE_NUM_MAX as u64;
    /// Queue size in use.
    pub const QUEUE_NUM: u64 = mmio::VIRTIO_MMIO_QUEUE_NUM as u64;
    /// Queue ready.
    pub const QUEUE_READY: u64 = mmio::VIRTIO_MMIO_QUEUE_READY as u64;
    /// Queue notification (the queue number).
    pub const QUEUE_NOTIFY: u64 = mmio::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
    /// Pending interrupt causes.
    pub const INTERRUPT_STATUS: u64 = mmio::VIRTIO_MMIO_INTERRUPT_STATUS as u64;
    /// Acknowledges interrupt causes.
    pub const INTERRUPT_ACK: u64 = mmio::VIRTIO_MMIO_INTERRUPT_ACK as u64;
    /// Device status.
    pub const STATUS: u64 = mmio::VIRTIO_MMIO_STATUS as u64;
    /// Descriptor table address, low half (high half at +4).
    pub const QUEUE_DESC_LOW: u64 = mmio::VIRTIO_MMIO_QUEUE_DESC_LOW as u64;
    /// Descriptor table address, high half.
    pub const QUEUE_DESC_HIGH: u64 = mmio::VIRTIO_MMIO_QUEUE_DESC_HIGH as u64;
    /// Available ring address, low half.
    pub const QUEUE_AVAIL_LOW: u64 = mmio::VIRTIO_MMIO_QUEUE_AVAIL_LOW as u64;
    /// Available ring address, high half.
    pub const QUEUE_AVAIL_HIGH: u64 = mmio::VIRTIO_MMIO_QUEUE_AVAIL_HIGH as u64;
    /// Used ring address, low half.
    pub const QUEUE_USED_LOW: u64 = mmio::VIRTIO_MMIO_QUEUE_USED_LOW as u64;
    /// Used ring address, high half.
    pub const QUEUE_USED_HIGH: u64 = mmio::VIRTIO_MMIO_QUEUE_USED_HIGH as u64;
    /// Changes whenever the configuration space does.
    pub const CONFIG_GENERATION: u64 = mmio::VIRTIO_MMIO_CONFIG_GENERATION as u64;
    /// Start of the device's configuration space.
    pub const CONFIG: u64 = mmio::VIRTIO_MMIO_CONFIG as u64;
}

/// Device status bits.
pub mod status {
    use super::config;
    /// The guest found the device.
    pub const ACKNOWLEDGE: u32 = config::VIRTIO_CONFIG_S_ACKNOWLEDGE;
    /// The guest has a driver for it.
    pub const DRIVER: u32 = config::VIRTIO_CONFIG_S_DRIVER;
    /// The driver is ready.
    pub const DRIVER_OK: u32 = config::VIRTIO_CONFIG_S_DRIVER_OK;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u32 = config::VIRTIO_CONFIG_S_FEATURES_OK;
    /// The device hit an error and must be reset.
    pub const NEEDS_RESET: u32 = config::VIRTIO_CONFIG_S_NEEDS_RESET;
    /// The driver gave up on the device.
    pub const FAILED: u32 = config::VIRTIO_CONFIG_S_FAILED;
}

/// InterruptStatus: buffers were used.
pub const INT_USED: u32 = mmio::VIRTIO_MMIO_INT_VRING;
/// InterruptStatus: the configuration changed.
pub const INT_CONFIG: u32 = mmio::VIRTIO_MMIO_INT_CONFIG;

/// Descriptor flag: the chain continues at `next`.
pub const DESC_NEXT: u16 = ring::VRING_DESC_F_NEXT as u16;
/// Descriptor flag: the device writes this buffer.
pub const DESC_WRITE: u16 = ring::VRING_DESC_F_WRITE as u16;
/// Descriptor flag: the buffer is a table of descriptors.
pub const DESC_INDIRECT: u16 = ring::VRING_DESC_F_INDIRECT as u16;
/// Available-ring flag: the driver wants no interrupts.
pub const AVAIL_NO_INTERRUPT: u16 = ring::VRING_AVAIL_F_NO_INTERRUPT as u16;

/// virtio-blk features, request types and status values.
pub mod block {
    use super::{blk, feature};
    /// `seg_max` is valid.
    pub const F_SEG_MAX: u64 = feature(blk::VIRTIO_BLK_F_SEG_MAX);
    /// The disk is read-only.
    pub const F_RO: u64 = feature(blk::VIRTIO_BLK_F_RO);
    /// `blk_size` is valid.
    pub const F_BLK_SIZE: u64 = feature(blk::VIRTIO_BLK_F_BLK_SIZE);
    /// Flush is supported.
    pub const F_FLUSH: u64 = feature(blk::VIRTIO_BLK_F_FLUSH);
    /// Discard is supported.
    pub const F_DISCARD: u64 = feature(blk::VIRTIO_BLK_F_DISCARD);
    /// Write zeroes is supported.
    pub const F_WRITE_ZEROES: u64 = feature(blk::VIRTIO_BLK_F_WRITE_ZEROES);
    /// Read.
    pub const T_IN: u32 = blk::VIRTIO_BLK_T_IN;
    /// Write.
    pub const T_OUT: u32 = blk::VIRTIO_BLK_T_OUT;
    /// Flush.
    pub const T_FLUSH: u32 = blk::VIRTIO_BLK_T_FLUSH;
    /// Device ID string.
    pub const T_GET_ID: u32 = blk::VIRTIO_BLK_T_GET_ID;
    /// Discard.
    pub const T_DISCARD: u32 = blk::VIRTIO_BLK_T_DISCARD;
    /// Write zeroes.
    pub const T_WRITE_ZEROES: u32 = blk::VIRTIO_BLK_T_WRITE_ZEROES;
    /// Success.
    pub const S_OK: u8 = blk::VIRTIO_BLK_S_OK as u8;
    /// I/O error.
    pub const S_IOERR: u8 = blk::VIRTIO_BLK_S_IOERR as u8;
    /// Unsupported request.
    pub const S_UNSUPP: u8 = blk::VIRTIO_BLK_S_UNSUPP as u8;
    /// Length of the GET_ID answer.
    pub const ID_BYTES: usize = blk::VIRTIO_BLK_ID_BYTES as usize;
}

/// virtio-net features and the frame header.
pub mod network {
    use super::{feature, net};
    /// The device has a MAC address.
    pub const F_MAC: u64 = feature(net::VIRTIO_NET_F_MAC);
    /// The configuration has a link status.
    pub const F_STATUS: u64 = feature(net::VIRTIO_NET_F_STATUS);
    /// Link status: up.
    pub const S_LINK_UP: u16 = net::VIRTIO_NET_S_LINK_UP as u16;
    /// The header in front of every frame (virtio 1.x: `virtio_net_hdr_v1`).
    pub const HEADER_LEN: usize = std::mem::size_of::<net::virtio_net_hdr_v1>();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_bindings_say_what_the_spec_says() {
        assert_eq!(super::network::HEADER_LEN, 12);
        assert_eq!(super::reg::CONFIG, 0x100);
        assert_eq!(super::F_VERSION_1, 1 << 32);
        assert_eq!(super::block::ID_BYTES, 20);
    }
}
