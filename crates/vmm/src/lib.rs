//! `vmm`: one virtual machine. [`VmConfig`] says what to boot; [`Vm::new`]
//! checks it, builds the board, loads the kernel, initrd and device tree;
//! [`Vm::run`] runs the vCPU(s) until the guest powers off or fails.

mod config;
mod control;
mod dirty;
mod kicks;
mod panic_watch;
mod ports;
mod quota;
mod state;
mod vcpu;
mod vm;

pub use config::{
    parse_size, DiskConfig, NetBackendConfig, NetConfig, PortConfig, VmConfig, VsockConfig,
    MAX_VCPUS,
};
pub use control::{BalloonReport, VmControl, VmStats, BALLOON_RESERVE};
pub use dirty::DirtyLog;
pub use hypervisor::{Accel, Backend};
pub use quota::CpuQuota;
pub use state::{StateError, VmState, FORMAT_VERSION};
pub use virtio::vsock::{PeerStream, Routed, VsockRouter};
pub use vm::{BootImages, SavedRam, Vm, VmEnd, VmError};

/// Board types the front end needs (console input, power state).
pub mod board_types {
    pub use board::{Board, GuestRam, Power};
}

pub use virtio::balloon::BalloonControl;
