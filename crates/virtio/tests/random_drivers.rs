//! A randomized hostile driver for every device: random register writes,
//! queue setups and notifications over guest RAM full of random bytes.
//! Nothing may panic; a device that objects goes to NEEDS_RESET.
//! (Random rather than coverage-guided like the cargo fuzz targets in fuzz/,
//! and quick enough for every test run.)

use std::sync::Arc;

use board::mmio::MmioDevice;
use board::GuestRam;
use virtio::balloon::{Balloon, BalloonControl};
use virtio::blk::Block;
use virtio::console::{Console, Port, PortInput};
use virtio::net::{Inbox, Net, NetBackend};
use virtio::rng::Rng;
use virtio::vsock::Vsock;
use virtio::{MmioTransport, VirtioDevice};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 1 << 20;

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn drive(device: Box<dyn VirtioDevice>, seed: u64) -> u64 {
    let ram = Arc::new(GuestRam::new(RAM, RAM_SIZE).unwrap());
    let mut rng = Xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let junk: Vec<u8> = (0..RAM_SIZE).map(|_| rng.next() as u8).collect();
    ram.write(RAM, &junk);
    let mut t = MmioTransport::new(device, ram.clone());
    let mut resets = 0;
    for _ in 0..20_000 {
        let r = rng.next();
        // Mostly a plausible driver, sometimes garbage anywhere.
        match r % 8 {
            0 => t.write(0x070, 4, 0),
            1 => {
                t.write(0x070, 4, 3);
                t.write(0x024, 4, 1);
                t.write(0x020, 4, 1);
                t.write(0x070, 4, 11);
            }
            2 => {
                t.write(0x030, 4, (r >> 8) % 5);
                t.write(
                    0x038,
                    4,
                    [1, 2, 8, 16, 256, 3, 0, 1024][(r >> 16) as usize % 8],
                );
                let base = RAM + (r >> 20) % RAM_SIZE;
                t.write(0x080, 4, base & 0xffff_fff0);
                t.write(0x090, 4, (base + 0x1000) & 0xffff_fffe);
                t.write(0x0a0, 4, (base + 0x2000) & 0xffff_fffc);
                t.write(0x044, 4, 1);
                t.write(0x070, 4, 15);
            }
            3 | 4 => t.write(0x050, 4, (r >> 8) % 5),
            5 => {
                // Scribble on guest RAM (rings and descriptors included).
                let at = RAM + (r >> 8) % (RAM_SIZE - 8);
                ram.write(at, &rng.next().to_le_bytes());
            }
            6 => {
                let off = (r >> 8) % 0x200;
                t.write(off, [1, 2, 4, 8][(r >> 20) as usize % 4], rng.next());
            }
            _ => {
                let off = (r >> 8) % 0x200;
                t.read(off, [1, 2, 4, 8][(r >> 20) as usize % 4]);
                t.poll();
            }
        }
        if t.read(0x070, 4) & 0x40 != 0 {
            resets += 1;
            t.write(0x070, 4, 0);
        }
        let _ = t.irq_level();
    }
    resets
}

#[test]
fn random_drivers_never_crash_any_device() {
    let disk = std::env::temp_dir().join(format!("pv-random-disk-{}", std::process::id()));
    std::fs::write(&disk, vec![0u8; 256 << 10]).unwrap();
    for seed in 1..=4u64 {
        let resets = [
            drive(Box::new(Rng), seed),
            drive(Box::new(Block::open(&disk, false).unwrap()), seed),
            drive(Box::new(Block::open(&disk, true).unwrap()), seed),
            drive(Box::new(Balloon::new(BalloonControl::default())), seed),
            drive(Box::new(console_with_input()), seed),
            drive(Box::new(net_with_input()), seed),
            drive(Box::new(vsock(seed)), seed),
        ];
        // Garbage must be noticed: each device needed resets at some point.
        assert!(resets.iter().all(|&n| n > 0), "seed {seed}: {resets:?}");
    }
    let _ = std::fs::remove_file(&disk);
}

/// A console with two ports, both with host input waiting.
fn console_with_input() -> Console {
    let ports = (0..2)
        .map(|i| {
            let input = PortInput::default();
            input.send(&[b'x'; 3000]);
            Port {
                name: (i > 0).then(|| format!("p{i}")),
                output: Box::new(std::io::sink()),
                input,
            }
        })
        .collect();
    Console::new(ports)
}

/// Checks that every frame a NIC sends has a valid size.
struct CheckingBackend;

impl NetBackend for CheckingBackend {
    fn send(&mut self, frame: &[u8]) {
        assert!(
            (14..=1518).contains(&frame.len()),
            "frame of {} bytes",
            frame.len()
        );
    }
}

/// A NIC with frames waiting for the guest.
fn net_with_input() -> Net {
    let inbox = Inbox::default();
    for i in 0..64 {
        inbox.deliver(&vec![i as u8; 60 + i * 20]);
    }
    Net::new([2, 0, 0, 0, 0, 1], Box::new(CheckingBackend), inbox)
}

/// A vsock device on a socket of its own.
fn vsock(seed: u64) -> Vsock {
    let uds = std::env::temp_dir().join(format!("pv-random-vsock-{}-{seed}", std::process::id()));
    Vsock::new(3, &uds, std::sync::Arc::new(|| {})).unwrap()
}
