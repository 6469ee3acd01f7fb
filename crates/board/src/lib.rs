//! `board`: Pocketvisor's virtual board, shaped like QEMU's `-M virt`.
//!
//! * [`GuestRam`]: guest memory, committed on demand.
//! * [`Board`]: RAM plus devices — GICv3 ([`gic`]), generic timers
//!   ([`timer`]), PL011 UART ([`pl011`]), PL031 RTC ([`pl031`]) and extra
//!   MMIO devices — shared by the vCPU threads; [`VcpuBus`] is one vCPU's
//!   [`a64::Bus`].
//! * [`psci`]: firmware calls; [`fdt`]: the device tree; [`linux`]: the
//!   arm64 Image boot protocol.

pub mod cpu_power;
pub mod fdt;
pub mod gic;
pub mod irqchip;
pub mod layout;
pub mod linux;
mod machine;
pub mod mmio;
pub mod pause;
pub mod pl011;
pub mod pl031;
pub mod psci;
pub mod ram;
mod ram_image;
mod state;
pub mod timer;

pub use cpu_power::{CpuPower, CpuPowers};
pub use irqchip::{CpuWires, IrqLine, KernelIrqchip};
pub use machine::{Board, BoardConfig, ConsoleSink, Power, RamSource, VcpuBus};
pub use ram::GuestRam;
pub use state::BoardState;
