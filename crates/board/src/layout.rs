//! The guest physical memory map and interrupt numbers, modelled on QEMU's
//! `-M virt` so that stock kernels and their device drivers feel at home.

/// GICv3 distributor (64 KiB).
pub const GIC_DIST: u64 = 0x0800_0000;
/// Size of the distributor frame.
pub const GIC_DIST_SIZE: u64 = 0x1_0000;
/// GICv3 redistributors: 128 KiB (RD_base + SGI_base frames) per CPU.
pub const GIC_REDIST: u64 = 0x080a_0000;
/// Size of one CPU's redistributor.
pub const GIC_REDIST_STRIDE: u64 = 0x2_0000;
/// Most CPUs the redistributor region has room for.
pub const MAX_CPUS: usize = 123;
/// PL011 UART.
pub const UART: u64 = 0x0900_0000;
/// PL031 real-time clock.
pub const RTC: u64 = 0x0901_0000;
/// Size of the UART and RTC frames.
pub const PRIMECELL_SIZE: u64 = 0x1000;
/// First virtio-mmio transport; transports follow every [`VIRTIO_STRIDE`] bytes.
pub const VIRTIO_BASE: u64 = 0x0a00_0000;
/// Distance between virtio-mmio transports.
pub const VIRTIO_STRIDE: u64 = 0x200;
/// Most virtio-mmio transports (as on QEMU's virt: 0x0a00_0000..0x0a00_4000, SPIs 16..48).
pub const VIRTIO_MAX: usize = 32;
/// Start of RAM.
pub const RAM_BASE: u64 = 0x4000_0000;
/// Largest RAM size the map allows (up to the 40-bit physical address limit).
pub const RAM_MAX: u64 = (1 << 40) - RAM_BASE;

/// Shared peripheral interrupt numbers (INTID = 32 + SPI).
pub mod spi {
    /// PL011 UART.
    pub const UART: u32 = 1;
    /// PL031 RTC.
    pub const RTC: u32 = 2;
    /// First virtio-mmio transport.
    pub const VIRTIO_BASE: u32 = 16;
}

/// Private peripheral interrupts of the generic timer (INTIDs).
pub mod ppi {
    /// EL1 virtual timer.
    pub const VIRT_TIMER: u32 = 27;
    /// EL1 physical timer (non-secure).
    pub const PHYS_TIMER: u32 = 30;
    /// Secure EL1 physical timer (listed in the device tree, never fires).
    pub const SECURE_PHYS_TIMER: u32 = 29;
    /// EL2 timer (listed in the device tree, never fires).
    pub const HYP_TIMER: u32 = 26;
}

/// Number of SPIs the GIC implements.
pub const NUM_SPIS: u32 = 64;
