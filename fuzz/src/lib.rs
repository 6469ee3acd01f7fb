//! A virtio driver steered by fuzzer input. It sets a device up the way a
//! guest driver would (every queue in a small guest RAM), then plays the
//! input as operations: writes into RAM (descriptors, rings, buffers),
//! avail-ring entries, queue notifications, raw register accesses, polls
//! and resets. A device that objects must go to NEEDS_RESET; nothing may
//! panic, hang or touch memory outside guest RAM.

use std::sync::Arc;

use board::mmio::MmioDevice;
use board::GuestRam;
use virtio::{MmioTransport, VirtioDevice};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 64 << 10;
/// Queue n's rings live at RAM + n * QUEUE_STRIDE: descriptors, then
/// avail at +0x100, used at +0x200 (16 entries each).
const QUEUE_STRIDE: u64 = 0x400;
const QUEUE_SIZE: u64 = 16;
const MAX_QUEUES: u64 = 8;

fn setup(t: &mut MmioTransport, queues: u64) {
    t.write(0x070, 4, 0);
    t.write(0x070, 4, 1 | 2);
    t.write(0x024, 4, 1);
    t.write(0x020, 4, 1); // VIRTIO_F_VERSION_1
    t.write(0x070, 4, 1 | 2 | 8);
    for q in 0..queues {
        let base = RAM + q * QUEUE_STRIDE;
        t.write(0x030, 4, q);
        t.write(0x038, 4, QUEUE_SIZE);
        t.write(0x080, 4, base);
        t.write(0x090, 4, base + 0x100);
        t.write(0x0a0, 4, base + 0x200);
        t.write(0x044, 4, 1);
    }
    t.write(0x070, 4, 1 | 2 | 8 | 4);
}

/// Input bytes, read front to back; zeros once used up.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}

/// Drives `device` with fuzzer input `data`.
pub fn drive(device: Box<dyn VirtioDevice>, data: &[u8]) {
    let queues = (device.num_queues() as u64).min(MAX_QUEUES);
    let ram = Arc::new(GuestRam::new(RAM, RAM_SIZE).expect("guest RAM"));
    let mut t = MmioTransport::new(device, ram.clone());
    setup(&mut t, queues);
    let mut avail_idx = [0u16; MAX_QUEUES as usize];
    let mut input = Input(data);
    let mut ops = 0;
    while !input.0.is_empty() && ops < 4096 {
        ops += 1;
        let q = (input.u8() as u64) % queues.max(1);
        match input.u8() % 8 {
            // Bytes into guest RAM: a descriptor, a header, a buffer.
            0..=2 => {
                let at = input.u16() as u64 % RAM_SIZE;
                let len = (input.u8() as usize).min(32);
                let bytes: Vec<u8> = (0..len).map(|_| input.u8()).collect();
                ram.write(
                    RAM + at,
                    &bytes[..bytes.len().min((RAM_SIZE - at) as usize)],
                );
            }
            // A descriptor in queue q's table: addr, len, flags, next.
            3 => {
                let d = RAM + q * QUEUE_STRIDE + 16 * (input.u8() as u64 % QUEUE_SIZE);
                let addr = RAM + input.u16() as u64 * 4 % RAM_SIZE;
                let mut desc = [0u8; 16];
                desc[..8].copy_from_slice(&addr.to_le_bytes());
                desc[8..12].copy_from_slice(&(input.u16() as u32).to_le_bytes());
                desc[12..14].copy_from_slice(&(input.u8() as u16 & 7).to_le_bytes());
                desc[14..16].copy_from_slice(&(input.u8() as u16 % 20).to_le_bytes());
                ram.write(d, &desc);
            }
            // Offer a chain head on queue q and notify.
            4 | 5 => {
                let avail = RAM + q * QUEUE_STRIDE + 0x100;
                let i = avail_idx[q as usize];
                let head = input.u8() as u16 % 20;
                ram.write(avail + 4 + 2 * (i as u64 % QUEUE_SIZE), &head.to_le_bytes());
                avail_idx[q as usize] = i.wrapping_add(1);
                ram.write(avail + 2, &avail_idx[q as usize].to_le_bytes());
                t.write(0x050, 4, q);
            }
            // A raw register access (config space included).
            6 => {
                let off = input.u16() as u64 % 0x180;
                let size = [1, 2, 4, 8][input.u8() as usize % 4];
                if input.u8() & 1 == 0 {
                    t.write(off, size, input.u32() as u64);
                } else {
                    let _ = t.read(off, size);
                }
            }
            // Host-side events, or a driver reset and a fresh setup.
            _ => {
                if input.u8() % 4 == 0 {
                    setup(&mut t, queues);
                    avail_idx = [0; MAX_QUEUES as usize];
                } else {
                    t.poll();
                }
            }
        }
        if t.read(0x070, 4) & 0x40 != 0 {
            // NEEDS_RESET: what a driver does next.
            setup(&mut t, queues);
            avail_idx = [0; MAX_QUEUES as usize];
        }
        let _ = t.irq_level();
    }
}
