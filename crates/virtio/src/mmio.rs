//! The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2).

use std::sync::Arc;

use board::mmio::MmioDevice;
use board::GuestRam;

use crate::device::VirtioDevice;
use crate::queue::{Queue, QueueError, MAX_QUEUE_SIZE};

/// VIRTIO_F_VERSION_1: a modern (non-legacy) device.
const F_VERSION_1: u64 = 1 << 32;

/// Device status bits.
mod status {
    pub const ACKNOWLEDGE: u32 = 1;
    pub const DRIVER: u32 = 2;
    pub const DRIVER_OK: u32 = 4;
    pub const FEATURES_OK: u32 = 8;
    pub const NEEDS_RESET: u32 = 0x40;
    pub const FAILED: u32 = 0x80;
}

/// InterruptStatus bits.
const INT_USED: u32 = 1;
const INT_CONFIG: u32 = 2;

/// A virtio-mmio transport around one device.
pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    ram: Arc<GuestRam>,
    queues: Vec<Queue>,
    status: u32,
    features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    interrupt_status: u32,
    config_generation: u32,
    /// Why the device needs a reset, for diagnostics.
    last_error: Option<QueueError>,
}

impl MmioTransport {
    /// Wraps `device`, whose queues live in `ram`.
    pub fn new(device: Box<dyn VirtioDevice>, ram: Arc<GuestRam>) -> Self {
        let n = device.num_queues();
        MmioTransport {
            device,
            ram,
            queues: vec![Queue::default(); n],
            status: 0,
            features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
            config_generation: 0,
            last_error: None,
        }
    }

    /// The last guest error that put the device in NEEDS_RESET.
    pub fn last_error(&self) -> Option<&QueueError> {
        self.last_error.as_ref()
    }

    fn offered(&self) -> u64 {
        self.device.features() | F_VERSION_1
    }

    fn queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn reset(&mut self) {
        for q in &mut self.queues {
            q.reset();
        }
        self.status = 0;
        self.driver_features = 0;
        self.interrupt_status = 0;
        self.last_error = None;
        self.device.reset();
    }

    fn notify(&mut self, index: usize) {
        // Some drivers (virtio-balloon's statistics) kick before DRIVER_OK;
        // a configured queue is served once features are agreed.
        if self.status & status::FEATURES_OK == 0 || self.status & status::NEEDS_RESET != 0 {
            return;
        }
        if std::env::var_os("PV_TRACE_VIRTIO").is_some() {
            eprintln!("virtio {}: notify queue {index}", self.device.device_id());
        }
        let Some(q) = self.queues.get_mut(index) else {
            return;
        };
        if !q.ready {
            return;
        }
        let result = q
            .validate(&self.ram)
            .and_then(|()| self.device.process(index, q, &self.ram));
        match result {
            Ok(true) => {
                if q.wants_interrupt(&self.ram) {
                    self.interrupt_status |= INT_USED;
                }
            }
            Ok(false) => {}
            Err(e) => {
                if std::env::var_os("PV_TRACE_VIRTIO").is_some() {
                    eprintln!(
                        "virtio {}: queue {index}: {e}; device needs reset",
                        self.device.device_id()
                    );
                }
                self.last_error = Some(e);
                self.status |= status::NEEDS_RESET;
                self.interrupt_status |= INT_CONFIG;
            }
        }
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let mut v = value & 0xff;
        if v & status::FEATURES_OK != 0 && self.status & status::FEATURES_OK == 0 {
            let ok = self.driver_features & !self.offered() == 0
                && self.driver_features & F_VERSION_1 != 0;
            if ok {
                self.device.set_features(self.driver_features);
            } else {
                v &= !status::FEATURES_OK;
            }
        }
        // NEEDS_RESET is the device's to set; keep it until a reset.
        self.status = v | (self.status & status::NEEDS_RESET);
        let _ = (status::ACKNOWLEDGE, status::DRIVER, status::FAILED);
    }
}

fn set_half(reg: &mut u64, high: bool, value: u64) {
    let v = value & 0xffff_ffff;
    *reg = if high {
        (*reg & 0xffff_ffff) | v << 32
    } else {
        (*reg & !0xffff_ffff) | v
    };
}

impl MmioDevice for MmioTransport {
    fn read(&mut self, offset: u64, size: u8) -> u64 {
        if offset >= 0x100 {
            let mut buf = [0u8; 8];
            let n = (size as usize).clamp(1, 8);
            self.device.read_config(offset - 0x100, &mut buf[..n]);
            return u64::from_le_bytes(buf);
        }
        let q = self.queues.get(self.queue_sel as usize);
        (match offset {
            0x000 => 0x7472_6976,
            0x004 => 2,
            0x008 => self.device.device_id(),
            0x00c => 0x5256_5650, // "PVVR"
            0x010 => match self.features_sel {
                0 => self.offered() as u32,
                1 => (self.offered() >> 32) as u32,
                _ => 0,
            },
            0x034 if q.is_some() => MAX_QUEUE_SIZE as u32,
            0x038 => q.map_or(0, |q| q.size as u32),
            0x044 => q.is_some_and(|q| q.ready) as u32,
            0x060 => self.interrupt_status,
            0x070 => self.status,
            0x080 => q.map_or(0, |q| q.desc as u32),
            0x084 => q.map_or(0, |q| (q.desc >> 32) as u32),
            0x090 => q.map_or(0, |q| q.avail as u32),
            0x094 => q.map_or(0, |q| (q.avail >> 32) as u32),
            0x0a0 => q.map_or(0, |q| q.used as u32),
            0x0a4 => q.map_or(0, |q| (q.used >> 32) as u32),
            0x0fc => self.config_generation,
            _ => 0,
        }) as u64
    }

    fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset >= 0x100 {
            let n = (size as usize).clamp(1, 8);
            self.device
                .write_config(offset - 0x100, &value.to_le_bytes()[..n]);
            return;
        }
        let v = value & 0xffff_ffff;
        // Queue registers may only change while the queue is not ready.
        let configurable = |q: &Queue| !q.ready;
        match offset {
            0x014 => self.features_sel = v as u32,
            0x020 => {
                let shift = match self.driver_features_sel {
                    0 => 0,
                    1 => 32,
                    _ => return,
                };
                self.driver_features =
                    (self.driver_features & !(0xffff_ffff << shift)) | v << shift;
            }
            0x024 => self.driver_features_sel = v as u32,
            0x030 => self.queue_sel = v as u32,
            0x038 => {
                if let Some(q) = self.queue().filter(|q| configurable(q)) {
                    q.size = v.min(u16::MAX as u64) as u16;
                }
            }
            0x044 => {
                if let Some(q) = self.queue() {
                    q.ready = v & 1 != 0;
                }
            }
            0x050 => self.notify(v as usize),
            0x064 => self.interrupt_status &= !(v as u32),
            0x070 => self.set_status(v as u32),
            0x080 | 0x084 | 0x090 | 0x094 | 0x0a0 | 0x0a4 => {
                if let Some(q) = self.queue().filter(|q| configurable(q)) {
                    let high = offset & 4 != 0;
                    let reg = match offset & !4 {
                        0x080 => &mut q.desc,
                        0x090 => &mut q.avail,
                        _ => &mut q.used,
                    };
                    set_half(reg, high, v);
                }
            }
            _ => {}
        }
    }

    fn irq_level(&self) -> bool {
        self.interrupt_status != 0
    }

    fn poll(&mut self) {
        if std::env::var_os("PV_TRACE_VIRTIO").is_some() {
            eprintln!(
                "virtio {}: poll status {:#x}",
                self.device.device_id(),
                self.status
            );
        }
        if self.device.poll() {
            self.config_generation = self.config_generation.wrapping_add(1);
            if self.status & status::DRIVER_OK != 0 {
                self.interrupt_status |= INT_CONFIG;
            }
        }
    }
}
